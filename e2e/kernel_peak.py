"""How close webjit's WebAssembly matmuls come to the SIMD peak of this browser, all measured in one page:

  1. the peak of one core in Chromium's V8: independent chains of f32x4.relaxed_madd (4 multiply-adds an
     instruction) and of i32x4.relaxed_dot_i8x16_i7x16_add_s (16 byte multiply-adds an instruction);
  2. every relaxed-SIMD variant of MiniLM's three matmul shapes and of two one-row ones (a decode step of GPT-2
     small's MLP, memory-bound: there the figure to read is the time), in the fp32 form (a MatMul) and the q8 form
     (DynamicQuantizeLinear -> MatMulInteger with int8 weights: the float form that dequantizes B and the integer
     form that sums byte products, see webjit/templates_wasm/matmul_i8.wat.j2);
  3. for each, GFLOP/s (2 M N K per call) and the share of the peak of its arithmetic: f32 for the float forms,
     the byte dot for the integer form. The integer form issues two dots per 16 products (A's bytes are split in
     halves, the instruction being defined for 7-bit operands only), so its ceiling is half the dot peak.

    python -m e2e.kernel_peak [--rounds 5] [--json FILE]

Each kernel runs alone in its own module, single-threaded, all over one memory (each in its own layout): calls are repeated until a timed
call lasts about 20 ms (the page's clock is coarse), and every function is warmed up first so that V8 has tiered it
up from its baseline code. Kernels and peak loops take turns round after round, and the best round counts.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile

import numpy as np

# M x K x N: MiniLM's projections and MLP at 128 tokens, then one decode step of GPT-2 small's MLP
SHAPES = [(128, 384, 384), (128, 384, 1536), (128, 1536, 384), (1, 768, 3072), (1, 3072, 768)]
CHAINS = 12

PAGE_JS = """async ({mods, rounds}) => {
  const fns = [];
  const memory = new WebAssembly.Memory({ initial: Math.max(...mods.map((m) => m.pages)) });  // one for all
  for (const m of mods) {
    const bytes = Uint8Array.from(atob(m.wasm), (c) => c.charCodeAt(0));
    const imports = m.pages ? { env: { memory } } : {};
    const { instance } = await WebAssembly.instantiate(bytes, imports);
    const f = instance.exports[m.fn];
    const call = m.peak ? () => f(m.steps) : () => f(0, 1);
    for (let i = 0; i < 5; i++) call();
    let t = performance.now(), n = 0;
    while (performance.now() - t < 20) { call(); n++; }
    fns.push({ call, reps: Math.max(1, n) });
  }
  const { unsignedDotSupport } = await import('/web/wasm/layout.js');
  const best = mods.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++) {
      const { call, reps } = fns[i];
      const t = performance.now();
      for (let j = 0; j < reps; j++) call();
      best[i] = Math.min(best[i], (performance.now() - t) / reps);
      await new Promise((ok) => setTimeout(ok, 0));
    }
  }
  return { best, unsignedDot: unsignedDotSupport() };
}"""


def _peak_module(kind: str) -> tuple[str, int]:
    """WAT of a loop of CHAINS independent chains, and the operations (multiply and add count 2) per step."""
    if kind == "f32":
        op, init, ops = "(f32x4.relaxed_madd (local.get $a{c}) (local.get $x) (local.get $y))", "f32x4 0.999 0.999 0.999 0.999", 8
    else:
        op, init, ops = "(i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $x) (local.get $y) (local.get $a{c}))", "i8x16 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16", 32
    body = " ".join(f"(local.set $a{c} {op.format(c=c)})" for c in range(CHAINS))
    wat = (f'(module (func (export "peak") (param $n i32) (result i32) (local $x v128) (local $y v128)'
           f'{"".join(f" (local $a{c} v128)" for c in range(CHAINS))}'
           f' (local.set $x (v128.const {init})) (local.set $y (v128.const {init}))'
           f' (loop $l {body} (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br_if $l (local.get $n)))'
           f' (i32x4.extract_lane 0 (local.get $a0))))')
    return wat, ops * CHAINS


def _model(m: int, k: int, n: int, form: str, directory: str) -> tuple[str, dict]:
    import onnx
    from onnx import TensorProto, helper as oh, numpy_helper as nh
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, k)).astype(np.float32)
    if form == "fp32":
        w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
        nodes = [oh.make_node("MatMul", ["x", "w"], ["y"])]
        out = oh.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])
    else:
        w = rng.integers(-128, 128, (k, n)).astype(np.int8)
        nodes = [oh.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"]),
                 oh.make_node("MatMulInteger", ["q", "w", "z"], ["y"])]
        out = oh.make_tensor_value_info("y", TensorProto.INT32, [m, n])
    graph = oh.make_graph(nodes, "mm", [oh.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])], [out],
                          [nh.from_array(w, "w")])
    path = os.path.join(directory, f"{form}_{m}x{k}x{n}.onnx")
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)]), path)
    return path, {"x": x}


def modules(directory: str) -> list[dict]:
    """Every relaxed-SIMD variant of the matmul kernel of each shape and form, as a module of its own."""
    import webjit
    from webjit.render_wasm import function_name, layout, module, render
    from webjit.space_wasm import retarget
    from webjit.wat import assemble
    out = []
    for f in ("f32", "i8"):
        wat, ops = _peak_module(f)
        steps = 200_000
        out.append({"label": f"peak {f}", "peak": f, "fn": "peak", "steps": steps, "ops": ops * steps,
                    "pages": 0, "wasm": base64.b64encode(assemble(wat)).decode()})
    for m, k, n in SHAPES:
        for form in ("fp32", "q8"):
            path, feeds = _model(m, k, n, form, directory)
            plan = retarget(webjit.compile(path, values=feeds), unsigned_dot=True)  # the page checks the engine
            lay = layout(plan, 1)
            kernel = next(x for x in plan.kernels if x.kind == "matmul")
            for v in kernel.space:
                if not v.v.get("relaxed"):
                    continue
                text = module([render(kernel, v, plan.dtypes, lay)], [function_name(kernel)], lay)
                out.append({"label": f"{m}x{k}x{n}", "form": form, "variant": v.key, "fn": function_name(kernel),
                            "ops": 2 * m * n * k, "pages": lay.pages, "arith": "i8" if v.v.get("dot") else "f32",
                            "wasm": base64.b64encode(assemble(text)).decode()})
    return out


def measure(mods: list[dict], rounds: int) -> list[float]:
    from webjit.serve import make_server
    from .browser import chromium
    with tempfile.TemporaryDirectory() as tmp:
        (open(os.path.join(tmp, "manifest.json"), "w")).write("{}")
        server = make_server(tmp).start()
        try:
            with chromium() as browser:
                page = browser.new_page()
                page.set_default_timeout(600_000)
                page.goto(server.url + "web/test/index.html")
                return page.evaluate(PAGE_JS, {"mods": mods, "rounds": rounds})
        finally:
            server.shutdown()


def main(argv=None) -> int:
    from webjit.cli import _table
    p = argparse.ArgumentParser(prog="python -m e2e.kernel_peak", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="rounds of taking turns (best of them counts)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        mods = modules(tmp)
    got = measure(mods, args.rounds)
    ms = got["best"]
    if not got["unsignedDot"]:  # the dot2 forms do not compute the right sums on this engine: leave them out
        ms = [t if "dot2" not in m.get("variant", "") else float("inf") for m, t in zip(mods, ms)]
    peak = {m["peak"]: m["ops"] / t / 1e6 for m, t in zip(mods, ms) if m.get("peak")}
    rows = [[f"SIMD peak, {'f32x4.relaxed_madd' if f == 'f32' else 'i32x4.relaxed_dot_i8x16_i7x16_add_s'}", "", "",
             f"{g:.1f}", "100%"] for f, g in peak.items()]
    best: dict[tuple, tuple] = {}
    for m, t in zip(mods, ms):
        if m.get("peak"):
            continue
        key = (m["label"], m["form"], m["arith"])
        if key not in best or t < best[key][0]:
            best[key] = (t, m)
    for (label, form, arith), (t, m) in best.items():
        g = m["ops"] / t / 1e6
        rows.append([f"{label} {form}", m["variant"], f"{t:.3f}", f"{g:.1f}", f"{100 * g / peak[arith]:.0f}% of {arith}"])
    print(f"Chromium, one thread, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; relaxed dot of "
          f"unsigned bytes: {'yes' if got['unsignedDot'] else 'no (dot2 forms left out)'}\n")
    print(_table(rows, ["M x K x N", "best variant", "ms", "GFLOP/s", "of peak"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peak_gops": peak, "kernels": [{k: v for k, v in m.items() if k != "wasm"} | {"ms": t}
                                                      for m, t in zip(mods, ms)]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
