"""The other precisions of an exported model, made with onnxruntime's own tools, as the hub ships them.

    >>> from demo_models import precisions
    >>> path = precisions.get("minilm", "q8")     # demo_models/.cache/minilm/model_quantized.onnx, made once

| form      | file                     | made by                                                              |
|-----------|--------------------------|----------------------------------------------------------------------|
| fp32      | model.onnx               | the export itself                                                    |
| fp16      | model_fp16.onnx          | onnxruntime.transformers.float16.convert_float_to_float16, io kept fp32 |
| q8        | model_quantized.onnx     | onnxruntime.quantization.quantize_dynamic (DynamicQuantizeLinear, MatMulInteger) |
| q4        | model_q4.onnx            | onnxruntime MatMulNBitsQuantizer (com.microsoft.MatMulNBits), block 32, symmetric |
| optimized | model_optimized.onnx     | onnxruntime.transformers.optimizer.optimize_model (com.microsoft fused ops) |

The file names are the ones transformers.js reads from a hub repository's onnx/ folder. Each file is written to a
temporary name and renamed into place, under the same per-model lock as the export.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

FILES = {"fp32": "model.onnx", "fp16": "model_fp16.onnx", "q8": "model_quantized.onnx", "q4": "model_q4.onnx",
         "optimized": "model_optimized.onnx"}

# (num_heads, hidden_size) for optimize_model, per demo model it applies to
ATTENTION = {"minilm": (12, 384), "bert_base": (12, 768)}


def get(name: str, form: str, *, src: Path | None = None) -> Path:
    """The `form` file beside demo model `name`'s model.onnx (or beside `src`), made once."""
    from . import _export_lock, get as export
    if form not in FILES:
        raise KeyError(f"unknown precision {form!r}; known: {', '.join(FILES)}")
    src = Path(src) if src is not None else export(name)
    dst = src.parent / FILES[form]
    if form == "fp32" or dst.is_file():
        return src if form == "fp32" else dst
    with _export_lock(src.parent.parent, f"{src.parent.name}.{form}"):
        if not dst.is_file():
            convert(src, dst, form, attention=ATTENTION.get(name))
    return dst


def convert(src: Path, dst: Path, form: str, *, attention: tuple[int, int] | None = None,
            block_size: int = 32, symmetric: bool = True) -> None:
    """Write `src` in precision `form` to `dst` (atomically)."""
    import onnx
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".onnx", dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if form == "fp16":
            from onnxruntime.transformers.float16 import convert_float_to_float16
            model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
            onnx.save(model, str(tmp))
        elif form == "q8":
            from onnxruntime.quantization import QuantType, quantize_dynamic
            quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8)
        elif form == "q4":
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
            q = MatMulNBitsQuantizer(onnx.load(str(src)), block_size=block_size, is_symmetric=symmetric)
            q.process()
            onnx.save(q.model.model, str(tmp))
        elif form == "optimized":
            from onnxruntime.transformers.optimizer import optimize_model
            heads, hidden = attention or (0, 0)
            optimize_model(str(src), model_type="bert", num_heads=heads, hidden_size=hidden,
                           opt_level=1).save_model_to_file(str(tmp))
        else:
            raise KeyError(f"unknown precision {form!r}; known: {', '.join(FILES)}")
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)
