"""Op families that encoder/decoder exports need beyond the core kernels: the whole Reduce family, ScatterND, Mish,
Mod, Clip forms, and Pow of integer bases. Every variant of every kernel against onnxruntime, as data: each case
builds a model and its feeds (the same cases run on WebAssembly in tests/wasm/test_wasm_op_families.py)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import check_op, f32, i64, make_model, node

F = np.float32
REDUCE_FLOAT = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL1",
                "ReduceL2", "ReduceLogSum"]
REDUCE_INT = ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL1"]


def reduce_family_float(rng):
    """Every float Reduce op over a middle axis given as a negative number, keepdims 0 (opset 18: axes as an input);
    positive inputs so that ReduceLogSum is defined and ReduceProd stays in range."""
    x = (np.abs(f32(rng, 3, 7, 5)) + 0.5).astype(F)
    nodes = [node(op, ["x", "ax"], [op], keepdims=0) for op in REDUCE_FLOAT]
    return (make_model(nodes, {"x": x}, {op: F for op in REDUCE_FLOAT}, {"ax": i64(-2)}, opset=18), {"x": x},
            dict(expect_kinds=["reduce"] * len(REDUCE_FLOAT), all_variants=False))


def reduce_family_int(rng):
    """The integer Reduce ops on int64 and int32 over the last two axes (keepdims 1), and over all axes."""
    n = rng.integers(-4, 5, (2, 3, 5)).astype(np.int64)
    m = rng.integers(-9, 9, (4, 1, 7)).astype(np.int32)
    nodes = [node(op, ["n", "ax"], [op]) for op in REDUCE_INT] + [node(op, ["m"], [op + "_m"], keepdims=0)
                                                                  for op in REDUCE_INT]
    outputs = {**{op: np.int64 for op in REDUCE_INT}, **{op + "_m": np.int32 for op in REDUCE_INT}}
    return (make_model(nodes, {"n": n, "m": m}, outputs, {"ax": i64(1, -1)}, opset=18), {"n": n, "m": m},
            dict(expect_kinds=["reduce"] * 2 * len(REDUCE_INT), all_variants=False))


def reduce_l2_normalise(rng):
    """x / max(ReduceL2(x, axes=[-1]), eps), as sentence-transformers normalises embeddings (opset 14: axes as an
    attribute); every variant of the reduce kernel."""
    x = f32(rng, 3, 33)
    nodes = [node("ReduceL2", ["x"], ["n"], axes=[-1], keepdims=1), node("Clip", ["n", "eps", ""], ["c"]),
             node("Div", ["x", "c"], ["y"])]
    return (make_model(nodes, {"x": x}, {"y": F}, {"eps": np.array(1e-12, F)}, opset=14), {"x": x},
            dict(expect_kinds=["reduce", "elementwise"]))


def reduce_empty_axes(rng):
    """Opset 18 Reduce ops without axes: keepdims 0 reduces everything; noop_with_empty_axes keeps the input
    (ReduceSumSquare then squares it, ReduceL1 takes abs, as onnxruntime); a 1-sized reduced axis."""
    x = f32(rng, 1, 5, 3)
    nodes = [node("ReduceSumSquare", ["x"], ["all"], keepdims=0), node("ReduceL1", ["x"], ["noop"],
                                                                      noop_with_empty_axes=1),
             node("ReduceMax", ["x"], ["noop_max"], noop_with_empty_axes=1),
             node("ReduceProd", ["x", "a0"], ["one"], keepdims=0)]
    outputs = {"all": F, "noop": F, "noop_max": F, "one": F}
    return (make_model(nodes, {"x": x}, outputs, {"a0": i64(0)}, opset=18), {"x": x},
            dict(all_variants=False))


REDUCE = [reduce_family_float, reduce_family_int, reduce_l2_normalise, reduce_empty_axes]
CASES = {"reduce": REDUCE}


@pytest.mark.parametrize("case", [pytest.param(c, id=f"{g}-{c.__name__}") for g, cs in CASES.items() for c in cs])
def test_every_variant_matches_onnxruntime(case):
    model, feeds, options = case(np.random.default_rng(0))
    check_op(model, feeds, **options)
