"""Text generation in headless Chromium: Optimum's with-past GPT-2 and Llama (grouped-query attention) built with
`--generate 64` generate in the page with the cache kept in the session's buffers (WebGPU) or memory (wasm, one
and two threads). Greedy ids must equal onnxruntime's own greedy loop on the unchanged model; 7 + 32 tokens cross
the past buckets 16 and 32, and a 20-token prompt runs padded to the prompt bucket 32. Sampled ids must be
reproducible from their seed, and each one must be a token that the Hugging Face `transformers` warpers keep for
onnxruntime's logits at that step."""
from __future__ import annotations

import numpy as np
import pytest

from e2e import browser as harness
from e2e.browser import run

pytestmark = [pytest.mark.e2e, pytest.mark.models]

hub = pytest.importorskip("demo_models.hub")

CONTEXT = 64
NEW = 32

PROVIDERS = {
    "webgpu": {"executionProviders": ["webgpu"], "tuning": False},
    "wasm-1-thread": {"executionProviders": ["wasm"], "wasm": {"numThreads": 1}, "tuning": False},
    "wasm-2-threads": {"executionProviders": ["wasm"], "wasm": {"numThreads": 2}, "tuning": False},
}

# One session; generates from every prompt with the same options; returns the ids and the token callbacks' phases.
GENERATE = """async ({create}, {options, prompts, gen}) => {
    const session = await create('/', options);
    const out = [];
    for (const p of prompts) {
        const phases = [];
        const ids = await session.generate(p, {...gen, onToken: (id, info) => phases.push(info.phase)});
        out.push({ids, phases});
    }
    return {ep: session.executionProvider, out, stats: session.generationStats};
}"""


def prompt(n, seed=0):
    return [int(t) for t in np.random.default_rng(seed).integers(1, 1000, n)]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    from webjit.bundle import build
    from webjit.generation import Spec
    made = {}

    def get(arch):
        if arch not in made:
            made[arch] = build(hub.get(arch) / "onnx/model.onnx", tmp_path_factory.mktemp(arch) / "bundle",
                               generate=Spec.of(CONTEXT))
        return made[arch]
    return get


@pytest.fixture
def page_for(chromium, bundles, serve):
    contexts = []

    def open_(arch):
        contexts.append(chromium.new_context())
        return harness.open_page(contexts[-1], serve(bundles(arch)))
    yield open_
    for c in contexts:
        c.close()


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_greedy_generation_in_the_page_equals_onnxruntimes_loop(page_for, arch, provider):
    from webjit.native.generate import reference_greedy
    model = hub.get(arch) / "onnx/model.onnx"
    prompts = [prompt(7), prompt(20, seed=1)]
    got = run(page_for(arch), GENERATE, {"options": PROVIDERS[provider], "prompts": prompts, "gen": {"maxNewTokens": NEW}})
    assert got["ep"] == PROVIDERS[provider]["executionProviders"][0]
    for p, out in zip(prompts, got["out"]):
        assert out["ids"] == reference_greedy(model, p, NEW)
        assert out["phases"] == ["prefill"] + ["decode"] * (NEW - 1)
    stats = got["stats"]
    assert stats["promptTokens"] == 20 and stats["newTokens"] == NEW and stats["decodeTokensPerSecond"] > 0


def test_sampling_is_reproducible_and_draws_only_tokens_the_warpers_keep(page_for):
    """Seeded sampling gives the same ids on a second run and on the other backend; every id is one that
    transformers' temperature, top-k and top-p warpers keep for onnxruntime's logits after the ids before it."""
    torch = pytest.importorskip("torch")
    from transformers.generation.logits_process import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)
    from webjit.native.generate import reference_forced
    gen = {"maxNewTokens": 24, "temperature": 0.8, "topK": 50, "topP": 0.9, "repetitionPenalty": 1.3, "seed": 7}
    p = prompt(9, seed=3)
    body = """async ({create}, {gen, p}) => {
        const out = {};
        for (const [name, options] of Object.entries({
            webgpu: {executionProviders: ['webgpu'], tuning: false},
            wasm: {executionProviders: ['wasm'], wasm: {numThreads: 1}, tuning: false}})) {
            const s = await create('/', options);
            out[name] = [await s.generate(p, gen), await s.generate(p, gen), await s.generate(p, {...gen, seed: 8})];
        }
        return out;
    }"""
    got = run(page_for("gpt2"), body, {"gen": gen, "p": p})
    first, again, other = got["wasm"]
    assert first == again == got["webgpu"][0] == got["webgpu"][1]
    assert other == got["webgpu"][2] and other != first
    processors = [RepetitionPenaltyLogitsProcessor(gen["repetitionPenalty"]), TemperatureLogitsWarper(gen["temperature"]),
                  TopKLogitsWarper(gen["topK"]), TopPLogitsWarper(gen["topP"])]
    logits = reference_forced(hub.get("gpt2") / "onnx/model.onnx", p, first[:-1])
    for step, (row, token) in enumerate(zip(logits, first)):
        seen = torch.tensor([p + first[:step]])
        scores = torch.tensor(row[None], dtype=torch.float32)
        for proc in processors:
            scores = proc(seen, scores)
        kept = set(torch.nonzero(torch.isfinite(scores[0])).flatten().tolist())
        assert token in kept, f"step {step}: token {token} is not among the {len(kept)} tokens the warpers keep"


def test_an_aborted_generation_rejects_and_the_session_generates_again(page_for):
    from webjit.native.generate import reference_greedy
    p = prompt(7)
    body = """async ({create}, {p}) => {
        const s = await create('/', {executionProviders: ['wasm'], wasm: {numThreads: 1}, tuning: false});
        const stop = new AbortController();
        const seen = [];
        let error = null;
        try {
            await s.generate(p, {maxNewTokens: 30, signal: stop.signal,
                                 onToken: (id) => { seen.push(id); if (seen.length === 3) stop.abort(); }});
        } catch (e) { error = e.name; }
        return {error, seen, after: await s.generate(p, {maxNewTokens: 8})};
    }"""
    got = run(page_for("gpt2"), body, {"p": p})
    assert got["error"] == "AbortError" and len(got["seen"]) == 3
    assert got["after"] == reference_greedy(hub.get("gpt2") / "onnx/model.onnx", p, 8)


def test_prompts_and_options_that_cannot_run_are_refused_clearly(page_for):
    body = """async ({create}) => {
        const s = await create('/', {executionProviders: ['wasm'], wasm: {numThreads: 1}, tuning: false});
        const tries = [
            [Array(40).fill(5), {maxNewTokens: 30}],
            [[1, 2, 3], {temperature: -1}],
            [[1, 2, 3, 100000], {}],
            [[], {}],
        ];
        const out = [];
        for (const [p, o] of tries) {
            try { await s.generate(p, o); out.push(null); } catch (e) { out.push(`${e.name}: ${e.message}`); }
        }
        return out;
    }"""
    got = run(page_for("gpt2"), body)
    assert got == [
        "RangeError: a prompt of 40 tokens and 30 new ones do not fit this bundle's context of 64 positions",
        "RangeError: temperature must be a number >= 0, got -1",
        "RangeError: token id 100000 is outside this model's vocabulary of 1000",
        "RangeError: generate() needs a prompt of at least one token",
    ]


def test_device_memory_stays_constant_from_the_first_step_to_the_last(page_for):
    """Every GPUBuffer the page creates is counted (created minus destroyed) at each token, and the wasm memory's
    size is read at each token: both are the same at token 1 as at token 40, across the past buckets 16 and 32."""
    body = """async ({create}, {p}) => {
        const live = {bytes: 0, buffers: 0};
        const make = GPUDevice.prototype.createBuffer;
        const destroy = GPUBuffer.prototype.destroy;
        const sizes = new WeakMap();
        GPUDevice.prototype.createBuffer = function (d) {
            const b = make.call(this, d); sizes.set(b, b.size); live.bytes += b.size; live.buffers += 1; return b;
        };
        GPUBuffer.prototype.destroy = function () {
            if (sizes.has(this)) { live.bytes -= sizes.get(this); live.buffers -= 1; sizes.delete(this); }
            return destroy.call(this);
        };
        const gpu = await create('/', {executionProviders: ['webgpu'], tuning: false});
        const gpuSeen = [];
        await gpu.generate(p, {maxNewTokens: 40, onToken: () => gpuSeen.push([live.bytes, live.buffers])});
        const wasm = await create('/', {executionProviders: ['wasm'], wasm: {numThreads: 1}, tuning: false});
        const wasmSeen = [];
        await wasm.generate(p, {maxNewTokens: 40, onToken: () => wasmSeen.push(wasm.memory.buffer.byteLength)});
        return {gpuSeen, wasmSeen};
    }"""
    got = run(page_for("gpt2"), body, {"p": prompt(7)})
    assert len(got["gpuSeen"]) == len(got["wasmSeen"]) == 40
    assert got["gpuSeen"][0][0] > 0 and all(s == got["gpuSeen"][0] for s in got["gpuSeen"]), got["gpuSeen"]
    assert all(s == got["wasmSeen"][0] for s in got["wasmSeen"])


@pytest.fixture(scope="module")
def seq2seq_bundles(tmp_path_factory):
    from webjit.bundle import build
    from webjit.generation import Seq2SeqSpec, decoder_start
    made = {}

    def get(arch):
        if arch not in made:
            d = hub.get(arch) / "onnx"
            spec = Seq2SeqSpec.of(40, 24, decoder_start(d / "decoder_model.onnx"), [8, 16], [8, 16])
            made[arch] = (build(d / "decoder_model.onnx", tmp_path_factory.mktemp(arch) / "bundle", generate=spec,
                                encoder=d / "encoder_model.onnx"), spec)
        return made[arch]
    return get


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("arch", ["t5", "bart"])
def test_encoder_decoder_generation_in_the_page_matches_onnxruntime(chromium, serve, seq2seq_bundles, arch, provider):
    """The encoder once, then the decoder over the tokens so far: greedy ids equal onnxruntime's loop (encoder,
    decoder_model, then decoder_with_past_model); with a repetition penalty (the random models repeat one token),
    every id is the argmax of transformers' penalised scores of onnxruntime's logits after the ids before it."""
    torch = pytest.importorskip("torch")
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor
    from webjit.native.generate import reference_seq2seq_forced, reference_seq2seq_greedy
    bundle, spec = seq2seq_bundles(arch)
    d = hub.get(arch) / "onnx"
    files = (d / "encoder_model.onnx", d / "decoder_model.onnx", d / "decoder_with_past_model.onnx")
    prompts = [prompt(5, seed=4), prompt(20, seed=5)]
    context = chromium.new_context()
    try:
        page = harness.open_page(context, serve(bundle))
        greedy = run(page, GENERATE, {"options": PROVIDERS[provider], "prompts": prompts, "gen": {"maxNewTokens": NEW}})
        penalised = run(page, GENERATE, {"options": PROVIDERS[provider], "prompts": prompts[1:],
                                         "gen": {"maxNewTokens": 30, "repetitionPenalty": 3.0}})
    finally:
        context.close()
    for p, out in zip(prompts, greedy["out"]):
        assert out["ids"] == reference_seq2seq_greedy(*files, p, NEW, spec.start)
    ids = penalised["out"][0]["ids"]
    assert len(set(ids)) > 5
    rows = reference_seq2seq_forced(*files, prompts[1], ids[:-1], spec.start)
    penalty = RepetitionPenaltyLogitsProcessor(3.0)
    for step, (row, token) in enumerate(zip(rows, ids)):
        seen = torch.tensor([[spec.start] + ids[:step]])  # transformers penalises the decoder's ids
        want = int(torch.argmax(penalty(seen, torch.tensor(row[None], dtype=torch.float32))[0]))
        assert token == want, f"step {step}"
