"""Stage 4: lower each fused node to one or more `KernelSpec`s.

A lowering is a pure function of the node's input types, shapes, views and attributes: no I/O, no rendering.
`REGISTRY` maps an op name to its lowering; ONNX ops keep their ONNX names and attribute defaults.

What is compiled in: everything in `KernelSpec.params` (shapes, strides, offsets, the elementwise code) and the
variant's tunables. Nothing goes in uniforms: a bundle is built for fixed shapes, and identical layers share
identical kernel source (see `KernelSpec.source_key`).
"""
from __future__ import annotations

import inspect
from dataclasses import replace

from ..errors import UnsupportedOp
from ..ir import Graph, Node
from . import attention, elementwise, gather, matmul, quant, rows, scatter, tile
from .spec import Ctx, KernelSpec

REGISTRY = {**elementwise.OPS, **matmul.OPS, **attention.OPS, **rows.OPS, **gather.OPS, **scatter.OPS, **tile.OPS,
            **quant.OPS}


def lowered_ops() -> list[str]:
    return sorted(REGISTRY)


def lower(g: Graph) -> list[KernelSpec]:
    """Stage entry point: the kernels of the graph, in execution order, named k00_kind, k01_kind, ..."""
    specs: list[KernelSpec] = []
    for node in g.nodes:
        fn = REGISTRY.get(node.op)
        if fn is None:
            raise UnsupportedOp(f"node '{node.name}': op {node.op} (opset {g.opset}) is not supported "
                                f"with inputs computed at run time. Supported ops: {', '.join(lowered_ops())}")
        takes = _keywords(fn)
        unknown = sorted(set(node.attrs) - takes) if takes is not None else []
        if unknown:
            raise UnsupportedOp(f"node '{node.name}': op {node.op} has no attribute "
                                f"{', '.join(repr(a) for a in unknown)} (it takes {', '.join(sorted(_keywords(fn))) or 'none'})")
        _check_attribute_types(node, fn)
        for spec in fn(Ctx(g, node), **{k: v for k, v in node.attrs.items()}):
            specs.append(replace(spec, name=f"k{len(specs):02d}_{spec.kind}"))
    return specs


def _keywords(fn) -> set[str] | None:
    """The attributes a lowering takes: its keyword-only parameters (None: it takes any, through **kw)."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is p.KEYWORD_ONLY}


def _check_attribute_types(node: Node, fn) -> None:
    """An attribute whose ONNX default is a number must be a number (a damaged model can hold a list there)."""
    params = inspect.signature(fn).parameters
    for name, value in node.attrs.items():
        p = params.get(name)
        if p is not None and isinstance(p.default, (int, float)) and not isinstance(p.default, bool) \
                and not isinstance(value, (int, float)):
            raise UnsupportedOp(f"node '{node.name}': attribute '{name}' of op {node.op} must be a number, "
                                f"not {type(value).__name__}")
