"""GPT-2 small (768 hidden, 12 layers, 12 heads) with seeded random weights, no KV cache."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

INPUT_NAMES = ("input_ids",)
OUTPUT_NAME = "logits"
VOCAB_SIZE = 50257
MAX_SEQ = 1024


def build() -> torch.nn.Module:
    """A randomly initialised GPT2LMHeadModel (seed 0) returning ``logits``.

    Biases and norm weights get seeded noise too (see ``perturb_vectors_``).

    Only ``input_ids`` is taken: the causal mask is built inside the graph.
    Eager attention is used, which exports with the dynamo exporter.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from ._export import Logits, perturb_vectors_

    config = GPT2Config(
        vocab_size=VOCAB_SIZE,
        n_positions=MAX_SEQ,
        n_embd=768,
        n_layer=12,
        n_head=12,
        use_cache=False,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    perturb_vectors_(model)
    return Logits(model).eval()


def export(path: Path) -> None:
    """Export with the dynamo exporter, opset 18, weights in ``model.onnx.data``."""
    from ._export import export_dynamo

    export_dynamo(build(), path, INPUT_NAMES, OUTPUT_NAME, VOCAB_SIZE, MAX_SEQ)
