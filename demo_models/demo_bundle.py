"""The bundle the semantic search page (web/demo/) runs: all-MiniLM-L6-v2 compiled for a short sequence, with the
model's tokenizer.json copied in beside the manifest.

    python -m demo_models.demo_bundle -o build/minilm-demo [--seq 32] [--batch 1]
    webjit serve build/minilm-demo      # then open http://127.0.0.1:8000/web/demo/

Sentences in the demo corpus are short, so seq 32 is enough, and it keeps a forward pass short on a CPU adapter
(SwiftShader), where time grows with the number of tokens.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from . import get, minilm_dir, sample_inputs

MODEL = "minilm"


def build(out: str | Path, seq: int = 32, batch: int = 1) -> Path:
    """Export MiniLM if needed, write its bundle for input shape [batch, seq] to `out`, add tokenizer.json."""
    from webjit.bundle import build as build_bundle
    out = build_bundle(get(MODEL), out, values=sample_inputs(MODEL, seq=seq, batch=batch))
    shutil.copyfile(minilm_dir() / "tokenizer.json", out / "tokenizer.json")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m demo_models.demo_bundle", description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default="build/minilm-demo", metavar="DIR", help="bundle folder")
    p.add_argument("--seq", type=int, default=32, help="tokens per sentence (default 32)")
    p.add_argument("--batch", type=int, default=1, help="sentences per forward pass (default 1)")
    args = p.parse_args(argv)
    out = build(args.output, args.seq, args.batch)
    print(f"{out}: serve it with `webjit serve {out}` and open /web/demo/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
