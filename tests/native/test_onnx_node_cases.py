"""ONNX's own backend node test cases, run end to end through `webjit validate`.

`onnx.backend.test.case.node.collect_testcases()` yields, for each ONNX op, small models with inputs and the
reference outputs ONNX ships with them. For every case of an op in `OPS` (and the `_expanded` function-body
variant of such a case) whose graph inputs and outputs are all float32, int64 or bool, this test

  1. writes the model (`onnx.save`) and its inputs (an .npz keyed by the graph input names) to a tmp dir,
  2. runs `webjit validate MODEL --inputs IN.npz --save-outputs OUT.npz` (the CLI's `main`, in this process, so
     the WebGPU device is made once; inputs that decide a shape are specialised from the values in IN.npz),
  3. compares every saved output with ONNX's expected output: atol = rtol = 1e-4 for floats, exact for int and
     bool, NaN equal to NaN, infinities equal when they have the same sign.

Expected values come from ONNX's reference data, not from onnxruntime (validate checks against onnxruntime on its
own; its exit status must be 0 as well).

Cases webjit does not pass yet are listed in `KNOWN_FAILURES` with the root cause, and xfail strictly: when a fix
lands, the case XPASSes, the run fails, and the entry must be removed.

Run time: a case costs about a tenth of a second once the device exists; gathering ONNX's cases adds ~11 s at
import (per xdist worker). Pick a few with `-k`, e.g. `-k "softmax or gemm"`.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from helpers import mismatch
from webjit.cli import main

pytestmark = pytest.mark.native

ATOL = RTOL = 1e-4

# The ops whose ONNX test cases run here.
OPS = frozenset({
    "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Erf", "Tanh", "Sigmoid", "Relu", "Gelu", "Softmax",
    "LayerNormalization", "Where", "Transpose", "Concat", "Gather", "GatherElements", "ReduceMean", "ReduceSum",
    "Neg", "Reciprocal", "Exp", "Equal", "Not", "And", "Expand", "Unsqueeze", "Squeeze", "Reshape", "Slice", "Split",
    "CumSum", "Cast", "IsNaN", "Trilu", "Range", "ConstantOfShape", "Shape", "Flatten",
    "ScatterND", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "Clip", "Mish", "Mod", "Tile",
})
# Element types webjit handles at its inputs and outputs; cases with any other are skipped.
DTYPES = {TensorProto.FLOAT: "float32", TensorProto.INT64: "int64", TensorProto.BOOL: "bool"}

# case name -> root cause of a failure not fixed yet. Each entry xfails strictly: remove it when the case passes.
KNOWN_FAILURES: dict[str, str] = {
    "test_reduce_log_sum_exp_empty_set_expanded": "the function body computes in float64 (Cast to double)",
    "test_reduce_max_bool_inputs": "ReduceMax of bool (opset 20) has no reduce kernel",
    "test_reduce_min_bool_inputs": "ReduceMin of bool (opset 20) has no reduce kernel",
    "test_reduce_max_empty_set_bool": "onnxruntime rejects ReduceMax of an empty bool set, so validate cannot agree",
}


# -- case selection (at import time, so cases parametrize by name) -------------------------------------------------
def _webjit_ops() -> frozenset[str]:
    """Ops webjit's shape stage accepts (an `_expanded` variant using another op is skipped, not failed)."""
    from webjit import ops
    return frozenset(ops.ONNX)


def _base_name(name: str) -> str:
    return name.split("_expanded")[0]


def _elem_types(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(value name, element type name) of every graph input and output; non-tensors get their type's kind."""
    out = []
    for vi in list(model.graph.input) + list(model.graph.output):
        kind = vi.type.WhichOneof("value")
        if kind != "tensor_type":
            out.append((vi.name, kind or "untyped"))
        else:
            et = vi.type.tensor_type.elem_type
            out.append((vi.name, DTYPES.get(et) or TensorProto.DataType.Name(et).lower()))
    return out


def _collect():
    """(cases to run: name -> TestCase, cases to skip: name -> reason). Both in ONNX's order."""
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the case generators overflow casts and divide by zero on purpose
        every = collect_testcases()
    op_of = {}  # base case name -> its op, for the non-expanded single-op cases
    for c in every:
        if "_expanded" not in c.name:
            op_of[c.name] = {n.op_type for n in c.model.graph.node}
    webjit_ops = _webjit_ops()
    run, skip = {}, {}
    for c in every:
        ops = op_of.get(_base_name(c.name), set())
        if not ops or not ops <= OPS:
            continue
        bad = sorted({t for _, t in _elem_types(c.model) if t not in DTYPES.values()})
        if bad:
            skip[c.name] = f"element type {', '.join(bad)} (webjit runs float32, int64, bool)"
            continue
        if "_expanded" in c.name:
            outside = sorted({n.op_type for n in c.model.graph.node} - webjit_ops)
            if outside:
                skip[c.name] = f"expanded function body uses {', '.join(outside)}, outside webjit's ops"
                continue
        run[c.name] = c
    return run, skip


CASES, SKIPPED = _collect()


def _params():
    for name in list(CASES) + list(SKIPPED):
        marks = []
        if name in SKIPPED:
            marks.append(pytest.mark.skip(reason=SKIPPED[name]))
        elif name in KNOWN_FAILURES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[name]))
        yield pytest.param(name, marks=marks, id=name)


def test_known_failures_are_cases():
    """A KNOWN_FAILURES entry that names no runnable case is stale (renamed, or now skipped)."""
    stale = sorted(set(KNOWN_FAILURES) - set(CASES))
    assert not stale, f"KNOWN_FAILURES entries that are not runnable cases: {stale}"


# -- the test ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(_params()))
def test_node_case(name: str, tmp_path: Path):
    case = CASES[name]
    model_path = tmp_path / "model.onnx"
    onnx.save(case.model, str(model_path))
    in_names = [i.name for i in case.model.graph.input]
    out_names = [o.name for o in case.model.graph.output]
    for k, (inputs, expected) in enumerate(case.data_sets):
        assert len(inputs) == len(in_names) and len(expected) == len(out_names), "data set does not fit the graph"
        feeds = tmp_path / f"inputs{k}.npz"
        saved = tmp_path / f"outputs{k}.npz"
        np.savez(feeds, **{n: np.asarray(a) for n, a in zip(in_names, inputs)})
        cmd = ["validate", str(model_path), "--inputs", str(feeds), "--save-outputs", str(saved), "--atol", str(ATOL)]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(cmd)
        log = f"$ webjit {' '.join(cmd)}\n--- exit {code}; stdout:\n{out.getvalue()}\n--- stderr:\n{err.getvalue()}"
        assert code in (0, 1), log
        assert saved.is_file(), f"no {saved.name} written\n{log}"
        with np.load(saved, allow_pickle=False) as f:
            got = {n: f[n] for n in f.files}
        assert sorted(got) == sorted(out_names), f"saved outputs {sorted(got)}, expected {sorted(out_names)}\n{log}"
        problems = [m for n, w in zip(out_names, expected) if (m := mismatch(n, got[n], w, ATOL, RTOL))]
        assert not problems, "webjit differs from ONNX's expected outputs:\n  " + "\n  ".join(problems) + "\n" + log
        # validate compared with onnxruntime too: it must agree (exit 0), not just with ONNX's reference data
        assert code == 0, f"validate reports a mismatch with onnxruntime\n{log}"
