"""Shape classes (length buckets): parsing `--buckets`, the classes' order, padding and cropping (against numpy
slicing), the bundle's `dynamic` section, and the build refusing models whose outputs padding would change
(proved with onnxruntime) or whose output shapes cannot be cropped back."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper as oh, numpy_helper as nh

import webjit.bundle as bundle
from webjit.errors import WebjitError
from webjit.onnx_import import import_onnx
from webjit.shape_classes import bucketed_dims, classes, input_axes, resize

SEQ = 12


def model_file(tmp_path, tail: str = "per-token"):
    """ids [batch, seq], mask [batch, seq] -> y. per-token: y = embed(ids) @ W * mask, each token on its own (padding
    never reaches a real token). mean: y = the mean over seq of embed(ids) (padding changes it). flat: y is
    embed(ids) flattened to [batch, seq*8] (its shape cannot be cropped back per axis)."""
    rng = np.random.default_rng(0)
    inits = [nh.from_array(rng.standard_normal((20, 8)).astype(np.float32), "table"),
             nh.from_array(rng.standard_normal((8, 8)).astype(np.float32), "w")]
    nodes = [oh.make_node("Gather", ["table", "ids"], ["e"])]
    if tail == "per-token":
        nodes += [oh.make_node("MatMul", ["e", "w"], ["m"]), oh.make_node("Cast", ["mask"], ["mf"], to=1),
                  oh.make_node("Unsqueeze", ["mf", "axes"], ["mu"]), oh.make_node("Mul", ["m", "mu"], ["y"])]
        inits.append(nh.from_array(np.array([-1], np.int64), "axes"))
    elif tail == "mean":
        nodes += [oh.make_node("ReduceMean", ["e"], ["y"], axes=[1])]
    else:
        nodes += [oh.make_node("Flatten", ["e"], ["y"], axis=1)]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"]),
                                       oh.make_tensor_value_info("mask", TensorProto.INT64, ["batch", "seq"])],
                          [oh.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / f"{tail}.onnx"
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)], ir_version=8), str(path))
    return path


def feeds(seq=SEQ, batch=1):
    rng = np.random.default_rng(1)
    return {"ids": rng.integers(0, 20, (batch, seq)).astype(np.int64), "mask": np.ones((batch, seq), np.int64)}


def test_a_plain_list_buckets_the_one_wide_dim_and_gets_its_maximum_added(tmp_path):
    g = import_onnx(model_file(tmp_path))
    assert bucketed_dims(g, feeds(), ["4,8"]) == {"seq": [4, 8, SEQ]}
    assert bucketed_dims(g, feeds(), ["seq=8,4,8"]) == {"seq": [4, 8, SEQ]}
    assert bucketed_dims(g, feeds(batch=2), ["batch=1"]) == {"batch": [1, 2]}


@pytest.mark.parametrize("spec, message", [
    ("4,99", "sizes must lie between 1 and the maximum seq=12"),
    ("0,4", "sizes must lie between 1"),
    ("tokens=4", "no input has a dim named 'tokens'"),
    ("4,x", "expected sizes like 16,32,64"),
])
def test_bad_bucket_specs_are_refused_naming_what_is_wrong(tmp_path, spec, message):
    g = import_onnx(model_file(tmp_path))
    with pytest.raises(WebjitError, match=message):
        bucketed_dims(g, feeds(), [spec])


def test_a_plain_list_is_ambiguous_when_two_dims_are_wide(tmp_path):
    g = import_onnx(model_file(tmp_path))
    with pytest.raises(WebjitError, match=r"say which dim, as DIM=4 \(the inputs' dims: batch=2, seq=12\)"):
        bucketed_dims(g, feeds(batch=2), ["4"])


def test_classes_come_smallest_first_and_end_with_every_dim_at_its_maximum():
    got = classes({"batch": [1, 2], "seq": [4, 8]})
    assert got[-1] == {"batch": 2, "seq": 8}
    sizes = [c["batch"] * c["seq"] for c in got]
    assert sizes == sorted(sizes) and len(got) == 4


def test_resize_pads_with_the_pad_value_and_crops_like_numpy_slicing(tmp_path):
    g = import_onnx(model_file(tmp_path))
    f = feeds(seq=5, batch=2)
    padded = resize(f, g.inputs, input_axes(g), {"seq": 9, "batch": 3}, pad=7)
    want = np.full((3, 9), 7, np.int64)
    want[:2, :5] = f["ids"]
    np.testing.assert_array_equal(padded["ids"], want)
    np.testing.assert_array_equal(resize(padded, g.inputs, input_axes(g), {"seq": 5, "batch": 2})["ids"], f["ids"])


def test_a_bucketed_bundle_holds_one_class_per_size_and_its_largest_is_the_plain_bundle(tmp_path):
    path = model_file(tmp_path)
    m = json.loads((bundle.build(path, tmp_path / "b", values=feeds(), buckets=["4,8"]) / "manifest.json").read_text())
    plain = json.loads((bundle.build(path, tmp_path / "p", values=feeds()) / "manifest.json").read_text())
    d = m["dynamic"]
    assert d["dims"] == [{"name": "seq", "max": SEQ, "buckets": [4, 8, SEQ]}]
    assert d["inputs"] == [[None, 0], [None, 0]] and d["outputs"] == [[None, 0, None]] and d["pad"] == [0, 0]
    assert [c["dims"] for c in d["classes"]] == [[4], [8]]
    assert [c["outputs"][0]["shape"] for c in d["classes"]] == [[1, 4, 8], [1, 8, 8]]
    for key in ("inputs", "outputs", "pool"):
        assert m[key] == plain[key]
    assert [[v["file"] for v in k["variants"]] for k in m["kernels"]] == \
        [[v["file"] for v in k["variants"]] for k in plain["kernels"]]
    assert len(m["weights"]["tensors"]) == len(plain["weights"]["tensors"])  # shared, not stored per class
    assert len(m["wasm"]["modules"]) == 4 and all(len(c["wasm"]["modules"]) == 4 for c in d["classes"])


def test_every_class_has_its_own_load_time_kernels_writing_loaded_buffers_of_its_own(tmp_path):
    from native.test_load_time import load_time_model
    model, values = load_time_model(rows=4)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "rows"
    path = tmp_path / "load_time.onnx"
    onnx.save(model, str(path))
    out = bundle.build(path, tmp_path / "b", values=values, buckets=["rows=2"])
    m = json.loads((out / "manifest.json").read_text())
    sections = [*m["dynamic"]["classes"], m]
    assert [c["dims"] for c in m["dynamic"]["classes"]] == [[2]]
    assert m["load"] >= 4 and [c["load"] for c in sections] == [m["load"]] * 2
    written = [{b["index"] for k in c["kernels"][:c["load"]] for b in k["bindings"] if b["access"] == "read-write"}
               for c in sections]
    assert not written[0] & written[1] and written[0] | written[1] == set(range(len(m["loaded"])))
    for c, own in zip(sections, written):
        assert {b["index"] for k in c["kernels"] for b in k["bindings"] if b["buffer"] == "loaded"} == own


def test_a_model_whose_outputs_padding_changes_is_refused_naming_the_output(tmp_path):
    out = tmp_path / "b"
    with pytest.raises(WebjitError, match=r"padding seq from 1 to 8 changes output 'y' .* without --buckets"):
        bundle.build(model_file(tmp_path, "mean"), out, values=feeds(), buckets=["8"])
    assert not out.exists()


def test_an_output_whose_shape_cannot_be_cropped_back_is_refused(tmp_path):
    with pytest.raises(WebjitError, match=r"output 'y': axis 1 has sizes \[32, 96\] across the buckets"):
        bundle.build(model_file(tmp_path, "flat"), tmp_path / "b", values=feeds(), buckets=["4"])


def test_the_cli_refuses_bad_buckets_with_one_line_and_exit_2(tmp_path):
    path = model_file(tmp_path)
    np.savez(tmp_path / "in.npz", **feeds())
    r = subprocess.run([sys.executable, "-m", "webjit", "build", str(path), "-o", str(tmp_path / "b"),
                        "--inputs", str(tmp_path / "in.npz"), "--buckets", "4,64"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "webjit: error: --buckets 4,64: sizes must lie between 1 and the maximum seq=12 " \
                               "(the maximum comes from --shape or --inputs)"
