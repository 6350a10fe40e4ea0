"""The compiler's entry points for a page: what web/compiler_worker.js calls inside Pyodide.

    files = compile_files("/model/model.onnx", shapes={"input_ids": [1, 96]})
    files["manifest.json"]        # bytes; every other key is a path the manifest lists

The same calls run in CPython, and give the same bytes there (tests/e2e/test_compile_in_browser.py checks it).
Nothing here needs numpy, onnx or wasmtime.
"""
from __future__ import annotations

import os
from typing import Callable

from .bundle import BACKENDS
from .progress import listening


def compile_files(model: str | os.PathLike, shapes: dict[str, list[int]] | None = None,
                  backends=BACKENDS, progress: Callable[[str, int, int], None] | None = None) -> dict[str, bytes]:
    """Compile `model` for `shapes` into a bundle held in memory: bundle path -> bytes, "manifest.json" included.
    progress(stage, done, total) is called as the build goes."""
    from .bundle import build_files
    shapes = {k: tuple(int(d) for d in v) for k, v in (shapes or {}).items()}
    with listening(progress or (lambda stage, done, total: None)):
        return build_files(model, shapes, reference=False, backends=list(backends))


def external_data(model: str | os.PathLike) -> list[str]:
    """The external data files `model` refers to, as locations relative to its folder."""
    from .onnx_proto import external_locations
    return external_locations(model)
