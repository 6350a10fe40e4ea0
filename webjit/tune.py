"""Pick the fastest variant of each kernel by timing them on the real shapes.

The same procedure runs in the browser at load time (web/tuner.js): kernels with equal source share one result;
each variant gets warm-up runs and then the median of repeats; the search stops early when the budget is spent,
and untried kernels keep their default variant.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .space import Variant, prune


@dataclass
class KernelResult:
    kernel: str
    variants: dict[str, float] = field(default_factory=dict)  # variant key -> median seconds
    winner: str = ""


def tune(runner, limits: dict, budget_s: float = 60.0, repeats: int = 3, progress=None) -> dict[str, KernelResult]:
    """Time every fitting variant of every distinct kernel on `runner` (a WgpuRunner with its inputs written).
    Sets each kernel to its winner and returns the per-kernel results."""
    start = time.perf_counter()
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(runner.plan.kernels):
        groups.setdefault(k.source_key, []).append(i)
    results: dict[str, KernelResult] = {}
    for n, (key, members) in enumerate(groups.items()):
        first = runner.plan.kernels[members[0]]
        res = KernelResult(first.name)
        best: tuple[float, Variant] | None = None
        for v in prune(first.space, limits):
            if time.perf_counter() - start > budget_s:
                break
            runner.set_variant(members[0], v)
            t = runner.time([members[0]], repeats=repeats, warmup=1)
            res.variants[v.key] = t
            if best is None or t < best[0]:
                best = (t, v)
        if best is not None:
            res.winner = best[1].key
            for i in members:
                runner.set_variant(i, best[1])
                results[runner.plan.kernels[i].name] = res
        if progress:
            progress(n + 1, len(groups))
    return results
