"""Canonical forms: Gemm as MatMul plus elementwise, Split as slices, weights over the binding limit split."""
from __future__ import annotations

from ..errors import WebjitError
from ..ir import Graph, Node
from ..space import DEFAULT_LIMITS
from .rewrite import Rewriter

def canonicalize(g: Graph) -> None:
    r = Rewriter(g)
    out: list[Node] = []
    for n in g.nodes:
        if n.op == "Gemm":
            a, b, c = n.input(0), n.input(1), n.input(2)
            for i, flag in ((0, "transA"), (1, "transB")):
                if n.attrs.get(flag, 0):
                    src = g.values[n.inputs[i]]
                    if src.const is not None:  # a weight: transpose it now
                        t = r.new_const(f"{n.name}_t{i}", src.const.T)
                    else:
                        t = r.new_value(f"{n.name}_t{i}", src, shape=src.shape[::-1])
                        out.append(Node("Transpose", f"{n.name}_t{i}", [src.name], [t], {"perm": [1, 0]}))
                    a, b = (t, b) if i == 0 else (a, t)
            y = g.values[n.outputs[0]]
            alpha, beta = float(n.attrs.get("alpha", 1.0)), float(n.attrs.get("beta", 1.0))
            mm = r.new_value(f"{n.name}_mm", y) if (c or alpha != 1.0) else y.name
            out.append(Node("MatMul", n.name, [a, b], [mm]))
            if mm != y.name:  # alpha * acc + beta * C, left to the epilogue fusion
                code, ins = [(y.dtype, "Identity", (("x", 0),), ())], [mm]
                if alpha != 1.0:
                    code.append((y.dtype, "Mul", (("t", 0), ("c", alpha, "float32")), ()))
                if c:
                    ins.append(c)
                    code.append((y.dtype, "Mul", (("x", 1), ("c", beta, "float32")), ()))
                    code.append((y.dtype, "Add", (("t", len(code) - 2), ("t", len(code) - 1)), ()))
                out.append(Node("Elementwise", f"{n.name}_epilogue", ins, [y.name], {"code": tuple(code)}))
        elif n.op == "Dropout":
            training, ratio = g.const(n.input(2)), g.const(n.input(1))
            if training is not None and training.item(0) and (ratio is None or ratio.item(0) != 0):
                raise WebjitError(f"node '{n.name}' (Dropout): training_mode is true, so its output is random; "
                                  f"webjit runs models for inference (export the model in eval mode)")
            out.append(Node("Identity", n.name, [n.inputs[0]], [n.outputs[0]]))
        elif n.op == "Split":
            out += _split_to_slices(g, n)
        else:
            out.append(n)
    g.nodes = out


def _split_to_slices(g: Graph, n: Node) -> list[Node]:
    src = g.values[n.inputs[0]]
    axis = n.attrs.get("axis", 0) % len(src.shape)
    start, nodes = 0, []
    for o in n.outputs:
        size = g.values[o].shape[axis]
        nodes.append(Node("Slice", f"{n.name}_{o}", [src.name], [o],
                          {"starts": [start], "ends": [start + size], "axes": [axis]}))
        start += size
    return nodes


def split_large_weights(g: Graph) -> None:
    """No binding may exceed maxStorageBufferBindingSize (128 MiB by default): split bigger weights. A MatMul
    weight splits by columns (partial MatMuls, then Concat); an embedding table splits by rows (one Gather reads
    every chunk)."""
    r = Rewriter(g)
    limit = DEFAULT_LIMITS["maxStorageBufferBindingSize"]
    out: list[Node] = []
    for n in g.nodes:
        w = g.const(n.input(1) if n.op == "MatMul" else n.input(0)) if n.op in ("MatMul", "Gather") else None
        if w is None or w.nbytes <= limit or w.ndim != 2 or (n.op == "Gather" and n.attrs.get("axis", 0) != 0):
            out.append(n)
            continue
        parts = -(-w.nbytes // limit)
        axis = 1 if n.op == "MatMul" else 0
        bounds = [round(i * w.shape[axis] / parts) for i in range(parts + 1)]
        chunks = [r.new_const(f"{n.name}_w{i}", w.slice_axes({axis: range(lo, hi)}))
                  for i, (lo, hi) in enumerate(zip(bounds, bounds[1:]))]
        if n.op == "Gather":
            out.append(Node("Gather", n.name, [*chunks, n.inputs[1]], n.outputs, {"axis": 0, "chunk_rows": bounds}))
            continue
        y = g.values[n.outputs[0]]
        parts_out = []
        for i, (ch, lo, hi) in enumerate(zip(chunks, bounds, bounds[1:])):
            parts_out.append(r.new_value(f"{n.name}_part{i}", y, shape=y.shape[:-1] + (hi - lo,)))
            out.append(Node("MatMul", f"{n.name}_part{i}", [n.inputs[0], ch], [parts_out[-1]]))
        out.append(Node("Concat", f"{n.name}_concat", parts_out, [y.name], {"axis": -1}))
    g.nodes = out
