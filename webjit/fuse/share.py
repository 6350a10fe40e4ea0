"""Kernels that differ only in an inlined float constant share one source.

Elementwise code inlines scalar constants (0.5, an epsilon, a softmax scale): that is free, and the same in every
layer. A quantized model's per-layer scales are scalars too, and inlined they make every layer's matmul a kernel
of its own: a q8 MiniLM bundle held 1,600 WGSL files instead of 250, and the runtime tuned each one. Where nodes
agree in everything but such constants, the constants that differ become one-element weights read like any other
epilogue input, and the kernels render to one source (one file, one measurement per shape in the tuner).
"""
from __future__ import annotations

from collections import defaultdict

from ..ir import Graph, Node
from ..tensor import Tensor
from .rewrite import Rewriter

MAX_BUFFERS = 8  # storage buffers one WebGPU shader stage may bind (the default limit)
CODE = {"Elementwise": "code", "MatMul": "epilogue", "QMatMul": "epilogue"}
# Constants the renderers specialise on stay inline: an exponent picks x*x or x*x*x, and a divisor with a normal
# reciprocal becomes a multiplication.
KEEP_INLINE = {("Pow", 1), ("Div", 1)}


def _leaves_start(n: Node) -> int:
    return 0 if n.op == "Elementwise" else n.attrs.get("operands", 2)


def _sharable(op: str, j: int, a) -> bool:
    return a is not None and a[0] == "c" and a[2] == "float32" and (op, j) not in KEEP_INLINE


def _signature(g: Graph, n: Node):
    code = n.attrs[CODE[n.op]]
    masked = tuple((dt, op, tuple(("c?",) if _sharable(op, j, a) else a for j, a in enumerate(args)), attrs)
                   for dt, op, args, attrs in code)
    others = repr(sorted((k, v) for k, v in n.attrs.items() if k != CODE[n.op] and not isinstance(v, Tensor)))
    values = tuple((g.values[i].dtype, tuple(g.values[i].shape), g.values[i].const is not None) if i else None
                   for i in n.inputs)
    return n.op, masked, others, values, tuple(tuple(g.values[o].shape) for o in n.outputs)


def share_constants(g: Graph) -> None:
    groups: dict = defaultdict(list)
    for n in g.nodes:
        if n.op in CODE and n.attrs.get(CODE[n.op]):
            groups[_signature(g, n)].append(n)
    r = Rewriter(g)
    for members in groups.values():
        if len(members) < 2:
            continue
        codes = [m.attrs[CODE[m.op]] for m in members]
        differ = [(i, j) for i, line in enumerate(codes[0]) for j, a in enumerate(line[2])
                  if _sharable(line[1], j, a) and len({c[i][2][j][1] for c in codes}) > 1]
        if not differ or len(set(members[0].inputs)) + len(members[0].outputs) + len(differ) > MAX_BUFFERS:
            continue
        for m, code in zip(members, codes):
            lines = [list(line) for line in code]
            inputs = list(m.inputs)
            for i, j in differ:
                name = r.new_const(f"{m.name}_k", Tensor.of([lines[i][2][j][1]], "float32", ()))
                inputs.append(name)
                args = list(lines[i][2])
                args[j] = ("x", len(inputs) - 1 - _leaves_start(m))
                lines[i][2] = tuple(args)
            m.inputs = inputs
            m.attrs = {**m.attrs, CODE[m.op]: tuple(tuple(line) for line in lines)}
