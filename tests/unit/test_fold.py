"""Compile-time folding in plain Python (webjit/fold.py) against onnx's reference evaluator.

Each case is a one-node model whose inputs are all initializers: `specialize` must fold its output, and the value
must equal what onnx.reference computes (exactly for arithmetic, moves, casts and comparisons; within float32
rounding for transcendental functions, whose last bit differs between libm and numpy)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from webjit.errors import WebjitError
from webjit.onnx_import import from_onnx
from webjit.onnx_proto import parse
from webjit.shapes import specialize

OPSET = 18
rng = np.random.default_rng(0)
F = rng.standard_normal((2, 3, 4)).astype(np.float32)
P = (np.abs(F) + 0.5).astype(np.float32)
I = np.array([[7, -7, 3], [-9, 0, 12]], dtype=np.int64)
J = np.array([2, -3, 5], dtype=np.int64)
B1 = np.array([True, False, True, False])
B2 = np.array([True, True, False, False])
SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.5, -2.5, 1e30], dtype=np.float32)


def i64(*v):
    return np.array(v, dtype=np.int64)


CASES = {
    # arithmetic and broadcasting
    "add": ("Add", [F, F[0, 0]], {}), "sub": ("Sub", [F, F[:, :1]], {}), "mul": ("Mul", [F, F], {}),
    "div": ("Div", [F, P], {}), "div_int_truncates": ("Div", [I, J], {}), "pow": ("Pow", [P, np.float32(2.5)], {}),
    "pow_int_exponent": ("Pow", [F, i64(2)], {}),
    "pow_int_base": ("Pow", [np.abs(I), i64(2, 0, 3)], {}),
    "pow_int_base_float_exponent": ("Pow", [np.abs(I), np.array([0.5, 2.0, 1.5], np.float32)], {}), "mod_int": ("Mod", [I, J], {}),
    "fmod": ("Mod", [F, P], {"fmod": 1}), "max": ("Max", [F, F[1], P], {}), "min": ("Min", [I, J], {}),
    "sum": ("Sum", [F, P, F], {}), "mean": ("Mean", [F, P], {}),
    "equal": ("Equal", [I, J], {}), "less": ("Less", [F, F[0]], {}), "greater_eq": ("GreaterOrEqual", [I, J], {}),
    "and": ("And", [B1, B2], {}), "or": ("Or", [B1, B2], {}), "xor": ("Xor", [B1, B2], {}), "not": ("Not", [B1], {}),
    "where": ("Where", [F > 0, F, np.float32(-1e9)], {}),
    # unary
    **{op.lower(): (op, [F], {}) for op in ("Neg", "Abs", "Floor", "Ceil", "Sign", "Relu", "Identity")},
    "round_half_even": ("Round", [np.array([0.5, 1.5, 2.5, -0.5, -1.5], np.float32)], {}),
    "mish": ("Mish", [F * 10], {}), "mod_int_fmod": ("Mod", [I, J], {"fmod": 1}),
    "sqrt": ("Sqrt", [P], {}), "reciprocal": ("Reciprocal", [P], {}), "neg_int": ("Neg", [I], {}),
    "isnan": ("IsNaN", [SPECIAL], {}), "isinf": ("IsInf", [SPECIAL], {}),
    "isinf_positive": ("IsInf", [SPECIAL], {"detect_negative": 0}),
    # casts
    "cast_float_to_int": ("Cast", [F * 10], {"to": TensorProto.INT64}),
    "cast_int_to_float": ("Cast", [I], {"to": TensorProto.FLOAT}),
    "cast_float_to_bool": ("Cast", [SPECIAL[:2]], {"to": TensorProto.BOOL}),
    "cast_int_to_int32": ("Cast", [I], {"to": TensorProto.INT32}),
    "cast_double_to_float": ("Cast", [np.array([0.1, 1e40, -3.3], np.float64)], {"to": TensorProto.FLOAT}),
    # moves
    "reshape": ("Reshape", [F, i64(0, -1)], {}), "flatten": ("Flatten", [F], {"axis": 2}),
    "squeeze": ("Squeeze", [F[:, :1], i64(1)], {}), "unsqueeze": ("Unsqueeze", [I, i64(0, -1)], {}),
    "transpose": ("Transpose", [F], {"perm": [2, 0, 1]}), "transpose_default": ("Transpose", [F], {}),
    "slice": ("Slice", [F, i64(0, 1), i64(2, 4), i64(0, 2), i64(1, 2)], {}),
    "slice_negative_step": ("Slice", [F, i64(-1), i64(-1000), i64(2), i64(-2)], {}),
    "slice_clamped": ("Slice", [I, i64(1, -100), i64(100, 2)], {}),
    "concat": ("Concat", [F, F[:, :2]], {"axis": 1}), "concat_ints": ("Concat", [i64(1), i64(2, 3)], {"axis": 0}),
    "gather": ("Gather", [F, i64(2, -1, 0)], {"axis": 1}), "gather_scalar": ("Gather", [J, np.int64(-1)], {}),
    "gather_elements": ("GatherElements", [F, i64(0, 1, -1, 2, 0, 3, 1, 1, -4, 0, 2, 2).reshape(2, 3, 2)], {"axis": 2}),
    "gather_elements_axis0": ("GatherElements", [I, i64(1, 0, -1, 0, 1, 1).reshape(2, 3)], {}),
    "gather_nd": ("GatherND", [F, i64(1, 2, 0, -1).reshape(2, 2)], {}),
    "gather_nd_batch": ("GatherND", [F, i64(2, -3).reshape(2, 1, 1)], {"batch_dims": 1}),
    "scatter_nd": ("ScatterND", [F, i64(1, 0, 0, 2).reshape(2, 2), F[:2, 0] * 3], {}),
    "scatter_nd_add_duplicates": ("ScatterND", [I, i64(1, 1, 0).reshape(3, 1), I[[0, 1, 1]] * 2], {"reduction": "add"}),
    "scatter_nd_mul_elements": ("ScatterND", [F, i64(0, 1, 2, 1, 2, 3).reshape(2, 3), F[0, 0, :2]],
                                {"reduction": "mul"}),
    "expand": ("Expand", [F[:, :1], i64(2, 5, 4)], {}), "tile": ("Tile", [I, i64(2, 3)], {}),
    "split": ("Split", [F, i64(1, 2)], {"axis": 1}),
    # makers
    "constant_of_shape": ("ConstantOfShape", [i64(2, 3)], {"value": numpy_helper.from_array(i64(7))}),
    "range_int": ("Range", [np.int64(10), np.int64(-3), np.int64(-4)], {}),
    "range_float": ("Range", [np.float32(0.5), np.float32(3.0), np.float32(0.7)], {}),
    "trilu_upper": ("Trilu", [F, i64(1)], {}), "trilu_lower": ("Trilu", [F], {"upper": 0}),
    "trilu_bool": ("Trilu", [np.ones((4, 4), bool), i64(-1)], {"upper": 0}),
    # reductions and matmul
    "reduce_sum": ("ReduceSum", [I, i64(1)], {"keepdims": 0}), "reduce_max": ("ReduceMax", [F, i64(0, 2)], {}),
    "reduce_mean": ("ReduceMean", [F], {}), "reduce_min": ("ReduceMin", [I, i64(0)], {"keepdims": 0}),
    "reduce_prod": ("ReduceProd", [I, i64(-1)], {}), "reduce_sum_square": ("ReduceSumSquare", [F, i64(1)], {}),
    "reduce_l1": ("ReduceL1", [I], {"keepdims": 0}), "reduce_l2": ("ReduceL2", [F, i64(-1)], {}),
    "reduce_log_sum": ("ReduceLogSum", [P, i64(0, 1)], {}), "reduce_log_sum_exp": ("ReduceLogSumExp", [F], {}),
    "reduce_noop": ("ReduceSumSquare", [F], {"noop_with_empty_axes": 1}),
    # over no elements (a slice of a shape that came out empty): the identity of each reduction
    **{f"{op.lower()}_empty_{t.__name__}": (op, [np.zeros((2, 0), t), i64(1)], {})
       for op in ("ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1") for t in (np.int64, np.float32)},
    "reduce_log_sum_exp_empty": ("ReduceLogSumExp", [np.zeros((0, 3), np.float32), i64(0)], {"keepdims": 0}),
    "cumsum": ("CumSum", [I, np.int64(1)], {}), "cumsum_reverse_exclusive": ("CumSum", [F, np.int32(-1)],
                                                                        {"reverse": 1, "exclusive": 1}),
    "matmul": ("MatMul", [F[0], F[1].T.copy()], {}), "clip": ("Clip", [F, np.float32(-0.5), np.float32(0.5)], {}),
}
INEXACT = {"Mish", "CumSum", "Pow", "Exp", "Log", "Erf", "Tanh", "Sigmoid", "Mean", "ReduceMean", "MatMul", "Sum",
           "ReduceSumSquare", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"}


def one_node(op: str, inputs: list, attrs: dict, n_out: int = 1) -> bytes:
    names = [f"in{i}" for i in range(len(inputs))]
    outs = [f"out{i}" for i in range(n_out)]
    inits = [numpy_helper.from_array(np.asarray(a), n) for a, n in zip(inputs, names)]
    node = helper.make_node(op, names, outs, name=f"the_{op.lower()}", **attrs)
    graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None)
                                              for o in outs], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]).SerializeToString()


def folded(model: bytes) -> list[np.ndarray]:
    g = specialize(from_onnx(parse(model)))
    return [np.asarray(g.values[o].const) for o in g.outputs]


@pytest.mark.parametrize("case", sorted(CASES))
def test_folding_matches_the_onnx_reference(case):
    op, inputs, attrs = CASES[case]
    n_out = 2 if op == "Split" else 1
    model = one_node(op, inputs, attrs, n_out)
    want = ReferenceEvaluator(model).run(None, {})
    got = folded(model)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape, (case, g.dtype, w.dtype, g.shape, w.shape)
        if op in INEXACT:
            np.testing.assert_allclose(g, w, rtol=2e-7, atol=1e-6 if op == "MatMul" else 0, err_msg=case)
        else:
            np.testing.assert_array_equal(g, w, err_msg=case)


@pytest.mark.parametrize("op", ["Exp", "Log", "Erf", "Tanh", "Sigmoid", "Sin", "Cos"])
def test_transcendental_functions_fold_within_float32_rounding(op):
    model = one_node(op, [P], {})
    np.testing.assert_allclose(folded(model)[0], ReferenceEvaluator(model).run(None, {})[0], rtol=3e-7)


def test_a_constant_node_folds_from_each_attribute_kind():
    for attrs in ({"value_ints": [1, 2]}, {"value_float": 0.25}, {"value_int": -3}, {"value_floats": [0.5, 1.5]},
                  {"value": numpy_helper.from_array(F)}):
        model = one_node("Constant", [], attrs)
        want = ReferenceEvaluator(model).run(None, {})[0]
        got = folded(model)[0]
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_an_op_it_cannot_fold_is_named_with_its_node():
    with pytest.raises(WebjitError, match="Det .*first node .the_det."):
        folded(one_node("Det", [np.eye(3, dtype=np.float32)], {}))


def test_a_gather_index_out_of_range_is_an_error_naming_the_node():
    with pytest.raises(WebjitError, match="the_gather.*out of range"):
        folded(one_node("Gather", [J, i64(3)], {}))
