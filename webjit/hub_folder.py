"""A Hugging Face hub-style folder as `webjit build` takes it: the ONNX file of the precision asked for, and what a
page needs around the model (the tokenizer, the pooling and normalisation of a sentence-transformers model).

    folder/
      config.json  tokenizer.json  tokenizer_config.json
      onnx/model.onnx  onnx/model_fp16.onnx  onnx/model_quantized.onnx  onnx/model_q4.onnx     (transformers.js)
      modules.json  1_Pooling/config.json                                                      (sentence-transformers)

The bundle then carries tokenizer.json (checked like every other file) and a `pipeline` section in its manifest
(web/MANIFEST.md) for the runtime's pipeline().
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import WebjitError

DTYPES = {"fp32": "", "fp16": "_fp16", "q8": "_quantized", "q4": "_q4"}  # transformers.js's file name suffixes
TOKENIZER = "text/tokenizer.json"  # where a bundle keeps the folder's tokenizer
POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
                 "pooling_mode_max_tokens": "max"}
DEFAULT_MAX_LENGTH = 128


@dataclass
class Folder:
    root: Path
    model: Path                          # the ONNX file for the dtype (decoder_model.onnx for an encoder-decoder)
    config: dict = field(default_factory=dict)
    tokenizer: Path | None = None
    tokenizer_config: dict = field(default_factory=dict)
    pooling: str | None = None           # mean, cls or max, from 1_Pooling/config.json
    normalize: bool = False              # modules.json lists a Normalize module

    @property
    def max_length(self) -> int:
        """The longest input a page gets: the tokenizer's model_max_length, else the positions the model has,
        at most DEFAULT_MAX_LENGTH unless given."""
        n = self.tokenizer_config.get("model_max_length")
        if not isinstance(n, int) or n > 100_000:
            n = self.config.get("max_position_embeddings")
        return min(n, DEFAULT_MAX_LENGTH) if isinstance(n, int) and n > 1 else DEFAULT_MAX_LENGTH


def is_folder(path) -> bool:
    return Path(path).is_dir()


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise WebjitError(f"{path}: not readable JSON ({e})") from None
    return data if isinstance(data, dict) else {}


def open_folder(path, dtype: str | None = None, stem: str = "model") -> Folder:
    """The folder's files for `dtype` (default fp32). stem: the ONNX file's name without suffix and .onnx."""
    root = Path(path)
    dtype = dtype or "fp32"
    if dtype not in DTYPES:
        raise WebjitError(f"--dtype {dtype}: choose one of {', '.join(DTYPES)}")
    onnx_dir = root / "onnx" if (root / "onnx").is_dir() else root
    model = onnx_dir / f"{stem}{DTYPES[dtype]}.onnx"
    if not model.is_file():
        found = sorted(p.name for p in onnx_dir.glob("*.onnx"))
        raise WebjitError(f"{root}: no {model.relative_to(root)} for --dtype {dtype} "
                          f"(the folder has {', '.join(found) or 'no ONNX files'})")
    f = Folder(root, model, _json(root / "config.json") if (root / "config.json").is_file() else {})
    if (root / "tokenizer.json").is_file():
        f.tokenizer = root / "tokenizer.json"
    if (root / "tokenizer_config.json").is_file():
        f.tokenizer_config = _json(root / "tokenizer_config.json")
    modules = root / "modules.json"
    if modules.is_file():
        try:
            listed = json.loads(modules.read_text(encoding="utf-8"))
        except ValueError as e:
            raise WebjitError(f"{modules}: not readable JSON ({e})") from None
        for m in listed if isinstance(listed, list) else []:
            kind, where = str(m.get("type", "")), str(m.get("path", ""))
            if kind.endswith("Pooling") and (root / where / "config.json").is_file():
                cfg = _json(root / where / "config.json")
                f.pooling = next((mode for key, mode in POOLING_MODES.items() if cfg.get(key)), None)
            if kind.endswith("Normalize"):
                f.normalize = True
    return f


def encoder_decoder(path) -> bool:
    """The folder holds an encoder-decoder export (encoder_model.onnx and decoder_model.onnx)."""
    onnx_dir = Path(path) / "onnx" if (Path(path) / "onnx").is_dir() else Path(path)
    return (onnx_dir / "decoder_model.onnx").is_file() and (onnx_dir / "encoder_model.onnx").is_file()


def pipeline_section(folder: Folder, task: str, outputs: list[str]) -> dict:
    """The manifest's `pipeline` section: what pipeline() in the page needs besides the model."""
    out = {"task": task, "tokenizer": TOKENIZER if folder.tokenizer else None, "maxLength": folder.max_length}
    if task == "feature-extraction":
        out.update({"pooling": folder.pooling, "normalize": folder.normalize,
                    "output": next((o for o in ("sentence_embedding", "last_hidden_state", "token_embeddings")
                                    if o in outputs), outputs[0])})
    out["special"] = {camel: folder.config[key] for key, camel in SPECIAL.items()
                      if isinstance(folder.config.get(key), int)}
    return out


SPECIAL = {"eos_token_id": "eosTokenId", "bos_token_id": "bosTokenId", "pad_token_id": "padTokenId",
           "decoder_start_token_id": "decoderStartTokenId"}


def resolve(path, dtype: str | None, generate: bool) -> Folder:
    """The folder opened for a build: decoder_model.onnx of an encoder-decoder export when generating, else
    model.onnx, each in `dtype`."""
    return open_folder(path, dtype, "decoder_model" if generate and encoder_decoder(path) else "model")


def encoder_of(folder: Folder) -> Path | None:
    """An encoder-decoder's encoder_model.onnx in the decoder's precision, beside it."""
    suffix = folder.model.stem[len("decoder_model"):] if folder.model.stem.startswith("decoder_model") else None
    if suffix is None:
        return None
    enc = folder.model.with_name(f"encoder_model{suffix}.onnx")
    return enc if enc.is_file() else None


def default_shapes(model, length: int) -> tuple[dict, list[str]]:
    """Shapes and length buckets for a text encoder built from a folder without --shape: every input of two
    integer dims is [1, length], and the sequence is bucketed (16, 32, ... below length)."""
    from .onnx_import import import_onnx
    g = import_onnx(model)
    shapes = {}
    for name in g.inputs:
        v = g.values[name]
        if len(v.shape or ()) != 2 or v.dtype not in ("int64", "int32"):
            raise WebjitError(f"{model}: input '{name}' is not [batch, sequence] token ids; give its shape with "
                              "--shape NAME=DIMS")
        shapes[name] = (1, length)
    sizes = []
    b = 16
    while b < length:
        sizes.append(b)
        b *= 2
    return shapes, [",".join(str(s) for s in sizes)] if sizes else []
