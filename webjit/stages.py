"""The compiler's stages in order: `compile` (ONNX file -> execution plan), and what WEBJIT_DUMP writes of each."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .contrib import expand_contrib
from .errors import WebjitError
from .float16 import widen_float16
from .fuse import fuse
from .generation import decoder_roles, split_cache
from .lower import lower
from .onnx_import import import_onnx
from .plan import Plan, make_plan
from .shapes import specialize


def compile(model: str | os.PathLike, shapes: dict[str, tuple] | None = None,
            values: dict | None = None, *, reuse: bool = True,
            dump: str | os.PathLike | None = None, generation: bool = False,
            outputs: list[str] | None = None) -> Plan:
    """ONNX file -> execution plan. shapes: concrete input shapes; values: sample inputs (their shapes count,
    and inputs that decide shapes, such as a Reshape target, are folded in as constants; numpy arrays or
    webjit.tensor.Tensor). generation: a decoder with a past, compiled for generation: its present outputs hold
    only the new rows (generation.py). outputs: compute only these graph outputs (and what they need)."""
    dump = dump or os.environ.get("WEBJIT_DUMP")
    g = import_onnx(model)
    if outputs is not None:
        unknown = [o for o in outputs if o not in g.outputs]
        if unknown:
            raise WebjitError(f"the model has no output '{unknown[0]}' (its outputs: {', '.join(g.outputs)})")
        g.outputs = [o for o in g.outputs if o in outputs]
        g.remove_dead()
    if generation:
        split_cache(g, decoder_roles(g))
    _dump(dump, "graph.txt", g.dump)
    expand_contrib(g)
    half = widen_float16(g)
    g = specialize(g, shapes, values)
    _dump(dump, "graph.specialized.txt", g.dump)
    g = fuse(g, dump=(lambda name, text: _dump(dump, name, text)) if dump else None)
    _dump(dump, "graph.fused.txt", g.dump)
    kernels = lower(g)
    plan = make_plan(g, kernels, reuse=reuse)
    plan.half_weights = half
    if dump:
        _dump_kernels(Path(dump), plan)
    return plan


def _dump(directory, name: str, text) -> None:
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / name).write_text(text())


def _dump_kernels(directory: Path, plan: Plan) -> None:
    """Each kernel's default variant as WGSL and as WebAssembly text (the relaxed-SIMD form), and the plan."""
    from .render_wasm import layout, render as render_wat
    from .render_wgsl import render
    from .space_wasm import retarget
    for k in plan.kernels:
        v = k.default()
        (directory / f"{k.name}.{v.key}.wgsl").write_text(render(k, v, plan.dtypes))
    wasm_plan = retarget(plan)
    lay = layout(wasm_plan)
    for k in wasm_plan.kernels:
        v = k.default()
        (directory / f"{k.name}.{v.key}.wat").write_text(render_wat(k, v, wasm_plan.dtypes, lay))
    steps = [{"kernel": k.name, "node": k.node, "inputs": list(k.inputs), "outputs": list(k.outputs),
              "variants": len(k.space)} for k in plan.kernels]
    (directory / "plan.json").write_text(json.dumps(
        {"inputs": plan.inputs, "outputs": plan.outputs, "arena_bytes": plan.arena_bytes,
         "pool_bytes": plan.pool, "slots": plan.slots, "steps": steps}, indent=1))
