"""The bundle the semantic search page (web/demo/) runs: all-MiniLM-L6-v2 for any length up to 128 tokens, with
length buckets, and the model's tokenizer.json copied in beside the manifest. The ONNX model itself goes in too, as
source/model.onnx and source/model.onnx.data (not files of the bundle: the manifest does not list them), for the
page's "compile in your browser" panel.

    python -m demo_models.demo_bundle -o build/minilm-demo [--seq 128] [--buckets 16,32,64] [--batch 1]
    webjit serve build/minilm-demo      # then open http://127.0.0.1:8000/web/demo/

Sentences in the demo corpus and typed queries are short: with buckets, each runs at the smallest bucket that holds
it (16 or 32 tokens), which keeps a forward pass short on a CPU adapter (SwiftShader), where time grows with the
number of tokens, while long queries still fit.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from . import get, minilm_dir, sample_inputs

MODEL = "minilm"


def build(out: str | Path, seq: int = 128, batch: int = 1, buckets: list[int] | None = (16, 32, 64)) -> Path:
    """Export MiniLM if needed, write its bundle for input shape [batch, seq] (any seq up to `seq` with `buckets`)
    to `out`, add tokenizer.json."""
    from webjit.bundle import build as build_bundle
    sizes = [b for b in (buckets or ()) if b < seq]
    out = build_bundle(get(MODEL), out, values=sample_inputs(MODEL, seq=seq, batch=batch),
                       buckets=[f"seq={','.join(map(str, sizes))}"] if sizes else None)
    shutil.copyfile(minilm_dir() / "tokenizer.json", out / "tokenizer.json")
    add_source(get(MODEL), out / "source")
    return out


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
    args = p.parse_args(argv)
    out = build(args.output, args.seq, args.batch, [int(b) for b in args.buckets.split(",") if b.strip()])
    print(f"{out}: serve it with `webjit serve {out}` and open /web/demo/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
