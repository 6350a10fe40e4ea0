"""`webjit validate` on bad input, end to end through a subprocess.

The contract (webjit/cli.py, README): a problem with what the user gave (model file, external data, ops, shapes,
inputs, options) exits with status 2 and prints one line on stderr, `webjit: error: ...`, naming the node, op,
input or file at fault, and never a Python traceback. Status 1 is reserved for outputs that differ from
onnxruntime.

Most of these errors are raised before a GPU device is created, so they run without a WebGPU adapter; the tests
whose command gets as far as compiling and running the model are marked `native`.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper as oh, numpy_helper as nh

OPSET = 17
TIMEOUT_S = 120


# -- helpers -------------------------------------------------------------------------------------------------------
def validate(*args) -> subprocess.CompletedProcess:
    """`webjit validate ARGS` (paths absolute), run from a scratch directory, not from the checkout."""
    return subprocess.run([sys.executable, "-m", "webjit", "validate", *map(str, args)],
                          check=False, capture_output=True, text=True, timeout=TIMEOUT_S,
                          cwd=tempfile.gettempdir())


def user_error(proc: subprocess.CompletedProcess) -> str:
    """Assert the run ended as a user error (status 2, one stderr line, no traceback); return the message."""
    shown = f"exit {proc.returncode}\n--- stdout:\n{proc.stdout}\n--- stderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, shown
    assert proc.returncode == 2, shown
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}\n{shown}"
    assert lines[0].startswith("webjit: error: "), shown
    return lines[0]


def tensor(name: str, dims, elem=TensorProto.FLOAT):
    return oh.make_tensor_value_info(name, elem, dims)


def save_model(path: Path, nodes, inputs, outputs, inits=(), **save_kw) -> Path:
    graph = oh.make_graph(nodes, "bad_input", inputs, outputs, list(inits))
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", OPSET)], ir_version=9)
    onnx.checker.check_model(model, full_check=True)  # the model itself is valid ONNX: only webjit may object
    onnx.save(model, str(path), **save_kw)
    return path


def relu_model(tmp_path: Path, dims=(1, "seq", 4)) -> Path:
    return save_model(tmp_path / "relu.onnx", [oh.make_node("Relu", ["x"], ["y"], name="relu")],
                      [tensor("x", list(dims))], [tensor("y", list(dims))])


def add_model(tmp_path: Path) -> Path:
    return save_model(tmp_path / "add.onnx", [oh.make_node("Add", ["a", "b"], ["y"], name="add")],
                      [tensor("a", [2, 3]), tensor("b", [2, 3])], [tensor("y", [2, 3])])


def supported_list(msg: str) -> set[str]:
    assert "Supported ops: " in msg, msg
    return {op.strip().rstrip(".") for op in msg.split("Supported ops: ", 1)[1].split(",")}


# -- (1) unsupported op on data known only at run time --------------------------------------------------------------
def test_unsupported_op_det(tmp_path):
    model = save_model(tmp_path / "det.onnx", [oh.make_node("Det", ["x"], ["y"], name="my_det")],
                       [tensor("x", [3, 3])], [tensor("y", [])])
    feeds = tmp_path / "in.npz"
    np.savez(feeds, x=np.eye(3, dtype=np.float32) * 2)
    msg = user_error(validate(model, "--inputs", feeds))
    assert "'my_det'" in msg and "Det" in msg and f"opset {OPSET}" in msg, msg
    ops = supported_list(msg)
    assert {"MatMul", "Softmax", "LayerNormalization", "Add", "Reshape"} <= ops and "Det" not in ops, msg


def test_unsupported_op_topk_without_inputs(tmp_path):
    """The same without --inputs: the generated-inputs path reports it the same way."""
    model = save_model(
        tmp_path / "topk.onnx", [oh.make_node("TopK", ["x", "k"], ["v", "i"], name="my_topk", axis=-1)],
        [tensor("x", [3, 4])], [tensor("v", [3, 2]), tensor("i", [3, 2], TensorProto.INT64)],
        [nh.from_array(np.array([2], dtype=np.int64), "k")])
    msg = user_error(validate(model))
    assert "'my_topk'" in msg and "TopK" in msg and f"opset {OPSET}" in msg, msg
    assert "MatMul" in supported_list(msg) and "TopK" not in supported_list(msg), msg


def test_every_unsupported_op_in_one_line(tmp_path):
    """A model with several ops webjit lacks, one inside an If branch, one in another domain: one line names each
    op once, with its domain, its opset and the first node that uses it, and exits with status 2."""
    then = oh.make_graph([oh.make_node("Det", ["m"], ["r"], name="det_in_branch")], "then", [], [tensor("r", [])])
    other = oh.make_graph([oh.make_node("Neg", ["s"], ["r2"])], "else", [], [tensor("r2", [])])
    nodes = [oh.make_node("Det", ["m"], ["d1"], name="det_first"), oh.make_node("Det", ["m"], ["d2"], name="det_again"),
             oh.make_node("Hardmax", ["m"], ["h"], name="my_hardmax"),
             oh.make_node("Inverse", ["m"], ["inv"], name="my_inverse", domain="com.microsoft"),
             oh.make_node("ReduceSum", ["d1", "d2"], ["s"], keepdims=0),
             oh.make_node("Greater", ["s", "s"], ["c"]),
             oh.make_node("If", ["c"], ["y"], name="my_if", then_branch=then, else_branch=other)]
    graph = oh.make_graph(nodes, "many", [tensor("m", [3, 3])],
                          [tensor("y", []), tensor("h", [3, 3]), tensor("inv", [3, 3])])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", OPSET), oh.make_opsetid("com.microsoft", 1)],
                          ir_version=9)
    onnx.save(model, str(tmp_path / "many.onnx"))
    msg = user_error(validate(tmp_path / "many.onnx"))
    listed = msg.split("Supported ops: ")[0]
    assert f"Det (opset {OPSET}, first node 'det_first')" in listed, msg
    assert f"Hardmax (opset {OPSET}, first node 'my_hardmax')" in listed, msg
    assert "com.microsoft.Inverse (opset 1, first node 'my_inverse')" in listed, msg
    assert listed.count("Det (") == 1 and "det_again" not in listed and "det_in_branch" not in listed, msg
    assert "3 ops are not supported" in listed, msg


def test_if_on_a_condition_known_only_at_run_time(tmp_path):
    """webjit compiles one branch of an If, chosen at compile time: a condition computed from data is named."""
    def branch(op):
        return oh.make_graph([oh.make_node(op, ["x"], ["r"])], op, [], [tensor("r", [3])])
    nodes = [oh.make_node("ReduceSum", ["x"], ["s"], keepdims=0), oh.make_node("Greater", ["s", "zero"], ["c"]),
             oh.make_node("If", ["c"], ["y"], name="my_if", then_branch=branch("Relu"), else_branch=branch("Neg"))]
    model = save_model(tmp_path / "if.onnx", nodes, [tensor("x", [3])], [tensor("y", [3])],
                       [nh.from_array(np.array(0.0, dtype=np.float32), "zero")])
    msg = user_error(validate(model))
    assert "'my_if'" in msg and "If" in msg and "run time" in msg, msg


def test_dropout_in_training_mode(tmp_path):
    """A model exported in training mode keeps Dropout's randomness: webjit says so instead of running it as the
    identity (which would differ from onnxruntime)."""
    nodes = [oh.make_node("Dropout", ["x", "ratio", "training"], ["y"], name="my_dropout")]
    model = save_model(tmp_path / "dropout.onnx", nodes, [tensor("x", [2, 3])], [tensor("y", [2, 3])],
                       [nh.from_array(np.array(0.1, dtype=np.float32), "ratio"),
                        nh.from_array(np.array(True), "training")])
    msg = user_error(validate(model))
    assert "'my_dropout'" in msg and "training_mode" in msg, msg


# -- (2) not an ONNX file --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [np.random.default_rng(0).bytes(4096), b"hello, I am not a model\n", b""],
                         ids=["random_bytes", "text", "empty"])
def test_not_onnx(tmp_path, content):
    path = tmp_path / "junk.onnx"
    path.write_bytes(content)
    msg = user_error(validate(path))
    assert "junk.onnx" in msg and "not an ONNX model" in msg, msg


def test_model_file_missing(tmp_path):
    msg = user_error(validate(tmp_path / "nowhere.onnx"))
    assert "nowhere.onnx" in msg and "no such file" in msg, msg


# -- (3) external data file missing ----------------------------------------------------------------------------------
def test_external_data_missing(tmp_path):
    w = nh.from_array(np.ones((4, 4), np.float32), "w")
    model = save_model(tmp_path / "ext.onnx", [oh.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                       [tensor("x", [2, 4])], [tensor("y", [2, 4])], [w], save_as_external_data=True,
                       all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    assert (tmp_path / "w.bin").is_file()
    (tmp_path / "w.bin").unlink()
    msg = user_error(validate(model))
    assert "w.bin" in msg and "missing" in msg, msg


# -- (4) --shape contradicting the model -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape, words", [("x=1x8", ["rank 2", "[1, 'seq', 4]"]),          # rank 2, model rank 3
                                          ("x=2x8x4", ["[2, 8, 4]", "[1, 'seq', 4]"])],   # dim 0 fixed at 1
                         ids=["rank_mismatch", "fixed_dim_mismatch"])
def test_shape_contradicts_model(tmp_path, shape, words):
    msg = user_error(validate(relu_model(tmp_path), "--shape", shape))
    assert "'x'" in msg and all(w in msg for w in words), msg


# -- (5) --shape naming no input -------------------------------------------------------------------------------------
def test_shape_names_unknown_input(tmp_path):
    msg = user_error(validate(relu_model(tmp_path), "--shape", "nope=1x8x4"))
    assert "'nope'" in msg and "x" in msg.split("'nope'", 1)[1], msg  # names the bad input and the real ones


def test_shape_syntax_error(tmp_path):
    """argparse rejects it (usage + one error line): still status 2 and no traceback."""
    proc = validate(relu_model(tmp_path), "--shape", "x=1xfour")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "x=1xfour" in proc.stderr.strip().splitlines()[-1], proc.stderr


# -- (6) symbolic dims, no --shape and no --inputs -------------------------------------------------------------------
def test_symbolic_dims_need_shape(tmp_path):
    msg = user_error(validate(relu_model(tmp_path)))
    assert "'x'" in msg and "seq" in msg and "--shape" in msg, msg


# -- --inputs problems -----------------------------------------------------------------------------------------------
def test_inputs_file_missing(tmp_path):
    msg = user_error(validate(add_model(tmp_path), "--inputs", tmp_path / "nothere.npz"))
    assert "nothere.npz" in msg, msg


def test_inputs_name_unknown(tmp_path):
    feeds = tmp_path / "in.npz"
    np.savez(feeds, a=np.ones((2, 3), np.float32), b=np.ones((2, 3), np.float32), c=np.ones(3, np.float32))
    msg = user_error(validate(add_model(tmp_path), "--inputs", feeds))
    assert "'c'" in msg, msg


def test_inputs_shape_contradicts_model(tmp_path):
    feeds = tmp_path / "in.npz"
    np.savez(feeds, a=np.ones((2, 4), np.float32), b=np.ones((2, 4), np.float32))
    msg = user_error(validate(add_model(tmp_path), "--inputs", feeds))
    assert "'a'" in msg and "[2, 4]" in msg and "[2, 3]" in msg, msg


def test_inputs_file_is_npy_not_npz(tmp_path):
    feeds = tmp_path / "in.npy"
    np.save(feeds, np.ones((2, 3), np.float32))
    msg = user_error(validate(add_model(tmp_path), "--inputs", feeds))
    assert "in.npy" in msg, msg


@pytest.mark.native
def test_inputs_missing_one(tmp_path):
    feeds = tmp_path / "in.npz"
    np.savez(feeds, a=np.ones((2, 3), np.float32))
    msg = user_error(validate(add_model(tmp_path), "--inputs", feeds))
    assert "'b'" in msg, msg


@pytest.mark.native
def test_inputs_unsupported_dtype(tmp_path):
    feeds = tmp_path / "in.npz"
    np.savez(feeds, a=np.ones((2, 3)), b=np.ones((2, 3)))  # float64
    msg = user_error(validate(add_model(tmp_path), "--inputs", feeds))
    assert "'a'" in msg and "float64" in msg, msg


@pytest.mark.native
def test_inputs_dtype_contradicts_model(tmp_path):
    feeds = tmp_path / "in.npz"
    np.savez(feeds, a=np.ones((2, 3), np.int64), b=np.ones((2, 3), np.int64))  # the model declares float32
    msg = user_error(validate(add_model(tmp_path), "--inputs", feeds))
    assert "'a'" in msg and "int64" in msg and "float32" in msg, msg


# -- output options --------------------------------------------------------------------------------------------------
@pytest.mark.native
def test_save_outputs_into_missing_directory(tmp_path):
    msg = user_error(validate(add_model(tmp_path), "--save-outputs", tmp_path / "no" / "such" / "out.npz"))
    assert "out.npz" in msg, msg
