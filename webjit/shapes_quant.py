"""Shape and type inference for the quantization ops (ONNX QuantizeLinear family, MatMulInteger, ConvInteger, and
com.microsoft MatMulNBits). Each function takes shapes' `_Ctx` and returns [(dtype, shape)] per output."""
from __future__ import annotations

from .errors import WebjitError

def _dequantize(c):
    return [(c.ins[1].dtype, c.shape(0))]


def _quantize(c):
    from .onnx_import import dtype_name
    to = c.node.attrs.get("output_dtype")
    dtype = dtype_name(to) if to else c.ins[2].dtype if len(c.ins) > 2 and c.ins[2] is not None else "uint8"
    return [(dtype, c.shape(0))]


def _dynamic_quantize(c):
    return [("uint8", c.shape(0)), ("float32", ()), ("uint8", ())]




def _matmul_nbits(c):
    a, k, n = c.shape(0), c.node.attrs.get("K"), c.node.attrs.get("N")
    if k is None or n is None or not a or a[-1] != k:
        raise WebjitError(f"node '{c.node.name}' (MatMulNBits): input of shape {list(a)} for K={k}, N={n}")
    return [(c.ins[0].dtype, tuple(a[:-1]) + (n,))]


def quant_shapes(matmul, conv) -> dict:
    """The inference functions by op, given shapes.py's for MatMul and Conv (the integer forms have their shapes)."""
    return {"DequantizeLinear": _dequantize, "QuantizeLinear": _quantize, "DynamicQuantizeLinear": _dynamic_quantize,
            "MatMulInteger": lambda c: [("int32", matmul(c)[0][1])], "ConvInteger": lambda c: [("int32", conv(c)[0][1])],
            "MatMulNBits": _matmul_nbits}
