"""float16 models, as onnxruntime's converter writes them (float16 weights and activations, Casts at the float32
inputs and outputs, appended after the nodes that read them): they compile as float32 graphs, match onnxruntime run
on the same file on both backends within float16's precision, and their bundles store the weights as the file's own
float16 bytes."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnxruntime.transformers.float16 import convert_float_to_float16

from helpers import check_op, compile_model, f32, make_model, node, reference
from wasm.check import check_wasm

pytestmark = pytest.mark.native


def block(rng) -> tuple[onnx.ModelProto, dict]:
    """A transformer block's worth of ops: MatMul + bias + GELU, LayerNorm, Softmax, a residual."""
    feeds = {"x": f32(rng, 2, 5, 24)}
    nodes = [node("MatMul", ["x", "w1"], ["m"]), node("Add", ["m", "b1"], ["a"]), node("Gelu", ["a"], ["g"]),
             node("MatMul", ["g", "w2"], ["m2"]), node("Add", ["m2", "x"], ["r"]),
             node("LayerNormalization", ["r", "gamma", "beta"], ["ln"], axis=-1),
             node("Softmax", ["ln"], ["y"], axis=-1)]
    inits = {"w1": f32(rng, 24, 40, scale=0.2), "b1": f32(rng, 40), "w2": f32(rng, 40, 24, scale=0.2),
             "gamma": f32(rng, 24), "beta": f32(rng, 24)}
    fp32 = make_model(nodes, feeds, {"y": np.float32}, inits, opset=20)
    return convert_float_to_float16(fp32, keep_io_types=True), feeds


def test_the_converter_appends_its_input_casts_after_their_readers():
    model, _ = block(np.random.default_rng(0))
    made_at = {o: i for i, n in enumerate(model.graph.node) for o in n.output}
    late = [(i, x) for i, n in enumerate(model.graph.node) for x in n.input if made_at.get(x, -1) > i]
    assert late, "the file is out of order, as real fp16 files are (so the tests below see that order)"


def test_a_float16_block_matches_onnxruntime_on_both_backends(tmp_path):
    from onnxruntime.transformers.onnx_model import OnnxModel
    from webjit.native import WgpuRunner
    from webjit.native.wasm_runner import WasmRunner
    model, feeds = block(np.random.default_rng(1))
    want = reference(model, feeds)["y"]
    # onnxruntime rounds every intermediate to float16; webjit computes in float32 from the same weights
    atol = 4e-3 * float(np.abs(want).max())
    plan = compile_model(model, feeds)  # the file as the converter wrote it, out of order
    for runner in (WgpuRunner(plan), WasmRunner(plan)):
        got = runner.run(feeds)["y"]
        assert float(np.abs(got - want).max()) <= atol, type(runner).__name__
    sorted_model = OnnxModel(model)
    sorted_model.topological_sort()  # onnx's checker, which check_op runs, wants the order
    check_op(sorted_model.model, feeds, atol=atol, rtol=0)
    check_wasm(sorted_model.model, feeds, atol=atol, rtol=0)


def test_a_float16_model_bundle_stores_the_files_own_float16_weights(tmp_path):
    from webjit.bundle import build
    model, feeds = block(np.random.default_rng(2))
    onnx.save(model, tmp_path / "m.onnx")
    out = build(tmp_path / "m.onnx", tmp_path / "bundle", values=feeds, reference=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights"]["format"] == "fp16"
    stored = {t["name"]: t for t in manifest["weights"]["tensors"]}
    shard = (out / manifest["weights"]["shards"][0]["file"]).read_bytes()
    w1 = next(i for i in model.graph.initializer if i.name == "w1")
    rec = stored["w1"]
    assert rec.get("stored") == "float16"
    part = rec["parts"][0]
    assert shard[part["offset"]:part["offset"] + part["bytes"]] == onnx.numpy_helper.to_array(w1).tobytes()
