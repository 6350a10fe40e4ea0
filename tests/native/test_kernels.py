"""Every variant of every kernel kind against onnxruntime, on awkward shapes.

Each case is data: a function of a seeded generator that returns (model, feeds, check_op options). One helper,
`helpers.check_op`, compiles the model, checks the plan's kernel kinds (so a test fails when a fusion stops
happening), and compares all outputs with onnxruntime's CPU execution provider for the default variants and then
for every variant of every kernel that fits this device. Each kind has cases that sweep all its variants; cases
whose point is a fusion or a layout run only the default variants where a sweep would repeat another case's
(variants cost a shader compile each, which is slow on lavapipe; the module runs in about 70 s cold, 45 s with
Mesa's shader cache warm, on 2 cores).
"""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto

from helpers import check_op, f32, i64, make_model, node

pytestmark = pytest.mark.native

F = np.float32
Case = tuple  # (model, feeds, options for check_op)


# -- matmul --------------------------------------------------------------------------------------------------------
def mm_weight_k1280(rng) -> Case:
    """The shape of a big projection: M=77 rows, K=1280, N=320, B a weight (default variant: the sweep is below,
    on a K that is a multiple of no K tile)."""
    x, w = f32(rng, 77, 1280), f32(rng, 1280, 320, scale=1280 ** -0.5)
    return (make_model([node("MatMul", ["x", "w"], ["y"])], {"x": x}, {"y": F}, {"w": w}), {"x": x},
            dict(expect_kinds=["matmul"], atol=2e-4, all_variants=False))


def mm_weight_all_tiles(rng) -> Case:
    """M=77, K=204, N=320: every tile of the space is kept (vec4 ones too: K and N are multiples of 4), and M, N
    and K all end in a partial tile."""
    x, w = f32(rng, 77, 204), f32(rng, 204, 320, scale=204 ** -0.5)
    return (make_model([node("MatMul", ["x", "w"], ["y"])], {"x": x}, {"y": F}, {"w": w}), {"x": x},
            dict(expect_kinds=["matmul"]))


def mm_batched_runtime(rng) -> Case:
    """Two runtime operands with the same batch dims, no dim a multiple of a tile."""
    a, b = f32(rng, 2, 3, 33, 80), f32(rng, 2, 3, 80, 33)
    return (make_model([node("MatMul", ["a", "b"], ["y"])], {"a": a, "b": b}, {"y": F}), {"a": a, "b": b},
            dict(expect_kinds=["matmul"], all_variants=False))


def mm_batch_broadcast(rng) -> Case:
    """[2, 1, 33, 40] x [3, 40, 21] -> [2, 3, 33, 21]: broadcasting in both operands' batch dims."""
    a, b = f32(rng, 2, 1, 33, 40), f32(rng, 3, 40, 21)
    return (make_model([node("MatMul", ["a", "b"], ["y"])], {"a": a, "b": b}, {"y": F}), {"a": a, "b": b},
            dict(expect_kinds=["matmul"], all_variants=False))


def mm_bias_gelu_epilogue(rng) -> Case:
    """MatMul + Add(bias) + erf-GELU x*0.5*(1+erf(x/sqrt2)): one matmul kernel with the chain as epilogue."""
    x, w, b = f32(rng, 2, 19, 96), f32(rng, 96, 36, scale=0.1), f32(rng, 36)
    nodes = [node("MatMul", ["x", "w"], ["mm"]), node("Add", ["mm", "b"], ["h"]),
             node("Div", ["h", "sqrt2"], ["hs"]), node("Erf", ["hs"], ["e"]), node("Add", ["e", "one"], ["e1"]),
             node("Mul", ["h", "e1"], ["he"]), node("Mul", ["he", "half"], ["y"])]
    inits = {"w": w, "b": b, "sqrt2": np.array(np.sqrt(2.0), F), "one": np.array(1.0, F),
             "half": np.array(0.5, F)}
    return make_model(nodes, {"x": x}, {"y": F}, inits), {"x": x}, dict(expect_kinds=["matmul"])


def mm_residual_epilogue(rng) -> Case:
    """MatMul + bias + a runtime residual broadcast over the batch: [3, 5, 33, 24] + [5, 33, 24]."""
    x, w, b, r = f32(rng, 3, 5, 33, 40), f32(rng, 40, 24, scale=0.2), f32(rng, 24), f32(rng, 5, 33, 24)
    nodes = [node("MatMul", ["x", "w"], ["mm"]), node("Add", ["mm", "b"], ["h"]), node("Add", ["h", "r"], ["y"])]
    return (make_model(nodes, {"x": x, "r": r}, {"y": F}, {"w": w, "b": b}), {"x": x, "r": r},
            dict(expect_kinds=["matmul"], all_variants=False))


def gemm_transb_alpha_beta(rng) -> Case:
    """Gemm(A, B, C) with transB=1, alpha, beta and a bias C broadcast over rows; B a weight (nn.Linear)."""
    a, b, c = f32(rng, 45, 96), f32(rng, 37, 96, scale=0.1), f32(rng, 37)
    n = node("Gemm", ["a", "b", "c"], ["y"], transB=1, alpha=0.7, beta=1.3)
    return (make_model([n], {"a": a}, {"y": F}, {"b": b, "c": c}), {"a": a},
            dict(expect_kinds=["matmul"], all_variants=False))


def gemm_runtime_transa_transb(rng) -> Case:
    """Gemm with transA=1 and transB=1 on runtime inputs and a [33, 1] C: both operands are strided views."""
    a, b, c = f32(rng, 40, 33), f32(rng, 21, 40), f32(rng, 33, 1)
    n = node("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1, alpha=-0.5, beta=2.0)
    return (make_model([n], {"a": a, "b": b, "c": c}, {"y": F}), {"a": a, "b": b, "c": c},
            dict(expect_kinds=["matmul"]))


def mm_transposed_b(rng) -> Case:
    """MatMul(x, Transpose(y)) with y a runtime input: B is read through a strided view, no copy."""
    x, y = f32(rng, 3, 33, 80), f32(rng, 3, 45, 80)
    nodes = [node("Transpose", ["y"], ["yt"], perm=[0, 2, 1]), node("MatMul", ["x", "yt"], ["z"])]
    return (make_model(nodes, {"x": x, "y": y}, {"z": F}), {"x": x, "y": y},
            dict(expect_kinds=["matmul"], all_variants=False))


def mm_vector_matrix(rng) -> Case:
    """1-D operands: [80] x [80, 33] -> [33] and [33, 80] x [80] -> [33]."""
    v, m = f32(rng, 80), f32(rng, 33, 80)
    w = f32(rng, 80, 33)
    nodes = [node("MatMul", ["v", "w"], ["vm"]), node("MatMul", ["m", "v"], ["mv"])]
    return (make_model(nodes, {"v": v, "m": m}, {"vm": F, "mv": F}, {"w": w}), {"v": v, "m": m},
            dict(expect_kinds=["matmul", "matmul"]))


def mm_vector_batched_epilogue(rng) -> Case:
    """[80] x [3, 80, 33] + bias [33] -> [3, 33]: a 1-D A against a batched B, then a bias. Whether the bias
    becomes an epilogue is left open: the output is [3, 33] while the kernel works in [3, 1, 33] coordinates."""
    v, w, b = f32(rng, 80), f32(rng, 3, 80, 33), f32(rng, 33)
    nodes = [node("MatMul", ["v", "w"], ["mm"]), node("Add", ["mm", "b"], ["y"])]
    return make_model(nodes, {"v": v}, {"y": F}, {"w": w, "b": b}), {"v": v}, dict(all_variants=False)


def mm_reshape_epilogue(rng) -> Case:
    """3-D linear layers as exporters write them: Reshape [2, 33, 40] -> [66, 40], MatMul, Reshape back to
    [2, 33, 24], then Adds: a bias and a residual [2, 33, 24] in one layer, a [33, 24] table broadcast over the
    batch only in the other. Which Adds become epilogues is left open; the values must match."""
    x, r, pos = f32(rng, 2, 33, 40), f32(rng, 2, 33, 24), f32(rng, 33, 24)
    nodes = [node("Reshape", ["x", "flat"], ["x2"]),
             node("MatMul", ["x2", "w"], ["mm"]), node("Reshape", ["mm", "shape3"], ["mm3"]),
             node("Add", ["mm3", "b"], ["h"]), node("Add", ["h", "r"], ["y"]),
             node("MatMul", ["x2", "w2"], ["mz"]), node("Reshape", ["mz", "shape3"], ["mz3"]),
             node("Add", ["mz3", "pos"], ["z"])]
    inits = {"w": f32(rng, 40, 24, scale=0.2), "b": f32(rng, 24), "w2": f32(rng, 40, 24, scale=0.2), "pos": pos,
             "flat": i64(66, 40), "shape3": i64(2, 33, 24)}
    return make_model(nodes, {"x": x, "r": r}, {"y": F, "z": F}, inits), {"x": x, "r": r}, dict(all_variants=False)


def mm_mlp_block(rng) -> Case:
    """A GPT-2 MLP: MatMul + bias + tanh-GELU (Pow 3) + MatMul + residual: two matmuls with epilogues."""
    x = f32(rng, 2, 17, 48)
    nodes = [node("MatMul", ["x", "w1"], ["h"]), node("Add", ["h", "b1"], ["hb"]), node("Pow", ["hb", "three"], ["h3"]),
             node("Mul", ["h3", "c1"], ["t1"]), node("Add", ["hb", "t1"], ["t2"]), node("Mul", ["t2", "c2"], ["t3"]),
             node("Tanh", ["t3"], ["t4"]), node("Add", ["t4", "one"], ["t5"]), node("Mul", ["hb", "t5"], ["t6"]),
             node("Mul", ["t6", "half"], ["g"]), node("MatMul", ["g", "w2"], ["y"]), node("Add", ["y", "x"], ["z"])]
    inits = {"w1": f32(rng, 48, 64, scale=0.2), "b1": f32(rng, 64), "three": np.array(3, F),
             "c1": np.array(0.044715, F), "c2": np.array(np.sqrt(2 / np.pi), F), "one": np.array(1, F),
             "half": np.array(0.5, F), "w2": f32(rng, 64, 48, scale=0.2)}
    return (make_model(nodes, {"x": x}, {"z": F}, inits), {"x": x},
            dict(expect_kinds=["matmul", "matmul"], all_variants=False))


def mm_k1_and_dot(rng) -> Case:
    """K = 1 (an outer product [33, 1] x [1, 21]) and a dot product of two vectors (a scalar output)."""
    feeds = {"a": f32(rng, 33, 1), "b": f32(rng, 1, 21), "u": f32(rng, 50), "v": f32(rng, 50)}
    nodes = [node("MatMul", ["a", "b"], ["outer"]), node("MatMul", ["u", "v"], ["dot"])]
    return (make_model(nodes, feeds, {"outer": F, "dot": F}), feeds,
            dict(expect_kinds=["matmul", "matmul"], all_variants=False))


def mm_strided_slices(rng) -> Case:
    """A = every other row of x, reversed along K (Slice step 2 and step -1): negative strides and an offset."""
    x, w = f32(rng, 67, 90), f32(rng, 90, 29, scale=0.1)
    nodes = [node("Slice", ["x", "st", "en", "ax", "sp"], ["xs"]), node("MatMul", ["xs", "w"], ["y"])]
    inits = {"w": w, "st": i64(1, -1), "en": i64(67, -1000), "ax": i64(0, 1), "sp": i64(2, -1)}
    return make_model(nodes, {"x": x}, {"y": F}, inits), {"x": x}, dict(expect_kinds=["matmul"])


# Every matmul variant is swept in mm_weight_all_tiles (all tiles, vec4, ragged M/N/K), mm_bias_gelu_epilogue,
# gemm_runtime_transa_transb (both operands strided), mm_vector_matrix (M = 1 and N = 1) and mm_strided_slices
# (negative strides, an offset); the others run the default variant (each variant is a shader compile).
MATMUL = [mm_weight_k1280, mm_weight_all_tiles, mm_batched_runtime, mm_batch_broadcast, mm_bias_gelu_epilogue,
          mm_residual_epilogue, gemm_transb_alpha_beta, gemm_runtime_transa_transb, mm_transposed_b,
          mm_vector_matrix, mm_vector_batched_epilogue, mm_reshape_epilogue, mm_mlp_block, mm_k1_and_dot,
          mm_strided_slices]


# -- attention -----------------------------------------------------------------------------------------------------
def _attention_nodes(q, k, v, out, scale, mask=None, causal=None):
    """softmax(Q Kᵀ * scale [+ mask | Where(causal, ., -inf)]) V, as exporters write it."""
    nodes = [node("Transpose", [k], [f"{k}_t"], perm=[0, 1, 3, 2]), node("MatMul", [q, f"{k}_t"], ["s0"]),
             node("Mul", ["s0", scale], ["s1"])]
    s = "s1"
    if mask:
        nodes.append(node("Add", [s, mask], ["s2"]))
        s = "s2"
    if causal:
        nodes.append(node("Where", [causal, s, "neg_inf"], ["s3"]))
        s = "s3"
    nodes += [node("Softmax", [s], ["p"], axis=-1), node("MatMul", ["p", v], [out])]
    return nodes


def _key_padding_mask(keys: int, masked: int) -> np.ndarray:
    mask = np.zeros((1, 1, 1, keys), F)
    mask[..., keys - masked:] = -1e9
    return mask


def attn_padding_mask(shape):
    def case(rng) -> Case:
        b, h, s, d = shape
        feeds = {"q": f32(rng, *shape), "k": f32(rng, *shape), "v": f32(rng, *shape),
                 "mask": _key_padding_mask(s, 5)}
        nodes = _attention_nodes("q", "k", "v", "o", "scale", mask="mask")
        return (make_model(nodes, feeds, {"o": F}, {"scale": np.array(d ** -0.5, F)}), feeds,
                dict(expect_kinds=["attention"], all_variants=False))
    case.__name__ = "attn_mask_" + "x".join(map(str, shape))
    return case


def attn_causal_where(rng) -> Case:
    """A constant boolean causal mask applied with Where(mask, scores, -inf) (default variant: attn_nan_guard
    sweeps -inf scores through every variant)."""
    shape = (2, 3, 33, 64)
    feeds = {"q": f32(rng, *shape), "k": f32(rng, *shape), "v": f32(rng, *shape)}
    inits = {"scale": np.array(64 ** -0.5, F), "causal": np.tril(np.ones((33, 33), np.bool_)),
             "neg_inf": np.array(-np.inf, F)}
    nodes = _attention_nodes("q", "k", "v", "o", "scale", causal="causal")
    return make_model(nodes, feeds, {"o": F}, inits), feeds, dict(expect_kinds=["attention"], all_variants=False)


def attn_cross_dv(rng) -> Case:
    """17 queries over 33 keys, head dim 80 for Q/K and 40 for V, mask on the last 5 keys."""
    feeds = {"q": f32(rng, 2, 4, 17, 80), "k": f32(rng, 2, 4, 33, 80), "v": f32(rng, 2, 4, 33, 40),
             "mask": _key_padding_mask(33, 5)}
    nodes = _attention_nodes("q", "k", "v", "o", "scale", mask="mask")
    return (make_model(nodes, feeds, {"o": F}, {"scale": np.array(80 ** -0.5, F)}), feeds,
            dict(expect_kinds=["attention"]))


def _split_heads(x, name, perm=(0, 2, 1, 3)):
    """x [1, 33, 768] -> Reshape [1, 33, 12, 64] -> Transpose(perm)."""
    return [node("Reshape", [x, "heads_shape"], [f"{name}_r"]),
            node("Transpose", [f"{name}_r"], [name], perm=list(perm))]


def attn_head_split(rng) -> Case:
    """Q, K, V from [1, 33, 768] inputs by Reshape + Transpose: views read in place, one attention kernel."""
    feeds = {"xq": f32(rng, 1, 33, 768), "xk": f32(rng, 1, 33, 768), "xv": f32(rng, 1, 33, 768),
             "mask": _key_padding_mask(33, 5)}
    nodes = (_split_heads("xq", "q") + _split_heads("xk", "k") + _split_heads("xv", "v")
             + _attention_nodes("q", "k", "v", "o", "scale", mask="mask"))
    inits = {"heads_shape": i64(1, 33, 12, 64), "scale": np.array(0.125, F)}
    return make_model(nodes, feeds, {"o": F}, inits), feeds, dict(expect_kinds=["attention"], all_variants=False)


def attn_fused_qkv_split(rng) -> Case:
    """GPT-2 style: one [1, 33, 2304] projection Split into Q, K, V, each Reshape + Transpose (offset views)."""
    feeds = {"qkv": f32(rng, 1, 33, 2304)}
    nodes = ([node("Split", ["qkv", "split"], ["xq", "xk", "xv"], axis=2)]
             + _split_heads("xq", "q") + _split_heads("xk", "k") + _split_heads("xv", "v")
             + _attention_nodes("q", "k", "v", "o", "scale", causal="causal"))
    inits = {"split": i64(768, 768, 768), "heads_shape": i64(1, 33, 12, 64), "scale": np.array(0.125, F),
             "causal": np.tril(np.ones((33, 33), np.bool_)), "neg_inf": np.array(-np.inf, F)}
    return make_model(nodes, feeds, {"o": F}, inits), feeds, dict(expect_kinds=["attention"], all_variants=False)


def attn_merge_heads_projection(rng) -> Case:
    """Heads split by Reshape + Transpose, merged back by Transpose + Reshape into an output projection: the
    attention kernel writes the merged layout itself and the projection reads it in place."""
    feeds = {"xq": f32(rng, 1, 33, 768), "xk": f32(rng, 1, 33, 768), "xv": f32(rng, 1, 33, 768)}
    nodes = (_split_heads("xq", "q") + _split_heads("xk", "k") + _split_heads("xv", "v")
             + _attention_nodes("q", "k", "v", "o", "scale")
             + [node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]), node("Reshape", ["ot", "merged"], ["om"]),
                node("MatMul", ["om", "wo"], ["y"])])
    inits = {"heads_shape": i64(1, 33, 12, 64), "merged": i64(1, 33, 768), "scale": np.array(0.125, F),
             "wo": f32(rng, 768, 40, scale=0.05)}
    return (make_model(nodes, feeds, {"y": F}, inits), feeds,
            dict(expect_kinds=["attention", "matmul"], all_variants=False))


def attn_nan_guard(rng) -> Case:
    """Where(IsNaN(p), 0, p) after the softmax, as sdpa exports write it, with every key of batch 1 masked by
    -inf: those rows are NaN in the softmax and 0 after the guard."""
    shape = (2, 3, 17, 40)
    mask = np.zeros((2, 1, 1, 33), F)
    mask[0, ..., 28:] = -np.inf
    mask[1] = -np.inf
    feeds = {"q": f32(rng, *shape), "k": f32(rng, 2, 3, 33, 40), "v": f32(rng, 2, 3, 33, 40), "mask": mask}
    nodes = _attention_nodes("q", "k", "v", "o", "scale", mask="mask")
    nodes[-1:-1] = [node("IsNaN", ["p"], ["isnan"]), node("Where", ["isnan", "zero", "p"], ["pg"])]
    nodes[-1] = node("MatMul", ["pg", "v"], ["o"])
    inits = {"scale": np.array(40 ** -0.5, F), "zero": np.array(0.0, F)}
    return make_model(nodes, feeds, {"o": F}, inits), feeds, dict(expect_kinds=["attention"])


def attn_many_tiles(rng) -> Case:
    """70 queries over 130 keys (more than one query tile and key tile for every variant), head dim 8, value dim
    12, and a single-key attention (N = 1)."""
    feeds = {"q": f32(rng, 1, 2, 70, 8), "k": f32(rng, 1, 2, 130, 8), "v": f32(rng, 1, 2, 130, 12),
             "q1": f32(rng, 2, 3, 1, 16), "k1": f32(rng, 2, 3, 1, 16), "v1": f32(rng, 2, 3, 1, 16)}
    nodes = []
    for q, k, v, o in (("q", "k", "v", "o"), ("q1", "k1", "v1", "o1")):
        nodes += [node("Transpose", [k], [f"{k}t"], perm=[0, 1, 3, 2]), node("MatMul", [q, f"{k}t"], [f"{o}_s"]),
                  node("Softmax", [f"{o}_s"], [f"{o}_p"], axis=-1), node("MatMul", [f"{o}_p", v], [o])]
    return make_model(nodes, feeds, {"o": F, "o1": F}), feeds, dict(expect_kinds=["attention", "attention"])


def attn_shared_kv_bool_mask(rng) -> Case:
    """K and V with one head broadcast over 4 query heads, and a runtime boolean mask [2, 1, 17, 33] applied with
    Where(mask, scores, -inf)."""
    feeds = {"q": f32(rng, 2, 4, 17, 40), "k": f32(rng, 2, 1, 33, 40), "v": f32(rng, 2, 1, 33, 40),
             "m": rng.random((2, 1, 17, 33)) < 0.7}
    feeds["m"][..., 0] = True  # no fully masked row
    nodes = _attention_nodes("q", "k", "v", "o", "scale", causal="m")
    inits = {"scale": np.array(40 ** -0.5, F), "neg_inf": np.array(-np.inf, F)}
    return make_model(nodes, feeds, {"o": F}, inits), feeds, dict(expect_kinds=["attention"], all_variants=False)


def attn_head_dim_not_multiple_of_4(rng) -> Case:
    """Head dim 30: the attention kernel holds rows as vec4, so this stays MatMul (scale and mask as epilogue),
    Softmax, MatMul."""
    shape = (2, 3, 33, 30)
    feeds = {"q": f32(rng, *shape), "k": f32(rng, *shape), "v": f32(rng, *shape), "mask": _key_padding_mask(33, 5)}
    nodes = _attention_nodes("q", "k", "v", "o", "scale", mask="mask")
    return (make_model(nodes, feeds, {"o": F}, {"scale": np.array(30 ** -0.5, F)}), feeds,
            dict(expect_kinds=["matmul", "softmax", "matmul"], all_variants=False))


# Every attention variant is swept in attn_cross_dv, attn_nan_guard and attn_many_tiles; the others run the default
# variant (an attention variant with a 64-wide head costs a second or two of shader compilation on lavapipe).
ATTENTION = [attn_padding_mask((1, 12, 33, 64)), attn_padding_mask((2, 4, 33, 80)), attn_causal_where,
             attn_cross_dv, attn_head_split, attn_fused_qkv_split, attn_merge_heads_projection, attn_nan_guard,
             attn_many_tiles, attn_shared_kv_bool_mask, attn_head_dim_not_multiple_of_4]


# -- norm ----------------------------------------------------------------------------------------------------------
def layernorm(shape, axis=-1, stats=False):
    def case(rng) -> Case:
        x = f32(rng, *shape, scale=3.0) + 1.5
        norm_shape = shape[axis % len(shape):]
        outs = ["y", "mean", "inv_std"] if stats else ["y"]
        n = node("LayerNormalization", ["x", "gamma", "beta"], outs, axis=axis, epsilon=1e-5)
        inits = {"gamma": f32(rng, *norm_shape), "beta": f32(rng, *norm_shape)}
        return (make_model([n], {"x": x}, {o: F for o in outs}, inits), {"x": x},
                dict(expect_kinds=["norm"]))
    case.__name__ = f"layernorm_{'x'.join(map(str, shape))}_axis{axis}" + ("_stats" if stats else "")
    return case


def decomposed_layernorm(opset):
    def case(rng) -> Case:
        """ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add, as older exporters write LayerNorm."""
        x = f32(rng, 2, 17, 96, scale=2.0) - 0.7
        axes = {"axes": [-1]} if opset < 18 else {}
        ax_in = [] if opset < 18 else ["axes"]
        nodes = [node("ReduceMean", ["x", *ax_in], ["mu"], **axes), node("Sub", ["x", "mu"], ["d"]),
                 node("Pow", ["d", "two"], ["d2"]), node("ReduceMean", ["d2", *ax_in], ["var"], **axes),
                 node("Add", ["var", "eps"], ["ve"]), node("Sqrt", ["ve"], ["sd"]), node("Div", ["d", "sd"], ["n"]),
                 node("Mul", ["n", "gamma"], ["ng"]), node("Add", ["ng", "beta"], ["y"])]
        inits = {"two": np.array(2.0, F), "eps": np.array(1e-5, F), "gamma": f32(rng, 96), "beta": f32(rng, 96)}
        if opset >= 18:
            inits["axes"] = i64(-1)
        return (make_model(nodes, {"x": x}, {"y": F}, inits, opset=opset), {"x": x},
                dict(expect_kinds=["norm"]))
    case.__name__ = f"decomposed_layernorm_opset{opset}"
    return case


def rmsnorm_pattern(rng) -> Case:
    """Pow 2 / ReduceMean / Add eps / Sqrt / Reciprocal / Mul x / Mul weight, as LLaMA exports write RMSNorm."""
    x = f32(rng, 3, 33, 80, scale=2.0)
    nodes = [node("Pow", ["x", "two"], ["x2"]), node("ReduceMean", ["x2"], ["ms"], axes=[-1]),
             node("Add", ["ms", "eps"], ["mse"]), node("Sqrt", ["mse"], ["rms"]),
             node("Reciprocal", ["rms"], ["inv"]), node("Mul", ["x", "inv"], ["xn"]),
             node("Mul", ["xn", "weight"], ["y"])]
    inits = {"two": np.array(2.0, F), "eps": np.array(1e-6, F), "weight": f32(rng, 80)}
    return make_model(nodes, {"x": x}, {"y": F}, inits), {"x": x}, dict(expect_kinds=["norm"])


NORM = [layernorm((3, 33, 768)), layernorm((5, 7, 80)), layernorm((5, 7, 80), axis=1, stats=True),
        decomposed_layernorm(17), decomposed_layernorm(18), rmsnorm_pattern]


# -- softmax -------------------------------------------------------------------------------------------------------
def softmax(shape, axis, op="Softmax"):
    def case(rng) -> Case:
        x = f32(rng, *shape, scale=20.0)  # large logits: the kernel must subtract the row max
        return (make_model([node(op, ["x"], ["y"], axis=axis)], {"x": x}, {"y": F}), {"x": x},
                dict(expect_kinds=["softmax"]))
    case.__name__ = f"{op.lower()}_{'x'.join(map(str, shape))}_axis{axis}"
    return case


def softmax_of_view(rng) -> Case:
    """Softmax over the last axis of a transposed view, and LayerNormalization of a sliced view: the row
    kernels want dense rows, so a copy comes first."""
    feeds = {"x": f32(rng, 5, 33, 6, scale=5.0), "h": f32(rng, 3, 9, 70)}
    nodes = [node("Transpose", ["x"], ["xt"], perm=[2, 0, 1]), node("Softmax", ["xt"], ["y"], axis=-1),
             node("Slice", ["h", "st", "en", "ax"], ["hs"]),
             node("LayerNormalization", ["hs", "gamma", "beta"], ["z"], axis=-1)]
    inits = {"st": i64(1, 3), "en": i64(8, 67), "ax": i64(1, 2), "gamma": f32(rng, 64), "beta": f32(rng, 64)}
    return (make_model(nodes, feeds, {"y": F, "z": F}, inits), feeds,
            dict(expect_kinds=["elementwise", "softmax", "elementwise", "norm"]))


SOFTMAX = [softmax((4, 33, 77), -1), softmax((2, 5, 7), 1), softmax((3, 1, 300), -1),
           softmax((4, 33, 77), 1, "LogSoftmax"), softmax((70001, 3), -1), softmax_of_view]


# -- elementwise ---------------------------------------------------------------------------------------------------
def ew_where_broadcast(rng) -> Case:
    """Where(Greater(a, b), Tanh(a) * c, Sigmoid(b)) with a [2, 33, 77], b [77], c [2, 1, 77]: one kernel."""
    feeds = {"a": f32(rng, 2, 33, 77), "b": f32(rng, 77), "c": f32(rng, 2, 1, 77)}
    nodes = [node("Greater", ["a", "b"], ["g"]), node("Tanh", ["a"], ["ta"]), node("Mul", ["ta", "c"], ["tc"]),
             node("Sigmoid", ["b"], ["sb"]), node("Where", ["g", "tc", "sb"], ["y"])]
    return make_model(nodes, feeds, {"y": F}), feeds, dict(expect_kinds=["elementwise"], atol=2e-6)


def ew_cast_int64_to_float(rng) -> Case:
    """Cast int64 -> float32 mixed with float math, and float32 -> int64 (truncation toward zero)."""
    feeds = {"n": rng.integers(-1000, 1000, (3, 33, 7)).astype(np.int64), "x": f32(rng, 7, scale=4.0)}
    nodes = [node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT), node("Mul", ["nf", "x"], ["y"]),
             node("Cast", ["x"], ["xi"], to=TensorProto.INT64), node("Add", ["xi", "n"], ["z"])]
    return (make_model(nodes, feeds, {"y": F, "z": np.int64}), feeds,
            dict(expect_kinds=["elementwise", "elementwise"]))


def ew_int64_arithmetic(rng) -> Case:
    """int64 Add/Sub/Mul/Div (truncating, negative operands)/Max/Neg/Abs with broadcasting, and Equal/Less."""
    feeds = {"a": rng.integers(-5000, 5000, (4, 9, 11)).astype(np.int64),
             "b": np.where(rng.random(11) < 0.5, -1, 1).astype(np.int64) * rng.integers(1, 40, 11)}
    nodes = [node("Mul", ["a", "three"], ["a3"]), node("Sub", ["a3", "b"], ["s"]), node("Div", ["s", "b"], ["q"]),
             node("Neg", ["q"], ["nq"]), node("Abs", ["a"], ["aa"]), node("Max", ["nq", "aa"], ["y"]),
             node("Equal", ["a", "b"], ["eq"]), node("Less", ["a", "b"], ["lt"]), node("Or", ["eq", "lt"], ["le"])]
    return (make_model(nodes, feeds, {"y": np.int64, "le": np.bool_}, {"three": i64(3)}), feeds,
            dict(expect_kinds={"elementwise"}))


def ew_bool_ops(rng) -> Case:
    """Not/And/Or/Xor on bool inputs with broadcasting, Cast bool -> float, float -> bool."""
    feeds = {"p": rng.random((2, 33, 7)) < 0.5, "q": rng.random((33, 1)) < 0.5, "x": f32(rng, 7)}
    feeds["x"][::3] = 0.0
    nodes = [node("Not", ["p"], ["np_"]), node("Xor", ["p", "q"], ["x1"]), node("And", ["np_", "q"], ["a1"]),
             node("Cast", ["x"], ["xb"], to=TensorProto.BOOL), node("Or", ["a1", "xb"], ["o1"]),
             node("Or", ["o1", "x1"], ["y"]), node("Cast", ["y"], ["yf"], to=TensorProto.FLOAT)]
    return make_model(nodes, feeds, {"y": np.bool_, "yf": F}), feeds, dict(expect_kinds={"elementwise"})


def ew_pow_signs(rng) -> Case:
    """Pow with negative bases and integral exponents (ONNX defines them), inline squares and a runtime exponent."""
    feeds = {"a": f32(rng, 5, 33, 4, scale=2.0)}
    nodes = [node("Pow", ["a", "e"], ["p"]), node("Pow", ["a", "two"], ["sq"]), node("Add", ["p", "sq"], ["y"])]
    inits = {"e": np.array([2.0, 3.0, -1.0, -2.0], F), "two": np.array(2.0, F)}
    return make_model(nodes, feeds, {"y": F}, inits), feeds, dict(expect_kinds=["elementwise"], rtol=1e-5)


def ew_strided_views(rng) -> Case:
    """Add(Transpose(x), Slice(y, step 2)) and an output that is a view of its input: inputs read in place."""
    feeds = {"x": f32(rng, 7, 33, 5), "y": f32(rng, 5, 33, 15)}
    nodes = [node("Transpose", ["x"], ["xt"], perm=[2, 1, 0]),
             node("Slice", ["y", "st", "en", "ax", "sp"], ["ys"]), node("Add", ["xt", "ys"], ["z"]),
             node("Transpose", ["y"], ["yt"], perm=[1, 0, 2])]
    inits = {"st": i64(1), "en": i64(15), "ax": i64(2), "sp": i64(2)}
    return (make_model(nodes, feeds, {"z": F, "yt": F}, inits), feeds,
            dict(expect_kinds=["elementwise", "elementwise"]))


def ew_expand_reverse_pick(rng) -> Case:
    """Expand (stride-0 dims), a Slice with step -1 (negative stride), Unsqueeze, and Gather with a constant
    scalar index (x[:, 3], a view): one elementwise kernel reading all of them in place."""
    feeds = {"x": f32(rng, 1, 33, 1), "y": f32(rng, 2, 33, 7), "z": f32(rng, 5, 7)}
    nodes = [node("Expand", ["x", "shape"], ["xe"]), node("Slice", ["y", "st", "en", "ax", "sp"], ["yr"]),
             node("Gather", ["z", "three"], ["z3"], axis=0), node("Unsqueeze", ["z3", "ax0"], ["z3u"]),
             node("Mul", ["xe", "yr"], ["m"]), node("Sub", ["m", "z3u"], ["out"])]
    inits = {"shape": i64(2, 33, 7), "st": i64(-1), "en": i64(-(2 ** 62)), "ax": i64(2), "sp": i64(-1),
             "three": np.array(3, np.int64), "ax0": i64(0)}
    return make_model(nodes, feeds, {"out": F}, inits), feeds, dict(expect_kinds=["elementwise"])


def ew_float_ops(rng) -> Case:
    """Unary and variadic float ops on random values, halves (Round is half to even), large magnitudes and zero;
    Div by zero, IsInf, IsNaN. One output per op, so each is compared on its own."""
    special = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.0, -0.0, 25, -25, 100, -100, 30, -30], F)
    x = np.concatenate([f32(rng, 200, scale=3.0), special]).reshape(2, 107)
    unary = ["Round", "Floor", "Ceil", "Sign", "Softplus", "Relu", "Abs", "Neg", "Erf", "Tanh", "Sigmoid",
             "HardSwish", "Exp", "Sqrt", "Log", "Sin", "Cos", "Reciprocal"]
    nodes = [node(op, ["x"], [op]) for op in unary]
    nodes += [node("LeakyRelu", ["x"], ["leaky"], alpha=0.07), node("Elu", ["x"], ["elu"], alpha=0.9),
              node("HardSigmoid", ["x"], ["hsig"], alpha=0.3, beta=0.4), node("Clip", ["x", "lo", "hi"], ["clip"]),
              node("Clip", ["x", "", "hi"], ["clip_hi"]), node("Div", ["x", "zeros"], ["div0"]),
              node("IsInf", ["div0"], ["isposinf"], detect_negative=0), node("IsNaN", ["Sqrt"], ["isnan"]),
              node("Sum", ["x", "x", "lo"], ["sum3"]), node("Mean", ["x", "hi", "lo"], ["mean3"]),
              node("Max", ["x", "hi", "lo"], ["max3"]), node("Min", ["x", "hi"], ["min2"])]
    outputs = {o: F for n in nodes for o in n.output}
    outputs.update(isposinf=np.bool_, isnan=np.bool_)
    inits = {"lo": np.array(-1.2, F), "hi": np.array(0.7, F), "zeros": np.zeros(107, F)}
    return (make_model(nodes, {"x": x}, outputs, inits), {"x": x},
            dict(atol=1e-5, rtol=1e-5, expect_kinds={"elementwise"}, all_variants=False))


def ew_int_ops(rng) -> Case:
    """int64 Where/Clip/Sign/Pow/Min/Div, bool -> int64 and int64 -> int32 casts, int32 math, comparisons."""
    feeds = {"n": rng.integers(-50, 50, (3, 7, 11)).astype(np.int64),
             "d": rng.integers(1, 9, 11).astype(np.int64) * np.where(rng.random(11) < 0.5, -1, 1),
             "c": rng.random((7, 1)) < 0.5}
    nodes = [node("Where", ["c", "n", "d"], ["where"]), node("Clip", ["n", "lo", "hi"], ["clip"]),
             node("Sign", ["n"], ["sign"]), node("Cast", ["c"], ["c64"], to=TensorProto.INT64),
             node("Pow", ["d", "two"], ["pow"]), node("Min", ["n", "d", "hi"], ["min3"]),
             node("Div", ["n", "d"], ["div"]), node("Cast", ["n"], ["n32"], to=TensorProto.INT32),
             node("Mul", ["n32", "n32"], ["sq32"]), node("Not", ["c"], ["notc"]), node("Equal", ["n", "d"], ["eq"]),
             node("GreaterOrEqual", ["n", "d"], ["ge"])]
    outputs = dict(where=np.int64, clip=np.int64, sign=np.int64, c64=np.int64, pow=np.int64, min3=np.int64,
                   div=np.int64, sq32=np.int32, notc=np.bool_, eq=np.bool_, ge=np.bool_)
    inits = {"lo": np.array(-20, np.int64), "hi": np.array(30, np.int64), "two": np.array(2, np.int64)}
    return make_model(nodes, feeds, outputs, inits), feeds, dict(expect_kinds={"elementwise"}, all_variants=False)


def ew_pow_fractional_exponent(rng) -> Case:
    """Pow with exponents 0.5, 1.5, -0.5, 2.5 (not integers, so not inlined): NaN for negative bases."""
    feeds = {"a": f32(rng, 5, 33, 4, scale=2.0)}
    nodes = [node("Pow", ["a", "e"], ["y"])]
    inits = {"e": np.array([0.5, 1.5, -0.5, 2.5], F)}
    return make_model(nodes, feeds, {"y": F}, inits), feeds, dict(expect_kinds=["elementwise"], rtol=1e-5)


def ew_int_pow_large(rng) -> Case:
    """int64 Pow whose results need more than f32's 24 bits (all within int32): exact in ONNX."""
    feeds = {"n": np.array([[47, -47, 3, 7, 2, 13, -3, 0]], np.int64)}
    inits = {"e": np.array([5, 5, 19, 9, 30, 7, 19, 3], np.int64)}
    return (make_model([node("Pow", ["n", "e"], ["y"])], feeds, {"y": np.int64}, inits), feeds,
            dict(expect_kinds=["elementwise"]))


def ew_large_grid(rng) -> Case:
    """4,194,317 elements: more than 65535 workgroups of 64 threads, so the grid spreads over y."""
    feeds = {"x": f32(rng, 64 * 65535 + 77)}
    nodes = [node("Mul", ["x", "x"], ["xx"]), node("Add", ["xx", "x"], ["y"])]
    return make_model(nodes, feeds, {"y": F}), feeds, dict(expect_kinds=["elementwise"])


ELEMENTWISE = [ew_where_broadcast, ew_cast_int64_to_float, ew_int64_arithmetic, ew_bool_ops, ew_pow_signs,
               ew_strided_views, ew_expand_reverse_pick, ew_float_ops, ew_int_ops, ew_pow_fractional_exponent,
               ew_int_pow_large, ew_large_grid]


# -- gather, gather_elements, gather_nd, cumsum, concat, reduce -------------------------------------------------------
def gather_embedding(rng) -> Case:
    """Embedding lookup: a [50, 37] weight indexed by runtime int64 ids, negative ones counting from the end."""
    ids = rng.integers(-50, 50, (2, 7)).astype(np.int64)
    ids[0, :3] = [-1, -50, 49]
    n = node("Gather", ["table", "ids"], ["y"], axis=0)
    return (make_model([n], {"ids": ids}, {"y": F}, {"table": f32(rng, 50, 37)}), {"ids": ids},
            dict(expect_kinds=["gather"]))


def gather_axis1(rng) -> Case:
    """Gather along a middle axis of runtime float data and along axis 0 of runtime int64 data."""
    feeds = {"x": f32(rng, 4, 9, 5), "idx": np.array([[-1, 0], [8, -9], [3, -4]], np.int64),
             "n": rng.integers(-100, 100, (11, 3)).astype(np.int64), "j": i64(-11, 10, 0, -1, 5)}
    nodes = [node("Gather", ["x", "idx"], ["y"], axis=1), node("Gather", ["n", "j"], ["z"], axis=-2)]
    return make_model(nodes, feeds, {"y": F, "z": np.int64}), feeds, dict(expect_kinds=["gather", "gather"])


def gather_from_views(rng) -> Case:
    """Gather from a transposed view with indices from a sliced view: both get a dense copy first."""
    feeds = {"x": f32(rng, 6, 9, 4), "ids": rng.integers(-9, 9, (2, 11)).astype(np.int64)}
    nodes = [node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]), node("Slice", ["ids", "st", "en", "ax"], ["ids_s"]),
             node("Gather", ["xt", "ids_s"], ["y"], axis=0)]
    inits = {"st": i64(2), "en": i64(9), "ax": i64(1)}
    return (make_model(nodes, feeds, {"y": F}, inits), feeds,
            dict(expect_kinds=["elementwise", "elementwise", "gather"]))


def gather_elements(rng) -> Case:
    """GatherElements along a middle axis, indices [4, 6, 5] into data [4, 9, 5], negative ones included."""
    feeds = {"x": f32(rng, 4, 9, 5), "idx": rng.integers(-9, 9, (4, 6, 5)).astype(np.int64)}
    n = node("GatherElements", ["x", "idx"], ["y"], axis=1)
    return make_model([n], feeds, {"y": F}), feeds, dict(expect_kinds=["gather_elements"])


def gather_nd(rng) -> Case:
    """GatherND with depth-2 index tuples into [5, 6, 7] (negative indices included) -> [3, 4, 7]."""
    idx = np.stack([rng.integers(-5, 5, (3, 4)), rng.integers(-6, 6, (3, 4))], axis=-1).astype(np.int64)
    feeds = {"x": f32(rng, 5, 6, 7), "idx": idx}
    return (make_model([node("GatherND", ["x", "idx"], ["y"])], feeds, {"y": F}), feeds,
            dict(expect_kinds=["gather_nd"]))


def cumsum(exclusive, reverse):
    def case(rng) -> Case:
        feeds = {"x": f32(rng, 3, 33, 7), "n": rng.integers(-50, 50, (5, 13)).astype(np.int64)}
        nodes = [node("CumSum", ["x", "ax1"], ["y"], exclusive=exclusive, reverse=reverse),
                 node("CumSum", ["n", "axm1"], ["z"], exclusive=exclusive, reverse=reverse)]
        return (make_model(nodes, feeds, {"y": F, "z": np.int64}, {"ax1": i64(1), "axm1": i64(-1)}), feeds,
                dict(expect_kinds=["cumsum", "cumsum"]))
    case.__name__ = f"cumsum_exclusive{exclusive}_reverse{reverse}"
    return case


def concat(rng) -> Case:
    """Concat of three inputs along a middle axis; and along the last axis of an input, a slice of the same
    buffer and a transposed view (pieces read in place, one buffer bound once)."""
    feeds = {"a": f32(rng, 2, 5, 7), "b": f32(rng, 2, 3, 7), "c": f32(rng, 2, 1, 7), "d": f32(rng, 2, 4, 5)}
    nodes = [node("Concat", ["a", "b", "c"], ["y"], axis=1),
             node("Slice", ["a", "st", "en", "ax"], ["as"]), node("Transpose", ["d"], ["dt"], perm=[0, 2, 1]),
             node("Concat", ["a", "as", "dt"], ["z"], axis=-1)]
    inits = {"st": i64(1), "en": i64(6), "ax": i64(2)}
    return (make_model(nodes, feeds, {"y": F, "z": F}, inits), feeds, dict(expect_kinds=["concat", "concat"]))


def concat_int_bool(rng) -> Case:
    """Concat of int64 and of bool tensors along axis 0."""
    feeds = {"n": rng.integers(-9, 9, (3, 5)).astype(np.int64), "m": rng.integers(-9, 9, (2, 5)).astype(np.int64),
             "p": rng.random((1, 4)) < 0.5, "q": rng.random((6, 4)) < 0.5}
    nodes = [node("Concat", ["n", "m", "n"], ["y"], axis=0), node("Concat", ["p", "q"], ["z"], axis=0)]
    return (make_model(nodes, feeds, {"y": np.int64, "z": np.bool_}), feeds,
            dict(expect_kinds=["concat", "concat"]))


def concat_empty_piece(rng) -> Case:
    """An input with 0 elements along the axis contributes nothing."""
    feeds = {"a": f32(rng, 2, 0, 7), "b": f32(rng, 2, 3, 7)}
    return (make_model([node("Concat", ["a", "b", "a"], ["y"], axis=1)], feeds, {"y": F}), feeds,
            dict(expect_kinds=["concat"]))


def reduce_ops(rng) -> Case:
    """ReduceSum over axes [0, 2] without keepdims, ReduceMax over a middle axis, ReduceMean over everything,
    ReduceMin and ReduceMean (integer division) of int64 (opset 18: axes as an input)."""
    feeds = {"x": f32(rng, 3, 33, 7), "n": rng.integers(-1000, 1000, (5, 9)).astype(np.int64)}
    nodes = [node("ReduceSum", ["x", "a02"], ["s"], keepdims=0), node("ReduceMax", ["x", "a1"], ["m"]),
             node("ReduceMean", ["x"], ["mu"]), node("ReduceMin", ["n", "am1"], ["nm"], keepdims=0),
             node("ReduceMean", ["n", "am1"], ["nmu"])]
    inits = {"a02": i64(0, 2), "a1": i64(1), "am1": i64(-1)}
    outputs = {"s": F, "m": F, "mu": F, "nm": np.int64, "nmu": np.int64}
    return make_model(nodes, feeds, outputs, inits, opset=18), feeds, dict(expect_kinds=["reduce"] * 5)


def reduce_to_scalar(rng) -> Case:
    """ReduceSum and ReduceMax over every axis without keepdims: scalar outputs, one then read by a Mul."""
    feeds = {"x": f32(rng, 3, 5, 7), "s": np.array(2.5, F)}
    nodes = [node("ReduceSum", ["x"], ["y"], keepdims=0), node("Mul", ["y", "s"], ["z"]),
             node("ReduceMax", ["x", "axes"], ["m"], keepdims=0)]
    return (make_model(nodes, feeds, {"z": F, "m": F}, {"axes": i64(0, 1, 2)}, opset=18), feeds,
            dict(expect_kinds={"reduce", "elementwise"}))


def reduce_of_view(rng) -> Case:
    """ReduceSum of a transposed view: the reduce kernel wants a dense input, so a copy comes first."""
    feeds = {"x": f32(rng, 7, 33, 5)}
    nodes = [node("Transpose", ["x"], ["xt"], perm=[2, 0, 1]), node("ReduceSum", ["xt", "a"], ["y"], keepdims=1)]
    return (make_model(nodes, feeds, {"y": F}, {"a": i64(-1)}, opset=18), feeds,
            dict(expect_kinds=["elementwise", "reduce"]))


INDEXING = [gather_embedding, gather_axis1, gather_from_views, gather_elements, gather_nd, cumsum(0, 0),
            cumsum(1, 0), cumsum(0, 1), cumsum(1, 1), concat, concat_int_bool, concat_empty_piece, reduce_ops,
            reduce_to_scalar, reduce_of_view]


# -- the tests -----------------------------------------------------------------------------------------------------
# case name -> (exception, reason) for cases that fail because of a reported webjit bug. They xfail strictly:
# when the fix lands the case XPASSes, the run fails, and the entry must go.
KNOWN_BUGS: dict[str, tuple[type[BaseException], str]] = {}


def _params(cases):
    params = []
    for c in cases:
        bug = KNOWN_BUGS.get(c.__name__)
        marks = [pytest.mark.xfail(strict=True, raises=bug[0], reason=bug[1])] if bug else []
        params.append(pytest.param(c, id=c.__name__, marks=marks))
    return params


def _run(case):
    model, feeds, options = case(np.random.default_rng(0))
    check_op(model, feeds, **options)


@pytest.mark.parametrize("case", _params(MATMUL))
def test_matmul(case):
    _run(case)


@pytest.mark.parametrize("case", _params(ATTENTION))
def test_attention(case):
    _run(case)


@pytest.mark.parametrize("case", _params(NORM))
def test_norm(case):
    _run(case)


@pytest.mark.parametrize("case", _params(SOFTMAX))
def test_softmax(case):
    _run(case)


@pytest.mark.parametrize("case", _params(ELEMENTWISE))
def test_elementwise(case):
    _run(case)


@pytest.mark.parametrize("case", _params(INDEXING))
def test_indexing(case):
    _run(case)


def test_split_weights(monkeypatch):
    """Weights over the storage-binding limit are split: an embedding table by rows (one gather kernel reads every
    chunk) and a MatMul weight by columns (partial matmuls, then a concat). The limit is lowered to 16 KiB so
    small weights take that path."""
    from webjit.space import DEFAULT_LIMITS
    monkeypatch.setitem(DEFAULT_LIMITS, "maxStorageBufferBindingSize", 16384)
    rng = np.random.default_rng(0)
    ids = rng.integers(-300, 300, (2, 9)).astype(np.int64)
    ids[0, :4] = [0, 99, 100, -1]  # both sides of a chunk boundary, and the last row
    nodes = [node("Gather", ["table", "ids"], ["e"], axis=0), node("MatMul", ["e", "w"], ["y"])]
    inits = {"table": f32(rng, 300, 40), "w": f32(rng, 40, 200, scale=0.2)}  # 48000 and 32000 bytes
    check_op(make_model(nodes, {"ids": ids}, {"y": F}, inits), {"ids": ids},
             expect_kinds=["gather", "matmul", "matmul", "concat"], all_variants={"gather", "concat"})


def test_check_op_catches_a_broken_variant(monkeypatch):
    """The harness itself: one elementwise variant is made to skip every other element. The sweep must report that
    variant (and only it) even though the variants run before it wrote correct values into the same buffer."""
    import webjit.native.wgpu_runner as wgpu_runner

    render = wgpu_runner.render

    def broken(kernel, variant, dtypes):
        src = render(kernel, variant, dtypes)
        return src.replace("r < 2u", "r < 1u") if variant.key == "per2_wg128" else src

    monkeypatch.setattr(wgpu_runner, "render", broken)
    model, feeds, options = ew_where_broadcast(np.random.default_rng(0))
    with pytest.raises(AssertionError, match=r"^1 of \d+ runs mismatch(.|\n)*variant per2_wg128: output 'y'"):
        check_op(model, feeds, **options)
