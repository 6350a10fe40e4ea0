"""onnxruntime's contrib ops (com.microsoft), which its transformer optimizer writes: each case is a small graph
run by webjit on both native backends (wgpu on lavapipe, wasmtime) against onnxruntime on the same graph; then the
real optimized files: all-MiniLM-L6-v2 (SkipLayerNormalization, BiasGelu) and BERT-base from the TorchScript
exporter (EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper as oh, numpy_helper as nh

from helpers import compile_model, f32, reference

pytestmark = pytest.mark.native
MS = "com.microsoft"


def contrib_model(nodes, feeds, outputs, inits=None):
    graph = oh.make_graph(nodes, "contrib",
                          [oh.make_tensor_value_info(n, oh.np_dtype_to_tensor_dtype(a.dtype), a.shape)
                           for n, a in feeds.items()],
                          [oh.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
                          [nh.from_array(a, n) for n, a in (inits or {}).items()])
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17), oh.make_opsetid(MS, 1)], ir_version=9)


def check_both(model, feeds, atol=1e-4):
    from webjit.native import WgpuRunner
    from webjit.native.wasm_runner import WasmRunner
    want = reference(model, feeds)
    plan = compile_model(model, feeds)
    assert not any(k.kind == "unknown" for k in plan.kernels)
    for runner in (WgpuRunner(plan), WasmRunner(plan)):
        got = runner.run(feeds)
        for name, w in want.items():
            err = float(np.abs(got[name] - w).max())
            assert err <= atol, f"{type(runner).__name__} {name}: max abs error {err:.2e}"
    return plan


def ms(op, inputs, outputs, **attrs):
    return oh.make_node(op, inputs, outputs, domain=MS, **attrs)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("beta", [True, False])
def test_skip_layer_normalization(rng, bias, beta):
    feeds = {"x": f32(rng, 2, 5, 24), "skip": f32(rng, 2, 5, 24)}
    inits = {"gamma": f32(rng, 24), **({"beta": f32(rng, 24)} if beta else {}), **({"bias": f32(rng, 24)} if bias else {})}
    inputs = ["x", "skip", "gamma", "beta" if beta else "", "bias" if bias else ""]
    model = contrib_model([ms("SkipLayerNormalization", inputs, ["y", "", "", "sum"], epsilon=1e-5)], feeds,
                          ["y", "sum"], inits)
    plan = check_both(model, feeds)
    assert "norm" in {k.kind for k in plan.kernels}


def test_skip_simplified_and_simplified_layer_normalization(rng):
    feeds = {"x": f32(rng, 3, 20), "skip": f32(rng, 3, 20)}
    model = contrib_model([ms("SkipSimplifiedLayerNormalization", ["x", "skip", "g"], ["a"], epsilon=1e-6),
                           oh.make_node("SimplifiedLayerNormalization", ["a", "g2"], ["y"], epsilon=1e-5, axis=-1)], feeds,
                          ["y"], {"g": f32(rng, 20), "g2": f32(rng, 20)})
    plan = check_both(model, feeds)
    assert [k.kind for k in plan.kernels].count("norm") == 2, "both become the RMSNorm kernel"


@pytest.mark.parametrize("op,attrs", [("BiasGelu", {}), ("FastGelu", {}), ("Gelu", {}), ("QuickGelu", {"alpha": 1.5})])
def test_gelu_family(rng, op, attrs):
    feeds = {"x": f32(rng, 4, 33)}
    inputs = ["x", "b"] if op in ("BiasGelu", "FastGelu") else ["x"]
    model = contrib_model([ms(op, inputs, ["y"], **attrs)], feeds, ["y"], {"b": f32(rng, 33)} if "b" in inputs else {})
    check_both(model, feeds)


def test_embed_layer_normalization_then_attention_with_its_mask(rng):
    b, s, h, heads = 2, 7, 24, 3
    ids = rng.integers(0, 50, (b, s)).astype(np.int32)
    mask = np.ones((b, s), np.int32)
    mask[1, 5:] = 0
    feeds = {"ids": ids, "segments": np.zeros((b, s), np.int32), "mask": mask}
    inits = {"word": f32(rng, 50, h), "pos": f32(rng, 16, h), "seg": f32(rng, 2, h), "gamma": f32(rng, h),
             "beta": f32(rng, h), "w": f32(rng, h, 3 * h, scale=0.3), "bias": f32(rng, 3 * h)}
    nodes = [ms("EmbedLayerNormalization", ["ids", "segments", "word", "pos", "seg", "gamma", "beta", "mask"],
                ["emb", "mask_index"], epsilon=1e-12),
             ms("Attention", ["emb", "w", "bias", "mask_index"], ["y"], num_heads=heads)]
    plan = check_both(contrib_model(nodes, feeds, ["y"], inits), feeds)
    assert "attention" in {k.kind for k in plan.kernels}, "Attention becomes the one-pass attention kernel"


def test_a_contrib_op_webjit_lacks_is_refused_with_its_domain(rng, tmp_path):
    import webjit
    from webjit.errors import UnsupportedOp
    feeds = {"x": f32(rng, 2, 4)}
    model = contrib_model([ms("Inverse", ["x"], ["y"])], feeds, ["y"])
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOp, match=r"op is not supported: com\.microsoft\.Inverse \(opset 1, first node"):
        webjit.compile(tmp_path / "m.onnx", values=feeds)


@pytest.mark.models
@pytest.mark.parametrize("name,fused", [("minilm", {"SkipLayerNormalization", "BiasGelu"}),
                                        ("bert_base", {"EmbedLayerNormalization", "Attention"})])
def test_onnxruntime_optimized_models_match_onnxruntime(name, fused):
    import demo_models
    from demo_models import precisions
    path = precisions.get(name, "optimized")
    ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node if n.domain == MS}
    assert fused <= ops, f"the optimizer wrote {sorted(ops)}"
    feeds = demo_models.sample_inputs(name, seq=32)
    check_both(onnx.load(str(path)), feeds)
