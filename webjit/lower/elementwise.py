"""Elementwise kernels: fused chains (one `Elementwise` node) and Concat."""
from __future__ import annotations

from ..tensor import prod

from ..space import ELEMENTWISE, Variant, ceil_div, grid
from .spec import KernelSpec


def space_1d(total: int, regs: int = 8) -> tuple[Variant, ...]:
    """One thread per output element (times `per`), for any kernel of that shape."""
    out = []
    for wg, per in ELEMENTWISE:
        if per > 1 and total < wg * per * 4:
            continue  # too small to split further
        out.append(Variant((("per", per), ("wg", wg)), grid(ceil_div(total, wg * per)), wg, 0, regs * per))
    # default first: 64 threads, 1 element each, is never a bad choice
    return tuple(sorted(out, key=lambda v: (v.v["wg"] != 64 or v.v["per"] != 1)))


def bindings(c, names) -> tuple[list[str], list[int]]:
    """Deduplicated buffer list for a kernel's inputs, and for each input its binding slot."""
    bases: list[str] = []
    slots = []
    for n in names:
        b = c.base(n)
        if b not in bases:
            bases.append(b)
        slots.append(bases.index(b))
    return bases, slots


def leaf(c, name: str, slot: int, out_shape) -> dict:
    """An input read through its view, broadcast to the kernel's output coordinates."""
    return {"slot": slot, "dtype": c.dtype(name), "access": c.access(name, out_shape)}


def leaves(c, names, out_shape) -> tuple[list[str], list[dict]]:
    bases, slots = bindings(c, names)
    return bases, [leaf(c, n, s, out_shape) for n, s in zip(names, slots)]


def Elementwise(c, *, code):
    out = c.node.outputs[0]
    shape = c.shape(out)
    bases, lv = leaves(c, c.node.inputs, shape)
    total = prod(shape)
    params = {"shape": list(shape), "out_dtype": c.dtype(out), "leaves": lv, "code": [list(l) for l in code]}
    nbytes = 4 * (total + sum(prod(c.shape(n)) for n in c.node.inputs))
    return [KernelSpec("elementwise", c.node.name, params, tuple(bases), (out,), space_1d(total),
                       flops=total * len(code), bytes=nbytes)]


def Concat(c, *, axis):
    out = c.node.outputs[0]
    shape = c.shape(out)
    axis %= len(shape)
    names = [n for n in c.node.inputs if n and c.shape(n)[axis] > 0]
    bases, slots = bindings(c, names)
    pieces, start = [], 0
    for n, slot in zip(names, slots):
        size = c.shape(n)[axis]
        piece_shape = list(shape)
        piece_shape[axis] = size
        a = c.access(n, piece_shape)
        # shift so the access takes output coordinates: c_axis runs from start to start + size
        shifted = type(a)(a.offset - start * a.strides[axis], a.strides)
        pieces.append({"slot": slot, "end": start + size, "access": shifted})
        start += size
    total = prod(shape)
    params = {"shape": list(shape), "axis": axis, "dtype": c.dtype(out), "pieces": pieces}
    return [KernelSpec("concat", c.node.name, params, tuple(bases), (out,), space_1d(total), bytes=8 * total)]


OPS = {"Elementwise": Elementwise, "Concat": Concat}
