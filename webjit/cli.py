"""The `webjit` command line.

    webjit validate MODEL.onnx [--inputs F.npz] [--shape name=1x128 ...] [--variants default|all] [--atol 1e-4]
                               [--save-outputs OUT.npz] [--dump DIR]
    webjit bench --native MODEL.onnx [--shape ...] [--inputs F.npz] [--repeats 10] [--budget 60] [--json F]
    webjit build MODEL.onnx -o DIR [--shape ...] [--inputs F.npz] [--buckets 16,32,64] [--weights fp32|fp16]
                 [--no-reference] [--backends webgpu,wasm]
    webjit serve DIR [--port N]
    webjit doctor [--no-browser]
    webjit --version

Exit status: 0 success, 1 outputs differ from onnxruntime, 2 bad input (model, shapes, options), 3 internal error.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .errors import WebjitError


def _shape(text: str) -> tuple[str, tuple[int, ...]]:
    name, sep, dims = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, tuple(int(d) for d in dims.lower().split("x")) if dims else ()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=DIMS like input_ids=1x128, got '{text}'") from None


def _feeds(args) -> tuple[dict, dict]:
    from .validate import generate_inputs
    shapes = dict(args.shape or [])
    if args.inputs:
        try:
            f = np.load(args.inputs, allow_pickle=False)
            if not isinstance(f, np.lib.npyio.NpzFile):
                raise WebjitError(f"{args.inputs}: not an .npz archive (write inputs with np.savez(path, name=array))")
            with f:
                feeds = {k: f[k] for k in f.files}
        except (OSError, ValueError) as e:
            raise WebjitError(f"{args.inputs}: cannot read inputs ({e})") from None
        return feeds, shapes
    return generate_inputs(args.model, shapes), shapes


def _table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_validate(args) -> int:
    if args.generate is not None:
        return _validate_generation(args)
    from .native import adapter_info
    from .validate import validate
    if args.save_outputs and not Path(args.save_outputs).resolve().parent.is_dir():
        raise WebjitError(f"{args.save_outputs}: directory {Path(args.save_outputs).parent} does not exist")
    feeds, shapes = _feeds(args)
    report, ours = validate(args.model, feeds, shapes=shapes, variants=args.variants, atol=args.atol,
                            rtol=args.rtol, dump=args.dump, backend=args.backend)
    info = adapter_info() if args.backend == "webgpu" else _wasm_info()
    print(f"{args.model}: {report.summary}")
    print(f"adapter: {info['device']} ({info['adapter_type']}, {info['backend']})\n")
    rows = [[k["name"], k["kind"], k["variants"], k["checked"] or "default",
             f"{k['worst']:.2e}" if k["checked"] else "", k["worst_variant"]] for k in report.kernels]
    if args.variants == "all" or args.verbose:
        print(_table(rows, ["kernel", "kind", "variants", "checked", "max err", "worst variant"]) + "\n")
    else:
        kinds: dict[str, list] = {}
        for k in report.kernels:
            kinds.setdefault(k["kind"], []).append(k)
        print(_table([[kind, len(ks), sum(k["variants"] for k in ks)] for kind, ks in kinds.items()],
                     ["kind", "kernels", "variants (the default of each checked)"]) + "\n")
    print(_table([[o, f"{e:.3e}", "ok" if report.passed[o] else "MISMATCH"] for o, e in report.errors.items()],
                 ["output", "max abs error", f"|err| <= {args.atol:g} + {args.rtol:g}|ref|"]))
    if args.save_outputs:
        try:
            np.savez(args.save_outputs, **ours)
        except OSError as e:
            raise WebjitError(f"{args.save_outputs}: cannot write outputs ({e.strerror or e})") from None
    bad = [k for k in report.kernels if k["worst"] > k["tol"]]
    for k in bad:
        print(f"variant mismatch: {k['name']} ({k['kind']}) variant {k['worst_variant']}: {k['worst']:.3e}")
    ok = report.ok
    print("\nPASS" if ok else "\nFAIL")
    return 0 if ok else 1


def _validate_generation(args) -> int:
    """Greedy generation natively against onnxruntime's own greedy loop on the unchanged model, token for token,
    and the logits of every step with the tokens forced (so that every step sees other tokens)."""
    from .native.generate import Generator, reference_forced, reference_greedy
    gen = Generator(args.model, args.generate, args.backend)
    vocab = int(gen.plans[-1].shapes[gen.roles.logits][-1])
    rng = np.random.default_rng(0)
    prompt = [int(t) for t in rng.integers(1, vocab, args.prompt_tokens)]
    n = min(args.new_tokens, args.generate - len(prompt))
    if n < 1:
        raise WebjitError(f"--prompt-tokens {args.prompt_tokens}: leaves no room in a context of {args.generate}")
    want, got = reference_greedy(args.model, prompt, n), gen.greedy(prompt, n)
    forced = [int(t) for t in rng.integers(1, vocab, n - 1)]
    errs = [float(np.max(np.abs(a - b))) for a, b in zip(reference_forced(args.model, prompt, forced),
                                                          gen.forced(prompt, forced))]
    same = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), None)
    print(f"{args.model}: {len(gen.plans)} plans ({len(gen.spec.prompt_buckets)} prefill, "
          f"{len(gen.spec.past_buckets)} decode) on {args.backend}; prompt of {len(prompt)} tokens")
    print(f"greedy, {n} new tokens: " + ("the same as onnxruntime's" if same is None else
                                        f"differs from onnxruntime's at token {same}: {got[same]} != {want[same]}"))
    worst = max(errs)
    print(f"logits with forced tokens, {len(errs)} steps: max abs error {worst:.3e}")
    ok = same is None and worst <= args.atol
    print("\nPASS" if ok else "\nFAIL")
    return 0 if ok else 1


def cmd_bench(args) -> int:
    from . import compile as compile_model
    from .native.wgpu_runner import WgpuRunner, adapter_info, device_limits
    from .progress import Progress
    from .tune import tune
    if not args.native:
        raise WebjitError("only native benchmarks run here: pass --native (browser benchmarks: python -m e2e.bench)")
    feeds, shapes = _feeds(args)
    plan = compile_model(args.model, shapes, feeds)
    if args.backend == "wasm":
        from .native.wasm_runner import WasmRunner
        runner, limits, info, engine = WasmRunner(plan), {}, _wasm_info(), "WebAssembly SIMD"
    else:
        runner, limits, info, engine = WgpuRunner(plan), device_limits(), adapter_info(), "WebGPU"
    runner.run(feeds)
    results = tune(runner, limits, budget_s=args.budget, progress=Progress("tuning", 1))
    times = [_median(lambda: runner.run(feeds), args.repeats)]
    per_kernel = [(i, k, runner.time([i], repeats=3, warmup=1)) for i, k in enumerate(plan.kernels)]
    import onnxruntime as ort
    sess = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    ort_feeds = {i.name: feeds[i.name] for i in sess.get_inputs()}
    ort_t = _median(lambda: sess.run(None, ort_feeds), args.repeats)
    ours = times[0]
    print(f"{args.model}: {plan.summary()}")
    print(f"adapter: {info['device']} ({info['adapter_type']}, {info['backend']})\n")
    rows = [[k.name, k.kind, runner.variants[k.name].key, f"{t * 1e3:.3f}",
             f"{k.flops / t / 1e9:.2f}" if k.flops else "", f"{k.bytes / t / 1e9:.2f}" if k.bytes else ""]
            for i, k, t in per_kernel]
    print(_table(rows, ["kernel", "kind", "best variant", "ms", "GFLOP/s", "GB/s"]) + "\n")
    print(_table([[f"webjit (native {engine})", f"{ours * 1e3:.2f}", "1.00"],
                  ["onnxruntime CPU", f"{ort_t * 1e3:.2f}", f"{ort_t / ours:.2f}"]],
                 ["engine", "median ms", "its time / webjit's (above 1: webjit is faster)"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": str(args.model), "adapter": info, "webjit_ms": ours * 1e3, "ort_cpu_ms": ort_t * 1e3,
                       "kernels": [{"name": k.name, "kind": k.kind, "variant": runner.variants[k.name].key,
                                    "ms": t * 1e3, "gflops": k.flops / t / 1e9} for i, k, t in per_kernel],
                       "tuning": {k: r.variants for k, r in results.items()}}, f, indent=1)
    return 0


def _generation_spec(args):
    """(spec, encoder) of `build --generate`: a decoder-only model's Spec, or an encoder-decoder model's
    Seq2SeqSpec with its encoder (--encoder, else encoder_model.onnx beside the decoder)."""
    from .generation import Seq2SeqSpec, Spec, decoder_start, is_seq2seq_decoder
    from .onnx_import import import_onnx
    prompts, pasts = _sizes(args.prompt_buckets, "--prompt-buckets"), _sizes(args.past_buckets, "--past-buckets")
    if not is_seq2seq_decoder(import_onnx(args.model)):
        return Spec.of(args.generate, prompts, pasts), None
    encoder = Path(args.encoder) if args.encoder else Path(args.model).with_name("encoder_model.onnx")
    if not encoder.is_file():
        raise WebjitError(f"{args.model} is an encoder-decoder model's decoder: give its encoder with --encoder "
                          f"(there is no {encoder})")
    start = args.decoder_start if args.decoder_start is not None else decoder_start(args.model)
    if start is None:
        raise WebjitError("--generate: no decoder_start_token_id in a config.json beside the model; give it with "
                          "--decoder-start ID")
    return Seq2SeqSpec.of(args.generate, args.encoder_length or args.generate, start, pasts, prompts), encoder


def cmd_build(args) -> int:
    from . import hub_folder
    from .bundle import build
    generate, folder_model = None, None
    if hub_folder.is_folder(args.model):  # a hub-style folder: its file for --dtype; build() takes the folder
        folder = hub_folder.resolve(args.model, args.dtype, args.generate is not None)
        folder_model, args.model = args.model, str(folder.model)
        if args.generate is not None and not args.encoder:
            enc = hub_folder.encoder_of(folder)
            args.encoder = str(enc) if enc else None
    elif args.dtype:
        raise WebjitError(f"--dtype picks a file of a hub-style folder; {args.model} is one ONNX file")
    if args.generate is not None:
        if args.shape or args.inputs:
            raise WebjitError("--generate fixes the shapes itself (from the context and the buckets); "
                              "drop --shape and --inputs")
        feeds, shapes = None, None
        generate, encoder = _generation_spec(args)
    elif folder_model is not None and not args.shape and not args.inputs:
        feeds, shapes, encoder = None, None, None  # build() gives a folder's text encoder its default shapes
    else:
        feeds, shapes, encoder = *_feeds(args), None
    out = build(folder_model or args.model, args.output, shapes, feeds, weights=args.weights,
                reference=not args.no_reference and feeds is not None,
                backends=[b.strip() for b in args.backends.split(",") if b.strip()], buckets=args.buckets,
                generate=generate, encoder=encoder, dtype=args.dtype)
    manifest = json.loads((out / "manifest.json").read_text())
    size = sum(f["bytes"] for f in manifest["files"].values())
    classes = manifest.get("dynamic", {}).get("classes", [])
    dims = ", ".join(f"{d['name']} in {d['buckets']}" for d in manifest.get("dynamic", {}).get("dims", []))
    print(f"{out}: {len(manifest['kernels'])} kernels, {len(manifest['files'])} files, {size / 2**20:.1f} MiB"
          f"{f', {len(classes) + 1} shape classes ({dims})' if classes else ''}"
          f" ({len(manifest.get('wasm', {}).get('modules', []))} WebAssembly modules)"
          f"{'' if 'reference' in manifest else ' (no reference outputs)'}")
    from .bundle import SNIPPET, integrity
    print(f"integrity: {integrity((out / 'manifest.json').read_bytes())} (InferenceSession.create(url, {{integrity}}); "
          f"{out / SNIPPET})")
    if manifest["weights"]["format"] == "fp16":
        tensors = manifest["weights"]["tensors"]
        stored = sum(p["bytes"] for t in tensors for p in t["parts"])
        device = sum(t["bytes"] for t in tensors)
        kept = [t["name"] for t in tensors if t["dtype"] == "float32" and "stored" not in t]
        print(f"weights: {stored / 2**20:.1f} MiB as fp16, {(device - stored) / 2**20:.1f} MiB saved "
              f"({device / 2**20:.1f} MiB in device form)"
              + (f"; kept as float32, beyond float16's range: {', '.join(map(repr, kept))}" if kept else ""))
    return 0


def _sizes(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise WebjitError(f"{flag} {text}: expected sizes like 16,32,64") from None


def cmd_serve(args) -> int:
    from .serve import make_server
    pyodide = args.pyodide or ("build/pyodide" if Path("build/pyodide/pyodide-lock.json").is_file() else None)
    if pyodide and not (Path(pyodide) / "pyodide-lock.json").is_file():
        raise WebjitError(f"{pyodide}: no pyodide-lock.json; make it with `python -m webjit.pyodide_dist -o {pyodide}`")
    server = make_server(args.bundle, args.port, mounts={"pyodide": pyodide} if pyodide else None, csp=args.csp)
    print(f"serving {args.bundle} at {server.url} (runtime at {server.url}web/, demo at {server.url}web/demo.html)",
          flush=True)
    if pyodide:
        print(f"the compiler for pages (Pyodide, {pyodide}) at {server.url}pyodide/", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _wasm_info() -> dict:
    from .native.wasm_runner import engine_info
    return engine_info()


def _median(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def parser() -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(prog="webjit", description="Compile ONNX transformer models to WebGPU kernels.")
    p.add_argument("--version", action="version", version=f"webjit {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("model", help="ONNX file (external data next to it)")
        sp.add_argument("--inputs", help=".npz of input arrays (their shapes fix the model's dims)")
        sp.add_argument("--shape", action="append", type=_shape, metavar="NAME=DIMS",
                        help="input shape such as input_ids=1x128; repeatable")

    v = sub.add_parser("validate", help="compile, run natively, compare with onnxruntime")
    common(v)
    v.add_argument("--backend", choices=["webgpu", "wasm"], default="webgpu",
                   help="run on the native WebGPU adapter, or as WebAssembly SIMD on wasmtime")
    v.add_argument("--variants", choices=["default", "all"], default="default",
                   help="check the default variant of each kernel, or every variant")
    v.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (default 1e-4)")
    v.add_argument("--rtol", type=float, default=1e-6,
                   help="relative tolerance on top, for outputs of large magnitude (default 1e-6)")
    v.add_argument("--save-outputs", metavar="OUT.npz")
    v.add_argument("--generate", type=int, metavar="CONTEXT",
                   help="a decoder with a past: generate greedily for a context of CONTEXT positions and compare "
                        "token for token with onnxruntime's own loop")
    v.add_argument("--new-tokens", type=int, default=32, help="with --generate (default 32)")
    v.add_argument("--prompt-tokens", type=int, default=7, help="with --generate: a random prompt's length (7)")
    v.add_argument("--dump", metavar="DIR", help="write each stage's output (graphs, kernels, plan) to DIR")
    v.add_argument("-v", "--verbose", action="store_true", help="list every kernel")
    v.set_defaults(fn=cmd_validate)

    b = sub.add_parser("bench", help="time the model natively next to onnxruntime CPU")
    common(b)
    b.add_argument("--native", action="store_true", help="run on the native wgpu adapter")
    b.add_argument("--backend", choices=["webgpu", "wasm"], default="webgpu",
                   help="run on the native WebGPU adapter, or as WebAssembly SIMD on wasmtime")
    b.add_argument("--repeats", type=int, default=10)
    b.add_argument("--budget", type=float, default=120.0, help="seconds of variant tuning at most")
    b.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    b.set_defaults(fn=cmd_bench)

    w = sub.add_parser("build", help="write a static web bundle (manifest, kernels, weight shards)")
    common(w)
    w.add_argument("-o", "--output", required=True, metavar="DIR", help="bundle folder (replaced atomically)")
    w.add_argument("--weights", choices=["fp32", "fp16"], default=None,
                   help="weight format in the shards: fp16 stores float32 weights as float16 (half the download; "
                        "the runtime widens them to float32 on load); default: fp16 for a float16 model, else fp32")
    w.add_argument("--no-reference", action="store_true",
                   help="do not store the sample inputs and onnxruntime's outputs for them")
    w.add_argument("--generate", type=int, metavar="CONTEXT",
                   help="compile a decoder exported with its past for text generation, for up to CONTEXT positions "
                        "(prompt plus new tokens): prefill plans per prompt bucket, decode plans per past bucket")
    w.add_argument("--prompt-buckets", metavar="SIZES", help="with --generate: the prompt lengths to compile "
                                                           "(default 16, 32, ... and CONTEXT-1)")
    w.add_argument("--past-buckets", metavar="SIZES", help="with --generate: the past lengths to compile "
                                                         "(default 16, 32, ... and CONTEXT-1)")
    w.add_argument("--dtype", choices=["fp32", "fp16", "q8", "q4"],
                   help="MODEL is a hub-style folder (onnx/model{,_fp16,_quantized,_q4}.onnx, tokenizer.json, ...): "
                        "build this precision's file (default fp32); the bundle carries the tokenizer and pooling")
    w.add_argument("--encoder", metavar="ENCODER.onnx",
                   help="with --generate on an encoder-decoder model's decoder_model.onnx (T5, BART): its encoder "
                        "(default: encoder_model.onnx beside it); then CONTEXT is the decoder's length, "
                        "--prompt-buckets bucket the encoder's input and --past-buckets the decoder's")
    w.add_argument("--encoder-length", type=int, metavar="N", help="with --encoder: the longest prompt (default CONTEXT)")
    w.add_argument("--decoder-start", type=int, metavar="ID",
                   help="with --encoder: the decoder's first token (default: decoder_start_token_id in config.json)")
    w.add_argument("--buckets", action="append", metavar="[DIM=]SIZES",
                   help="serve every size of a dim up to its maximum (from --shape/--inputs) with length buckets, "
                        "e.g. --buckets 16,32,64 (the sequence dim) or --buckets batch=1,2; repeatable")
    w.add_argument("--backends", default="webgpu,wasm", metavar="LIST",
                   help="comma-separated: webgpu (WGSL kernels), wasm (WebAssembly modules); default both")
    w.set_defaults(fn=cmd_build)

    s = sub.add_parser("serve", help="serve a bundle and the browser runtime on 127.0.0.1")
    s.add_argument("bundle", metavar="DIR")
    s.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    s.add_argument("--pyodide", metavar="DIR", help="Pyodide with webjit's wheels (python -m webjit.pyodide_dist), "
                   "served at /pyodide/ for compileInBrowser; default build/pyodide when it exists")
    s.add_argument("--csp", action="store_true", help="send a strict Content-Security-Policy (no eval, no inline "
                   "scripts, WebAssembly allowed): check that a page works under it")
    s.set_defaults(fn=cmd_serve)

    d = sub.add_parser("doctor", help="what this machine offers webjit, and what to install where something is missing")
    d.add_argument("--no-browser", action="store_true", help="skip the Chromium checks")
    d.set_defaults(fn=cmd_doctor)

    o = sub.add_parser("ops", help="the ops webjit compiles: domain, opset, element types, how each runs")
    o.set_defaults(fn=cmd_ops)
    return p


def cmd_ops(args) -> int:
    from . import ops
    print(ops.table())
    return 0


def cmd_doctor(args) -> int:
    """Exit status 0 when everything webjit uses is here, 1 when something is missing."""
    from . import doctor
    checks = doctor.run(browser_checks=not args.no_browser)
    print(doctor.report(checks))
    return 0 if all(c.ok for c in checks) else 1


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except WebjitError as e:
        print(f"webjit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("webjit: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug in webjit, not in the input: say so, with the details needed to report it
        import traceback
        traceback.print_exc()
        print("webjit: internal error (a bug in webjit; the traceback above helps to report it)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
