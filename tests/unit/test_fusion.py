"""What the fusion passes make of small graphs, read off the plan's kernel kinds and counts (no GPU needed).

Values are checked against onnxruntime in tests/native/test_kernels.py; here only the shape of the plan matters:
a fusion that stops happening shows up as extra kernels.
"""
from __future__ import annotations

import numpy as np
import pytest

from helpers import compile_model, f32, i64, make_model, node

F = np.float32


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def kinds(model, feeds) -> list[str]:
    return [k.kind for k in compile_model(model, feeds).kernels]


def _split_heads(x, name):
    return [node("Reshape", [x, "heads"], [f"{name}_r"]), node("Transpose", [f"{name}_r"], [name], perm=[0, 2, 1, 3])]


def _attention(q, k, v, out, extra=()):
    """softmax(Q Kᵀ * scale + extra score nodes) V; extra nodes read "s1" and write "s2"."""
    nodes = [node("Transpose", [k], ["kt"], perm=[0, 1, 3, 2]), node("MatMul", [q, "kt"], ["s0"]),
             node("Mul", ["s0", "scale"], ["s1"] if extra else ["s2"]), *extra,
             node("Softmax", ["s2"], ["p"], axis=-1), node("MatMul", ["p", v], [out])]
    return nodes


def test_head_split_views_make_no_copies(rng):
    """Reshape [1, 33, 768] -> [1, 33, 12, 64] and Transpose(0, 2, 1, 3) of Q, K, V are views: one kernel."""
    feeds = {n: f32(rng, 1, 33, 768) for n in ("xq", "xk", "xv")}
    nodes = _split_heads("xq", "q") + _split_heads("xk", "k") + _split_heads("xv", "v") + _attention("q", "k", "v", "o")
    inits = {"heads": i64(1, 33, 12, 64), "scale": np.array(0.125, F)}
    assert kinds(make_model(nodes, feeds, {"o": F}, inits), feeds) == ["attention"]


def test_fused_qkv_split_makes_no_copies(rng):
    """Split of one [1, 33, 2304] projection into Q, K, V (offset views), then the head split: one kernel."""
    feeds = {"qkv": f32(rng, 1, 33, 2304)}
    nodes = ([node("Split", ["qkv", "sizes"], ["xq", "xk", "xv"], axis=2)]
             + _split_heads("xq", "q") + _split_heads("xk", "k") + _split_heads("xv", "v")
             + _attention("q", "k", "v", "o"))
    inits = {"sizes": i64(768, 768, 768), "heads": i64(1, 33, 12, 64), "scale": np.array(0.125, F)}
    assert kinds(make_model(nodes, feeds, {"o": F}, inits), feeds) == ["attention"]


def test_merge_heads_folds_into_attention_and_projection(rng):
    """Transpose + Reshape back to [1, 33, 768] after attention, then a projection: no copy in between."""
    feeds = {n: f32(rng, 1, 33, 768) for n in ("xq", "xk", "xv")}
    nodes = (_split_heads("xq", "q") + _split_heads("xk", "k") + _split_heads("xv", "v")
             + _attention("q", "k", "v", "o")
             + [node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]), node("Reshape", ["ot", "merged"], ["om"]),
                node("MatMul", ["om", "wo"], ["y"])])
    inits = {"heads": i64(1, 33, 12, 64), "merged": i64(1, 33, 768), "scale": np.array(0.125, F),
             "wo": f32(rng, 768, 40)}
    assert kinds(make_model(nodes, feeds, {"y": F}, inits), feeds) == ["attention", "matmul"]


@pytest.mark.parametrize("score", ["mask", "causal", "nan_guard"])
def test_attention_score_variants_fuse(rng, score):
    """An additive mask, a Where(causal, s, -inf) mask, and sdpa's Where(IsNaN(p), 0, p) guard all stay inside
    the one attention kernel."""
    shape = (2, 4, 33, 40)
    feeds = {n: f32(rng, *shape) for n in "qkv"}
    inits = {"scale": np.array(40 ** -0.5, F)}
    if score == "mask":
        feeds["mask"] = np.zeros((2, 1, 1, 33), F)
        extra = [node("Add", ["s1", "mask"], ["s2"])]
    else:
        inits.update(causal=np.tril(np.ones((33, 33), np.bool_)), neg_inf=np.array(-np.inf, F))
        extra = [node("Where", ["causal", "s1", "neg_inf"], ["s2"])]
    nodes = _attention("q", "k", "v", "o", extra)
    if score == "nan_guard":
        inits["zero"] = np.array(0.0, F)
        nodes[-1:] = [node("IsNaN", ["p"], ["nan"]), node("Where", ["nan", "zero", "p"], ["pg"]),
                      node("MatMul", ["pg", "v"], ["o"])]
    assert kinds(make_model(nodes, feeds, {"o": F}, inits), feeds) == ["attention"]


def test_bias_gelu_is_one_matmul(rng):
    """MatMul + Add(bias) + x * 0.5 * (1 + erf(x / sqrt 2)): the chain reads x twice and still fuses."""
    feeds = {"x": f32(rng, 2, 19, 96)}
    nodes = [node("MatMul", ["x", "w"], ["mm"]), node("Add", ["mm", "b"], ["h"]), node("Div", ["h", "sqrt2"], ["hs"]),
             node("Erf", ["hs"], ["e"]), node("Add", ["e", "one"], ["e1"]), node("Mul", ["h", "e1"], ["he"]),
             node("Mul", ["he", "half"], ["y"])]
    inits = {"w": f32(rng, 96, 37), "b": f32(rng, 37), "sqrt2": np.array(np.sqrt(2), F), "one": np.array(1, F),
             "half": np.array(0.5, F)}
    assert kinds(make_model(nodes, feeds, {"y": F}, inits), feeds) == ["matmul"]


def test_bias_residual_is_one_matmul(rng):
    feeds = {"x": f32(rng, 3, 33, 40), "r": f32(rng, 3, 33, 24)}
    nodes = [node("MatMul", ["x", "w"], ["mm"]), node("Add", ["mm", "b"], ["h"]), node("Add", ["h", "r"], ["y"])]
    model = make_model(nodes, feeds, {"y": F}, {"w": f32(rng, 40, 24), "b": f32(rng, 24)})
    assert kinds(model, feeds) == ["matmul"]


def test_matmul_output_read_twice_keeps_its_own_kernel(rng):
    """A MatMul whose output is also a graph output cannot hide it in an epilogue: matmul, then elementwise."""
    feeds = {"x": f32(rng, 5, 40)}
    nodes = [node("MatMul", ["x", "w"], ["mm"]), node("Relu", ["mm"], ["y"])]
    model = make_model(nodes, feeds, {"mm": F, "y": F}, {"w": f32(rng, 40, 24)})
    assert kinds(model, feeds) == ["matmul", "elementwise"]


def test_gemm_runtime_operands_is_one_matmul(rng):
    """Gemm(transA, transB, alpha, beta, C) on runtime inputs: transposes are views, alpha/beta/C an epilogue."""
    feeds = {"a": f32(rng, 40, 33), "b": f32(rng, 21, 40), "c": f32(rng, 33, 1)}
    n = node("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1, alpha=-0.5, beta=2.0)
    assert kinds(make_model([n], feeds, {"y": F}), feeds) == ["matmul"]


def test_gemm_transb_weight_is_one_matmul(rng):
    """Gemm(x, W, b) with transB=1 and W an initializer, as nn.Linear exports: one matmul kernel."""
    feeds = {"a": f32(rng, 45, 96)}
    n = node("Gemm", ["a", "w", "c"], ["y"], transB=1)
    assert kinds(make_model([n], feeds, {"y": F}, {"w": f32(rng, 37, 96), "c": f32(rng, 37)}), feeds) == ["matmul"]


@pytest.mark.parametrize("opset", [17, 18])
def test_decomposed_layernorm_is_one_norm(rng, opset):
    """ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div and the Mul(gamma)/Add(beta) tail: one norm kernel (axes as an
    attribute in opset 17, as an input in opset 18)."""
    feeds = {"x": f32(rng, 2, 17, 96)}
    axes, ax_in = ({"axes": [-1]}, []) if opset < 18 else ({}, ["axes"])
    nodes = [node("ReduceMean", ["x", *ax_in], ["mu"], **axes), node("Sub", ["x", "mu"], ["d"]),
             node("Pow", ["d", "two"], ["d2"]), node("ReduceMean", ["d2", *ax_in], ["var"], **axes),
             node("Add", ["var", "eps"], ["ve"]), node("Sqrt", ["ve"], ["sd"]), node("Div", ["d", "sd"], ["n"]),
             node("Mul", ["n", "gamma"], ["ng"]), node("Add", ["ng", "beta"], ["y"])]
    inits = {"two": np.array(2, F), "eps": np.array(1e-5, F), "gamma": f32(rng, 96), "beta": f32(rng, 96)}
    if ax_in:
        inits["axes"] = i64(-1)
    assert kinds(make_model(nodes, feeds, {"y": F}, inits, opset=opset), feeds) == ["norm"]


def test_rmsnorm_pattern_is_one_norm(rng):
    feeds = {"x": f32(rng, 3, 33, 80)}
    nodes = [node("Pow", ["x", "two"], ["x2"]), node("ReduceMean", ["x2"], ["ms"], axes=[-1]),
             node("Add", ["ms", "eps"], ["mse"]), node("Sqrt", ["mse"], ["rms"]), node("Reciprocal", ["rms"], ["inv"]),
             node("Mul", ["x", "inv"], ["xn"]), node("Mul", ["xn", "weight"], ["y"])]
    inits = {"two": np.array(2, F), "eps": np.array(1e-6, F), "weight": f32(rng, 80)}
    assert kinds(make_model(nodes, feeds, {"y": F}, inits), feeds) == ["norm"]


def test_elementwise_chain_with_broadcasting_is_one_kernel(rng):
    feeds = {"a": f32(rng, 2, 33, 77), "b": f32(rng, 77), "c": f32(rng, 2, 1, 77)}
    nodes = [node("Greater", ["a", "b"], ["g"]), node("Tanh", ["a"], ["ta"]), node("Mul", ["ta", "c"], ["tc"]),
             node("Sigmoid", ["b"], ["sb"]), node("Where", ["g", "tc", "sb"], ["y"])]
    assert kinds(make_model(nodes, feeds, {"y": F}), feeds) == ["elementwise"]


def test_views_feed_elementwise_in_place(rng):
    """Transpose, Slice with steps, Expand, Unsqueeze and Gather with a scalar index feed one elementwise kernel;
    a graph output that is a view gets one copy."""
    feeds = {"x": f32(rng, 8, 33, 5), "y": f32(rng, 5, 33, 15), "z": f32(rng, 1, 1, 1), "w": f32(rng, 4, 8)}
    nodes = [node("Transpose", ["x"], ["xt"], perm=[2, 1, 0]), node("Slice", ["y", "st", "en", "ax", "sp"], ["ys"]),
             node("Expand", ["z", "shape"], ["ze"]), node("Gather", ["w", "zero"], ["w0"], axis=0),
             node("Unsqueeze", ["w0", "ax0"], ["w0u"]), node("Add", ["xt", "ys"], ["s"]),
             node("Mul", ["s", "ze"], ["m"]), node("Sub", ["m", "w0u"], ["out"]),
             node("Transpose", ["y"], ["yt"], perm=[1, 0, 2])]
    inits = {"st": i64(-1), "en": i64(-100), "ax": i64(2), "sp": i64(-2), "shape": i64(5, 33, 8),
             "zero": np.array(0, np.int64), "ax0": i64(0)}
    assert kinds(make_model(nodes, feeds, {"out": F, "yt": F}, inits), feeds) == ["elementwise", "elementwise"]


def test_row_kernels_get_dense_copies_of_views(rng):
    """Softmax of a transposed view and LayerNormalization of a sliced view: a copy before each."""
    feeds = {"x": f32(rng, 5, 33, 6), "h": f32(rng, 3, 9, 70)}
    nodes = [node("Transpose", ["x"], ["xt"], perm=[2, 0, 1]), node("Softmax", ["xt"], ["y"], axis=-1),
             node("Slice", ["h", "st", "en", "ax"], ["hs"]),
             node("LayerNormalization", ["hs", "gamma", "beta"], ["z"], axis=-1)]
    inits = {"st": i64(1, 3), "en": i64(8, 67), "ax": i64(1, 2), "gamma": f32(rng, 64), "beta": f32(rng, 64)}
    model = make_model(nodes, feeds, {"y": F, "z": F}, inits)
    assert kinds(model, feeds) == ["elementwise", "softmax", "elementwise", "norm"]


def test_large_weights_are_split(rng, monkeypatch):
    """Over the binding limit (lowered to 16 KiB here), an embedding splits by rows into one gather kernel and a
    MatMul weight by columns into partial matmuls and a concat."""
    from webjit.space import DEFAULT_LIMITS
    monkeypatch.setitem(DEFAULT_LIMITS, "maxStorageBufferBindingSize", 16384)
    feeds = {"ids": rng.integers(0, 300, (2, 9)).astype(np.int64)}
    nodes = [node("Gather", ["table", "ids"], ["e"], axis=0), node("MatMul", ["e", "w"], ["y"])]
    plan = compile_model(make_model(nodes, feeds, {"y": F}, {"table": f32(rng, 300, 40), "w": f32(rng, 40, 200)}),
                         feeds)
    assert [k.kind for k in plan.kernels] == ["gather", "matmul", "matmul", "concat"]
    assert len(plan.kernels[0].inputs) == 4  # three table chunks and the ids
    assert all(a.nbytes <= 16384 for a in plan.weights.values())
