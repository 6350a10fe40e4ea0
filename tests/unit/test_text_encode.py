"""The runtime's BPE and Unigram tokenizer (web/bpe.js, under Node) gives Python `tokenizers`' ids, special tokens
included, for every text of the corpus and the held-out ones (characters outside the trained alphabets, odd
spacing, special tokens' text, a BOM), on the families of tests/unit/tokenizer_zoo.py: GPT-2 byte-level BPE,
Qwen2's split regex behind NFC, Llama's byte_fallback BPE with its template, T5's Unigram behind Nmt, NFKC and
Metaspace, and the original BPE with word ends."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit import tokenizer_zoo

ROOT = Path(__file__).resolve().parents[2]

NODE_SCRIPT = """
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [, js, tokenizerJson, texts] = process.argv;
const { ModelTokenizer } = await import(pathToFileURL(js).href);
const tok = new ModelTokenizer(JSON.parse(readFileSync(tokenizerJson, 'utf8')));
process.stdout.write(JSON.stringify(JSON.parse(readFileSync(texts, 'utf8')).map((t) => tok.encode(t))));
"""


@pytest.mark.parametrize("name", ["gpt2", "qwen2", "llama", "t5", "charbpe"])
def test_js_encoding_equals_python_tokenizers(name, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    path = tokenizer_zoo.build(name, tmp_path)
    texts = tokenizer_zoo.texts() + tokenizer_zoo.HELD_OUT + ["", "a", "   ", "x" * 300]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    r = subprocess.run(["node", "--input-type=module", "-e", NODE_SCRIPT, "--", str(ROOT / "web" / "bpe.js"), str(path),
                        str(tmp_path / "texts.json")], capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    tok = tokenizers.Tokenizer.from_file(str(path))
    got = json.loads(r.stdout)
    wrong = [(t, g, tok.encode(t).ids) for t, g in zip(texts, got) if g != tok.encode(t).ids]
    assert not wrong, f"{len(wrong)} of {len(texts)} differ; first: {wrong[0]}"
