"""Time one MiniLM bundle with length buckets at several input lengths in headless Chromium: a short input should
cost about its bucket, not the maximum length.

    python -m e2e.lengths [--lengths 12,77,128] [--buckets 16,32,64] [--backends webgpu,wasm1,wasm2] [--runs 7]

The bundle (maximum seq 128, the given buckets) is built into a temporary folder first (not timed). For each
backend one session is created (tuned within 2 s), then each length runs once to warm up and `--runs` times; the
median is printed with the ratio to the longest length measured in the same session.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from .browser import chromium, open_page, run, wire_feeds

MODEL = "minilm"

MEASURE = """async ({create, feeds}, {wired, options, runs}) => {
    const session = await create('/', options);
    const out = [];
    for (const f of wired) {
        const inputs = feeds(f);
        await session.run(inputs);
        const times = [];
        for (let i = 0; i < runs; i++) {
            const t = performance.now();
            await session.run(inputs);
            times.push(performance.now() - t);
        }
        out.push(times);
    }
    return out;
}"""

BACKENDS = {"webgpu": {"executionProviders": ["webgpu"]},
            "wasm1": {"executionProviders": ["wasm"], "wasm": {"numThreads": 1}},
            "wasm2": {"executionProviders": ["wasm"], "wasm": {"numThreads": 2}}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m e2e.lengths", description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", default="12,77,128", help="input lengths (tokens), at most 128")
    p.add_argument("--buckets", default="16,32,64", help="the bundle's length buckets below 128")
    p.add_argument("--backends", default="webgpu,wasm1,wasm2", help=f"some of {', '.join(BACKENDS)}")
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args(argv)
    lengths = [int(n) for n in args.lengths.split(",")]
    backends = [b for b in args.backends.split(",") if b]
    if any(b not in BACKENDS for b in backends) or not lengths or max(lengths) > 128 or min(lengths) < 1:
        print(f"e2e.lengths: lengths must lie in 1..128 and backends be among {', '.join(BACKENDS)}", file=sys.stderr)
        return 2

    import demo_models
    from webjit.bundle import build
    from webjit.serve import make_server
    feeds = [demo_models.sample_inputs(MODEL, seq=n) for n in lengths]
    wire = [wire_feeds(f) for f in feeds]
    with tempfile.TemporaryDirectory(prefix="webjit-lengths-") as tmp:
        bundle = build(demo_models.get(MODEL), Path(tmp) / "bundle", values=demo_models.sample_inputs(MODEL, seq=128),
                       buckets=[args.buckets])
        server = make_server(bundle).start()
        try:
            with chromium() as browser:
                print(f"{MODEL}, one bundle with buckets {args.buckets},128, Chromium {browser.version}: "
                      f"median ms of {args.runs} runs")
                print(f"  {'backend':<8}" + "".join(f"{f'{n} tokens':>12}" for n in lengths))
                for b in backends:
                    context = browser.new_context()
                    page = open_page(context, server.url, timeout_ms=3_600_000)
                    options = {**BACKENDS[b], "tuning": {"budgetMs": 2000}}
                    times = run(page, MEASURE, {"wired": wire, "options": options, "runs": args.runs})
                    medians = [statistics.median(t) for t in times]
                    longest = medians[lengths.index(max(lengths))]
                    print(f"  {b:<8}" + "".join(f"{m:>12.1f}" for m in medians)
                          + f"   (speedup over {max(lengths)} tokens: "
                          + ", ".join(f"{n}: {longest / m:.1f}x" for n, m in zip(lengths, medians)
                                      if n != max(lengths)) + ")")
                    context.close()
        finally:
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # demo_models lives beside e2e/
    sys.exit(main())
