"""A small Llama-style decoder with seeded random weights, no KV cache.

RMSNorm, rotary position embeddings, SiLU-gated MLP and grouped-query
attention (8 query heads sharing 2 key/value heads).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

INPUT_NAMES = ("input_ids",)
OUTPUT_NAME = "logits"
VOCAB_SIZE = 1000
MAX_SEQ = 512


def build() -> torch.nn.Module:
    """A randomly initialised LlamaForCausalLM (seed 0) returning ``logits``.

    Biases and norm weights get seeded noise too (see ``perturb_vectors_``).

    Only ``input_ids`` is taken: the causal mask is built inside the graph.
    Eager attention is used, which exports with the dynamo exporter.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ._export import Logits, perturb_vectors_

    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=MAX_SEQ,
        use_cache=False,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    perturb_vectors_(model)
    return Logits(model).eval()


def export(path: Path) -> None:
    """Export with the dynamo exporter, opset 18, weights in ``model.onnx.data``."""
    from ._export import export_dynamo

    export_dynamo(build(), path, INPUT_NAMES, OUTPUT_NAME, VOCAB_SIZE, MAX_SEQ)
