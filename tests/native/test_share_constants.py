"""Layers that differ only in inlined float constants share one kernel source (webjit/fuse/share.py)."""
from __future__ import annotations

import numpy as np

from helpers import check_op, f32, make_model, node
from wasm.check import check_wasm

F = np.float32


def _layers(scales, divisors=()):
    """A chain of MatMul -> Mul by a per-layer scalar -> Add by a per-layer scalar, as a quantized model's
    dequantization writes them; then Divs by per-layer constants, whose divisors must stay inline."""
    rng = np.random.default_rng(0)
    x = f32(rng, 5, 24)
    inits, nodes, prev = {}, [], "x"
    for i, s in enumerate(scales):
        inits |= {f"w{i}": f32(rng, 24, 24, scale=0.2), f"s{i}": np.array(s, F), f"b{i}": np.array(s / 3, F)}
        nodes += [node("MatMul", [prev, f"w{i}"], [f"m{i}"]), node("Mul", [f"m{i}", f"s{i}"], [f"p{i}"]),
                  node("Add", [f"p{i}", f"b{i}"], [f"y{i}"])]
        prev = f"y{i}"
    outputs = {prev: F}
    for j, d in enumerate(divisors):
        inits[f"d{j}"] = np.array(d, F)
        nodes.append(node("Div", ["x", f"d{j}"], [f"q{j}"]))
        outputs[f"q{j}"] = F
    return make_model(nodes, {"x": x}, outputs, inits), {"x": x}


def test_layers_that_differ_in_scales_share_one_source_on_both_backends():
    model, feeds = _layers([0.7, 1.3, 0.01, 2.5])
    for plan in (check_op(model, feeds, all_variants=False), check_wasm(model, feeds, all_variants=False)):
        matmuls = [k for k in plan.kernels if k.kind == "matmul"]
        assert len(matmuls) == 4
        assert len({k.source_key for k in matmuls}) == 1, [k.source_key for k in matmuls]


def test_divisors_stay_inline():
    """A constant divisor is specialised (a multiplication by its reciprocal) and so is not shared."""
    model, feeds = _layers([0.5], divisors=[3.0, 7.0])
    plan = check_op(model, feeds, all_variants=False)
    divs = [k for k in plan.kernels if k.kind == "elementwise" and k.outputs[0].startswith("q")]
    assert len({k.source_key for k in divs}) == 2


def test_without_the_pass_the_layers_would_not_share(monkeypatch):
    """The first test can fail: with the pass removed, each layer's inlined scale makes a source of its own."""
    import importlib
    from webjit.fuse.share import share_constants
    from helpers import compile_model
    fuse = importlib.import_module("webjit.fuse")
    monkeypatch.setattr(fuse, "PASSES", [p for p in fuse.PASSES if p is not share_constants])
    model, feeds = _layers([0.7, 1.3, 0.01, 2.5])
    plan = compile_model(model, feeds)
    assert len({k.source_key for k in plan.kernels if k.kind == "matmul"}) == 4
