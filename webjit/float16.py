"""float16 models (what `onnxruntime.transformers.float16.convert_float_to_float16` writes: float16 weights and
activations, with Casts at float32 inputs and outputs) compile as float32 graphs.

Every float16 value becomes float32: weights are widened once here, Casts to float16 become Casts to float32.
The kernels then compute in float32 on every backend (SwiftShader and WebAssembly have no f16 arithmetic), and
the bundle stores the weights as float16 again (`Plan.half_weights`: the same bytes as the file, so half the
download of a float32 model and no loss), widened on load. Results can differ from onnxruntime, which rounds
every intermediate to float16, by about float16's precision times the values' magnitude.
"""
from __future__ import annotations

from .errors import UnsupportedOp
from .ir import Graph
from .tensor import Tensor

FLOAT, FLOAT16 = 1, 10  # TensorProto.DataType


def widen_float16(g: Graph) -> bool:
    """Stage entry point (after import): rewrite g in place. Returns whether any float16 weight was widened."""
    for name in g.inputs + g.outputs:
        if g.values[name].dtype == "float16":
            raise UnsupportedOp(f"{'input' if name in g.inputs else 'output'} '{name}' is float16: webjit takes and "
                                f"gives float32 tensors (convert the model with keep_io_types=True)")
    half = False
    for v in g.values.values():
        if v.dtype != "float16":
            continue
        v.dtype = "float32"
        if v.const is not None:
            v.const, half = _widen(v.const), True
    for n in g.nodes:
        if n.op == "Cast" and n.attrs.get("to") == FLOAT16:
            n.attrs = {**n.attrs, "to": FLOAT}
        for key, value in n.attrs.items():
            if isinstance(value, Tensor) and value.dtype == "float16":
                n.attrs = {**n.attrs, key: _widen(value)}
    return half


def _widen(t: Tensor) -> Tensor:
    try:
        import numpy as np
    except ImportError:  # Pyodide without numpy: element by element, exact all the same
        return t.astype("float32")
    wide = np.frombuffer(t.data, dtype="<f2").astype("<f4")
    return Tensor("float32", t.shape, wide.tobytes())
