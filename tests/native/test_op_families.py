"""Op families that encoder/decoder exports need beyond the core kernels: the whole Reduce family, ScatterND, Mish,
Mod, Clip forms, and Pow of integer bases. Every variant of every kernel against onnxruntime, as data: each case
builds a model and its feeds (the same cases run on WebAssembly in tests/wasm/test_wasm_op_families.py)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import check_op, f32, i64, make_model, node

F = np.float32
REDUCE_FLOAT = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL1",
                "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"]
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
    (ReduceSumSquare then squares it, ReduceL1 takes abs, as onnxruntime); a 1-sized reduced axis; ReduceLogSumExp
    of elements whose exp overflows float32."""
    x = f32(rng, 1, 5, 3)
    nodes = [node("ReduceSumSquare", ["x"], ["all"], keepdims=0), node("ReduceL1", ["x"], ["noop"],
                                                                      noop_with_empty_axes=1),
             node("ReduceMax", ["x"], ["noop_max"], noop_with_empty_axes=1),
             node("ReduceProd", ["x", "a0"], ["one"], keepdims=0), node("Mul", ["x", "big"], ["xb"]),
             node("ReduceLogSumExp", ["xb", "a1"], ["lse"])]
    outputs = {"all": F, "noop": F, "noop_max": F, "one": F, "lse": F}
    inits = {"a0": i64(0), "a1": i64(1), "big": np.array(300.0, F)}
    return (make_model(nodes, {"x": x}, outputs, inits, opset=18), {"x": x},
            dict(all_variants=False))


def mish_and_mod(rng):
    """Mish on floats far into both tails; Mod with fmod=1 on float32 (sign of the dividend; infinite divisors too)
    and int64, with fmod=0 on int64 and int32 (sign of the divisor), broadcasting a row of divisors, some negative."""
    x = np.concatenate([f32(rng, 45, scale=4.0), np.array([-60.0, -20.0, 0.0, 20.0, 60.0], F)]).reshape(5, 10)
    a, b = f32(rng, 3, 7, scale=10.0), (np.abs(f32(rng, 7)) + 0.5).astype(F) * np.array([1, -1] * 3 + [1], F)
    b[0], b[1] = np.inf, -np.inf  # a finite x fmod inf is x
    n = rng.integers(-50, 50, (3, 7)).astype(np.int64)
    d = np.array([3, -3, 7, -7, 1, 5, -2], np.int64)
    feeds = {"x": x, "a": a, "b": b, "n": n, "d": d, "n32": n.astype(np.int32), "d32": d.astype(np.int32)}
    nodes = [node("Mish", ["x"], ["mish"], ), node("Mod", ["a", "b"], ["fmod"], fmod=1),
             node("Mod", ["n", "d"], ["imod"]), node("Mod", ["n", "d"], ["ifmod"], fmod=1),
             node("Mod", ["n32", "d32"], ["imod32"])]
    outputs = {"mish": F, "fmod": F, "imod": np.int64, "ifmod": np.int64, "imod32": np.int32}
    return make_model(nodes, feeds, outputs, opset=18), feeds, dict(all_variants=False)


def clip_forms(rng):
    """Clip with both bounds, with only a max (empty min), with neither, on int64 and int32 tensors, and NaN
    passing through."""
    x = np.concatenate([f32(rng, 20, scale=2.0), np.array([np.nan, np.inf, -np.inf], F)])
    n = rng.integers(-20, 20, (23,)).astype(np.int64)
    feeds = {"x": x, "n": n, "n32": n.astype(np.int32)}
    nodes = [node("Clip", ["x", "lo", "hi"], ["both"]), node("Clip", ["x", "", "hi"], ["max_only"]),
             node("Clip", ["x"], ["neither"]), node("Clip", ["n", "ilo", "ihi"], ["ints"]),
             node("Clip", ["n32", "", "ihi32"], ["ints32"])]
    inits = {"lo": np.array(-0.5, F), "hi": np.array(1.25, F), "ilo": np.array(-3, np.int64),
             "ihi": np.array(7, np.int64), "ihi32": np.array(4, np.int32)}
    outputs = {"both": F, "max_only": F, "neither": F, "ints": np.int64, "ints32": np.int32}
    return make_model(nodes, feeds, outputs, inits, opset=13), feeds, dict(all_variants=False)


def clip_attributes(rng):
    """Clip-6, whose bounds are attributes (opset 10)."""
    x = f32(rng, 4, 9, scale=2.0)
    nodes = [node("Clip", ["x"], ["y"], min=-0.75, max=0.5), node("Clip", ["x"], ["z"], max=0.25)]
    return (make_model(nodes, {"x": x}, {"y": F, "z": F}, opset=10), {"x": x}, dict(all_variants=False))


def pow_int_base(rng):
    """Pow of int64 and int32 bases: with int exponents (negative ones truncate to 0 unless the base is +-1) and with
    float exponents, integral and not (onnxruntime computes in double and truncates toward zero)."""
    base = np.array([[-3, -2, -1, 4, 1, 2, 3, 5, 7]], np.int64).repeat(3, 0)
    e_int = np.array([[0], [3], [-1]], np.int64)
    e_flt = np.array([[2.0], [0.5], [1.5]], F)  # fractional powers of negative bases are undefined: bases >= 0 there
    feeds = {"base": base, "e_int": e_int, "e_flt": e_flt, "base32": base.astype(np.int32) + 3}
    nodes = [node("Pow", ["base", "e_int"], ["ii"]), node("Abs", ["base"], ["pos"]), node("Pow", ["pos", "e_flt"], ["if_"]),
             node("Pow", ["base32", "e_flt"], ["if32"]), node("Pow", ["base32", "two"], ["sq32"])]
    outputs = {"ii": np.int64, "if_": np.int64, "if32": np.int32, "sq32": np.int32}
    return (make_model(nodes, feeds, outputs, {"two": np.array(2, np.int32)}, opset=15), feeds,
            dict(all_variants=False))


def scatter_nd_causal_mask(rng):
    """ScatterND as T5/BART decoders build their mask: full-depth indices (one element per row) made at compile time,
    updates computed at run time from the attention mask, into an expanded causal mask (float32); and a bool
    variant with negative indices."""
    mask = (rng.random((2, 1, 5, 9)) < 0.7).astype(F)
    q, kv = np.meshgrid(np.arange(5), np.arange(6), indexing="ij")
    idx = np.stack([np.zeros_like(q), np.zeros_like(q), q, kv], -1).astype(np.int64)[None].repeat(2, 0)
    idx[1, ..., 0] = -1  # batch 1 addressed from the end
    upd = f32(rng, 2, 5, 6)
    b = rng.random((3, 4)) < 0.5
    feeds = {"mask": mask, "upd": upd, "b": b, "bu": rng.random((2, 4)) < 0.5}
    nodes = [node("Mul", ["upd", "scale"], ["u2"]), node("ScatterND", ["mask", "idx", "u2"], ["y"]),
             node("ScatterND", ["b", "bidx", "bu"], ["z"])]
    inits = {"idx": idx, "scale": np.array(-3.0, F), "bidx": i64(-1, 0).reshape(2, 1)}
    return (make_model(nodes, feeds, {"y": F, "z": np.bool_}, inits, opset=16), feeds,
            dict(expect_kinds=["elementwise", "elementwise", "scatter_nd", "elementwise", "scatter_nd"]))


def scatter_nd_reductions(rng):
    """ScatterND of rows (depth 1 and 2 into rank 3, odd row lengths) with reduction add and mul on float32 and max,
    min on int64, duplicate indices applied in order; data read through a transposed view."""
    x = f32(rng, 3, 5, 7)
    n = rng.integers(-50, 50, (4, 2, 5)).astype(np.int64)
    upd_rows = f32(rng, 4, 3, 7)
    upd_elem = rng.integers(-50, 50, (6, 5)).astype(np.int64)
    feeds = {"x": x, "n": n, "ur": upd_rows, "ue": upd_elem}
    nodes = [node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             node("ScatterND", ["xt", "i1", "ur"], ["add"], reduction="add"),
             node("ScatterND", ["xt", "i1", "ur"], ["mul"], reduction="mul"),
             node("ScatterND", ["n", "i2", "ue"], ["max"], reduction="max"),
             node("ScatterND", ["n", "i2", "ue"], ["min"], reduction="min")]
    inits = {"i1": i64(4, 0, 4, -1).reshape(4, 1), "i2": i64(0, 1, 3, 0, 0, 1, -1, -1, 2, 1, 0, 1).reshape(6, 2)}
    outputs = {"add": F, "mul": F, "max": np.int64, "min": np.int64}
    return make_model(nodes, feeds, outputs, inits, opset=18), feeds, dict(all_variants={"scatter_nd"})


def tile_forms(rng):
    """Tile at run time: of a float32 tensor along every dim (1-sized dims too), of an int64 tensor read through a
    transposed view, and of bool; each one elementwise copy."""
    x, n, b = f32(rng, 2, 1, 5), rng.integers(-9, 9, (3, 4)).astype(np.int64), rng.random((1, 3)) < 0.5
    feeds = {"x": x, "n": n, "b": b}
    nodes = [node("Tile", ["x", "r3"], ["y"]), node("Transpose", ["n"], ["nt"], perm=[1, 0]),
             node("Tile", ["nt", "r2"], ["z"]), node("Tile", ["b", "r2"], ["w"])]
    inits = {"r3": i64(3, 4, 2), "r2": i64(2, 3)}
    return (make_model(nodes, feeds, {"y": F, "z": np.int64, "w": np.bool_}, inits, opset=13), feeds,
            dict(expect_kinds=["elementwise"] * 3))


def kernels_on_constants(rng):
    """A 3-D MatMul and a LayerNormalization of constants (as DeBERTa projects its relative position embeddings)
    run as kernels instead of being evaluated at compile time, and what reads them runs too."""
    x = f32(rng, 2, 16)
    nodes = [node("LayerNormalization", ["emb", "g", "bias"], ["ln"], axis=-1),
             node("MatMul", ["ln", "w"], ["p"]), node("MatMul", ["x", "p2"], ["y"]),
             node("Reshape", ["p", "shape"], ["p2"])]
    inits = {"emb": f32(rng, 1, 24, 16), "g": f32(rng, 16), "bias": f32(rng, 16), "w": f32(rng, 16, 24),
             "shape": i64(24, 24)}
    nodes = [nodes[0], nodes[1], nodes[3], node("MatMul", ["x", "w"], ["xw"]), node("MatMul", ["xw", "p2"], ["y"])]
    return (make_model(nodes, {"x": x}, {"y": F}, inits, opset=17), {"x": x},
            dict(expect_kinds=["norm", "matmul", "matmul", "matmul"], all_variants=False))


SCATTER = [scatter_nd_causal_mask, scatter_nd_reductions]
ELEMENTWISE = [mish_and_mod, clip_forms, clip_attributes, pow_int_base]
REDUCE = [reduce_family_float, reduce_family_int, reduce_l2_normalise, reduce_empty_axes]
def if_on_a_shape(rng):
    """If whose condition folds (Shape(x)[1] > 4), each branch reading values of the graph around it and holding an
    initializer named as one of the main graph (which it hides): the branch taken runs, the other is dropped."""
    from onnx import helper as oh, numpy_helper as nh
    x = f32(rng, 3, 7)

    def branch(op, name):
        g = oh.make_graph([node(op, ["x", "k"], ["t"]), node("Relu", ["t"], ["r"])], name, [],
                          [oh.make_tensor_value_info("r", 1, None)], [nh.from_array(np.array(2.5, F), "k")])
        return g
    nodes = [node("Shape", ["x"], ["s"]), node("Gather", ["s", "one"], ["d"]), node("Greater", ["d", "four"], ["c"]),
             node("If", ["c"], ["y"], then_branch=branch("Mul", "then"), else_branch=branch("Sub", "else")),
             node("Sub", ["x", "k"], ["t2"]), node("Add", ["y", "t2"], ["z"])]
    inits = {"one": np.array(1, np.int64), "four": np.array(4, np.int64), "k": np.array(-1.0, F)}
    return make_model(nodes, {"x": x}, {"z": F}, inits, opset=17), {"x": x}, dict(all_variants=False)


def if_on_an_input(rng):
    """If on a bool graph input, as merged decoders branch on use_cache_branch: the value given at compile time picks
    the branch compiled (here the else branch)."""
    from onnx import helper as oh
    x = f32(rng, 3, 7)
    then = oh.make_graph([node("ReduceMax", ["x", "ax"], ["r"], keepdims=0)], "then", [],
                         [oh.make_tensor_value_info("r", 1, [7])])
    other = oh.make_graph([node("ReduceSum", ["x", "ax"], ["r"], keepdims=0)], "else", [],
                          [oh.make_tensor_value_info("r", 1, [7])])
    feeds = {"x": x, "use_cache": np.array([False])}
    nodes = [node("If", ["use_cache"], ["y"], then_branch=then, else_branch=other)]
    return make_model(nodes, feeds, {"y": F}, {"ax": i64(0)}, opset=18), feeds, dict(expect_kinds=["reduce"])


MOVES = [if_on_a_shape, if_on_an_input, tile_forms, kernels_on_constants]
CASES = {"reduce": REDUCE, "elementwise": ELEMENTWISE, "scatter": SCATTER, "moves": MOVES}


@pytest.mark.parametrize("case", [pytest.param(c, id=f"{g}-{c.__name__}") for g, cs in CASES.items() for c in cs])
def test_every_variant_matches_onnxruntime(case):
    model, feeds, options = case(np.random.default_rng(0))
    check_op(model, feeds, **options)
