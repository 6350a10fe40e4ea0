"""Compile-time evaluation of the index-driven ops whose results exporters mostly compute from shapes: ScatterND
(causal masks) and GatherElements (position ids). Part of fold.py's evaluator."""
from __future__ import annotations

from typing import Callable

from .errors import WebjitError
from .fold_scalar import _axis, _max, _min, _round
from .ir import Node
from .tensor import Tensor, prod

SCATTER: dict[str, Callable] = {"none": lambda old, new: new, "add": lambda a, b: a + b, "mul": lambda a, b: a * b,
                                "max": _max, "min": _min}


def scatter_nd(node: Node, data: Tensor, idx: Tensor, upd: Tensor) -> Tensor:
    k, f = idx.shape[-1], SCATTER[node.attrs.get("reduction", "none")]
    dims, inner = data.shape[:k], prod(data.shape[k:])
    vals, news, at = data.values(), upd.values(), [int(v) for v in idx.values()]
    for r in range(len(at) // k if k else 0):
        flat = 0
        for j in range(k):
            i = at[r * k + j]
            if not -dims[j] <= i < dims[j]:
                raise WebjitError(f"node '{node.name}' (ScatterND): index {i} out of range for a dim of {dims[j]}")
            flat = flat * dims[j] + i % dims[j]
        for e in range(inner):
            vals[flat * inner + e] = f(vals[flat * inner + e], news[r * inner + e])
    return Tensor.of(_round(vals, data.dtype), data.dtype, data.shape)


def gather_elements(node: Node, data: Tensor, idx: Tensor) -> Tensor:
    axis = _axis(node.attrs.get("axis", 0), data.ndim)
    dim, vals = data.shape[axis], data.values()
    strides = [prod(data.shape[d + 1:]) for d in range(data.ndim)]
    out = []
    for flat, i in enumerate(int(v) for v in idx.values()):
        if not -dim <= i < dim:
            raise WebjitError(f"node '{node.name}' (GatherElements): index {i} out of range for a dim of {dim}")
        at, rest = 0, flat
        for d in reversed(range(idx.ndim)):  # the coordinates of this output element, but i along the axis
            at += (i % dim if d == axis else rest % idx.shape[d]) * strides[d]
            rest //= idx.shape[d]
        out.append(vals[at])
    return Tensor.of(out, data.dtype, idx.shape)
