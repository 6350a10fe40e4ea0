"""Tile: a copy that reads its input through a view with the repeats as extra broadcast dims."""
from __future__ import annotations

from ..tensor import prod
from ..views import Access

from .elementwise import space_1d
from .spec import KernelSpec


def Tile(c):
    """Tile(x, repeats) is x viewed as [r0, d0, r1, d1, ...] with stride 0 along each r (a broadcast), copied out
    densely: in row-major order that is the tiled tensor. One elementwise kernel, no new template."""
    x, out = c.node.inputs[0], c.node.outputs[0]
    repeats = [int(r) for r in c.g.const(c.node.inputs[1]).reshape(-1)]
    v, shape = c.view(x), c.shape(x)
    big, strides = [], []
    for r, d, s in zip(repeats, shape, v.strides):
        big += [r, d]
        strides += [0, s if d != 1 else 0]
    dtype = c.dtype(x)
    params = {"shape": big, "out_dtype": dtype,
              "leaves": [{"slot": 0, "dtype": dtype, "access": Access(v.offset, tuple(strides))}],
              "code": [[dtype, "Identity", (("x", 0),), ()]]}
    total = prod(big)
    return [KernelSpec("elementwise", c.node.name, params, (c.base(x),), (out,), space_1d(total), bytes=8 * total)]


OPS = {"Tile": Tile}
