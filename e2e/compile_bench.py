"""Time the compiler in a page (Pyodide in a Web Worker of headless Chromium) against the same compile in CPython
on this machine, for models and shapes no bundle was built for.

    python -m e2e.compile_bench [--models minilm,gpt2] [--seq 96] [--runs 3]

For each model: Pyodide's start and the load of webjit's wheels (once, in a fresh page), then `--runs` compiles in
the page (the first one cold, the others with Pyodide warm) and `--runs` calls of `webjit.inbrowser.compile_files`
in this process, the same model, shapes and backends. It prints the medians and the ratio page / CPython measured
in the same run; the files must be byte-identical, or the run fails.
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .browser import chromium, open_page, run

COMPILE = """async ({webjit}, {model, shapes}) => {
    const compiled = await webjit.compileInBrowser(model, {shapes});
    const hex = async (b) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', b)),
                                        (x) => x.toString(16).padStart(2, '0')).join('');
    const sha = {};
    for (const [path, bytes] of compiled.files) sha[path] = await hex(bytes);
    return {sha, timings: compiled.timings};
}"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m e2e.compile_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="minilm", help="demo models, comma-separated (minilm, bert_base, gpt2, llama)")
    p.add_argument("--seq", type=int, default=96, help="sequence length to compile for (default 96)")
    p.add_argument("--runs", type=int, default=3, help="compiles per engine (default 3)")
    args = p.parse_args(argv)

    import demo_models
    from webjit.pyodide_dist import DistError, build
    from webjit.serve import make_server
    try:
        dist = build()
    except DistError as e:
        print(f"e2e.compile_bench: {e}", file=sys.stderr)
        return 2
    models = [m for m in args.models.split(",") if m]
    folders = {m: demo_models.get(m).parent for m in models}
    with tempfile.TemporaryDirectory(prefix="webjit-compile-bench-") as tmp:
        # the server's root must look like a bundle; the benchmark needs only the runtime and the mounts
        (Path(tmp) / "manifest.json").write_text('{"format": "webjit-bundle"}\n')
        server = make_server(tmp, mounts={"pyodide": dist, **folders}).start()
        try:
            return _measure(server, models, args)
        finally:
            server.shutdown()


def _measure(server, models: list[str], args) -> int:
    import demo_models
    from webjit.inbrowser import compile_files
    with chromium() as browser:
        print(f"compile in the page (Pyodide, Chromium {browser.version}) vs CPython {sys.version.split()[0]}, "
              f"seq {args.seq}, both backends, median of {args.runs}")
        print(f"  {'model':<10}{'pyodide start':>15}{'packages':>10}{'page cold':>11}{'page warm':>11}"
              f"{'cpython':>9}{'page/cpython':>14}")
        for m in models:
            feeds = demo_models.sample_inputs(m, seq=args.seq)
            shapes = {n: list(a.shape) for n, a in feeds.items()}
            context = browser.new_context()
            page = open_page(context, server.url, timeout_ms=3_600_000)
            page_runs = [run(page, COMPILE, {"model": f"/{m}/model.onnx", "shapes": shapes})
                         for _ in range(args.runs)]
            context.close()
            cpython, files = [], None
            for _ in range(args.runs):
                t = time.perf_counter()
                files = compile_files(demo_models.get(m), shapes)
                cpython.append(time.perf_counter() - t)
            sha = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
            if any(r["sha"] != sha for r in page_runs):
                print(f"e2e.compile_bench: {m}: the page's files differ from CPython's", file=sys.stderr)
                return 1
            first = page_runs[0]["timings"]
            warm = statistics.median(r["timings"]["compileMs"] for r in page_runs[1:] or page_runs) / 1000
            here = statistics.median(cpython)
            print(f"  {m:<10}{first['pyodideMs'] / 1000:>14.2f}s{first['packagesMs'] / 1000:>9.2f}s"
                  f"{first['compileMs'] / 1000:>10.2f}s{warm:>10.2f}s{here:>8.2f}s{warm / here:>13.2f}x")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # demo_models lives beside e2e/
    sys.exit(main())
