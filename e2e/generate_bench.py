"""Benchmark text generation: webjit against onnxruntime-web 1.31 in the same headless Chromium, on the same ONNX
decoder, greedy, on WebAssembly with 1 and N threads (WebGPU on request), and write a JSON and an HTML report.

    python -m e2e.bench --generate                           # GPT-2 124M and Llama 100M: prompt 128, 128 new tokens
    python -m e2e.bench --generate --models gpt2-124m --backends wasm1 --new 32 --past 16,128
    python -m e2e.bench --generate --backends webgpu,wasm1 --new 16 --max-seconds 300   # WebGPU is slow on CPU
    python -m e2e.bench --generate --models path/to/model.onnx --prompt 64 --new 64     # your own decoder

(`python -m e2e.generate_bench` takes the same options.) The models are Optimum's `text-generation-with-past`
exports (inputs input_ids, attention_mask, position_ids where the model has them, past_key_values.N.key/value;
outputs logits, present.N.key/value) with seeded random weights, made on first use into demo_models/.cache/hub/
(about a minute; demo_models.hub.BENCH_ARCHS), fp32:
- gpt2-124m: GPT-2 small's shape (vocabulary 50257, 768 wide, 12 layers, 12 heads, 1024 positions);
- llama-100m: a Llama-style decoder with grouped-query attention (vocabulary 32000, 768 wide, 8 layers, 12 heads over
  4 key/value heads, MLP 2048).
NAME:q8 (gpt2-124m:q8) is the same model with int8 weights (onnxruntime's quantize_dynamic, made once beside it).
The small hub decoders (gpt2, llama, qwen2 of `python -m demo_models hub`) and any ONNX file of that form work too.

The webjit bundle is built first (not timed) with `--generate CONTEXT`: the context is what the generations below
need (521 positions with the defaults), the prompt buckets are the prompt lengths used, and the past
buckets the default ones (16, 32, 64, ...). Then each engine and backend gets a fresh browser context at the CPU
throttling rate, loads the model, and generates greedily, in this order:
- warm-up: one generation per prompt length, --past-steps + 1 tokens each (not counted);
- the workload: a prompt of --prompt tokens, then --new tokens. Prefill tokens/s is the prompt's length over the
  first token's time (the whole prompt in one step), decode tokens/s the other tokens over their time;
- time per token at a past of 16, 128 and 512 (--past): a prompt of that length, then the median of --past-steps
  decode steps (at that past and the few after it).
A token's time runs from building the step's feeds to the id picked from its logits, in both engines. webjit runs
`session.generate()` with the cache kept by its runtime; onnxruntime-web runs a loop over the ONNX file: the prompt
over an empty past, then one token a step with the present outputs fed back (on its webgpu EP they stay on the GPU
through IO binding and only the logits are read back).

Every engine and backend must produce the same greedy ids, and the workload's must equal onnxruntime's own loop
(Python, CPU; --no-reference skips it). A mismatch is printed with the first token that differs, and the exit status
is then 1. The report goes to --out (default build/bench/): generate-<host>-<timestamp>.json and generate.html beside
it; a summary with webjit's ratios over onnxruntime-web, measured in the same run, is printed. Progress goes to
stderr. With the defaults, on 2 cores, a model takes a few minutes per engine and backend; --max-seconds bounds the
generations of one measurement (the one under way stops after its current token, the rest are skipped).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

from . import measure as M
from .bench import BACKENDS, DEFAULT_OUT, ENGINES, UsageError, _names, _progress, _slug, configs, in_browser
from .generate_report import REFERENCE, WORKLOAD, compare, render_html, summary

MODELS = ("gpt2-124m", "llama-100m")


def main(argv=None) -> int:
    try:
        return bench(sys.argv[1:] if argv is None else list(argv))
    except UsageError as e:
        print(f"e2e.bench --generate: {e}", file=sys.stderr)
        return 2


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m e2e.bench --generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma list of gpt2-124m, llama-100m, the hub's small decoders (gpt2, llama, qwen2), any "
                        "of them as NAME:q8 (int8 weights), or .onnx files (default gpt2-124m,llama-100m)")
    p.add_argument("--prompt", type=int, default=128, help="the workload's prompt length (default 128)")
    p.add_argument("--new", type=int, default=128, help="the workload's new tokens (default 128)")
    p.add_argument("--past", default="16,128,512", help="pasts to time a token at (default 16,128,512)")
    p.add_argument("--past-steps", type=int, default=8, help="decode steps timed at each past (default 8)")
    p.add_argument("--context", type=int, help="the bundle's context (default: what the generations need)")
    p.add_argument("--engines", default="webjit,ort", help="comma list of webjit, ort")
    p.add_argument("--backends", default="wasm1,wasmN", help="comma list of wasm1, wasmN, webgpu (default wasm1,wasmN)")
    p.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 4),
                   help="N of wasmN (default min(cores, 4))")
    p.add_argument("--throttle", default="1", help="comma list of CPU throttling rates (default 1)")
    p.add_argument("--max-seconds", type=float, default=600.0,
                   help="bound on one measurement's generations after loading (default 600)")
    p.add_argument("--budget-ms", type=float, default=2000.0, help="webjit's WebGPU tuning budget (default 2000)")
    p.add_argument("--no-reference", action="store_true", help="skip onnxruntime's (Python) greedy loop")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder (default build/bench/)")
    p.add_argument("--json", type=Path, help="also write the report JSON to this file")
    args = p.parse_args(argv)
    args.models = _names(args.models, None, "model")
    args.engines = _names(args.engines, {k: v for k, v in ENGINES.items() if k != "tjs"}, "engine")
    args.backends = _names(args.backends, BACKENDS, "backend")
    try:
        args.throttle = [float(t) for t in args.throttle.split(",")]
        args.past = sorted({int(n) for n in args.past.split(",") if n.strip()})
    except ValueError:
        raise UsageError("--throttle and --past take comma lists of numbers, such as 1,4 and 16,128,512") from None
    if any(t < 1 for t in args.throttle) or args.threads < 1:
        raise UsageError("--throttle rates must be >= 1 and --threads >= 1")
    if args.prompt < 1 or args.new < 1 or args.past_steps < 1 or any(n < 1 for n in args.past):
        raise UsageError("--prompt, --new, --past and --past-steps must be >= 1")
    need = max(args.prompt + args.new, *(n + args.past_steps + 1 for n in args.past))
    if args.context is not None and args.context < need:
        raise UsageError(f"--context {args.context}: the generations need {need} positions")
    args.context = args.context or need
    for name in args.models:
        most = _positions(name)
        if most is not None and args.context > most:
            raise UsageError(f"{name}: the generations need {args.context} positions and the model has {most}; "
                             "ask for fewer with --prompt, --new and --past")
    if "ort" in args.engines and M.ort_web_missing():
        raise UsageError(M.ort_web_missing())
    return args


def bench(argv: list[str], browser=None) -> int:
    """Run the benchmark that `argv` describes and write its report; `browser`: a Playwright browser to use
    instead of launching one. 0, or 1 when the engines' greedy ids differ."""
    return in_browser(_bench, parse(argv), browser)


def _bench(args, browser) -> int:
    plan = configs(args)
    now = datetime.datetime.now(datetime.UTC)
    host = socket.gethostname()
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"generate-{_slug(host)}-{now:%Y%m%d-%H%M%S}.json"
    report = {"created": now.isoformat(timespec="seconds"), "machine": {},
              "settings": {"prompt": args.prompt, "new": args.new, "past": args.past, "pastSteps": args.past_steps,
                           "context": args.context, "threads": args.threads, "throttle": args.throttle,
                           "maxSeconds": args.max_seconds, "budgetMs": args.budget_ms},
              "results": [], "prompts": {}, "reference": {}, "checks": []}
    total = len(args.models) * len(args.throttle) * len(plan)
    progress = _progress(total)
    with tempfile.TemporaryDirectory(prefix="webjit-generate-bench-") as tmp:
        for name in args.models:
            model, bundle, data, prompts = _prepare(name, args, Path(tmp) / _slug(name))
            report["prompts"][name] = prompts
            if not args.no_reference:
                report["reference"][name] = {WORKLOAD: _reference(name, model, prompts[WORKLOAD], args.new)}
            server = M.make_bench_server(bundle, model, data)
            try:
                if not report["machine"]:
                    report["machine"] = M.machine(browser, server.url)
                for rate in args.throttle:
                    for c in plan:
                        label = f"{name} {rate:g}x {c.engine_label} {c.backend}"
                        progress(len(report["results"]), label, start=True)
                        report["results"].append(_one(browser, server.url, c, name, rate, args, label))
                        progress(len(report["results"]), label + ": " + _short(report["results"][-1]))
                        report["checks"] = compare(report)
                        _write(report, json_path, args)
            finally:
                server.shutdown()
                server.server_close()
    print(summary(report))
    print(f"\nreport: {json_path}\n        {args.out / 'generate.html'}")
    bad = [c for c in report["checks"] if c["firstDifference"] is not None]
    for c in bad:
        print(f"MISMATCH: {c['text']}", file=sys.stderr)
    return 1 if bad else 0


def _positions(name: str) -> int | None:
    """The most positions a model was made for (None: unknown), after checking that its name is a bench or small
    hub decoder, or an ONNX file that is there (whose hub repository's config.json is read, when it has one)."""
    if name.endswith(".onnx"):
        if not Path(name).is_file():
            raise UsageError(f"{name}: no such file")
        path = Path(name).resolve().parent.parent / "config.json"
        config = json.loads(path.read_text()) if path.is_file() else {}
    else:
        from demo_models import hub
        decoders = {a: s for a, s in {**hub.ARCHS, **hub.BENCH_ARCHS}.items() if s.task == "text-generation-with-past"}
        base, _, form = name.partition(":")
        if base not in decoders or form not in ("", "q8"):
            raise UsageError(f"unknown model {name!r}; known: {', '.join(decoders)} (each also as NAME:q8), or an "
                             ".onnx file")
        name = base
        config = decoders[name].config
    return config.get("n_positions") or config.get("max_position_embeddings")


def _model(name: str) -> Path:
    """The ONNX file of a model name (a hub decoder is exported on first use; NAME:q8 is its int8 form, made once
    by onnxruntime's quantize_dynamic, as transformers.js' model_quantized.onnx files are)."""
    if name.endswith(".onnx"):
        return Path(name)
    from demo_models import hub
    base, _, form = name.partition(":")
    if form not in ("", "q8"):
        raise UsageError(f"{name}: the forms are NAME (float32) and NAME:q8")
    try:
        fp32 = hub.get(base) / "onnx" / "model.onnx"
    except hub.HubError as e:
        raise UsageError(f"{name}: {e}") from None
    if not form:
        return fp32
    q8 = fp32.with_name("model_quantized.onnx")
    if not q8.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic
        print(f"quantizing {base} (int8 weights, quantize_dynamic)", file=sys.stderr)
        part = q8.with_suffix(".part.onnx")
        quantize_dynamic(str(fp32), str(part), weight_type=QuantType.QInt8)
        part.replace(q8)
    return q8


def _prepare(name: str, args, tmp: Path) -> tuple[Path, Path, Path, dict[str, list[int]]]:
    """The ONNX file, the bundle built for generation, the data folder with generate.json (see pages/generate.js),
    and the prompt of each generation that is measured."""
    import onnx
    from webjit.bundle import build
    from webjit.errors import WebjitError
    from webjit.generation import Spec
    model = _model(name)
    t = time.perf_counter()
    lengths = list(dict.fromkeys([args.prompt, *args.past]))
    try:
        spec = Spec.of(args.context, sorted({max(n, 2) for n in lengths}), None)
        bundle = build(model, tmp / "bundle", generate=spec)
    except WebjitError as e:
        raise UsageError(f"{name}: {e}") from None
    g = json.loads((bundle / "manifest.json").read_text())["generate"]
    print(f"built {name} for generation (context {args.context}, prompt buckets "
          f"{','.join(map(str, spec.prompt_buckets))}, past buckets {','.join(map(str, spec.past_buckets))}) in "
          f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
    proto = onnx.load(str(model), load_external_data=False)
    dtypes = {i.name: str(onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type))
              for i in proto.graph.input}
    external = sorted({e.value for t in proto.graph.initializer for e in t.external_data if e.key == "location"})
    tokens = [int(x) for x in np.random.default_rng(0).integers(3, g["vocab"] - 3, max(lengths))]
    runs = [{"name": f"warm-up {n}", "prompt": tokens[:n], "newTokens": args.past_steps + 1} for n in lengths]
    runs.append({"name": WORKLOAD, "prompt": tokens[:args.prompt], "newTokens": args.new})
    runs += [{"name": f"past {n}", "prompt": tokens[:n], "newTokens": args.past_steps + 1} for n in args.past]
    cache = [{"past": c["past"], "present": c["present"], "heads": c["shape"][1], "dim": c["shape"][3]}
             for c in g["cache"]]
    roles = {"ids": g["ids"], "mask": g["mask"], "positions": g["positions"], "logits": g["logits"],
             "vocab": g["vocab"], "cache": cache}
    data = tmp / "data"
    data.mkdir(parents=True)
    (data / "generate.json").write_text(json.dumps({
        "model": {"file": model.name, "externalData": external}, "dtypes": dtypes, "roles": roles, "runs": runs,
        "maxMs": args.max_seconds * 1000}))
    return model, bundle, data, {r["name"]: r["prompt"] for r in runs if not r["name"].startswith("warm-up")}


def _reference(name: str, model: Path, prompt: list[int], new: int) -> list[int]:
    from webjit.native.generate import reference_greedy
    t = time.perf_counter()
    ids = reference_greedy(model, prompt, new)
    print(f"{name}: {REFERENCE} greedy loop, {len(prompt)} + {new} tokens, in {time.perf_counter() - t:.1f} s",
          file=sys.stderr)
    return ids


def _one(browser, url: str, c: M.Config, name: str, rate: float, args, label: str) -> dict:
    head = {"model": name, "profile": f"{rate:g}x", "throttle": rate, "engine": c.engine_label, "backend": c.backend,
            "ep": c.ep, "threads": c.threads}
    from playwright.sync_api import Error as PlaywrightError
    t = time.perf_counter()
    try:
        r = measure(browser, url, c, throttle=rate, budget_ms=args.budget_ms, label=label)
    except PlaywrightError as e:  # a page that crashes: record it and go on with the next measurement
        r = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    if "error" not in r:
        r = figures(r, args)
    return {**head, **r, "wallSeconds": round(time.perf_counter() - t, 1)}


def measure(browser, url: str, c: M.Config, *, throttle: float, budget_ms: float, label: str) -> dict:
    """One visit of pages/generate.html in a fresh browser context at CPU throttling `throttle`: its raw result
    (per generation the ids and every token's ms), the page's errors added. The page's progress goes to stderr."""
    query = {"engine": c.engine, "ep": c.ep, "threads": c.threads, "budgetMs": budget_ms}
    context = browser.new_context()
    errors: list[str] = []
    try:
        page = context.new_page()
        page.set_default_timeout(M.LOAD_TIMEOUT_S * 1000)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.text.startswith("progress: ") and print(
            f"  {label}: {m.text.removeprefix('progress: ')} tokens", file=sys.stderr, flush=True))
        context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": throttle})
        page.goto(f"{url}bench/generate.html?{urlencode(query)}")
        page.wait_for_function("() => window.benchResult !== undefined")
        r = page.evaluate("() => window.benchResult")
    finally:
        context.close()
    return {**r, "pageErrors": errors}


def figures(r: dict, args) -> dict:
    """The figures of one raw page result: prefill and decode tokens/s of the workload (and its median decode
    step, which leaves out the pauses that tokens/s counts), and the median time of a decode step at each past."""
    runs = {x["name"]: x for x in r["runs"]}
    ms = runs[WORKLOAD]["ms"]
    at = {n: runs[f"past {n}"]["ms"] for n in args.past}
    return {"loadedMs": r["loadedMs"], "promptTokens": args.prompt, "newTokens": len(ms), "newTokensAsked": args.new,
            "stoppedEarly": len(ms) < args.new or any(len(v) < args.past_steps + 1 for v in at.values()),
            "prefillMs": ms[0] if ms else None, "decodeMs": sum(ms[1:]) if len(ms) > 1 else None,
            "prefillTokensPerSecond": 1000 * args.prompt / ms[0] if ms else None,
            "decodeTokensPerSecond": 1000 * (len(ms) - 1) / sum(ms[1:]) if len(ms) > 1 else None,
            "decodeMedianMs": statistics.median(ms[1:]) if len(ms) > 1 else None,
            "msPerToken": {str(n): statistics.median(v[1:]) if len(v) > 1 else None for n, v in at.items()},
            "prefillMsAt": {str(n): v[0] if v else None for n, v in at.items()},
            "ids": {x["name"]: x["ids"] for x in r["runs"] if not x["name"].startswith("warm-up")},
            "stepMs": ms, "crossOriginIsolated": r["crossOriginIsolated"], "engineInfo": r["engine"],
            "pageErrors": r["pageErrors"]}


def _write(report: dict, json_path: Path, args) -> None:
    """Write the JSON and the HTML after every measurement, so an interrupted run still leaves a report."""
    text = json.dumps(report, indent=1)
    json_path.write_text(text)
    if args.json:
        args.json.write_text(text)
    (args.out / "generate.html").write_text(render_html(report))


def _short(r: dict) -> str:
    if r.get("error"):
        return "failed"
    tps = r.get("decodeTokensPerSecond")
    return f"decode {tps:.1f} tokens/s" if tps else f"{r.get('newTokens', 0)} tokens"


if __name__ == "__main__":
    sys.exit(main())
