"""Export the demo models: ``python -m demo_models [names...|all] [--force]``;
hub repositories made by Optimum: ``python -m demo_models hub ARCH [ARCH ...]|all [--force]``."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from . import MODELS, cache_dir, get, sample_inputs


def main(argv: list[str] | None = None) -> int:
    """Export the requested models (all by default) and print their paths."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hub"]:
        from .hub import main as hub_main
        return hub_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m demo_models", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"models to export: {', '.join(MODELS)} or all")
    parser.add_argument("--force", action="store_true", help="export again even if cached")
    parser.add_argument("--save-inputs", action="store_true",
                        help="also write sample inputs (default length) to inputs.npz beside each model")
    args = parser.parse_args(argv)

    names = list(MODELS) if not args.names or "all" in args.names else args.names
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        parser.error(f"unknown model(s): {', '.join(unknown)}")

    for i, name in enumerate(names, 1):
        cached = (cache_dir() / name / "model.onnx").is_file() and not args.force
        action = "cached" if cached else "exporting"
        print(f"[{i}/{len(names)}] {name}: {action} ...", flush=True)
        start = time.perf_counter()
        path = get(name, force=args.force)
        size = sum(f.stat().st_size for f in path.parent.iterdir()) / 2**20
        elapsed = time.perf_counter() - start
        print(f"[{i}/{len(names)}] {name}: {path} ({size:.1f} MiB, {elapsed:.1f} s)")
        if args.save_inputs:
            np.savez(path.parent / "inputs.npz", **sample_inputs(name))
            print(f"[{i}/{len(names)}] {name}: {path.parent / 'inputs.npz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
