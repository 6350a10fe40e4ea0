"""Microbenchmark of the WebAssembly-SIMD backend on this machine, all in one run:

  1. the SIMD peak of one core in wasmtime: independent chains of f32x4.relaxed_madd (and of f32x4.mul + add);
  2. the best matmul variant (of the lite space, both SIMD forms) on MiniLM's matmul shapes, next to that peak;
  3. MiniLM (seq 128) whole-model latency after tuning, next to onnxruntime CPU with 1 thread and by default;
  4. what it costs to build the plan's module: rendering, wat2wasm, compiling;
  5. where MiniLM's time goes: each kernel timed alone, summed by kernel kind, with 1 thread and with 2 threads
     (Python threads over one shared memory, as Web Workers; wall clock, so each kernel alone also pays the
     host's dispatch to the threads, about 0.1-0.2 ms: small kernels look slow), and the whole run (one call).

    python -m webjit.bench_wasm [--budget 60] [--repeats 10] [--json F] [--profile-only]

Single-threaded wasm is timed in the calling thread's CPU time (the machine may be shared: other processes do not
count), as is onnxruntime with 1 thread; onnxruntime with its default threads on the wall clock. Figures that are
compared are measured taking turns, round after round, so that they see the same machine: the matmul variants
(best of the rounds) with the peak loops, and webjit's MiniLM with onnxruntime's (medians).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

SHAPES = [(128, 384, 384), (128, 384, 1536), (128, 1536, 384)]  # M x K x N: MiniLM's projections and MLP
CHAINS = 12  # independent accumulators: enough to cover FMA latency x throughput on current cores


def _round_robin(fns: dict, rounds: int, clock=time.thread_time) -> dict[str, list[float]]:
    """Seconds of each function per round, the functions taking turns, so that all see the same machine."""
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t = clock()
            f()
            times[k].append(clock() - t)
    return times


def _peak_fn(relaxed: bool, seconds: float = 0.01):
    """A callable running CHAINS independent multiply-add chains on f32x4, and the flops per call."""
    import wasmtime
    from .native.wasm_runner import _engine
    op = ("(f32x4.relaxed_madd (local.get $a{c}) (local.get $x) (local.get $y))" if relaxed else
          "(f32x4.add (f32x4.mul (local.get $a{c}) (local.get $x)) (local.get $y))")
    body = " ".join(f"(local.set $a{c} {op.format(c=c)})" for c in range(CHAINS))
    wat = (f'(module (func (export "peak") (param $n i32) (result f32) (local $x v128) (local $y v128)'
           f'{"".join(f" (local $a{c} v128)" for c in range(CHAINS))}'
           f' (local.set $x (v128.const f32x4 0.999 0.999 0.999 0.999))'
           f' (local.set $y (v128.const f32x4 0.001 0.001 0.001 0.001))'
           f' (loop $l {body} (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br_if $l (local.get $n)))'
           f' (f32x4.extract_lane 0 (local.get $a0))))')
    engine = _engine(True)
    store = wasmtime.Store(engine)
    peak = wasmtime.Instance(store, wasmtime.Module(engine, wasmtime.wat2wasm(wat)), []).exports(store)["peak"]
    steps = int(seconds * 4e9 / CHAINS)  # about `seconds` at a few cycles per step
    return (lambda: peak(store, steps)), steps * CHAINS * 8


def _matmul_plan(m: int, k: int, n: int, directory: str):
    import onnx
    from onnx import TensorProto, helper as oh, numpy_helper as nh
    import webjit
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    graph = oh.make_graph([oh.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                          [oh.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                          [oh.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], [nh.from_array(w, "w")])
    path = os.path.join(directory, f"mm_{m}x{k}x{n}.onnx")
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)]), path)
    x = rng.standard_normal((m, k)).astype(np.float32)
    return webjit.compile(path, values={"x": x}), {"x": x}, x @ w


def matmul_vs_peak(m: int, k: int, n: int, rounds: int) -> dict:
    """Every variant of the matmul kernel for this shape (checked against numpy), taking turns for 5 rounds; then
    the 3 fastest of each SIMD form again, taking turns with the peak loops for `rounds` rounds: best of those."""
    from .native.wasm_runner import WasmRunner
    with tempfile.TemporaryDirectory() as tmp:
        plan, feeds, want = _matmul_plan(m, k, n, tmp)
    runner = WasmRunner(plan)
    runner.run(feeds)
    fns = {}
    for v in runner.plan.kernels[0].space:  # one memory for all: each variant runs on warm caches, as in a loop
        runner.set_variant(0, v)
        runner.run_kernels([0])
        err = float(np.abs(runner.read(plan.kernels[0].outputs[0]) - want).max())
        if err > 1e-3:
            raise AssertionError(f"matmul {m}x{k}x{n} variant {v.key}: max error {err:.2e}")
        fns[v.key] = runner.kernel(0)
    sweep = {key: min(ts) for key, ts in _round_robin(fns, 5).items()}
    finalists = [key for form in ("relaxed1", "relaxed0")
                 for key in sorted((key for key in sweep if key.endswith(form)), key=sweep.get)[:3]]
    fns = {key: fns[key] for key in finalists}
    (peak1, flops1), (peak0, flops0) = _peak_fn(True), _peak_fn(False)
    times = _round_robin({**fns, "peak1": peak1, "peak0": peak0}, rounds)
    best = {key: min(ts) for key, ts in times.items()}
    out = {"peak_gflops": {1: flops1 / best["peak1"] / 1e9, 0: flops0 / best["peak0"] / 1e9}}
    for form in (1, 0):
        key = min((key for key in finalists if key.endswith(f"relaxed{form}")), key=best.get)
        out[form] = {"variant": key, "ms": best[key] * 1e3, "gflops": 2 * m * n * k / best[key] / 1e9}
    return out


def minilm_profiles(budget: float, rounds: int) -> dict:
    """MiniLM tuned (single-threaded, as in `minilm`), then profiled with 1 and 2 threads."""
    import demo_models
    import webjit
    from .native.wasm_runner import WasmRunner
    from .tune import tune
    feeds = demo_models.sample_inputs("minilm")
    plan = webjit.compile(demo_models.get("minilm"), values=feeds)
    runner = WasmRunner(plan)
    runner.run(feeds)
    tune(runner, {}, budget_s=budget)
    return {t: profile(plan, feeds, runner.variants, t, rounds) for t in (1, 2)}


def minilm(budget: float, rounds: int) -> dict:
    import demo_models
    import onnxruntime as ort
    import webjit
    from .native.wasm_runner import WasmRunner
    from .tune import tune
    path = demo_models.get("minilm")
    feeds = demo_models.sample_inputs("minilm")
    plan = webjit.compile(path, values=feeds)
    t = time.perf_counter()
    runner = WasmRunner(plan)
    first = {"runner_s": time.perf_counter() - t, **runner.stats}
    runner.run(feeds)
    tune(runner, {}, budget_s=budget)
    runner.run(feeds)
    sessions = {}
    for label, threads in (("ort_1thread", 1), ("ort_default", 0)):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = threads
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        sessions[label] = (sess, {i.name: feeds[i.name] for i in sess.get_inputs()})
    ort1, ort1_feeds = sessions["ort_1thread"]
    ortd, ortd_feeds = sessions["ort_default"]
    cpu = _round_robin({"wasm": lambda: runner.run(feeds), "ort_1thread": lambda: ort1.run(None, ort1_feeds)}, rounds)
    wall = _round_robin({"wasm": lambda: runner.run(feeds), "ort_1thread": lambda: ort1.run(None, ort1_feeds),
                         "ort_default": lambda: ortd.run(None, ortd_feeds)}, rounds, time.perf_counter)
    out = {"build": first, "rebuild_after_tuning": dict(runner.stats),
           "variants": {k: v.key for k, v in runner.variants.items()},
           "profile": {t: profile(plan, feeds, runner.variants, t, rounds) for t in (1, 2)}}
    out.update({f"{k}_cpu_ms": float(np.median(ts)) * 1e3 for k, ts in cpu.items()})
    out.update({f"{k}_wall_ms": float(np.median(ts)) * 1e3 for k, ts in wall.items()})
    return out


def profile(plan, feeds, variants: dict, threads: int, repeats: int) -> dict:
    """Each kernel of the plan timed alone (median of `repeats`, on the memory a forward pass left), summed by
    kernel kind, and the whole run, with `threads` threads."""
    from .native.wasm_runner import WasmRunner
    runner = WasmRunner(plan, variants, threads=threads)
    runner.run(feeds)
    kinds: dict[str, dict] = {}
    for i, k in enumerate(runner.plan.kernels):
        row = kinds.setdefault(k.kind, {"count": 0, "ms": 0.0})
        row["count"] += 1
        row["ms"] += runner.time([i], repeats=repeats, warmup=1) * 1e3
    return {"kinds": kinds, "run_ms": runner.time(None, repeats=repeats, warmup=1) * 1e3}


def _profile_table(profiles: dict) -> list[list[str]]:
    totals = {t: sum(r["ms"] for r in p["kinds"].values()) for t, p in profiles.items()}
    order = sorted(profiles[1]["kinds"], key=lambda k: -profiles[1]["kinds"][k]["ms"])
    rows = []
    for kind in order:
        row = [f"{kind} (x{profiles[1]['kinds'][kind]['count']})"]
        for t, p in profiles.items():
            ms = p["kinds"][kind]["ms"]
            row += [f"{ms:.2f}", f"{100 * ms / totals[t]:.0f}%"]
        rows.append(row)
    rows.append(["sum of kernels"] + [x for t in profiles for x in (f"{totals[t]:.1f}", "")])
    rows.append(["whole run (one call)"] + [x for t in profiles for x in (f"{profiles[t]['run_ms']:.1f}", "")])
    return rows


def main(argv=None) -> int:
    from .cli import _table
    from .native.wasm_runner import engine_info
    p = argparse.ArgumentParser(prog="python -m webjit.bench_wasm", description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, default=60.0, help="seconds of MiniLM variant tuning at most")
    p.add_argument("--repeats", type=int, default=10, help="rounds of the same-period comparisons")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--profile-only", action="store_true",
                   help="only MiniLM's time by kernel kind (after tuning), with 1 and 2 threads")
    args = p.parse_args(argv)
    info = engine_info()
    print(f"{info['device']}: {info['backend']}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    if args.profile_only:
        profiles = minilm_profiles(args.budget, args.repeats)
        print(_table(_profile_table(profiles), ["MiniLM seq 128, tuned", "1 thread ms", "", "2 threads ms", ""]))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"engine": info, "profile": profiles}, f, indent=1)
        return 0
    mm = {f"{m}x{k}x{n}": matmul_vs_peak(m, k, n, args.repeats) for m, k, n in SHAPES}
    rows = []
    for shape, r in mm.items():
        peak = r["peak_gflops"]
        rows.append([f"SIMD peak, relaxed_madd ({shape} round)", "", f"{peak[1]:.1f}", "100%", ""])
        rows.append([f"SIMD peak, mul + add ({shape} round)", "", f"{peak[0]:.1f}", f"{100 * peak[0] / peak[1]:.0f}%", ""])
        for form in (1, 0):
            rows.append([f"matmul {shape} ({'relaxed' if form else 'fixed'} SIMD)", f"{r[form]['ms']:.3f}",
                         f"{r[form]['gflops']:.1f}", f"{100 * r[form]['gflops'] / peak[1]:.0f}%", r[form]["variant"]])
    print(_table(rows, ["one core, M x K x N", "ms", "GFLOP/s", "of peak", "best variant"]) + "\n")
    lm = minilm(args.budget, args.repeats)
    b = lm["build"]
    print(f"MiniLM seq 128, 61 kernels in one module: rendered in {b['render'] * 1e3:.0f} ms, assembled in "
          f"{b['assemble'] * 1e3:.0f} ms, wat2wasm {b['wat2wasm'] * 1e3:.0f} ms, compiled in "
          f"{b['compile'] * 1e3:.0f} ms ({b['wasm_bytes'] / 1024:.0f} KiB of wasm)\n")
    print(_table([["webjit WebAssembly SIMD, 1 thread (tuned)", f"{lm['wasm_cpu_ms']:.1f}", f"{lm['wasm_wall_ms']:.1f}"],
                  ["onnxruntime CPU, 1 thread", f"{lm['ort_1thread_cpu_ms']:.1f}", f"{lm['ort_1thread_wall_ms']:.1f}"],
                  ["onnxruntime CPU, default threads", "", f"{lm['ort_default_wall_ms']:.1f}"]],
                 ["MiniLM seq 128", "CPU ms", "wall ms"]))
    print()
    print(_table(_profile_table(lm["profile"]), ["MiniLM seq 128, tuned", "1 thread ms", "", "2 threads ms", ""]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"engine": info, "matmul": mm, "minilm": lm}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
