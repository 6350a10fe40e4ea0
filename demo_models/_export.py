"""Shared torch helpers for exporting the demo models to ONNX.

Importing this module imports torch; the package root does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch


class LastHiddenState(torch.nn.Module):
    """Wraps an encoder so it takes positional tensors and returns ``last_hidden_state``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> torch.Tensor:
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
        )
        return out.last_hidden_state


class LastHiddenStateNoTypes(torch.nn.Module):
    """Like LastHiddenState, with only ``input_ids`` and ``attention_mask``: the token type ids become the model's
    own buffer of zeros, which exporters then fold into the graph as constants (as users' exports do)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class Logits(torch.nn.Module):
    """Wraps a causal LM so it takes ``input_ids`` only and returns ``logits``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, use_cache=False).logits


def perturb_vectors_(model: torch.nn.Module, std: float = 0.02) -> None:
    """Add seeded noise to every 1-D parameter (biases and norm weights).

    Freshly initialised models have all-zero biases and all-one norm weights;
    exporters then drop the biases or share one initializer between norms,
    which hides bugs in how a compiler handles them. Uses the global RNG.
    """
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 1:
                param.add_(torch.randn_like(param) * std)


def example_inputs(
    input_names: Sequence[str], vocab_size: int, batch: int = 2, seq: int = 16
) -> tuple[torch.Tensor, ...]:
    """Deterministic example tensors used to trace a model.

    The attention mask pads the tail of the last row, so tracing sees a mask
    that is not all ones and keeps the masking ops in the graph.
    """
    gen = torch.Generator().manual_seed(0)
    tensors = {
        "input_ids": torch.randint(3, vocab_size, (batch, seq), generator=gen),
        "attention_mask": torch.ones(batch, seq, dtype=torch.int64),
        "token_type_ids": torch.zeros(batch, seq, dtype=torch.int64),
    }
    tensors["attention_mask"][-1, seq - 4 :] = 0
    return tuple(tensors[name] for name in input_names)


def export_dynamo(
    module: torch.nn.Module,
    path: Path,
    input_names: Sequence[str],
    output_name: str,
    vocab_size: int,
    max_seq: int,
) -> None:
    """Export with the torch.export-based exporter (opset 18, external data).

    Every input is ``[batch, seq]`` with both dims symbolic.
    """
    batch = torch.export.Dim("batch", max=4096)
    seq = torch.export.Dim("seq", max=max_seq)
    dynamic_shapes = {name: {0: batch, 1: seq} for name in input_names}
    args = example_inputs(input_names, vocab_size)
    with torch.no_grad():
        program = torch.onnx.export(
            module.eval(),
            args,
            input_names=list(input_names),
            output_names=[output_name],
            opset_version=18,
            dynamo=True,
            dynamic_shapes=dynamic_shapes,
            external_data=True,
            verbose=False,
        )
    assert program is not None
    program.save(path, external_data=True)


def export_torchscript(
    module: torch.nn.Module,
    path: Path,
    input_names: Sequence[str],
    output_name: str,
    vocab_size: int,
    opset: int = 14,
) -> None:
    """Export with the TorchScript (tracing) exporter using ``dynamic_axes``."""
    axes = {0: "batch", 1: "seq"}
    dynamic_axes = {name: axes for name in [*input_names, output_name]}
    args = example_inputs(input_names, vocab_size)
    with torch.no_grad():
        torch.onnx.export(
            module.eval(),
            args,
            str(path),
            input_names=list(input_names),
            output_names=[output_name],
            opset_version=opset,
            dynamo=False,
            dynamic_axes=dynamic_axes,
        )
