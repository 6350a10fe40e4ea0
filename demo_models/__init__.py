"""ONNX models for testing the compiler, exported on first use and cached.

    >>> import demo_models
    >>> path = demo_models.get("minilm")          # exports once, then cached
    >>> feeds = demo_models.sample_inputs("minilm", seq=64)

The cache lives in ``$WEBJIT_MODELS_DIR`` (default ``demo_models/.cache``),
one folder per model holding ``model.onnx`` and, for the dynamo exports,
``model.onnx.data``. Exports are written to a temporary folder next to the
cache entry and renamed into place, so an interrupted export leaves no
partial entry behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from webjit.files import replace_dir

__all__ = ["MODELS", "ModelSpec", "cache_dir", "get", "minilm_dir", "sample_inputs"]


@dataclass(frozen=True)
class ModelSpec:
    """How to export a model and how to make inputs for it."""

    name: str
    module: str  # submodule of demo_models with ``export(path)`` and ``build()``
    description: str
    default_seq: int
    vocab_size: int
    first_token_id: int  # sampled ids are in [first_token_id, last_token_id)
    last_token_id: int
    masked_tail: int = 0  # positions at the end masked out when seq > masked_tail
    cls_sep: tuple[int, int] | None = None  # BERT [CLS]/[SEP] ids to place
    pad_id: int | None = None  # id written into masked positions
    export: str = "export"  # the module's function that writes the model


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="minilm",
            module="minilm",
            description="all-MiniLM-L6-v2 encoder (real weights), dynamo, opset 18",
            default_seq=128,
            vocab_size=30522,
            first_token_id=1000,  # skips [PAD], [unused*], [UNK], [CLS], [SEP], [MASK]
            last_token_id=30522,
            masked_tail=20,
            cls_sep=(101, 102),
            pad_id=0,
        ),
        ModelSpec(
            name="minilm_2in",
            module="minilm",
            description="all-MiniLM-L6-v2 exported with only input_ids and attention_mask, dynamo, opset 18",
            default_seq=128,
            vocab_size=30522,
            first_token_id=1000,
            last_token_id=30522,
            masked_tail=20,
            cls_sep=(101, 102),
            pad_id=0,
            export="export_two_inputs",
        ),
        ModelSpec(
            name="bert_base",
            module="bert_base",
            description="BERT-base encoder (random weights), TorchScript, opset 14",
            default_seq=128,
            vocab_size=30522,
            first_token_id=1000,
            last_token_id=30522,
            masked_tail=20,
        ),
        ModelSpec(
            name="gpt2",
            module="gpt2",
            description="GPT-2 small LM (random weights, no KV cache), dynamo, opset 18",
            default_seq=64,
            vocab_size=50257,
            first_token_id=0,
            last_token_id=50256,  # skips <|endoftext|>
        ),
        ModelSpec(
            name="llama",
            module="llama",
            description="small Llama-style LM, GQA (random weights, no KV cache), dynamo, opset 18",
            default_seq=32,
            vocab_size=1000,
            first_token_id=3,  # skips ids 0-2 (unk/pad, bos, eos)
            last_token_id=1000,
        ),
    )
}


def cache_dir() -> Path:
    """Root of the model cache: ``$WEBJIT_MODELS_DIR`` or ``demo_models/.cache``."""
    env = os.environ.get("WEBJIT_MODELS_DIR")
    return Path(env) if env else Path(__file__).resolve().parent / ".cache"


def _spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


def get(name: str, *, force: bool = False) -> Path:
    """Path of ``<cache>/<name>/model.onnx``, exporting the model first if needed.

    With ``force=True`` the model is exported again and replaces the cached copy.
    """
    spec = _spec(name)
    root = cache_dir()
    final = root / name
    if (final / "model.onnx").is_file() and not force:
        return final / "model.onnx"

    root.mkdir(parents=True, exist_ok=True)
    with _export_lock(root, name):
        # Another process (a second pytest worker, say) may have exported it while this one waited.
        if (final / "model.onnx").is_file() and not force:
            return final / "model.onnx"
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
        try:
            tmp.chmod(0o755)  # mkdtemp creates it private
            module = importlib.import_module(f"{__name__}.{spec.module}")
            getattr(module, spec.export)(tmp / "model.onnx")
            if not (tmp / "model.onnx").is_file():
                raise RuntimeError(f"export of {name!r} produced no model.onnx")
            replace_dir(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final / "model.onnx"


@contextlib.contextmanager
def _export_lock(root: Path, name: str):
    """One export of a model at a time across processes; the others wait for it and then use its result."""
    with open(root / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def minilm_dir() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 files (tokenizer.json, vocab.txt, ...)."""
    from .minilm import minilm_dir as _minilm_dir

    return _minilm_dir()


@functools.lru_cache(maxsize=None)
def _input_names(path: str, mtime_ns: int) -> tuple[str, ...]:
    import onnx

    model = onnx.load(path, load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    return tuple(i.name for i in model.graph.input if i.name not in initializers)


def sample_inputs(name: str, seq: int | None = None, batch: int = 1) -> dict[str, np.ndarray]:
    """Deterministic int64 inputs of shape ``[batch, seq]`` for model ``name``.

    Token ids are drawn from a seeded generator, avoiding special tokens. For
    the BERT-style models the last 20 positions are masked out when
    ``seq > 20``; for minilm the ids also start with [CLS], end the unmasked
    part with [SEP] and hold [PAD] in the masked tail. Only the inputs that
    the exported graph has are returned (the model is exported if needed).
    """
    spec = _spec(name)
    seq = spec.default_seq if seq is None else seq
    if seq < 1 or batch < 1:
        raise ValueError("seq and batch must be positive")

    rng = np.random.default_rng(0)
    ids = rng.integers(spec.first_token_id, spec.last_token_id, size=(batch, seq), dtype=np.int64)
    mask = np.ones((batch, seq), dtype=np.int64)
    valid = seq - spec.masked_tail if spec.masked_tail and seq > spec.masked_tail else seq
    mask[:, valid:] = 0
    if spec.cls_sep is not None:
        ids[:, 0] = spec.cls_sep[0]
        ids[:, valid - 1] = spec.cls_sep[1]
    if spec.pad_id is not None:
        ids[:, valid:] = spec.pad_id

    feeds = {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": np.zeros((batch, seq), dtype=np.int64),
    }
    path = get(name)
    return {key: feeds[key] for key in _input_names(str(path), path.stat().st_mtime_ns)}
