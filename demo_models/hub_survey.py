"""How far webjit gets with each hub file: compile it, run it on both backends, compare with onnxruntime.

    python -m demo_models.hub_survey [ARCH ...] [--backends webgpu,wasm] [--json F] [--markdown F]

For every ONNX file of every hub repository (demo_models.hub, exported first if needed) and every backend it
prints a row: the kernel count or the first line of the error, and the largest absolute difference from
onnxruntime on demo_models.hub.sample_inputs. A second table counts, per file, the ops webjit does not know
(op, domain, count), read off the file itself, so it lists every missing op and not only the first one met.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import hub

BACKENDS = ("webgpu", "wasm")


def unknown_ops(path: Path) -> dict[tuple[str, str], int]:
    """(op, domain) -> count of the nodes in `path` whose op webjit does not declare (webjit/ops.py)."""
    import onnx

    from webjit import ops

    model = onnx.load(str(path), load_external_data=False)
    counts: collections.Counter = collections.Counter()
    for node in model.graph.node:
        domain = "" if node.domain == "ai.onnx" else node.domain
        if ops.get(node.op_type, domain) is None:
            counts[(node.op_type, node.domain or "ai.onnx")] += 1
    return dict(counts)


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    cut = line.find(". Supported ops:")  # the list of supported ops is long and the same everywhere
    return f"{type(e).__name__}: {line[:cut] if cut > 0 else line}"[:300]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 1.0 if na == nb == 0 else float(a @ b / (na * nb)) if na and nb else 0.0


def run_backend(plan, backend: str, feeds: dict) -> dict[str, np.ndarray]:
    if backend == "wasm":
        from webjit.native.wasm_runner import WasmRunner
        return WasmRunner(plan).run(feeds)
    from webjit.native.wgpu_runner import WgpuRunner
    return WgpuRunner(plan).run(feeds)


def survey_file(path: Path, backends=BACKENDS) -> list[dict]:
    """One row per backend: {file, backend, kernels | error, max_abs, cosine, seconds}."""
    import webjit
    from webjit.validate import max_error, reference

    feeds = hub.sample_inputs(path)
    start = time.perf_counter()
    try:
        plan = webjit.compile(path, values=feeds)
    except Exception as e:  # noqa: BLE001 - the survey records every failure as one line
        return [{"backend": b, "error": first_line(e), "stage": "compile"} for b in backends]
    compile_s = time.perf_counter() - start
    ref = reference(path, feeds)
    rows = []
    for b in backends:
        row = {"backend": b, "kernels": len(plan.kernels), "compile_s": round(compile_s, 2)}
        start = time.perf_counter()
        try:
            ours = run_backend(plan, b, feeds)
        except Exception as e:  # noqa: BLE001
            row.update(error=first_line(e), stage="run")
        else:
            floats = [o for o in plan.outputs if np.asarray(ref[o]).dtype.kind == "f"]
            row["max_abs"] = max((max_error(ours[o], ref[o]) for o in plan.outputs), default=0.0)
            row["cosine"] = min((cosine(ours[o], ref[o]) for o in floats), default=1.0)
            row["range"] = max((float(np.ptp(ref[o])) for o in floats if np.size(ref[o])), default=0.0)
        row["run_s"] = round(time.perf_counter() - start, 2)
        rows.append(row)
    return rows


def survey(archs: list[str], backends=BACKENDS, progress=None) -> list[dict]:
    rows = []
    for arch, repo in hub.get_many(archs).items():
        for rel in hub.files(arch):
            path = repo / rel
            ops = unknown_ops(path)
            for row in survey_file(path, backends):
                rows.append({"arch": arch, "file": rel, **row, "unknown_ops": [[*k, v] for k, v in ops.items()]})
                if progress:
                    progress(rows[-1])
    return rows


def status(row: dict) -> str:
    return f"{row['error']}" if "error" in row else f"{row['kernels']} kernels"


def markdown(rows: list[dict]) -> str:
    out = ["| arch | file | backend | kernels / first error | max abs err | cosine |", "|---|---|---|---|---|---|"]
    for r in rows:
        err = f"{r['max_abs']:.2e}" if "max_abs" in r else ""
        cos = f"{r['cosine']:.6f}" if "cosine" in r else ""
        out.append(f"| {r['arch']} | {r['file']} | {r['backend']} | {status(r).replace('|', '/')} | {err} | {cos} |")
    census: dict[tuple[str, str], dict[str, int]] = collections.defaultdict(dict)
    for r in rows:
        for op, domain, n in r["unknown_ops"]:
            census[(op, domain)][f"{r['arch']}/{Path(r['file']).name}"] = n
    out += ["", "Ops webjit does not know, by file (count of nodes):", "",
            "| op | domain | files (count) | total nodes |", "|---|---|---|---|"]
    for (op, domain), where in sorted(census.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        listing = ", ".join(f"{f} ({n})" for f, n in sorted(where.items()))
        out.append(f"| {op} | {domain} | {listing} | {sum(where.values())} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m demo_models.hub_survey", description=__doc__.split("\n\n")[0])
    p.add_argument("archs", nargs="*", help=f"architectures (default all): {', '.join(hub.ARCHS)}")
    p.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated (default webgpu,wasm)")
    p.add_argument("--json", metavar="F", help="write the rows as JSON to F")
    p.add_argument("--markdown", metavar="F", help="write the tables to F as well (rewritten after every file)")
    args = p.parse_args(argv)
    archs = args.archs or list(hub.ARCHS)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    rows: list[dict] = []

    def progress(row):
        rows.append(row)
        print(f"{row['arch']:12s} {row['file']:40s} {row['backend']:7s} {status(row)[:100]}"
              + (f"  max abs {row['max_abs']:.2e}" if "max_abs" in row else ""), flush=True)
        if args.markdown:
            Path(args.markdown).write_text(markdown(rows))

    survey(archs, backends, progress)
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
