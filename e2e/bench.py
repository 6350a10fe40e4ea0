"""Time a demo model in headless Chromium on WebGPU: cold load to first result, tuning, warm latency, and a second
load that takes its winners from the cache.

    python -m e2e.bench [--model minilm] [--seq 128] [--budget-ms 2000] [--runs 5] [--bundle DIR] [--json F]
    python -m e2e.bench --backend wasm [--threads N] [--runs 5] ...    # the 'wasm' execution provider instead

Without --bundle the model's bundle is built into a temporary folder first (not timed). Each figure is measured
in the page with performance.now(); outputs are checked against the onnxruntime outputs stored in the bundle.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .browser import chromium, open_page, run

MEASURE = """async ({webjit, create}, {options, runs}) => {
    const t0 = performance.now();
    const phases = {};
    const onProgress = (e) => { phases[e.phase] = performance.now() - t0; };
    const session = await create('/', {...options, onProgress});
    const loaded = performance.now();
    const ref = await webjit.loadReference(session.bundle);
    const t1 = performance.now();
    let out = await session.run(ref.inputs);
    const first = performance.now() - t1;
    const times = [];
    for (let i = 0; i < runs; i++) {
        const t = performance.now();
        out = await session.run(ref.inputs);
        times.push(performance.now() - t);
    }
    let err = 0;
    for (const [name, want] of Object.entries(ref.outputs)) {
        const got = out[name].data;
        for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(Number(got[i]) - Number(want.data[i])));
    }
    const r = session.tuningReport;
    return {loadMs: loaded - t0, firstRunMs: first, coldToFirstMs: loaded - t0 + first, runsMs: times,
            maxAbsError: err, weightsDoneMs: phases.weights, kernelsDoneMs: phases.kernels, wasm: session.wasm,
            tuningMs: session.timings.tuningMs, tuning: r && r.source, timer: r && r.timer, complete: r && r.complete,
            variantsTimed: r && r.kernels ? r.kernels.reduce((n, k) => n + k.tried, 0) : 0,
            adapter: session.gpu && session.gpu.info, report: r};
}"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m e2e.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="minilm")
    p.add_argument("--seq", type=int, default=None, help="sequence length (default: the model's)")
    p.add_argument("--budget-ms", type=float, default=2000.0, help="tuning budget of the cold load")
    p.add_argument("--runs", type=int, default=5, help="warm runs after the first")
    p.add_argument("--bundle", type=Path, help="an existing bundle to time instead of building one")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    p.add_argument("--backend", choices=["webgpu", "wasm"], default="webgpu", help="the execution provider")
    p.add_argument("--threads", type=int, default=None, help="wasm: threads (default min(cores, 4))")
    args = p.parse_args(argv)

    from webjit.serve import make_server
    with tempfile.TemporaryDirectory(prefix="webjit-bench-") as tmp:
        bundle = args.bundle or _build(args.model, args.seq, Path(tmp) / "bundle")
        server = make_server(bundle).start()
        try:
            with chromium() as browser:
                context = browser.new_context()
                page = open_page(context, server.url, timeout_ms=3_600_000)
                if args.backend == "wasm":
                    options = {"executionProviders": ["wasm"],
                               "wasm": {"numThreads": args.threads} if args.threads else {}}
                    measured = run(page, MEASURE, {"options": options, "runs": args.runs})
                    return _report_wasm(args, browser.version, measured)
                options = {"tuning": {"budgetMs": args.budget_ms}}
                cold = run(page, MEASURE, {"options": options, "runs": args.runs})
                page.reload()
                page.evaluate("async () => { window.webjit = await import('/web/webjit.js'); }")
                warm = run(page, MEASURE, {"options": options, "runs": 0})
                version = browser.version
        finally:
            server.shutdown()
    figures = {"model": args.model, "seq": args.seq, "chromium": version, "budgetMs": args.budget_ms,
               "cold": cold, "second_load": warm, "warm_median_ms": float(np.median(cold["runsMs"]))}
    a = cold["adapter"]
    print(f"{args.model} in Chromium {version} on WebGPU ({a['vendor']} {a['architecture']}), tuning budget "
          f"{args.budget_ms:.0f} ms ({cold['timer']}, {cold['variantsTimed']} variants timed, "
          f"{'complete' if cold['complete'] else 'cut short by the budget'})")
    rows = [("cold load (fetch, hash, compile, tune)", cold["loadMs"]),
            ("  weights fetched, hashed, uploaded at", cold["weightsDoneMs"]),
            ("  starting kernels compiled at", cold["kernelsDoneMs"]), ("  tuning", cold["tuningMs"]),
            ("first run", cold["firstRunMs"]), ("cold load to first result", cold["coldToFirstMs"]),
            (f"warm run, median of {args.runs}", figures["warm_median_ms"]),
            (f"second load ({warm['tuning']})", warm["loadMs"]),
            (f"second load ({warm['tuning']}) to first result", warm["coldToFirstMs"])]
    for label, ms in rows:
        print(f"  {label:<42} {ms:10.0f} ms")
    print(f"  max abs error vs onnxruntime {max(cold['maxAbsError'], warm['maxAbsError']):.2e}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


def _report_wasm(args, version: str, r: dict) -> int:
    w = r["wasm"]
    figures = {"model": args.model, "seq": args.seq, "chromium": version, "backend": "wasm", **r,
               "warm_median_ms": float(np.median(r["runsMs"]))}
    print(f"{args.model} in Chromium {version} on wasm ({w['simd']} SIMD, {w['threads']} thread(s), "
          f"cross-origin isolated: {w['isolated']})")
    for label, ms in [("load (fetch, hash, compile)", r["loadMs"]), ("first run", r["firstRunMs"]),
                      (f"warm run, median of {args.runs}", figures["warm_median_ms"])]:
        print(f"  {label:<42} {ms:10.0f} ms")
    print(f"  max abs error vs onnxruntime {r['maxAbsError']:.2e}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


def _build(model: str, seq: int | None, out: Path) -> Path:
    import demo_models
    from webjit.bundle import build
    t = time.perf_counter()
    path = build(demo_models.get(model), out, values=demo_models.sample_inputs(model, seq=seq))
    print(f"built {model} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # demo_models lives beside e2e/
    sys.exit(main())
