"""Text generation natively: the prefill and decode plans of Optimum's with-past decoders (GPT-2, Llama, Qwen2 with
grouped-query attention) against onnxruntime's own greedy loop on the unchanged model.

The generator keeps the cache at the context's length and runs each step in the smallest class that holds it, with
the padded rows masked; 7 + 32 tokens in a context of 64 cross the past buckets 16 and 32, and a 20-token prompt
runs padded to the prompt bucket 32.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.models

hub = pytest.importorskip("demo_models.hub")

DECODERS = ("gpt2", "llama", "qwen2")
CONTEXT = 64


@pytest.fixture(scope="module")
def generators():
    from webjit.native.generate import Generator
    cache = {}

    def get(arch, backend):
        if (arch, backend) not in cache:
            cache[(arch, backend)] = Generator(hub.get(arch) / "onnx/model.onnx", CONTEXT, backend)
        return cache[(arch, backend)]
    return get


def prompt(n, seed=0):
    return [int(t) for t in np.random.default_rng(seed).integers(1, 1000, n)]


@pytest.mark.parametrize("backend", ("wasm", "webgpu"))
@pytest.mark.parametrize("arch", DECODERS)
def test_greedy_generation_equals_onnxruntimes_loop(generators, arch, backend):
    from webjit.native.generate import reference_greedy
    gen = generators(arch, backend)
    for p in (prompt(7), prompt(20, seed=1)):
        assert gen.greedy(p, 32) == reference_greedy(hub.get(arch) / "onnx/model.onnx", p, 32)


@pytest.mark.parametrize("arch", DECODERS)
def test_every_steps_logits_match_with_forced_tokens(generators, arch):
    """Greedy decoding of a random model can repeat one token; forced tokens make every step see new ones."""
    from webjit.native.generate import reference_forced
    p, cont = prompt(5), prompt(50, seed=2)
    want = reference_forced(hub.get(arch) / "onnx/model.onnx", p, cont)
    got = generators(arch, "wasm").forced(p, cont)
    assert len(got) == len(want) == 51
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4, err_msg=f"step {step}")


def test_a_prompt_longer_than_the_context_is_refused(generators):
    from webjit.errors import WebjitError
    gen = generators("gpt2", "wasm")
    with pytest.raises(WebjitError, match="prompt of 64 tokens is longer"):
        gen.greedy(prompt(64), 1)


def test_the_bundle_lists_its_prefill_and_decode_plans(tmp_path):
    import json
    out = tmp_path / "b"
    r = subprocess.run([sys.executable, "-m", "webjit", "build", str(hub.get("qwen2") / "onnx/model.onnx"),
                        "--generate", "40", "--prompt-buckets", "8", "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "manifest.json").read_text())
    g = m["generate"]
    assert g["classes"] == [{"seq": 8, "past": 1}, {"seq": 39, "past": 1}, {"seq": 1, "past": 16},
                            {"seq": 1, "past": 32}, {"seq": 1, "past": 39}]
    assert len(m["dynamic"]["classes"]) == len(g["classes"]) - 1
    assert [c["dims"] for c in m["dynamic"]["classes"]] == [[c["seq"], c["past"]] for c in g["classes"][:-1]]
    # the present outputs hold the new rows only: one per token of the class
    for c, cls in zip(g["classes"], m["dynamic"]["classes"] + [m]):
        shapes = {t["name"]: t["shape"] for t in cls["outputs"]}
        assert all(shapes[p["present"]][2] == c["seq"] for p in g["cache"])
    assert all(p["shape"][2] == 40 for p in g["cache"])


@pytest.mark.parametrize("args, message", [
    (["{minilm}", "--generate", "64"], "--generate needs a decoder"),
    (["{gpt2}", "--generate", "64", "--shape", "input_ids=1x4"], "--generate fixes the shapes itself"),
    (["{gpt2}", "--generate", "64", "--past-buckets", "100"], "past buckets [100]: sizes must lie between 1 and 63"),
])
def test_bad_generation_builds_fail_in_one_line(tmp_path, args, message):
    paths = {"minilm": hub.get("minilm") / "onnx/model.onnx", "gpt2": hub.get("gpt2") / "onnx/model.onnx"}
    args = [a.format(**paths) for a in args]
    r = subprocess.run([sys.executable, "-m", "webjit", "build", *args, "-o", str(tmp_path / "b")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_validate_generate_passes():
    r = subprocess.run([sys.executable, "-m", "webjit", "validate", str(hub.get("llama") / "onnx/model.onnx"),
                        "--generate", "48", "--backend", "wasm", "--new-tokens", "20"], capture_output=True, text=True)
    assert r.returncode == 0 and "the same as onnxruntime's" in r.stdout, r.stdout + r.stderr


SEQ2SEQ = ("t5", "bart")


def seq2seq_files(arch):
    d = hub.get(arch) / "onnx"
    return d / "encoder_model.onnx", d / "decoder_model.onnx", d / "decoder_with_past_model.onnx"


@pytest.mark.parametrize("backend", ("wasm", "webgpu"))
@pytest.mark.parametrize("arch", SEQ2SEQ)
def test_encoder_decoder_logits_match_onnxruntimes_cached_loop(arch, backend):
    """The encoder once, the decoder over the tokens so far padded to 8, 16 or 40: every step's logits match
    onnxruntime running decoder_model then decoder_with_past_model (forced tokens, since greedy decoding of these
    random models repeats one token), and greedy ids equal its greedy loop."""
    from webjit.generation import Seq2SeqSpec, decoder_start
    from webjit.native.generate import Seq2SeqGenerator, reference_seq2seq_forced, reference_seq2seq_greedy
    enc, dec, past = seq2seq_files(arch)
    spec = Seq2SeqSpec.of(40, 24, decoder_start(dec), [8, 16], [8, 16])
    gen = Seq2SeqGenerator(enc, dec, spec, backend)
    p, cont = prompt(11, seed=5), prompt(30, seed=6)
    got, want = gen.forced(p, cont), reference_seq2seq_forced(enc, dec, past, p, cont, spec.start)
    assert len(got) == len(want) == 31
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4, err_msg=f"step {step}")
    assert gen.greedy(prompt(20, seed=7), 32) == reference_seq2seq_greedy(enc, dec, past, prompt(20, seed=7), 32, spec.start)


def test_an_encoder_decoder_builds_from_its_decoder_and_refuses_the_with_past_file(tmp_path):
    import json
    enc, dec, past = seq2seq_files("bart")
    out = tmp_path / "b"
    r = subprocess.run([sys.executable, "-m", "webjit", "build", str(dec), "--generate", "20", "--encoder-length", "12",
                        "--prompt-buckets", "6", "--past-buckets", "8", "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "manifest.json").read_text())
    g = m["generate"]
    assert g["kind"] == "seq2seq" and g["encoder"]["length"] == 12 and g["start"] == json.loads(
        (hub.get("bart") / "config.json").read_text())["decoder_start_token_id"]
    assert [o["name"] for o in m["outputs"]] == ["logits"]  # the present outputs are not computed
    assert m["dynamic"]["dims"] == [{"name": "decoder_sequence_length", "max": 20, "buckets": [8, 20]}]
    enc_m = json.loads((out / "encoder" / "manifest.json").read_text())
    assert enc_m["dynamic"]["dims"][0]["buckets"] == [6, 12]
    import hashlib
    assert m["files"]["encoder/manifest.json"]["sha256"] == hashlib.sha256(
        (out / "encoder" / "manifest.json").read_bytes()).hexdigest()
    r = subprocess.run([sys.executable, "-m", "webjit", "build", str(past), "--generate", "20", "-o", str(tmp_path / "c")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "decoder_with_past_model.onnx" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "c").exists()
