"""Normalisation patterns: decomposed LayerNorm and RMSNorm become one node each."""
from __future__ import annotations

from ..ir import Graph, Node
from ..tensor import Tensor
from .rewrite import Rewriter, reorder_and_prune

def _last_axis_mean(r: Rewriter, name: str) -> Node | None:
    m = r.producer(name, "ReduceMean")
    if m is None or not m.attrs.get("keepdims", 1):
        return None
    rank = len(r.g.values[m.inputs[0]].shape)
    axes = m.attrs.get("axes")
    if axes is None and len(m.inputs) > 1:
        axes = [int(a) for a in r.g.const(m.inputs[1]).reshape(-1)]
    return m if axes is not None and [a % rank for a in axes] == [rank - 1] else None


def _affine_tail(r: Rewriter, name: str, width: int) -> tuple[str, str | None, str | None]:
    """Follow optional Mul(gamma) and Add(beta) with constant [width] vectors, and drop those nodes.
    Returns (output, gamma, beta)."""
    gamma = beta = None
    for op in ("Mul", "Add"):
        uses = r.uses.get(name, [])
        if len(uses) != 1 or uses[0].op != op or name in r.g.outputs:
            break
        other = [i for i in uses[0].inputs if i != name]
        c = r.g.const(other[0]) if len(other) == 1 else None
        if c is None or c.shape[-1:] != (width,) or c.size != width:
            break
        if op == "Mul":
            gamma = other[0]
        else:
            beta = other[0]
        name = uses[0].outputs[0]
        r.g.nodes.remove(uses[0])
    return name, gamma, beta


def fuse_layernorm(g: Graph) -> None:
    r = Rewriter(g)
    for div in [n for n in g.nodes if n.op == "Div"]:
        sub, sqrt = r.producer(div.inputs[0], "Sub"), r.producer(div.inputs[1], "Sqrt")
        if not (sub and sqrt and (m1 := _last_axis_mean(r, sub.inputs[1])) and m1.inputs[0] == sub.inputs[0]):
            continue
        add = r.producer(sqrt.inputs[0], "Add")
        eps = add and r.scalar(add.inputs[1])
        m2 = add and _last_axis_mean(r, add.inputs[0])
        pow_ = m2 and r.producer(m2.inputs[0], "Pow")
        if eps is None or not pow_ or pow_.inputs[0] != sub.outputs[0] or r.scalar(pow_.inputs[1]) != 2.0:
            continue
        x = g.values[sub.inputs[0]]
        width = x.shape[-1]
        out, gamma, beta = _affine_tail(r, div.outputs[0], width)
        gamma = gamma or r.new_const("ln_gamma", Tensor.full((width,), 1.0, "float32"))
        beta = beta or r.new_const("ln_beta", Tensor.full((width,), 0.0, "float32"))
        ln = Node("LayerNormalization", div.name, [x.name, gamma, beta], [out], {"axis": -1, "epsilon": eps})
        g.nodes[g.nodes.index(div)] = ln
        r = Rewriter(g)
    reorder_and_prune(g)


def fuse_rmsnorm(g: Graph) -> None:
    r = Rewriter(g)
    for mul in [n for n in g.nodes if n.op == "Mul"]:
        for xi in (0, 1):
            x, inv = mul.inputs[xi], mul.inputs[1 - xi]
            rec = r.producer(inv, {"Reciprocal", "Div"})
            if rec is None or (rec.op == "Div" and r.scalar(rec.inputs[0]) != 1.0):
                continue
            sqrt = r.producer(rec.inputs[-1], "Sqrt")
            add = sqrt and r.producer(sqrt.inputs[0], "Add")
            eps = add and r.scalar(add.inputs[1])
            m = add and _last_axis_mean(r, add.inputs[0])
            pow_ = m and r.producer(m.inputs[0], "Pow")
            if eps is None or not pow_ or pow_.inputs[0] != x or r.scalar(pow_.inputs[1]) != 2.0:
                continue
            width = g.values[x].shape[-1]
            out, gamma, _ = _affine_tail(r, mul.outputs[0], width)
            gamma = gamma or r.new_const("rms_gamma", Tensor.full((width,), 1.0, "float32"))
            g.nodes[g.nodes.index(mul)] = Node("RMSNorm", mul.name, [x, gamma], [out], {"epsilon": eps})
            r = Rewriter(g)
            break
    reorder_and_prune(g)
