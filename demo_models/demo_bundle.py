"""The bundles the demo page (web/demo/) runs: all-MiniLM-L6-v2 for any length up to 128 tokens, with length
buckets, and the model's tokenizer.json copied in beside the manifest. The ONNX model itself goes in too, as
source/model.onnx and source/model.onnx.data (not files of the bundle: the manifest does not list them), for the
page's "compile in your browser" panel. In generate/, a bundle of the hub's small GPT-2 (random weights, a
vocabulary of 1000) built for generation, for the page's text generation panel, with a WordPiece tokenizer.json of
exactly that vocabulary trained on the page's sentences and other English text (the model has none of its own).

    python -m demo_models.demo_bundle -o build/minilm-demo [--seq 128] [--buckets 16,32,64] [--batch 1] [--context 128]
    webjit serve build/minilm-demo      # then open http://127.0.0.1:8000/web/demo/

Sentences in the demo corpus and typed queries are short: with buckets, each runs at the smallest bucket that holds
it (16 or 32 tokens), which keeps a forward pass short on a CPU adapter (SwiftShader), where time grows with the
number of tokens, while long queries still fit.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import sys
from pathlib import Path

from . import _export_lock, cache_dir, get, minilm_dir, sample_inputs

MODEL = "minilm"
GENERATOR = "gpt2"  # demo_models.hub's small random GPT-2, exported by Optimum with its past
GENERATOR_FOLDER = "generate"  # in the demo bundle, where the page's generation panel looks
ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_TEXTS = [ROOT / "web" / "demo" / "corpus.json", ROOT / "tests" / "data" / "tokenizer_corpus.json"]


def build(out: str | Path, seq: int = 128, batch: int = 1, buckets: list[int] | None = (16, 32, 64),
          context: int = 128) -> Path:
    """Export MiniLM if needed, write its bundle for input shape [batch, seq] (any seq up to `seq` with `buckets`)
    to `out`, add tokenizer.json; then the generation bundle for `context` positions in out/generate (0: none)."""
    from webjit.bundle import build as build_bundle
    sizes = [b for b in (buckets or ()) if b < seq]
    out = build_bundle(get(MODEL), out, values=sample_inputs(MODEL, seq=seq, batch=batch),
                       buckets=[f"seq={','.join(map(str, sizes))}"] if sizes else None)
    shutil.copyfile(minilm_dir() / "tokenizer.json", out / "tokenizer.json")
    add_source(get(MODEL), out / "source")
    if context:
        add_generator(out / GENERATOR_FOLDER, context)
    return out


def add_generator(folder: Path, context: int) -> Path:
    """The small GPT-2 built for generation over `context` positions, with a tokenizer.json for its vocabulary."""
    from webjit.bundle import build as build_bundle
    from webjit.generation import Spec
    from . import hub
    repo = hub.get(GENERATOR)
    vocab = json.loads((repo / "config.json").read_text())["vocab_size"]
    folder = build_bundle(repo / "onnx" / "model.onnx", folder, generate=Spec.of(context))
    shutil.copyfile(generator_tokenizer(vocab), folder / "tokenizer.json")
    return folder


def generator_tokenizer(vocab: int) -> Path:
    """A BERT WordPiece tokenizer.json of exactly `vocab` tokens, trained with `tokenizers` on the ASCII sentences of
    TOKENIZER_TEXTS (the page's tokenizer.js encodes with it, web/text.js decodes; other characters are [UNK]).
    The trainer breaks ties between equally frequent merges in hash order, so two trainings differ a little: the
    first one made is kept in the model cache, and every build after it copies that one."""
    path = cache_dir() / f"{GENERATOR}-demo" / f"tokenizer-{vocab}.json"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _export_lock(path.parent, path.stem):
        if path.is_file():  # another process trained it while this one waited
            return path
        from tokenizers import BertWordPieceTokenizer
        from tokenizers.processors import BertProcessing
        # ASCII text without the test corpus's overlong words, so that the pieces are English-looking and a
        # random model's text shows in any font
        texts = [t for f in TOKENIZER_TEXTS for t in json.loads(f.read_text(encoding="utf-8"))
                 if t.isascii() and all(len(w) <= 20 for w in t.split())]
        tok = BertWordPieceTokenizer()
        tok.train_from_iterator(texts, vocab_size=vocab, show_progress=False)
        if tok.get_vocab_size() != vocab:
            raise RuntimeError(f"the tokenizer trained to {tok.get_vocab_size()} tokens, not {vocab}: "
                               "the training texts are too short")
        tok.post_processor = BertProcessing(*((t, tok.token_to_id(t)) for t in ("[SEP]", "[CLS]")))
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        tok.save(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return path


def add_source(model: Path, folder: Path) -> None:
    """The model and its external data files, copied (not hard-linked: onnx refuses external data with more than
    one link)."""
    from webjit.inbrowser import external_data
    folder.mkdir(exist_ok=True)
    for name in [model.name, *external_data(model)]:
        src, dst = model.parent / name, folder / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.unlink(missing_ok=True)
        shutil.copyfile(src, dst)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m demo_models.demo_bundle", description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default="build/minilm-demo", metavar="DIR", help="bundle folder")
    p.add_argument("--seq", type=int, default=128, help="the most tokens per sentence (default 128)")
    p.add_argument("--buckets", default="16,32,64", help="length buckets below --seq (default 16,32,64; '' for none)")
    p.add_argument("--batch", type=int, default=1, help="sentences per forward pass (default 1)")
    p.add_argument("--context", type=int, default=128,
                   help="positions (prompt plus new tokens) of the generation bundle in generate/ "
                        "(default 128; 0: none)")
    args = p.parse_args(argv)
    out = build(args.output, args.seq, args.batch, [int(b) for b in args.buckets.split(",") if b.strip()],
                args.context)
    print(f"{out}: serve it with `webjit serve {out}` and open /web/demo/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
