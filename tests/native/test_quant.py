"""Quantization ops against onnxruntime on awkward shapes, every WGSL variant: DequantizeLinear, QuantizeLinear
(per tensor and per axis, int8 and uint8), DynamicQuantizeLinear and MatMulInteger (zero points per tensor and per
column; the integer form of uint8 A, whose WebAssembly variants sum byte products). The WebAssembly backend runs the same cases (tests/wasm/test_wasm_quant.py)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import check_op, f32, make_model, node

F = np.float32


def u8(rng, *shape):
    return rng.integers(0, 256, shape).astype(np.uint8)


def i8(rng, *shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


def dequantize_per_tensor_uint8(rng):
    x = u8(rng, 3, 37)
    inits = {"s": np.array(0.037, F), "z": np.array(131, np.uint8)}
    return make_model([node("DequantizeLinear", ["x", "s", "z"], ["y"])], {"x": x}, {"y": F}, inits), {"x": x}, {}


def dequantize_per_axis_int8(rng):
    x = i8(rng, 2, 5, 33)
    inits = {"s": rng.uniform(0.01, 0.1, 5).astype(F), "z": i8(rng, 5)}
    model = make_model([node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=1)], {"x": x}, {"y": F}, inits)
    return model, {"x": x}, {}


def quantize_per_tensor_uint8_with_ties_and_saturation(rng):
    s = np.float32(0.25)
    x = np.concatenate([f32(rng, 93, scale=40.0), np.arange(-8, 8, dtype=F) * s / 2]).reshape(1, 109)  # exact .5
    inits = {"s": np.array(s, F), "z": np.array(17, np.uint8)}
    return make_model([node("QuantizeLinear", ["x", "s", "z"], ["y"])], {"x": x}, {"y": np.uint8}, inits), {"x": x}, {}


def quantize_per_axis_int8(rng):
    x = f32(rng, 3, 7, 5, scale=3.0)
    inits = {"s": rng.uniform(0.01, 0.05, 7).astype(F), "z": i8(rng, 7)}
    model = make_model([node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1)], {"x": x}, {"y": np.int8}, inits)
    return model, {"x": x}, {}


def dynamic_quantize_linear(rng):
    x = f32(rng, 2, 13, 19, scale=2.0) + 0.7
    model = make_model([node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])], {"x": x},
                       {"y": np.uint8, "s": F, "z": np.uint8})
    return model, {"x": x}, {}


def dynamic_quantize_linear_of_positive_and_zero_inputs(rng):
    x = np.abs(f32(rng, 5, 11)) + 0.1  # the range still holds 0: the zero point is 0
    z = np.zeros((2, 3), F)            # max == min: scale 1
    nodes = [node("DynamicQuantizeLinear", ["x"], ["y", "s", "zp"]),
             node("DynamicQuantizeLinear", ["z"], ["y2", "s2", "zp2"])]
    outs = {"y": np.uint8, "s": F, "zp": np.uint8, "y2": np.uint8, "s2": F, "zp2": np.uint8}
    return make_model(nodes, {"x": x, "z": z}, outs), {"x": x, "z": z}, {}


def matmul_integer_batched_per_column(rng):
    a, b = u8(rng, 2, 7, 45), i8(rng, 45, 9)
    inits = {"za": np.array(121, np.uint8), "zb": i8(rng, 9)}
    model = make_model([node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])], {"a": a, "b": b}, {"y": np.int32},
                       inits)
    return model, {"a": a, "b": b}, {}


def matmul_integer_without_zero_points(rng):
    a, b = u8(rng, 5, 33), u8(rng, 33, 3)
    model = make_model([node("MatMulInteger", ["a", "b"], ["y"])], {"a": a, "b": b}, {"y": np.int32})
    return model, {"a": a, "b": b}, {}


def dynamic_quantized_linear_layer(rng):
    """What onnxruntime's quantize_dynamic writes for a linear layer: DynamicQuantizeLinear -> MatMulInteger (int8
    weight) -> Cast -> Mul(scale_a * scale_b) -> Add(bias)."""
    x = f32(rng, 2, 9, 40)
    inits = {"w": i8(rng, 40, 11), "sw": np.array(0.013, F), "zw": np.array(0, np.int8), "bias": f32(rng, 11)}
    nodes = [node("DynamicQuantizeLinear", ["x"], ["q", "sq", "zq"]),
             node("MatMulInteger", ["q", "w", "zq", "zw"], ["acc"]),
             node("Cast", ["acc"], ["accf"], to=1), node("Mul", ["sq", "sw"], ["s"]),
             node("Mul", ["accf", "s"], ["y0"]), node("Add", ["y0", "bias"], ["y"])]
    return make_model(nodes, {"x": x}, {"y": F}, inits), {"x": x}, {"atol": 1e-4, "rtol": 1e-5}


def matmul_integer_of_bytes_on_awkward_shapes(rng):
    """The integer form (uint8 A with its zero point given at run time, B - zero point within int8): K over the
    K blocks and not a multiple of 4, N and M off every tile, a batch; B uint8 centered on 128."""
    a, za = u8(rng, 2, 13, 1030), np.array(77, np.uint8)
    inits = {"b": u8(rng, 1030, 21), "zb": np.array(128, np.uint8)}
    model = make_model([node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])], {"a": a, "za": za}, {"y": np.int32},
                       inits)
    return model, {"a": a, "za": za}, {}


def matmul_integer_of_bytes_with_extreme_values(rng):
    """Every A byte 255 or 0 against B bytes -128 / 127, a constant zero point of A: the largest products, exact."""
    a = (rng.integers(0, 2, (9, 67)) * 255).astype(np.uint8)
    inits = {"b": np.where(rng.integers(0, 2, (67, 6)) == 1, 127, -128).astype(np.int8), "za": np.array(3, np.uint8)}
    model = make_model([node("MatMulInteger", ["a", "b", "za"], ["y"])], {"a": a}, {"y": np.int32}, inits)
    return model, {"a": a}, {}


def gather_of_a_uint8_table_then_dequantize(rng):
    """The embedding form quantize_dynamic writes: Gather rows of a uint8 table, then DequantizeLinear them."""
    ids = rng.integers(-50, 50, (2, 7)).astype(np.int64)
    inits = {"t": u8(rng, 50, 37), "s": np.array(0.02, F), "z": np.array(127, np.uint8)}
    nodes = [node("Gather", ["t", "ids"], ["q"]), node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    return make_model(nodes, {"ids": ids}, {"y": F}, inits), {"ids": ids}, {}


def gather_of_a_dequantized_int8_table(rng):
    ids = rng.integers(0, 30, (9,)).astype(np.int64)
    inits = {"t": i8(rng, 30, 6), "s": np.array(0.5, F), "z": np.array(-3, np.int8)}
    nodes = [node("DequantizeLinear", ["t", "s", "z"], ["w"]), node("Gather", ["w", "ids"], ["y"])]
    return make_model(nodes, {"ids": ids}, {"y": F}, inits), {"ids": ids}, {}


QUANT = [gather_of_a_uint8_table_then_dequantize, gather_of_a_dequantized_int8_table, dequantize_per_tensor_uint8, dequantize_per_axis_int8, quantize_per_tensor_uint8_with_ties_and_saturation,
         quantize_per_axis_int8, dynamic_quantize_linear, dynamic_quantize_linear_of_positive_and_zero_inputs,
         matmul_integer_batched_per_column, matmul_integer_without_zero_points, dynamic_quantized_linear_layer,
         matmul_integer_of_bytes_on_awkward_shapes, matmul_integer_of_bytes_with_extreme_values]


@pytest.mark.native
@pytest.mark.parametrize("case", QUANT, ids=lambda c: c.__name__)
def test_quantization_op_matches_onnxruntime_in_every_variant(case):
    model, feeds, options = case(np.random.default_rng(0))
    check_op(model, feeds, **options)


def matmul_nbits_model(rng, m_shape, k, n, block, *, zero_points, bias, bits=4):
    """A com.microsoft MatMulNBits layer with random packed weights, block scales and (packed) zero points. Values
    in the padding of the last block are random too: onnxruntime ignores them, and so must webjit."""
    from onnx import TensorProto, helper as oh, numpy_helper as nh
    nb = -(-k // block)
    inits = {"w": rng.integers(0, 256, (n, nb, block * bits // 8)).astype(np.uint8),
             "s": rng.uniform(0.005, 0.05, n * nb).astype(F)}
    names = ["x", "w", "s"]
    if zero_points:
        inits["z"] = rng.integers(0, 256, n * -(-nb * bits // 8)).astype(np.uint8)
        names.append("z")
    if bias:
        inits["b"] = f32(rng, n)
        names += [""] * (5 - len(names)) + ["b"]
    x = f32(rng, *m_shape, k)
    nd = oh.make_node("MatMulNBits", names, ["y"], domain="com.microsoft", K=k, N=n, bits=bits, block_size=block)
    graph = oh.make_graph([nd], "case", [oh.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                          [oh.make_tensor_value_info("y", TensorProto.FLOAT, (*m_shape, n))],
                          [nh.from_array(a, name) for name, a in inits.items()])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17), oh.make_opsetid("com.microsoft", 1)],
                          ir_version=9)
    return model, {"x": x}


def _nbits(m_shape, k, n, block, zero_points, bias):
    def case(rng):
        model, feeds = matmul_nbits_model(rng, m_shape, k, n, block, zero_points=zero_points, bias=bias)
        return model, feeds, {"atol": 1e-4, "rtol": 1e-4}
    case.__name__ = (f"matmul_nbits_block{block}_k{k}_n{n}" + ("_zero_points" if zero_points else "_symmetric")
                     + ("_bias" if bias else ""))
    return case


NBITS = [_nbits((2, 5), 50, 7, 16, True, False), _nbits((3,), 64, 9, 32, False, True),
         _nbits((1, 4), 100, 13, 64, True, True), _nbits((6,), 130, 5, 128, False, False)]


@pytest.mark.native
@pytest.mark.parametrize("case", NBITS, ids=lambda c: c.__name__)
def test_matmul_nbits_matches_onnxruntime_in_every_variant(case):
    model, feeds, options = case(np.random.default_rng(0))
    check_op(model, feeds, **options)
