"""pipeline('feature-extraction') in headless Chromium on bundles that `webjit build` made from hub-style folders
of the real all-MiniLM-L6-v2, against sentence-transformers run here on the same model:
- the Optimum export (`demo_models.hub`: its graph pools and normalises, output `sentence_embedding`), fp32 on
  WebGPU and wasm, and its q8 file (length-bucketed: padding.py keeps the padding out of its dynamic quantization),
  against onnxruntime on that file;
- a transformers.js-style folder (`last_hidden_state` out of the graph; modules.json and 1_Pooling/config.json
  say mean pooling and normalisation, which the pipeline does in the page);
- the runtime installed from its `npm pack` tarball into a scratch app, imported by name through an import map.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from e2e import browser as harness
from e2e.browser import run
from webjit.serve import make_server

pytestmark = [pytest.mark.e2e, pytest.mark.models]

ROOT = Path(__file__).resolve().parents[2]
SENTENCES = ["A cat sat on the mat.", "Dogs bark at night.", "The stock market fell sharply today.",
             "Ich liebe maschinelles Lernen.", "naïve café résumé", "東京は日本の首都です。",
             "Emoji are fun 🎉🐍", "", "a " * 200, "WebGPU runs compute shaders in the browser."]

EXTRACT = """async ({webjit}, {options, sentences, call}) => {
    const extractor = await webjit.pipeline('feature-extraction', '/', options);
    const out = await extractor(sentences, call);
    const result = {dims: out.dims, data: Array.from(out.data), ep: extractor.session.executionProvider};
    await extractor.dispose();
    return result;
}"""


@pytest.fixture(scope="module")
def reference():
    st = pytest.importorskip("sentence_transformers")
    import demo_models
    model = st.SentenceTransformer(str(demo_models.minilm_dir()), device="cpu")
    model.max_seq_length = 128  # what the bundles take (webjit build's default longest input); the model card's is 256
    return model.encode(SENTENCES, normalize_embeddings=True)


@pytest.fixture(scope="module")
def q8_reference():
    """onnxruntime on the q8 file, one unpadded text at a time (as transformers.js runs it): quantize_dynamic's
    per-tensor activation scales cost this model up to 0.17 of cosine against the float one, in onnxruntime too."""
    import onnxruntime as ort
    from tokenizers import Tokenizer
    hub = pytest.importorskip("demo_models.hub")
    tok = Tokenizer.from_file(str(hub.get("minilm") / "tokenizer.json"))
    tok.enable_truncation(128)
    tok.no_padding()  # the model's tokenizer.json pads to 128
    sess = ort.InferenceSession(str(hub.get("minilm") / "onnx/model_quantized.onnx"), providers=["CPUExecutionProvider"])
    rows = []
    for text in SENTENCES:
        e = tok.encode(text)
        rows.append(sess.run(["sentence_embedding"], {"input_ids": np.array([e.ids], np.int64),
                                                      "attention_mask": np.array([e.attention_mask], np.int64)})[0][0])
    return np.array(rows, np.float32)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    hub = pytest.importorskip("demo_models.hub")
    import demo_models
    from webjit.bundle import build
    made = {}

    def get(kind):
        if kind not in made:
            out = tmp_path_factory.mktemp(kind) / "bundle"
            if kind == "transformersjs":
                folder = tmp_path_factory.mktemp("folder")
                src = demo_models.minilm_dir()
                for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "modules.json"):
                    shutil.copy(src / name, folder / name)
                shutil.copytree(src / "1_Pooling", folder / "1_Pooling")
                (folder / "onnx").mkdir()
                model = Path(demo_models.get("minilm"))
                for f in model.parent.glob(model.name + "*"):  # the graph and its external data
                    shutil.copy(f, folder / "onnx" / f.name)
                made[kind] = build(folder, out)
            else:
                made[kind] = build(hub.get("minilm"), out, dtype=kind)
        return made[kind]
    return get


def cosines(got, want):
    got = np.array(got["data"], np.float32).reshape(got["dims"])
    assert got.shape == want.shape
    return np.sum(got * want, axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)


@pytest.mark.parametrize("kind, provider, least", [
    ("fp32", "webgpu", 0.99999), ("fp32", "wasm", 0.99999), ("transformersjs", "wasm", 0.99999), ("q8", "wasm", 0.998),
])
def test_the_feature_extraction_pipeline_matches_sentence_transformers(chromium, serve, bundles, reference, kind,
                                                                      provider, least, request):
    m = json.loads((bundles(kind) / "manifest.json").read_text())
    assert m["pipeline"]["task"] == "feature-extraction" and m["pipeline"]["tokenizer"] == "text/tokenizer.json"
    if kind == "transformersjs":
        assert m["pipeline"]["pooling"] == "mean" and m["pipeline"]["normalize"] is True
    assert [d["buckets"] for d in m["dynamic"]["dims"]] == [[16, 32, 64, 128]]  # q8 too
    context = chromium.new_context()
    try:
        page = harness.open_page(context, serve(bundles(kind)))
        options = {"executionProviders": [provider], "tuning": False}
        got = run(page, EXTRACT, {"options": options, "sentences": SENTENCES, "call": {}})
    finally:
        context.close()
    assert got["ep"] == provider
    c = cosines(got, request.getfixturevalue("q8_reference") if kind == "q8" else reference)
    assert c.min() >= least, c


def test_the_npm_package_runs_the_pipeline_from_a_scratch_app(chromium, bundles, reference, tmp_path):
    """Nothing but the tarball (npm pack in web/) installed into an empty app, an import map naming it, and a
    bundle built from the hub folder."""
    if shutil.which("npm") is None:
        pytest.skip("needs npm")
    r = subprocess.run(["npm", "pack", "--pack-destination", str(tmp_path)], cwd=ROOT / "web", capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (tarball,) = tmp_path.glob("webjit-*.tgz")
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "app", "private": True, "type": "module"}))
    r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--offline", str(tarball)], cwd=app,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (app / "index.html").write_text("""<!doctype html><meta charset="utf-8">
<script type="importmap">{"imports": {"webjit": "/app/node_modules/webjit/webjit.js"}}</script>
<script type="module" src="./main.js"></script>""")
    (app / "main.js").write_text("""import { pipeline } from 'webjit';
const sentences = JSON.parse(decodeURIComponent(location.hash.slice(1)));
try {
  const extractor = await pipeline('feature-extraction', '/', { executionProviders: ['wasm'], tuning: false });
  const out = await extractor(sentences);
  window.result = { dims: out.dims, data: Array.from(out.data) };
} catch (e) {
  window.result = { error: String(e) };
}
""")
    server = make_server(bundles("fp32"), mounts={"app": app}).start()
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "app/index.html#" + json.dumps(SENTENCES))
        page.wait_for_function("() => window.result !== undefined", timeout=240_000)
        got = page.evaluate("() => window.result")
    finally:
        context.close()
        server.shutdown()
        server.server_close()
    assert "error" not in got, got
    assert cosines(got, reference).min() >= 0.99999


def _in_fresh_page(chromium, url: str, body: str, arg):
    """run(body, arg) in a page of a context of its own on `url`, closed afterwards."""
    context = chromium.new_context()
    try:
        return run(harness.open_page(context, url), body, arg)
    finally:
        context.close()


def test_the_text_generation_pipeline_generates_onnxruntimes_greedy_ids(chromium, serve, tmp_path):
    """A decoder's hub folder built with --generate: pipeline('text-generation') takes the prompt's ids (this
    random GPT-2's folder has no tokenizer.json, so there is no text) and its eos id from config.json."""
    hub = pytest.importorskip("demo_models.hub")
    import webjit
    from webjit.generation import Spec
    from webjit.native.generate import reference_greedy
    out = webjit.build(hub.get("gpt2"), tmp_path / "b", generate=Spec.of(64))
    m = json.loads((out / "manifest.json").read_text())
    assert m["pipeline"]["task"] == "text-generation" and m["pipeline"]["tokenizer"] is None
    eos = json.loads((hub.get("gpt2") / "config.json").read_text())["eos_token_id"]
    assert m["pipeline"]["special"]["eosTokenId"] == eos
    prompt = [5, 17, 300, 41, 8]
    body = """async ({webjit}, {prompt}) => {
        const generator = await webjit.pipeline('text-generation', '/', {executionProviders: ['wasm'], tuning: false});
        const out = await generator(prompt, {maxNewTokens: 24});
        let refused = null;
        try { await generator('a text', {maxNewTokens: 2}); } catch (e) { refused = e.message; }
        await generator.dispose();
        return {...out, refused};
    }"""
    got = _in_fresh_page(chromium, serve(out), body, {"prompt": prompt})
    assert got["ids"] == reference_greedy(hub.get("gpt2") / "onnx/model.onnx", prompt, 24, eos)
    assert got["text"] is None and "pass the prompt's token ids" in got["refused"]


def test_text_in_text_out_with_a_byte_level_bpe_tokenizer(chromium, serve, tmp_path):
    """The random GPT-2's folder with a byte-level BPE tokenizer.json of its 1000 ids (trained here): the page
    encodes the prompt as Python tokenizers does, generates onnxruntime's greedy ids, and returns their text as
    Python decodes it."""
    tokenizers = pytest.importorskip("tokenizers")
    hub = pytest.importorskip("demo_models.hub")
    import webjit
    from tests.unit import tokenizer_zoo
    from webjit.generation import Spec
    from webjit.native.generate import reference_greedy
    folder = tmp_path / "gpt2"
    shutil.copytree(hub.get("gpt2"), folder)
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=1000, special_tokens=["<|endoftext|>"],
                                             initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(tokenizer_zoo.texts(), trainer)
    tok.save(str(folder / "tokenizer.json"))
    out = webjit.build(folder, tmp_path / "b", generate=Spec.of(64))
    prompt = "The cat sat on the mat, and then"
    body = """async ({webjit}, {prompt}) => {
        const generator = await webjit.pipeline('text-generation', '/', {executionProviders: ['wasm'], tuning: false});
        const streamed = [];
        const out = await generator(prompt, {maxNewTokens: 16, eosTokenId: [], onText: (t) => streamed.push(t)});
        await generator.dispose();
        return {...out, streamed: streamed.join('')};
    }"""
    got = _in_fresh_page(chromium, serve(out), body, {"prompt": prompt})
    ids = tok.encode(prompt).ids
    assert got["ids"] == reference_greedy(folder / "onnx/model.onnx", ids, 16)
    assert got["text"] == tok.decode(got["ids"]) == got["streamed"]
