"""The larger demo models in headless Chromium: BERT-base (seq 128) on the 'wasm' execution provider, and GPT-2
small (seq 32) on 'webgpu' (SwiftShader where there is no GPU, untuned) and on 'wasm'.

Each bundle is built once per test process and stores the sample inputs with onnxruntime's outputs for them; the
page runs those inputs and compares with those outputs itself, since GPT-2's logits (32 x 50257 floats) are too
many to send back. Measured on a 2-core machine with SwiftShader, load and run included: BERT-base at seq 128 on
two threads takes about 5 s (so it runs at the seq it is meant for), GPT-2 about 12-16 s on webgpu and 5 s on
wasm; building each bundle (with onnxruntime's run) takes about 7 s more.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from browser_checks import ATOL, reference

import demo_models
from e2e import browser as harness
from e2e.browser import run

pytestmark = [pytest.mark.e2e, pytest.mark.models]

BERT_SEQ = 128
GPT2_SEQ = 32
THREADS = 2

# Runs the bundle's reference inputs and returns, per output, its type and dims, the largest absolute difference
# from onnxruntime's output (with where it is) and how many values are NaN or infinite.
RUN_AND_COMPARE = """async ({webjit, create}, options) => {
    const session = await create('/', options);
    const ref = await webjit.loadReference(session.bundle);
    const out = await session.run(ref.inputs);
    const outputs = {};
    for (const [name, want] of Object.entries(ref.outputs)) {
        const got = out[name];
        let maxErr = 0, worst = -1, nonFinite = 0;
        for (let i = 0; i < want.data.length; i++) {
            if (!Number.isFinite(got.data[i])) { nonFinite++; continue; }
            const d = Math.abs(got.data[i] - want.data[i]);
            if (d > maxErr) { maxErr = d; worst = i; }
        }
        outputs[name] = {type: got.type, dims: got.dims, wantDims: want.dims, maxErr, worst, nonFinite,
                         got: worst >= 0 ? got.data[worst] : null, want: worst >= 0 ? want.data[worst] : null};
    }
    return {ep: session.executionProvider, wasm: session.wasm || null, outputs, timings: session.timings,
            isolated: window.crossOriginIsolated};
}"""


def build_bundle(name: str, seq: int, tmp_path_factory) -> Path:
    """The bundle of demo model `name` at [1, seq] with its sample inputs and onnxruntime's outputs for them."""
    from webjit.bundle import build
    if not (demo_models.cache_dir() / name / "model.onnx").is_file():
        pytest.importorskip("torch", reason="exporting the demo model needs the export extra")
    out = tmp_path_factory.mktemp(name) / "bundle"
    return build(demo_models.get(name), out, values=demo_models.sample_inputs(name, seq=seq))


@pytest.fixture(scope="session")
def bert_base_bundle(tmp_path_factory) -> Path:
    return build_bundle("bert_base", BERT_SEQ, tmp_path_factory)


@pytest.fixture(scope="session")
def gpt2_bundle(tmp_path_factory) -> Path:
    return build_bundle("gpt2", GPT2_SEQ, tmp_path_factory)


@pytest.fixture(scope="session")
def bert_base_url(bert_base_bundle, serve) -> str:
    return serve(bert_base_bundle)


@pytest.fixture(scope="session")
def gpt2_url(gpt2_bundle, serve) -> str:
    return serve(gpt2_bundle)


@pytest.fixture
def open_on(chromium):
    """open_on(url): a page on that bundle server, in a fresh browser context."""
    contexts = []

    def make(url: str):
        contexts.append(chromium.new_context())
        return harness.open_page(contexts[-1], url)
    yield make
    for c in contexts:
        c.close()


def check_reference_inputs(bundle: Path, name: str, seq: int):
    """The bundle's stored inputs are the model's sample inputs, so onnxruntime's outputs are for those."""
    want = demo_models.sample_inputs(name, seq=seq)
    stored = reference(bundle, "inputs")
    assert list(stored) == list(want)
    for k, v in want.items():
        np.testing.assert_array_equal(stored[k], v, err_msg=k)


def check_matches_onnxruntime(got, output: str, dims: list[int]):
    assert list(got["outputs"]) == [output]
    o = got["outputs"][output]
    assert o["type"] == "float32" and o["dims"] == dims == o["wantDims"]
    assert o["nonFinite"] == 0, f"{o['nonFinite']} NaN or infinite values in {output}"
    assert o["maxErr"] <= ATOL, (f"{output}: max abs error {o['maxErr']:.3e} against onnxruntime at flat index "
                                 f"{o['worst']} (got {o['got']}, want {o['want']})")


def check_wasm_threads(got):
    assert got["ep"] == "wasm" and got["wasm"]["simd"] == "relaxed"
    assert got["wasm"]["threads"] == (THREADS if got["isolated"] else 1)


def test_bert_base_runs_on_wasm_with_two_threads_and_matches_onnxruntime(open_on, bert_base_bundle, bert_base_url):
    check_reference_inputs(bert_base_bundle, "bert_base", BERT_SEQ)
    page = open_on(bert_base_url)
    got = run(page, RUN_AND_COMPARE, {"executionProviders": ["wasm"], "wasm": {"numThreads": THREADS}})
    check_wasm_threads(got)
    check_matches_onnxruntime(got, "last_hidden_state", [1, BERT_SEQ, 768])


def test_gpt2_runs_on_webgpu_untuned_and_matches_onnxruntime(open_on, gpt2_bundle, gpt2_url):
    check_reference_inputs(gpt2_bundle, "gpt2", GPT2_SEQ)
    page = open_on(gpt2_url)
    got = run(page, RUN_AND_COMPARE, {"executionProviders": ["webgpu"], "tuning": False})
    assert got["ep"] == "webgpu"
    check_matches_onnxruntime(got, "logits", [1, GPT2_SEQ, 50257])


def test_gpt2_runs_on_wasm_with_two_threads_and_matches_onnxruntime(open_on, gpt2_bundle, gpt2_url):
    check_reference_inputs(gpt2_bundle, "gpt2", GPT2_SEQ)
    page = open_on(gpt2_url)
    got = run(page, RUN_AND_COMPARE, {"executionProviders": ["wasm"], "wasm": {"numThreads": THREADS}})
    check_wasm_threads(got)
    check_matches_onnxruntime(got, "logits", [1, GPT2_SEQ, 50257])
