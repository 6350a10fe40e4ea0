"""The WebAssembly half of a bundle: the plan as WebAssembly modules and the memory layout the browser runtime
(`web/wasm/`) needs to run them. Called by `bundle.build`; the manifest section it returns is `wasm` in
web/MANIFEST.md.

Each module holds the whole plan with up to CANDIDATES variants of each kernel (its default first, then the
nearest in its space) for the runtime to tune on the client (`render_wasm.render_tunable_module`), and exports
`load(t, nt)` (the load-time kernels, once), `run(t, nt)` and `steps(k, reps, t, nt)`. It imports one linear memory
laid out by `render_wasm.layout` (weights, what the load-time kernels write, inputs, the arena, per-thread scratch
for up to MAX_THREADS threads, then the table of each kernel's chosen variant). Four forms: relaxed SIMD
(`f32x4.relaxed_madd`) or fixed SIMD (mul + add), each importing a shared memory (Web Workers) or an unshared one
(one thread, no cross-origin isolation needed).
"""
from __future__ import annotations

import hashlib
from dataclasses import replace

from .errors import WebjitError
from .plan import Plan
from .progress import Progress
from .render_wasm import (CACHE_LINE, HEADER, MAX_THREADS, PAGE, layout, render_tunable_module, tunable_functions,
                          used_weights)
from .space import ceil_div, round_up
from .space_wasm import REGISTERS, retarget
from .wat import assemble

FORMS = [(simd, shared) for simd in ("relaxed", "fixed") for shared in (False, True)]
CANDIDATES = 4  # variants per kernel in a bundle's modules, tuned in the browser (each one adds code to download)


def _candidates(plans: dict) -> dict[str, dict]:
    """Per kernel, the same number of candidates in both SIMD forms; only the default for a load-time kernel,
    which runs once and is not tuned."""
    out = {}
    load = plans["relaxed"].load
    for i, (kr, kf) in enumerate(zip(plans["relaxed"].kernels, plans["fixed"].kernels)):
        n = 1 if i < load else min(CANDIDATES, len(kr.space), len(kf.space))
        out[kr.name] = {"relaxed": _with_a_float_form(kr.space, n), "fixed": list(kf.space[:n])}
    return out


def _with_a_float_form(space, n: int) -> list:
    """The first n variants of a relaxed space; where they are all integer (byte dot) forms, the last gives way to
    the space's first float form. Engines differ in how fast their byte dot is (a few lowerings of it are several
    times slower than the float matmul on the same weights), and the tuner can only pick what the module holds."""
    first = list(space[:n])
    if n > 1 and all(v.v.get("dot") for v in first):
        fallback = next((v for v in space if not v.v.get("dot")), None)
        if fallback is not None:
            first[-1] = fallback
    return first


def _kernels(plan: Plan, candidates: dict[str, dict]) -> list[dict]:
    """The manifest's record of each kernel's candidates; kernels with equal work and candidates form a group,
    tuned once."""
    groups: dict[tuple, int] = {}
    out = []
    for k in plan.kernels:
        keys = {simd: [v.key for v in vs] for simd, vs in candidates[k.name].items()}
        group = groups.setdefault((k.kind, repr(sorted(k.params.items())), repr(keys)), len(groups))
        record = {"name": k.name, "group": group, "flops": int(k.flops), "variants": keys}
        unsigned = [i for i, v in enumerate(candidates[k.name]["relaxed"]) if v.v.get("dot") == 2]
        if unsigned:  # relaxed candidates for engines whose relaxed dot reads unsigned bytes (never the first)
            record["unsignedDot"] = unsigned
        out.append(record)
    return out


def write_wasm(plans: list[Plan], writer, weights: list[dict], indices: list[dict[str, int]]
               ) -> tuple[dict, list[dict]]:
    """Write the modules of every shape class through `writer` (bundle._Writer); return the manifest's `wasm`
    section (for the last, largest class) and, for each other class, its own part of it (`modules`, `inputs`,
    `outputs`). All classes share one memory: the weights (`weights`, the manifest's weight records, which
    `indices[c]` maps class c's weight names into) are placed once, then what each class's load-time kernels write
    (each class its own, since no run may overwrite it), and each class lays out its inputs, arena and scratch
    after them; the memory is as large as the largest class needs."""
    placed, at = {}, HEADER
    for plan, index in zip(reversed(plans), reversed(indices)):
        for name in used_weights(plan):
            if index[name] not in placed:
                placed[index[name]] = at
                at = round_up(at + max(plan.weights[name].nbytes, 4), CACHE_LINE)
    loaded: list[dict[str, int]] = []  # per class, where what its load-time kernels write lives: its own
    for plan in plans:
        loaded.append({})
        for name, size in plan.loaded.items():
            loaded[-1][name], at = at, round_up(at + max(size, 4), CACHE_LINE)
    forms, lays = [], []
    for plan, index, own_loaded in zip(plans, indices, loaded):
        retargeted = {simd: retarget(plan, REGISTERS, relaxed=simd == "relaxed", unsigned_dot=simd == "relaxed")
                      for simd in ("relaxed", "fixed")}
        own = {n: placed[index[n]] for n in used_weights(plan)} | own_loaded
        # one layout for both forms: the relaxed form's space holds every tile of the fixed one (and the integer
        # forms), so its scratch is enough for both
        lay, fixed = (layout(retargeted[simd], MAX_THREADS, own, at) for simd in ("relaxed", "fixed"))
        if fixed.offsets != lay.offsets or fixed.scratch_per_thread > lay.scratch_per_thread:
            raise WebjitError("internal: the fixed SIMD form of the plan does not fit the relaxed form's layout")
        forms.append(retargeted)
        lays.append(lay)
    selects = [round_up(lay.size, CACHE_LINE) for lay in lays]  # each class's table of chosen variants
    size = max(sel + 4 * len(plan.kernels) + CACHE_LINE for sel, plan in zip(selects, plans))
    sections = []
    bar = Progress("wasm", len(plans) * len(FORMS))
    for plan, retargeted, lay, select in zip(plans, forms, lays, selects):
        lay = replace(lay, size=size)
        candidates = _candidates(retargeted)
        modules, functions = [], {}
        for simd, shared in FORMS:
            chosen = {n: c[simd] for n, c in candidates.items()}
            if simd not in functions:  # the shared and unshared forms have the same kernel functions
                functions[simd] = tunable_functions(retargeted[simd], chosen, lay)
            wat = render_tunable_module(retargeted[simd], chosen, lay, select, shared, functions[simd])
            binary = assemble(wat)
            bar(len(sections) * len(FORMS) + len(modules) + 1, note=f"{simd}{' shared' if shared else ''}")
            path = writer.write(f"wasm/{hashlib.sha256(binary).hexdigest()}.wasm", bytes(binary))
            modules.append({"simd": simd, "shared": shared, "file": path})
        sections.append({
            "modules": modules,
            "select": select,
            "kernels": _kernels(plan, candidates),
            "inputs": [lay.offsets[n] for n in plan.inputs],
            "outputs": [lay.offsets[n] if n in plan.slots and n not in plan.consts and n not in plan.inputs
                        else None for n in plan.outputs],
        })
    top = sections[-1]
    return ({"pages": ceil_div(size, PAGE), "maxThreads": MAX_THREADS,
             "registers": REGISTERS, "modules": top["modules"], "select": top["select"], "kernels": top["kernels"],
             "weights": [{"tensor": t, "offset": o} for t, o in sorted(placed.items(), key=lambda e: e[1])],
             "inputs": top["inputs"], "outputs": top["outputs"]}, sections[:-1])
