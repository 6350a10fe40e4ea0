"""One bundle for every input length: all-MiniLM-L6-v2 built with `--buckets 16,32,64` (maximum seq 128) runs
inputs of 12, 77, 128 and again 12 tokens in headless Chromium, on WebGPU and on WebAssembly with one and two threads, each
padded to the smallest shape class that holds it and cropped back. Expected values are onnxruntime's outputs for
the same unpadded inputs, computed here."""
from __future__ import annotations

import json

import numpy as np
import pytest
from browser_checks import ATOL

from e2e import browser as harness
from e2e.browser import run, wire_feeds

pytestmark = [pytest.mark.e2e, pytest.mark.models]

MODEL = "minilm"
LENGTHS = [12, 77, 128, 12]  # back to a small class after the largest ran

# Creates one session and runs every feed set through it; returns the outputs and the tuning report's classes.
RUN_LENGTHS = """async ({create, feeds}, {options, wired}) => {
    const session = await create('/', options);
    const out = [];
    for (const f of wired) {
        const y = (await session.run(feeds(f))).last_hidden_state;
        out.push({dims: y.dims, data: Array.from(y.data)});
    }
    const r = session.tuningReport;
    return {ep: session.executionProvider, out, source: r.source,
            tunedDims: r.kernels ? [...new Set(r.kernels.filter((k) => k.tried > 0).map((k) => JSON.stringify(k.dims)))] : []};
}"""


@pytest.fixture(scope="module")
def bucketed(tmp_path_factory):
    import demo_models
    from webjit.bundle import build
    if not (demo_models.cache_dir() / MODEL / "model.onnx").is_file():
        pytest.importorskip("torch", reason="exporting the demo model needs the export extra")
    model = demo_models.get(MODEL)
    out = build(model, tmp_path_factory.mktemp("minilm-buckets") / "bundle",
                values=demo_models.sample_inputs(MODEL, seq=128), buckets=["16,32,64"])
    return model, out


@pytest.fixture(scope="module")
def cases(bucketed):
    """Per length: the feeds (the demo's sample inputs, so the longer ones end in masked padding of their own) and
    onnxruntime's output for them."""
    import demo_models
    from webjit.validate import reference
    model, _ = bucketed
    feeds = [demo_models.sample_inputs(MODEL, seq=n) for n in LENGTHS]
    return feeds, [reference(model, f)["last_hidden_state"] for f in feeds]


@pytest.fixture
def page(chromium, bucketed, serve):
    context = chromium.new_context()
    yield harness.open_page(context, serve(bucketed[1]))
    context.close()


def test_the_manifest_holds_one_class_per_bucket_sharing_the_weights(bucketed):
    m = json.loads((bucketed[1] / "manifest.json").read_text())
    assert [c["dims"] for c in m["dynamic"]["classes"]] == [[16], [32], [64]]
    assert m["dynamic"]["dims"] == [{"name": "seq", "max": 128, "buckets": [16, 32, 64, 128]}]
    assert [c["inputs"][0]["shape"] for c in m["dynamic"]["classes"]] == [[1, 16], [1, 32], [1, 64]]
    shards = [f for f in m["files"] if f.startswith("weights/")]
    assert sum(m["files"][f]["bytes"] for f in shards) < 1.2 * 90_000_000  # the weights are stored once


@pytest.mark.parametrize("options", [
    {"executionProviders": ["webgpu"], "tuning": {"budgetMs": 1500}},
    {"executionProviders": ["wasm"], "wasm": {"numThreads": 1}},
    {"executionProviders": ["wasm"], "wasm": {"numThreads": 2}},
], ids=["webgpu", "wasm-1-thread", "wasm-2-threads"])
def test_lengths_12_77_128_from_one_bundle_match_onnxruntime(page, cases, options):
    feeds, want = cases
    got = run(page, RUN_LENGTHS, {"options": options, "wired": [wire_feeds(f) for f in feeds]})
    assert got["ep"] == options["executionProviders"][0]
    for n, ref, out in zip(LENGTHS, want, got["out"]):
        assert out["dims"] == [1, n, 384]
        err = float(np.max(np.abs(np.array(out["data"], np.float32).reshape(ref.shape) - ref)))
        assert err <= ATOL, f"seq {n}: max abs error {err:.3e} against onnxruntime"
    if got["ep"] == "webgpu":
        assert got["source"] == "tuned" and "[128]" in got["tunedDims"]


def test_a_length_over_the_maximum_is_refused_naming_the_input_and_the_limit(page):
    body = """async ({webjit, create}) => {
        const session = await create('/', {executionProviders: ['wasm'], wasm: {numThreads: 1}});
        const ids = new webjit.Tensor('int64', new BigInt64Array(129), [1, 129]);
        try { await session.run({input_ids: ids, attention_mask: ids, token_type_ids: ids}); return null; }
        catch (e) { return `${e.name}: ${e.message}`; }
    }"""
    assert run(page, body) == ("RangeError: input 'input_ids' has shape [1,129]; this bundle takes [1,seq<=128] "
                               "(compileInBrowser compiles the model for larger shapes in this page)")
