"""The compiler as a page runs it (webjit/inbrowser.py): without numpy, onnx, protobuf, wasmtime or wgpu, and with
the same bytes as a build with all of them installed, whatever the process's hash seed.

Pyodide itself is exercised by tests/e2e/test_compile_in_browser.py; here a CPython subprocess that cannot import
those packages stands in for it, so a stray `import numpy` on the compile path fails in seconds."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import webjit.bundle as bundle
from webjit.inbrowser import compile_files, external_data

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ["numpy", "onnx", "google", "wasmtime", "wgpu", "onnxruntime"]
ISOLATED = f"""
import hashlib, json, sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(name + " is not available here")
sys.meta_path.insert(0, Blocked())
from webjit.inbrowser import compile_files
files = compile_files(sys.argv[1], json.loads(sys.argv[2]))
print(json.dumps({{p: hashlib.sha256(d).hexdigest() for p, d in files.items()}}))
"""


@pytest.fixture(scope="module")
def bert_like(tmp_path_factory) -> Path:
    """What exporters write: a symbolic [batch, seq, 8] input, shape logic (Shape, Gather, Concat, Reshape), a
    weight transposed in the graph, a scale computed from a shape (Sqrt of a Cast), a causal mask from Trilu,
    and the weights in an external data file."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((16, 8)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "b")
    i = lambda *v: np.array(v, np.int64)  # noqa: E731
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "one_scalar"], ["seq"], axis=0),
        helper.make_node("Unsqueeze", ["seq", "zero"], ["seq1"]),
        helper.make_node("Concat", ["minus1", "seq1", "two", "four"], ["target"], axis=0),
        helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "wt"], ["h0"]),
        helper.make_node("Add", ["h0", "b"], ["h"]),
        helper.make_node("Reshape", ["h", "target"], ["heads"]),
        helper.make_node("Gather", ["s", "two_scalar"], ["width"], axis=0),
        helper.make_node("Cast", ["width"], ["widthf"], to=TensorProto.FLOAT),
        helper.make_node("Sqrt", ["widthf"], ["scale"]),
        helper.make_node("Div", ["heads", "scale"], ["scaled"]),
        helper.make_node("Concat", ["seq1", "seq1"], ["s2"], axis=0),
        helper.make_node("ConstantOfShape", ["s2"], ["ones"], value=numpy_helper.from_array(np.ones(1, bool))),
        helper.make_node("Trilu", ["ones"], ["causal"], upper=0),
        helper.make_node("Cast", ["causal"], ["causalf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["causalf", "one"], ["counts"], keepdims=0),
        helper.make_node("Mul", ["scaled", "mean_w"], ["y"]),
    ]
    inits = [w, b, numpy_helper.from_array(i(1), "one"), numpy_helper.from_array(i(0), "zero"),
             numpy_helper.from_array(i(-1), "minus1"), numpy_helper.from_array(i(2), "two"),
             numpy_helper.from_array(i(4), "four"), numpy_helper.from_array(np.array(2, np.int64), "two_scalar"),
             numpy_helper.from_array(np.array(1, np.int64), "one_scalar"),
             numpy_helper.from_array(np.float32([0.5, 2.0, -1.0, 3.0]), "mean_w")]
    graph = helper.make_graph(
        nodes, "bert_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("counts", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder = tmp_path_factory.mktemp("bert_like")
    onnx.save(model, str(folder / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.data", size_threshold=64)
    return folder / "model.onnx"


def digests(files: dict[str, bytes]) -> dict[str, str]:
    return {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}


def isolated(model: Path, shapes: dict, seed: str) -> dict[str, str]:
    proc = subprocess.run([sys.executable, "-c", ISOLATED, str(model), json.dumps(shapes)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={"PYTHONHASHSEED": seed,
                                                                            "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_the_compiler_runs_without_numpy_onnx_or_wasmtime_and_gives_the_same_bytes(bert_like):
    shapes = {"x": [1, 6, 8]}
    here = digests(compile_files(bert_like, shapes))
    assert "manifest.json" in here and any(p.startswith("wasm/") for p in here)
    assert any(p.startswith("kernels/") for p in here)
    for seed in ("1", "2"):
        assert isolated(bert_like, shapes, seed) == here


def test_the_in_memory_bundle_is_the_bundle_build_writes(bert_like, tmp_path):
    out = bundle.build(bert_like, tmp_path / "b", {"x": (1, 6, 8)}, reference=False)
    on_disk = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert on_disk == compile_files(bert_like, {"x": [1, 6, 8]})


def test_shape_logic_folds_away_to_the_values_onnxruntime_computes(bert_like):
    ort = pytest.importorskip("onnxruntime")
    files = compile_files(bert_like, {"x": [2, 5, 8]})
    manifest = json.loads(files["manifest.json"])
    assert [k["kind"] for k in manifest["kernels"]].count("matmul") == 1
    x = np.random.default_rng(1).standard_normal((2, 5, 8)).astype(np.float32)
    want = dict(zip(["y", "counts"], ort.InferenceSession(str(bert_like)).run(None, {"x": x})))
    assert manifest["outputs"][0]["shape"] == list(want["y"].shape)
    counts = manifest["outputs"][1]  # the causal mask's row counts are known at compile time: a constant file
    got = np.frombuffer(files[counts["from"]["const"]], np.float32).reshape(counts["shape"])
    np.testing.assert_array_equal(got, want["counts"])


def test_external_data_names_the_files_a_model_needs(bert_like):
    assert external_data(bert_like) == ["weights.data"]


def test_progress_reports_each_stage(bert_like):
    seen = []
    compile_files(bert_like, {"x": [1, 6, 8]}, progress=lambda stage, done, total: seen.append((stage, done, total)))
    stages = {s for s, _, _ in seen}
    assert {"weights", "wasm", "kernels"} <= stages, stages
    assert all(0 < d <= t for _, d, t in seen)
