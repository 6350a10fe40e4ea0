"""Index-driven kernels: Gather (embeddings), GatherElements, GatherND, CumSum."""
from __future__ import annotations

from ..tensor import prod

from .elementwise import bindings, space_1d
from .spec import KernelSpec


def _spec(c, kind, params, names, total):
    bases, _ = bindings(c, names)
    return [KernelSpec(kind, c.node.name, params, tuple(bases), tuple(c.node.outputs), space_1d(total),
                       bytes=8 * total)]


def Gather(c, *, axis=0, chunk_rows=None):
    """chunk_rows: row bounds when the table was split into several buffers (see fuse.split_large_weights)."""
    *tables, idx = c.node.inputs
    shape = c.shape(tables[0])
    axis %= len(shape)
    rows = chunk_rows or [0, shape[axis]]
    dim = rows[-1]
    params = {"dtype": c.dtype(tables[0]), "outer": prod(shape[:axis]), "dim": dim,
              "inner": prod(shape[axis + 1:]), "chunks": rows,
              "count": prod(c.shape(idx))}
    total = params["outer"] * params["count"] * params["inner"]
    return _spec(c, "gather", params, [*tables, idx], total)


def GatherElements(c, *, axis=0):
    data, idx = c.node.inputs
    shape, ishape = c.shape(data), c.shape(idx)
    axis %= len(shape)
    params = {"dtype": c.dtype(data), "shape": list(ishape), "axis": axis, "dim": shape[axis],
              "data_strides": list(c.view(data).strides)}
    return _spec(c, "gather_elements", params, [data, idx], prod(ishape))


def GatherND(c, *, batch_dims=0):
    data, idx = c.node.inputs
    shape, ishape = c.shape(data), c.shape(idx)
    if batch_dims:
        raise c.unsupported("GatherND with batch_dims > 0")
    depth = ishape[-1]
    params = {"dtype": c.dtype(data), "depth": depth, "count": prod(ishape[:-1]),
              "inner": prod(shape[depth:]), "dims": list(shape[:depth]),
              "strides": [prod(shape[d + 1:]) for d in range(depth)]}
    return _spec(c, "gather_nd", params, [data, idx], params["count"] * params["inner"])


def CumSum(c, *, exclusive=0, reverse=0):
    x = c.node.inputs[0]
    shape = c.shape(x)
    axis = int(c.g.const(c.node.inputs[1]).reshape(-1)[0]) % len(shape)
    params = {"dtype": c.dtype(x), "outer": prod(shape[:axis]), "dim": shape[axis],
              "inner": prod(shape[axis + 1:]), "exclusive": bool(exclusive),
              "reverse": bool(reverse)}
    return _spec(c, "cumsum", params, [x], prod(shape))


OPS = {"Gather": Gather, "GatherElements": GatherElements, "GatherND": GatherND, "CumSum": CumSum}
