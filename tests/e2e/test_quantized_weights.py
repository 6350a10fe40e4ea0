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
from browser_checks import RUN_REFERENCE, reference

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
    sums = 6 * 4 * (5 * 384 + 1536)                 # q8: each int8 matrix also holds its column sums (int32)
    assert sum(t["bytes"] for t in packed) == (values + sums if form == "q8" else values * 0.5)


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
        assert err <= 0.03 * span and cosine >= 0.9995, f"max abs error {err:.3e}, cosine {cosine}"


# A q8 layer alone, its int32 sums as the output, after tuning: the winner must give onnxruntime's integers. Then
# where the engine's dot reads unsigned bytes, each variant in `pin` in turn, loaded from the cache as a later visit would (whichever is fastest, each of them
# must give them too).
RUN_INTEGER = """async ({webjit, create}, pin) => {
    const options = {executionProviders: ['wasm'], wasm: {numThreads: 1}, cache: false, tuning: {budgetMs: 60000}};
    const session = await create('/', options);
    const ref = await webjit.loadReference(session.bundle);
    const matmul = (report) => report.kernels.find((r) => r.kernel.endsWith('_matmul'));
    const k = matmul(session.tuningReport);
    const out = {wasm: session.wasm, tried: Object.keys(k.times), winner: k.winner,
                 data: Array.from((await session.run(ref.inputs)).y.data), pinned: {}};
    const cache = await import('/web/cache.js');
    const { wasmDevice } = await import('/web/wasm/choices.js');
    const { simd, unsignedDot, threads } = session.wasm;
    const device = wasmDevice(simd, threads, navigator.hardwareConcurrency || 1, unsignedDot);
    for (const variant of unsignedDot ? pin : []) {
      const winners = Object.fromEntries(session.tuningReport.kernels.map((r) => [r.kernel, r === k ? variant : r.winner]));
      await cache.writeEntry(cache.cacheKey(session.bundle.hash, device),
                             cache.makeEntry(session.bundle.hash, device, [winners], {}));
      const later = await create('/', {...options, cache: true});
      out.pinned[variant] = {source: later.tuningReport.source, winner: matmul(later.tuningReport).winner,
                             data: Array.from((await later.run(ref.inputs)).y.data)};
    }
    return out;
}"""

# Before any script of the page: the engine's relaxed dot looks like one that does not read unsigned bytes (the
# runtime's probe module, the only one this small, gets an instance whose probe says so).
NO_UNSIGNED_DOT = """{
  const Real = WebAssembly.Instance;
  WebAssembly.Instance = function (module, imports) {
    const exports = WebAssembly.Module.exports(module);
    if (exports.length === 1 && exports[0].name === 'probe') return {exports: {probe: () => -65536}};
    return new Real(module, imports);
  };
}"""


@pytest.fixture(scope="session")
def integer_bundle(tmp_path_factory):
    """DynamicQuantizeLinear -> MatMulInteger (int8 weights) on shapes off every tile: M 37, K 300, N 70."""
    import onnx
    from onnx import TensorProto, helper as oh, numpy_helper as nh
    from webjit.bundle import build
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((37, 300)) * 2).astype(np.float32)
    w = rng.integers(-128, 128, (300, 70)).astype(np.int8)
    graph = oh.make_graph([oh.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"]),
                           oh.make_node("MatMulInteger", ["q", "w", "z"], ["y"])], "q8",
                          [oh.make_tensor_value_info("x", TensorProto.FLOAT, [37, 300])],
                          [oh.make_tensor_value_info("y", TensorProto.INT32, [37, 70])], [nh.from_array(w, "w")])
    folder = tmp_path_factory.mktemp("q8-layer")
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)]), folder / "layer.onnx")
    return build(folder / "layer.onnx", folder / "bundle", values={"x": x}, backends=("wasm",))


@pytest.mark.parametrize("probe", ["as it is", "failing"])
def test_the_integer_matmul_gives_onnxruntime_sums_with_and_without_the_unsigned_dot(chromium, serve, integer_bundle,
                                                                                     probe):
    """Where the engine's relaxed dot reads unsigned bytes, the dot2 candidates are timed too (one dot a step
    instead of two), and each of them, loaded as the winner, gives onnxruntime's sums; where the probe says it does
    not, they are never run, and a split (dot1) one or the float form wins. The float form is a candidate
    everywhere: some engines' byte dot is slower than the float matmul."""
    manifest = json.loads((integer_bundle / "manifest.json").read_text())
    kernel = next(k for k in manifest["wasm"]["kernels"] if k["name"].endswith("_matmul"))
    unsigned = sorted({kernel["variants"]["relaxed"][i] for i in kernel["unsignedDot"]})
    assert unsigned and all("dot2" in key for key in unsigned)
    assert any("dot" not in key for key in kernel["variants"]["relaxed"]), kernel["variants"]["relaxed"]
    context = chromium.new_context()
    if probe == "failing":
        context.add_init_script(NO_UNSIGNED_DOT)
    try:
        page = harness.open_page(context, serve(integer_bundle))
        got = run(page, RUN_INTEGER, unsigned)
    finally:
        context.close()
    want = reference(integer_bundle, "outputs")["y"]
    np.testing.assert_array_equal(np.array(got["data"], np.int64).reshape(want.shape), want)
    has_it = got["wasm"]["unsignedDot"]
    assert got["wasm"]["simd"] == "relaxed" and not (probe == "failing" and has_it)
    if not has_it:
        assert not set(unsigned) & set(got["tried"]) and got["winner"] not in unsigned, (got["tried"], got["winner"])
    else:  # an engine that has it (V8 with AVX-VNNI)
        assert set(unsigned) <= set(got["tried"]) and sorted(got["pinned"]) == unsigned, got["tried"]
        for variant, later in got["pinned"].items():
            assert later["source"] == "cache" and later["winner"] == variant, (variant, later["source"])
            np.testing.assert_array_equal(np.array(later["data"], np.int64).reshape(want.shape), want,
                                          err_msg=variant)
