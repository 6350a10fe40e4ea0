"""Benchmark webjit against onnxruntime-web 1.31 (and transformers.js 4.3, with --engines ...,tjs) in the same
headless Chromium, on WebGPU and on WebAssembly (1 thread and N threads), at several CPU throttling rates, and write
a JSON and an HTML report.

    python -m e2e.bench                                   # MiniLM seq 128, every engine and backend, CPU 1x and 4x
    python -m e2e.bench --models minilm,bert_base,gpt2 --throttle 1 --runs 20 --max-seconds 30
    python -m e2e.bench --models minilm:q8,minilm:q4 --throttle 1     # the hub's other files of a model
    python -m e2e.bench --models minilm,minilm:q8 --engines webjit,ort,tjs --backends wasm1,wasmN --throttle 1
    python -m e2e.bench --text --models minilm,minilm:q8 --engines webjit,tjs   # pipelines: text to embeddings
    python -m e2e.bench --engines webjit,ort --backends wasm1 --runs 3 --throttle 1 --out build/bench
    python -m e2e.bench merge build/bench/report-a.json build/bench/report-b.json -o cross-device.html
    python -m e2e.bench --generate                        # text generation: tokens/s (e2e/generate_bench.py)

Each measurement gets a fresh browser context at its CPU throttling rate (Chrome DevTools Protocol
`Emulation.setCPUThrottlingRate`) and records:
- cold start: navigation to the first result (page load, engine import, model fetch, compile, webjit's tuning);
- second-visit start: the same page again in the same context (webjit takes its tuning winners from IndexedDB);
- warm latency: median and p90 of up to --runs runs, stopped early after --max-seconds of warm runs;
- max abs error of the outputs against onnxruntime (Python, CPU) on the same inputs;
- JS heap (CDP `Runtime.getHeapUsage`) and the bytes of live GPU buffers the page created.
Every engine reads the same ONNX file (webjit through the bundle built from it, not timed) and the same inputs;
transformers.js through its AutoModel for the file (as its pipelines call it, without their tokenization), from the
file laid out as a hub repository. It is installed into e2e/tjs/ from npm on first use.
The report goes to --out (default build/bench/): report-<host>-<timestamp>.json and report.html beside it;
a summary with webjit's speedup over onnxruntime-web, measured in the same run, is printed. onnxruntime-web comes
from node_modules (`npm install` at the repository root). Progress goes to stderr.

CPU throttling is set on the page's DevTools target: it slows the page's main thread, not the Web Workers that
run the N-thread wasm backends, so at 4x those figures mostly show how much work an engine keeps on the main thread.

With the defaults, MiniLM on 2 cores takes about six minutes; onnxruntime-web's webgpu EP on SwiftShader (about
25 s a run) is bounded by --max-seconds.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

from . import measure as M
from .report import render_html, summary

DEFAULT_OUT = Path("build/bench")
ENGINES = M.ENGINE_LABELS
# transformers.js loads a model by its config's model_type; the demo encoders it can run, with theirs
TJS_MODEL_TYPES = {"minilm": "bert", "bert_base": "bert"}
BACKENDS = ("webgpu", "wasm1", "wasmN")


class UsageError(Exception):
    """A problem with the command line or the setup, reported in one line (exit status 2)."""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["merge"]:
            return merge(argv[1:])
        if "--generate" in argv:
            from .generate_bench import bench as generate_bench
            return generate_bench([a for a in argv if a != "--generate"])
        return bench(argv)
    except UsageError as e:
        print(f"e2e.bench: {e}", file=sys.stderr)
        return 2


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m e2e.bench", description=__doc__.split("\n\n")[0],
                                epilog="merge: python -m e2e.bench merge A.json B.json ... -o report.html")
    p.add_argument("--models", default="minilm",
                   help="comma list of demo models (minilm, bert_base, gpt2), each optionally NAME:FORM with FORM one "
                        "of fp16, q8, q4, optimized (the file onnxruntime's tools make from it, as on the hub)")
    p.add_argument("--model", dest="models", help=argparse.SUPPRESS)  # the older single-model spelling
    p.add_argument("--seq", type=int, default=128, help="sequence length (default 128)")
    p.add_argument("--engines", default="webjit,ort",
                   help="comma list of webjit, ort (onnxruntime-web), tjs (transformers.js, installed into e2e/tjs/ "
                        "on first use)")
    p.add_argument("--backends", default=",".join(BACKENDS), help="comma list of webgpu, wasm1, wasmN")
    p.add_argument("--backend", choices=["webgpu", "wasm"], help="only this backend (wasm: N threads)")
    p.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 4), help="N of wasmN (default min(cores, 4))")
    p.add_argument("--throttle", default="1,4", help="comma list of CPU throttling rates (default 1,4)")
    p.add_argument("--runs", type=int, default=20, help="warm runs per measurement (default 20)")
    p.add_argument("--max-seconds", type=float, default=30.0,
                   help="stop a measurement's warm loop after this many seconds (at least one run; default 30)")
    p.add_argument("--budget-ms", type=float, default=2000.0, help="webjit's WebGPU tuning budget (default 2000)")
    p.add_argument("--text", action="store_true",
                   help="feature extraction from text: each engine's pipeline (tokenization, the model, mean pooling "
                        "and normalisation) on the model's hub repository (python -m demo_models hub); engines webjit "
                        "and tjs")
    p.add_argument("--bundle", type=Path, help="an existing webjit bundle of the (single) model, instead of building")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder (default build/bench/)")
    p.add_argument("--json", type=Path, help="also write the report JSON to this file")
    args = p.parse_args(argv)
    args.models = _names(args.models, None, "model")
    import demo_models
    from demo_models.precisions import FILES
    for name in args.models:
        base, _, form = name.partition(":")
        if base not in demo_models.MODELS:
            raise UsageError(f"unknown model {base!r}; known: {', '.join(demo_models.MODELS)}")
        if form and form not in FILES:
            raise UsageError(f"{name}: unknown form {form!r}; known: {', '.join(FILES)}")
    args.engines = _names(args.engines, ENGINES, "engine")
    args.backends = _names(args.backends, BACKENDS, "backend")
    if args.backend:
        args.backends = ["webgpu"] if args.backend == "webgpu" else ["wasmN"]
    try:
        args.throttle = [float(t) for t in args.throttle.split(",")]
    except ValueError:
        raise UsageError(f"--throttle {args.throttle!r}: expected numbers such as 1,4") from None
    if any(t < 1 for t in args.throttle) or args.threads < 1 or args.runs < 0 or args.seq < 1:
        raise UsageError("--throttle rates must be >= 1, --threads and --seq >= 1, --runs >= 0")
    if args.bundle and (len(args.models) > 1 or not (args.bundle / "manifest.json").is_file()):
        raise UsageError(f"--bundle {args.bundle}: needs a single model and a folder with a manifest.json")
    if "ort" in args.engines and M.ort_web_missing():
        raise UsageError(M.ort_web_missing())
    if args.text and (set(args.engines) - {"webjit", "tjs"} or args.bundle):
        raise UsageError("--text measures the engines with a tokenizer (webjit, tjs), each building its own session")
    if "tjs" in args.engines or args.text:
        bad = [m for m in args.models if m.partition(":")[0] not in TJS_MODEL_TYPES or m.endswith(":optimized")]
        if bad:
            raise UsageError(f"tjs: transformers.js runs the encoders {', '.join(TJS_MODEL_TYPES)} in the forms "
                             f"it ships (fp32, fp16, q8, q4), not {', '.join(bad)}")
        try:
            M.install_tjs()
        except RuntimeError as e:
            raise UsageError(str(e)) from None
    return args


def _names(text: str, allowed, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if allowed is not None and n not in allowed]
    if bad or not names:
        raise UsageError(f"unknown {what} {', '.join(bad) or '(none given)'}; known: {', '.join(allowed or [])}")
    return names


def configs(args) -> list[M.Config]:
    """Engines x backends, in the order they are measured (each webjit backend next to ORT-web's)."""
    threads = {"webgpu": 1, "wasm1": 1, "wasmN": args.threads}
    out = []
    for b in args.backends:
        for e in args.engines:
            c = M.Config(e, "webgpu" if b == "webgpu" else "wasm", threads[b])
            if c not in out:
                out.append(c)
    return out


def bench(argv: list[str], browser=None) -> int:
    """Run the benchmark that `argv` describes and write its report; `browser`: a Playwright browser to use
    instead of launching one."""
    return in_browser(_bench, parse(argv), browser)


def in_browser(run, args, browser=None) -> int:
    """run(args, browser) in `browser`, or in a Chromium launched for it (a UsageError where none can run)."""
    if browser is not None:
        return run(args, browser)
    from .browser import available, chromium
    why = available()
    if why:
        raise UsageError(f"cannot run Chromium: {why}")
    with chromium() as launched:
        return run(args, launched)


def _bench(args, browser) -> int:
    plan = configs(args)
    profiles = [f"{t:g}x" for t in args.throttle]
    now = datetime.datetime.now(datetime.UTC)
    host = socket.gethostname()
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"report-{_slug(host)}-{now:%Y%m%d-%H%M%S}.json"
    report = {"created": now.isoformat(timespec="seconds"), "machine": {},
              "settings": {"seq": args.seq, "runs": args.runs, "maxSeconds": args.max_seconds,
                           "threads": args.threads, "budgetMs": args.budget_ms, "throttle": args.throttle},
              "results": []}
    total = len(args.models) * len(profiles) * len(plan)
    progress = _progress(total)
    with tempfile.TemporaryDirectory(prefix="webjit-bench-") as tmp:
        for model in args.models:
            bundle, model_path, data, hub = _prepare(model, args, Path(tmp) / model)
            server = M.make_bench_server(bundle, model_path, data, hub)
            try:
                if not report["machine"]:
                    report["machine"] = M.machine(browser, server.url)
                for rate, profile in zip(args.throttle, profiles):
                    for c in plan:
                        label = f"{model} {profile} {c.engine_label} {c.backend}"
                        progress(len(report["results"]), label, start=True)
                        report["results"].append(_one(browser, server.url, c, model, rate, profile, args, report))
                        progress(len(report["results"]), label + ": " + _short(report["results"][-1]))
                        _write(report, json_path, args)
            finally:
                server.shutdown()
                server.server_close()
    print(summary(report))
    print(f"\nreport: {json_path}\n        {args.out / 'report.html'}")
    return 0


def _one(browser, url, c: M.Config, model: str, rate: float, profile: str, args, report: dict) -> dict:
    head = {"model": model + (" text" if args.text else ""), "seq": args.seq, "profile": profile, "throttle": rate, "engine": c.engine_label,
            "backend": c.backend, "ep": c.ep, "threads": c.threads}
    if c.ep == "webgpu" and not report["machine"].get("adapter"):
        return {**head, "error": "no WebGPU adapter in this browser"}
    from playwright.sync_api import Error as PlaywrightError
    t = time.perf_counter()
    try:
        r = M.measure(browser, url, c, throttle=rate, runs=args.runs, max_seconds=args.max_seconds,
                      budget_ms=args.budget_ms)
    except PlaywrightError as e:  # a page that hangs or crashes: record it and go on with the next measurement
        r = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    return {**head, **r, "wallSeconds": round(time.perf_counter() - t, 1)}


def _prepare(model: str, args, tmp: Path) -> tuple[Path, Path, Path, Path | None]:
    """The bundle (built unless --bundle), the ONNX path, the data folder (inputs, onnxruntime outputs) and, for
    transformers.js, the same file as a hub repository."""
    import demo_models
    from demo_models import precisions
    from webjit.errors import WebjitError
    base, _, form = model.partition(":")
    try:
        model_path = precisions.get(base, form or "fp32")
        feeds = demo_models.sample_inputs(base, seq=args.seq)
    except ImportError as e:
        raise UsageError(f"{model}: exporting it needs the export extra ({e.name} is missing)") from None
    bundle = args.bundle
    if bundle is None:
        from webjit.bundle import build
        t = time.perf_counter()
        try:
            bundle = build(model_path, tmp / "bundle", values=feeds)
        except WebjitError as e:
            raise UsageError(f"{model}: {e}") from None
        print(f"built {model} (seq {args.seq}) in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    if args.text:
        return _prepare_text(base, form or "fp32", args, tmp)
    M.write_data(model_path, feeds, tmp / "data", dtype=form or "fp32")
    hub = None
    if "tjs" in args.engines:
        config = {"model_type": TJS_MODEL_TYPES[base]}
        if base == "minilm":
            config = json.loads((demo_models.minilm_dir() / "config.json").read_text())
        M.write_hub_layout(model_path, config, tmp / "hub")
        hub = tmp / "hub"
    return bundle, model_path, tmp / "data", hub


def _prepare_text(base: str, form: str, args, tmp: Path) -> tuple[Path, Path, Path, Path]:
    """--text: the hub repository (exported once), webjit's bundle built from it for `form`, and texts of about
    --seq tokens with the pooled embeddings that Python's tokenizers and onnxruntime give for them."""
    from demo_models import hub
    from demo_models.precisions import FILES
    from webjit.bundle import build
    from webjit.errors import WebjitError
    repo = hub.get(base)
    model_path = repo / "onnx" / FILES[form]
    t = time.perf_counter()
    try:
        bundle = build(repo, tmp / "bundle", dtype=form, backends=("wasm",) if "webgpu" not in args.backends
                       else ("webgpu", "wasm"))
    except WebjitError as e:
        raise UsageError(f"{base}:{form}: {e}") from None
    print(f"built {base}:{form} for text in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    M.write_text_data(repo, model_path, M.texts_of(repo / "tokenizer.json", args.seq), tmp / "data", dtype=form)
    return bundle, model_path, tmp / "data", repo


def _write(report: dict, json_path: Path, args) -> None:
    """Write the JSON and the HTML after every measurement, so an interrupted run still leaves a report."""
    text = json.dumps(report, indent=1)
    json_path.write_text(text)
    if args.json:
        args.json.write_text(text)
    (args.out / "report.html").write_text(render_html([report]))


def merge(argv: list[str]) -> int:
    """python -m e2e.bench merge A.json B.json ... -o report.html: one HTML page over several machines."""
    p = argparse.ArgumentParser(prog="python -m e2e.bench merge", description=merge.__doc__)
    p.add_argument("reports", nargs="+", type=Path)
    p.add_argument("-o", "--output", type=Path, default=Path("report.html"))
    args = p.parse_args(argv)
    reports = []
    for path in args.reports:
        try:
            reports.append(json.loads(path.read_text()))
        except (OSError, ValueError) as e:
            raise UsageError(f"{path}: not a readable report ({e})") from None
        if not isinstance(reports[-1], dict) or "results" not in reports[-1]:
            raise UsageError(f"{path}: not a report of python -m e2e.bench (no 'results')")
    args.output.write_text(render_html(reports))
    print(f"merged {len(reports)} report(s) into {args.output}")
    return 0


def _progress(total: int):
    from webjit.progress import Progress
    bar = Progress("bench", total)

    def show(done: int, note: str, start: bool = False) -> None:
        if bar.on:
            bar(done, total, note)
        elif not start:
            print(f"[{done}/{total}] {note}", file=sys.stderr, flush=True)
        else:
            print(f"[{done + 1}/{total}] {note} ...", file=sys.stderr, flush=True)
    return show


def _short(r: dict) -> str:
    if r.get("error"):
        return "failed"
    w = r["warm"]
    med = "-" if w["medianMs"] is None else f"{w['medianMs']:.0f} ms"
    return f"{med} median of {w['runs']}"


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)[:40] or "host"


if __name__ == "__main__":
    sys.exit(main())
