"""python -m tests.fuzz --seconds N --seed S [--backend webgpu|wasm] [--save DIR]

Generates random graphs from webjit's op registry (tests/fuzz/graphs.py) and compares webjit on both native
backends with onnxruntime. Prints the graphs tried, op and kernel coverage, and each failure; a failing graph is
shrunk and saved (NAME.onnx, NAME.npz, NAME.txt) into --save, by default tests/fuzz/cases/, where the normal
suite runs it (tests/fuzz/test_fuzz.py). Exit status 1 when something failed.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
import warnings
from pathlib import Path

from .check import BACKENDS, failure, save_case, shrink
from .graphs import generate

CASES = Path(__file__).parent / "cases"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[1])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--seed", type=int, default=0, help="the first graph's seed; graph i uses seed + i")
    p.add_argument("--backend", choices=BACKENDS, action="append", help="default: both")
    p.add_argument("--save", type=Path, default=CASES, help="where shrunk failing graphs go")
    p.add_argument("--no-shrink", action="store_true")
    args = p.parse_args(argv)
    backends = tuple(args.backend or BACKENDS)
    warnings.simplefilter("ignore")
    op_counts, kind_counts = collections.Counter(), collections.Counter()
    failures, tried, start = [], 0, time.monotonic()
    seed = args.seed
    while time.monotonic() - start < args.seconds:
        model, feeds, used = generate(seed)
        why, kinds = failure(model, feeds, backends)
        tried += 1
        op_counts.update(used)
        kind_counts.update(kinds)
        if why:
            name = f"seed{seed}"
            if not args.no_shrink:
                model, feeds = shrink(model, feeds, backends)
            path = save_case(args.save, name, model, feeds, why)
            failures.append((seed, why, len(model.graph.node), path))
            print(f"FAIL seed {seed}: {why} (shrunk to {len(model.graph.node)} nodes: {path})", flush=True)
        _progress(tried, len(failures), time.monotonic() - start, args.seconds)
        seed += 1
    print(file=sys.stderr)
    elapsed = time.monotonic() - start
    print(f"{tried} graphs in {elapsed:.0f} s (seeds {args.seed}..{seed - 1}), {len(failures)} failed, "
          f"backends {', '.join(backends)}")
    print("ops:     " + ", ".join(f"{op} {n}" for op, n in op_counts.most_common()))
    print("kernels: " + ", ".join(f"{k} {n}" for k, n in kind_counts.most_common()))
    from webjit import ops
    missing = sorted(op for op in ops.ONNX if op not in op_counts)
    print(f"declared ops not generated ({len(missing)}): {', '.join(missing)}")
    return 1 if failures else 0


def _progress(done: int, failed: int, elapsed: float, total: float) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = int(width * min(elapsed / total, 1))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done} graphs, {failed} failed")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
