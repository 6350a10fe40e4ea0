"""Views: Reshape, Transpose, Slice, Expand, ... become strided views of the producer's buffer; copies are made
only where a consumer needs a dense buffer or strides cannot express the view."""
from __future__ import annotations


from ..ir import Graph, Node, Value
from ..views import View
from .rewrite import DENSE_INPUTS, VIEW_OPS

def _slice_view(g: Graph, n: Node, v: View) -> View:
    starts = n.attrs.get("starts") or [int(x) for x in g.const(n.inputs[1]).reshape(-1)]
    ends = n.attrs.get("ends") or [int(x) for x in g.const(n.inputs[2]).reshape(-1)]
    axes = n.attrs.get("axes") or (list(g.const(n.input(3)).reshape(-1)) if n.input(3) else range(len(starts)))
    steps = list(g.const(n.input(4)).reshape(-1)) if n.input(4) else [1] * len(starts)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = int(a) % len(v.shape)
        start, _, step = slice(int(s), int(e), int(st)).indices(v.shape[a])
        size = len(range(*slice(int(s), int(e), int(st)).indices(v.shape[a])))
        v = v.slice(a, start, step, size)
    return v


def _view_of(g: Graph, n: Node, v: View) -> View | None:
    out = tuple(g.values[n.outputs[0]].shape)
    if n.op in ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"):
        return v.reshape(out)
    if n.op == "Transpose":
        return v.transpose(n.attrs.get("perm") or list(range(len(v.shape)))[::-1])
    if n.op == "Slice":
        return _slice_view(g, n, v)
    if n.op == "Expand":
        return v.expand(out)
    if n.op == "Gather":
        idx = g.const(n.inputs[1])
        if idx is None or idx.ndim != 0:
            return None
        axis = n.attrs.get("axis", 0) % len(v.shape)
        i = int(idx) % v.shape[axis]
        w = v.slice(axis, i, 1, 1)
        return View(w.base, out, w.offset, w.strides[:axis] + w.strides[axis + 1:])
    return None


def resolve_views(g: Graph) -> None:
    views: dict[str, View] = {}

    def view(name: str) -> View:
        return views.get(name) or View.of(name, g.values[name].shape)

    def dense_copy(name: str, at: Node) -> str:
        copy = g.fresh(f"{name}_dense")
        src = g.values[name]
        g.values[copy] = Value(copy, src.dtype, src.shape)
        out.append(Node("Elementwise", f"{at.name}_copy", [name], [copy],
                        {"code": ((src.dtype, "Identity", (("x", 0),), ()),)}))
        return copy

    out: list[Node] = []
    for n in g.nodes:
        if n.op in VIEW_OPS and g.values[n.inputs[0]].const is None:
            v = _view_of(g, n, view(n.inputs[0]))
            if v is None and n.op in ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"):
                v = _view_of(g, n, View.of(dense_copy(n.inputs[0], n), g.values[n.inputs[0]].shape))
            if v is not None:
                views[n.outputs[0]] = v
                continue
        for i in DENSE_INPUTS.get(n.op, ()):
            name = n.input(i)
            if name in views and not (views[name].contiguous and views[name].offset == 0):
                n.inputs[i] = dense_copy(name, n)
        out.append(n)
    for i, name in enumerate(g.outputs):
        if name in views:  # a graph output must own a dense buffer under its own name
            hidden = g.fresh(f"{name}_view")
            g.values[hidden] = Value(hidden, g.values[name].dtype, g.values[name].shape)
            views[hidden] = views.pop(name)
            for m in out:
                m.inputs = [hidden if x == name else x for x in m.inputs]
            out.append(Node("Elementwise", f"{name}_out", [hidden], [name],
                            {"code": ((g.values[name].dtype, "Identity", (("x", 0),), ()),)}))
    for name, v in views.items():
        g.values[name].view = v
    g.nodes = out
