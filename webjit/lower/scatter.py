"""ScatterND: a copy of the data, then the updates written over it at the rows the indices name."""
from __future__ import annotations

from ..tensor import prod

from .elementwise import bindings, leaf, space_1d
from .spec import KernelSpec

REDUCTIONS = ("none", "add", "mul", "max", "min")


def ScatterND(c, *, reduction="none"):
    """Two kernels on one output buffer: an elementwise copy of the data (read through its view), then `scatter_nd`,
    which reads the indices and updates and writes rows of the output. Without a reduction every update row is a
    thread of its own (ONNX leaves duplicate indices undefined); with one, the rows are applied in order, one thread
    per column, so that duplicates accumulate as in onnxruntime."""
    data, idx, upd = c.node.inputs
    out = c.node.outputs[0]
    shape, ishape = c.shape(data), c.shape(idx)
    dtype = c.dtype(data)
    if reduction not in REDUCTIONS:
        raise c.unsupported(f"reduction '{reduction}'")
    if reduction != "none" and dtype == "bool":
        raise c.unsupported(f"reduction '{reduction}' of bool tensors")
    depth = ishape[-1] if ishape else 0
    if not 1 <= depth <= len(shape):
        raise c.unsupported(f"indices of shape {list(ishape)} for data of rank {len(shape)}")
    total = prod(shape)
    copy = {"shape": list(shape), "out_dtype": dtype, "leaves": [leaf(c, data, 0, shape)],
            "code": [[dtype, "Identity", (("x", 0),), ()]]}
    count, inner = prod(ishape[:-1]), prod(shape[depth:])
    bases, slots = bindings(c, [idx, upd])
    serial = reduction != "none"
    params = {"dtype": dtype, "reduction": reduction, "serial": serial, "depth": depth, "count": count,
              "inner": inner, "dims": list(shape[:depth]), "strides": [prod(shape[d + 1:]) for d in range(depth)],
              "threads": inner if serial else count * inner, "idx_slot": slots[0], "upd_slot": slots[1]}
    return [KernelSpec("elementwise", c.node.name, copy, (c.base(data),), (out,), space_1d(total),
                       flops=total, bytes=8 * total),
            KernelSpec("scatter_nd", c.node.name, params, tuple(bases), (out,), space_1d(params["threads"]),
                       bytes=12 * count * inner)]


OPS = {"ScatterND": ScatterND}
