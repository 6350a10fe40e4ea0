"""webjit: a just-in-time kernel generator for running transformer models in the browser.

    plan = webjit.compile("model.onnx", shapes={"input_ids": (1, 128), "attention_mask": (1, 128)})

`compile` is the list of stages in stages.py; `WEBJIT_DUMP=dir` (or dump=dir) writes what each stage produced.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import UnsupportedOp, ValidationFailed, WebjitError
from .ir import Graph
from .lower import KernelSpec
from .plan import Plan
from .stages import compile
from .version import VERSION

__version__ = VERSION
__all__ = ["compile", "build", "Plan", "KernelSpec", "Graph", "WebjitError", "UnsupportedOp", "ValidationFailed"]


def build(model: str | os.PathLike, out: str | os.PathLike, shapes: dict | None = None, values: dict | None = None,
          **options) -> Path:
    """ONNX file or hub-style folder -> a web bundle in `out` (its path), as `webjit build` writes it; options as
    for webjit.bundle.build (dtype, buckets, backends, weights, generate, reference)."""
    from .bundle import build as build_bundle
    return build_bundle(model, out, shapes, values, **options)
