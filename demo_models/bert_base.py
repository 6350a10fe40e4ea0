"""BERT-base encoder (768 hidden, 12 layers, 12 heads) with seeded random weights."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
VOCAB_SIZE = 30522


def build() -> torch.nn.Module:
    """A randomly initialised BertModel (seed 0) returning ``last_hidden_state``.

    Biases and norm weights get seeded noise too (see ``perturb_vectors_``).

    Eager attention is used; the sdpa path traces to extra IsNaN/Where nodes.
    """
    import torch
    from transformers import BertConfig, BertModel

    from ._export import LastHiddenState, perturb_vectors_

    config = BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=512,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False)
    perturb_vectors_(model)
    return LastHiddenState(model).eval()


def export(path: Path) -> None:
    """Export with the TorchScript exporter, opset 14, a single ONNX file."""
    from ._export import export_torchscript

    export_torchscript(build(), path, INPUT_NAMES, OUTPUT_NAME, VOCAB_SIZE, opset=14)
