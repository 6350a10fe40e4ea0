"""Quantized MiniLM bundles (`webjit build` of transformers.js' model_quantized.onnx and model_q4.onnx) in headless
Chromium, on WebAssembly (one thread) and on WebGPU (SwiftShader where there is no GPU), against onnxruntime's
outputs on the same file (the bundle's reference). Their weights stay quantized in the shards: a quarter (int8) and
under a sixth (4-bit values with float32 block scales) of the float32 bytes of the quantized matmuls.

Tolerances are those of tests/models/test_quantized_minilm.py, which explains them: q4 computes in float32 as
onnxruntime does; q8 quantizes activations at run time, where the last bit of a float decides a rounding step."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_fp16_weights import RUN_REFERENCE
from test_browser_runtime import reference

import demo_models
from demo_models import precisions
from e2e import browser as harness
from e2e.browser import run

pytestmark = [pytest.mark.e2e, pytest.mark.models]

OPTIONS = [{"executionProviders": ["wasm"], "wasm": {"numThreads": 1}},
           {"executionProviders": ["webgpu"], "tuning": False}]


@pytest.fixture(scope="session", params=["q8", "q4"])
def quantized(request, tmp_path_factory):
    from webjit.bundle import build
    form = request.param
    path = build(precisions.get("minilm", form), tmp_path_factory.mktemp(f"minilm-{form}") / "bundle",
                 values=demo_models.sample_inputs("minilm", seq=32))
    return form, path


@pytest.fixture
def page(chromium, quantized, serve):
    context = chromium.new_context()
    yield harness.open_page(context, serve(quantized[1]))
    context.close()


def test_quantized_matmul_weights_are_stored_packed(quantized):
    form, bundle = quantized
    tensors = json.loads((bundle / "manifest.json").read_text())["weights"]["tensors"]
    packed = [t for t in tensors if t.get("packs") in ("int8", "uint4")]
    assert len(packed) == 36 and all(t["dtype"] == "uint32" for t in packed)
    values = 6 * (4 * 384 * 384 + 2 * 384 * 1536)  # the quantized matmuls' weights
    assert sum(t["bytes"] for t in packed) == values * (1 if form == "q8" else 0.5)


@pytest.mark.parametrize("options", OPTIONS, ids=["wasm", "webgpu"])
def test_quantized_minilm_matches_onnxruntime_on_the_same_file(page, quantized, options):
    form, bundle = quantized
    want = reference(bundle, "outputs")["last_hidden_state"]
    got = run(page, RUN_REFERENCE, options)
    assert got["ep"] == options["executionProviders"][0]
    y = np.array(got["data"], np.float32).reshape(want.shape)
    err, span = float(np.abs(y - want).max()), float(want.max() - want.min())
    a, b = y.ravel().astype(np.float64), want.ravel().astype(np.float64)
    cosine = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    if form == "q4":
        assert err <= 1e-5 * span and cosine >= 0.9999, f"max abs error {err:.3e}, cosine {cosine}"
    else:
        assert err <= 0.03 * span and cosine >= 0.998, f"max abs error {err:.3e}, cosine {cosine}"
