"""`webjit build --weights fp16` in headless Chromium: the all-MiniLM-L6-v2 bundle at seq 128 with its float32
weights stored as float16, widened back to float32 on load, on WebAssembly (one thread) and on WebGPU (SwiftShader
where there is no GPU).

Rounding the weights changes the outputs, so the expected values are onnxruntime's, on the same model with its
float32 initializers rounded through float16 the way the build rounds the weights (round to nearest even). Scalar
initializers stay float32: the compiler writes them into the kernels as float32 literals, never into the shards (the
GELU's sqrt(2), the attention scale, the mask's fill value); so does an initializer beyond float16's range, which
the build would keep as float32."""
from __future__ import annotations

import json

import numpy as np
import pytest
from browser_checks import ATOL, RUN_REFERENCE, reference

import demo_models
from e2e import browser as harness
from e2e.browser import run

pytestmark = [pytest.mark.e2e, pytest.mark.models]

MODEL = "minilm"
FP16_MAX = float(np.finfo(np.float16).max)

def shard_bytes(bundle) -> int:
    m = json.loads((bundle / "manifest.json").read_text())
    return sum(m["files"][s["file"]]["bytes"] for s in m["weights"]["shards"])


@pytest.fixture(scope="session")
def fp16_bundle(tmp_path_factory):
    from webjit.bundle import build
    if not (demo_models.cache_dir() / MODEL / "model.onnx").is_file():
        pytest.importorskip("torch", reason="exporting the demo model needs the export extra")
    return build(demo_models.get(MODEL), tmp_path_factory.mktemp("minilm-fp16") / "bundle",
                 values=demo_models.sample_inputs(MODEL), weights="fp16")


@pytest.fixture(scope="session")
def rounded_reference(fp16_bundle) -> np.ndarray:
    """onnxruntime's last_hidden_state for the bundle's sample inputs, with the initializers rounded to float16."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    model = onnx.load(str(demo_models.get(MODEL)))
    for init in model.graph.initializer:
        values = numpy_helper.to_array(init)
        if values.dtype != np.float32 or values.size <= 1:
            continue
        finite = values[np.isfinite(values)]
        if not (finite.size and np.abs(finite).max() > FP16_MAX):
            init.CopyFrom(numpy_helper.from_array(values.astype(np.float16).astype(np.float32), init.name))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = reference(fp16_bundle, "inputs")
    feeds = {i.name: inputs[i.name] for i in session.get_inputs()}
    want = session.run(["last_hidden_state"], feeds)[0]
    unrounded = reference(fp16_bundle, "outputs")["last_hidden_state"]  # onnxruntime on the float32 weights
    assert np.max(np.abs(want - unrounded)) > 10 * ATOL, "rounding the weights should show at the tolerance"
    return want


@pytest.fixture
def fp16_page(chromium, fp16_bundle, serve):
    context = chromium.new_context()
    yield harness.open_page(context, serve(fp16_bundle))
    context.close()


def test_an_fp16_bundle_stores_float32_weights_in_at_most_55_percent_of_the_fp32_bytes(fp16_bundle, minilm_bundle):
    m = json.loads((fp16_bundle / "manifest.json").read_text())
    assert m["weights"]["format"] == "fp16"
    assert all(w.get("stored") == "float16" for w in m["weights"]["tensors"] if w["dtype"] == "float32")
    assert shard_bytes(fp16_bundle) <= 0.55 * shard_bytes(minilm_bundle), \
        f"{shard_bytes(fp16_bundle)} bytes of shards, against {shard_bytes(minilm_bundle)} as fp32"


@pytest.mark.parametrize("options", [{"executionProviders": ["wasm"], "wasm": {"numThreads": 1}},
                                     {"executionProviders": ["webgpu"], "tuning": False}],
                         ids=["wasm", "webgpu"])
def test_minilm_with_fp16_weights_matches_onnxruntime_on_the_same_weights_rounded_to_float16(
        fp16_page, rounded_reference, options):
    got = run(fp16_page, RUN_REFERENCE, options)
    assert got["ep"] == options["executionProviders"][0]
    assert got["type"] == "float32" and got["dims"] == list(rounded_reference.shape)
    err = float(np.max(np.abs(np.array(got["data"], np.float32).reshape(rounded_reference.shape) - rounded_reference)))
    assert err <= ATOL, f"max abs error {err:.3e} against onnxruntime with float16-rounded weights"
