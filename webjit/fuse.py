"""Stage 3: rewrite the specialised graph into the nodes webjit has kernels for.

Passes, in order:
  canonicalize     Gemm -> Transpose + MatMul + elementwise; Identity/Dropout -> views
  split_weights    weights over the 128 MiB binding limit -> chunks
  layernorm        decomposed ReduceMean/Sub/Pow/Sqrt/Div (+Mul/Add) -> LayerNormalization
  rmsnorm          Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul (+Mul) -> RMSNorm
  elementwise      chains of elementwise ops -> one Elementwise node with straight-line code
  attention        MatMul -> [Elementwise] -> Softmax -> [NaN guard] -> MatMul -> Attention
  out_transpose    Attention -> Transpose: the attention kernel writes the transposed layout
  epilogue         MatMul -> Elementwise -> one MatMul with the elementwise code as epilogue
  views            Reshape/Transpose/Slice/Expand/... -> strided views on the producer's buffer; copies where a
                   consumer needs a dense buffer

Elementwise code is a tuple of lines `(dtype, op, args, attrs)`; an arg is ("x", k) for the node's k-th input,
("t", j) for line j, or ("c", value) for an inline scalar constant. The last line is the result.
"""
from __future__ import annotations

import numpy as np

from .ir import Graph, Node, Value
from .shapes import BINARY, COMPARE, UNARY
from .space import DEFAULT_LIMITS
from .views import View

ELEMENTWISE = (UNARY | BINARY | COMPARE | {"Where", "Cast", "CastLike", "IsNaN", "IsInf"}) - {
    "Softmax", "LogSoftmax", "CumSum", "Identity"}
USES_COORDS = {"Trilu"}  # code that reads output coordinates cannot be recomputed under broadcasting
VIEW_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Transpose", "Slice", "Expand", "Identity", "Dropout",
            "Split", "Gather"}
DENSE_INPUTS = {"LayerNormalization": (0,), "RMSNorm": (0,), "Softmax": (0,), "LogSoftmax": (0,),
                "Gather": (0, -1), "GatherElements": (0, 1), "GatherND": (0, 1), "CumSum": (0,), "ReduceMean": (0,),
                "ReduceSum": (0,), "ReduceMax": (0,), "ReduceMin": (0,)}


class _Rewriter:
    def __init__(self, g: Graph):
        self.g = g
        self.prod = g.producers()
        self.uses = g.consumers()

    def single_use(self, name: str) -> bool:
        return len(self.uses.get(name, [])) == 1 and name not in self.g.outputs

    def producer(self, name: str, op: str | set) -> Node | None:
        n = self.prod.get(name)
        ops = {op} if isinstance(op, str) else op
        return n if n is not None and n.op in ops else None

    def scalar(self, name: str) -> float | None:
        c = self.g.const(name)
        return float(c.reshape(-1)[0]) if c is not None and c.size == 1 else None

    def new_value(self, base: str, like: Value, shape=None, dtype=None) -> str:
        name = self.g.fresh(base)
        self.g.values[name] = Value(name, dtype or like.dtype, tuple(shape if shape is not None else like.shape))
        return name

    def new_const(self, base: str, arr: np.ndarray) -> str:
        name = self.g.fresh(base)
        self.g.values[name] = Value(name, arr.dtype.name, tuple(arr.shape), arr)
        return name


# ---------------------------------------------------------------------------------------------------------------
def canonicalize(g: Graph) -> None:
    r = _Rewriter(g)
    out: list[Node] = []
    for n in g.nodes:
        if n.op == "Gemm":
            a, b, c = n.input(0), n.input(1), n.input(2)
            for i, flag in ((0, "transA"), (1, "transB")):
                if n.attrs.get(flag, 0):
                    src = g.values[n.inputs[i]]
                    if src.const is not None:  # a weight: transpose it now
                        t = r.new_const(f"{n.name}_t{i}", np.ascontiguousarray(src.const.T))
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
    r = _Rewriter(g)
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
        chunks = [r.new_const(f"{n.name}_w{i}", np.ascontiguousarray(np.take(w, range(lo, hi), axis=axis)))
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


# ---------------------------------------------------------------------------------------------------------------
def _last_axis_mean(r: _Rewriter, name: str) -> Node | None:
    m = r.producer(name, "ReduceMean")
    if m is None or not m.attrs.get("keepdims", 1):
        return None
    rank = len(r.g.values[m.inputs[0]].shape)
    axes = m.attrs.get("axes")
    if axes is None and len(m.inputs) > 1:
        axes = [int(a) for a in r.g.const(m.inputs[1]).reshape(-1)]
    return m if axes is not None and [a % rank for a in axes] == [rank - 1] else None


def _affine_tail(r: _Rewriter, name: str, width: int) -> tuple[str, str | None, str | None]:
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
    r = _Rewriter(g)
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
        gamma = gamma or r.new_const("ln_gamma", np.ones(width, np.float32))
        beta = beta or r.new_const("ln_beta", np.zeros(width, np.float32))
        ln = Node("LayerNormalization", div.name, [x.name, gamma, beta], [out], {"axis": -1, "epsilon": eps})
        g.nodes[g.nodes.index(div)] = ln
        r = _Rewriter(g)
    _reorder_and_prune(g)


def fuse_rmsnorm(g: Graph) -> None:
    r = _Rewriter(g)
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
            gamma = gamma or r.new_const("rms_gamma", np.ones(width, np.float32))
            g.nodes[g.nodes.index(mul)] = Node("RMSNorm", mul.name, [x, gamma], [out], {"epsilon": eps})
            r = _Rewriter(g)
            break
    _reorder_and_prune(g)


def _reorder_and_prune(g: Graph) -> None:
    """Drop nodes made dead by a rewrite, keep a valid topological order."""
    g.remove_dead()
    known = set(g.inputs) | {k for k, v in g.values.items() if v.const is not None}
    ordered, pending = [], list(g.nodes)
    while pending:
        ready = [n for n in pending if all(not i or i in known for i in n.inputs)]
        assert ready, "graph has a cycle"
        for n in ready:
            ordered.append(n)
            known.update(n.outputs)
        pending = [n for n in pending if n not in ready]
    g.nodes = ordered


# ---------------------------------------------------------------------------------------------------------------
def _node_code(g: Graph, n: Node) -> tuple[list[str], list[tuple]]:
    """One ONNX elementwise node as (leaves, code). Scalar constants are inlined."""
    out = g.values[n.outputs[0]]
    leaves: list[str] = []
    args = []
    attrs = {k: v for k, v in n.attrs.items() if not isinstance(v, np.ndarray)}
    inputs = n.inputs[:1] if n.op in ("Trilu", "CastLike") else n.inputs
    if n.op == "Trilu" and n.input(1):
        attrs["k"] = int(g.const(n.inputs[1]).reshape(-1)[0])
    for name in inputs:
        if not name:
            args.append(None)
            continue
        c = g.values[name].const
        if c is not None and c.size == 1 and g.values[name].dtype in ("float32", "int64", "int32", "bool"):
            args.append(("c", c.reshape(-1)[0].item(), g.values[name].dtype))
        else:
            if name not in leaves:
                leaves.append(name)
            args.append(("x", leaves.index(name)))
    return leaves, [(out.dtype, n.op, tuple(args), tuple(sorted(attrs.items())))]


def _merge(c_leaves, c_code, slot: int, p_leaves, p_code):
    """Inline producer code (p) where consumer code (c) reads its leaf `slot`."""
    leaves = [l for i, l in enumerate(c_leaves) if i != slot]
    remap_c = {i: (leaves.index(l) if i != slot else None) for i, l in enumerate(c_leaves)}
    for l in p_leaves:
        if l not in leaves:
            leaves.append(l)
    n_p = len(p_code)

    def fix_p(a):
        return ("x", leaves.index(p_leaves[a[1]])) if a and a[0] == "x" else a

    def fix_c(a):
        if a and a[0] == "x":
            return ("t", n_p - 1) if a[1] == slot else ("x", remap_c[a[1]])
        if a and a[0] == "t":
            return ("t", a[1] + n_p)
        return a

    code = [(d, op, tuple(map(fix_p, args)), at) for d, op, args, at in p_code]
    code += [(d, op, tuple(map(fix_c, args)), at) for d, op, args, at in c_code]
    return leaves, code


def fuse_elementwise(g: Graph) -> None:
    """Merge each elementwise producer into its consumer when every reader of its value is inside that consumer
    (so a value read twice by one chain, like x in x * 0.5 * (1 + erf(x / sqrt 2)), still fuses)."""
    r = _Rewriter(g)
    fused: dict[str, Node] = {}    # output name -> Elementwise node
    members: dict[int, set] = {}   # id(Elementwise node) -> ids of the original nodes merged into it
    out: list[Node] = []
    for n in g.nodes:
        if n.op not in ELEMENTWISE and n.op != "Elementwise":
            out.append(n)
            continue
        if n.op == "Elementwise":
            leaves, code = list(n.inputs), list(n.attrs["code"])
        else:
            leaves, code = _node_code(g, n)
        shape = g.values[n.outputs[0]].shape
        merged = {id(n)}
        changed = True
        while changed:
            changed = False
            for slot, leaf in enumerate(leaves):
                p = fused.get(leaf)
                readers = {id(u) for u in r.uses.get(leaf, [])}
                if p is None or leaf in g.outputs or not readers <= merged:
                    continue
                if any(l[1] in USES_COORDS for l in p.attrs["code"]) and g.values[leaf].shape != shape:
                    continue
                leaves, code = _merge(leaves, code, slot, p.inputs, list(p.attrs["code"]))
                merged |= members.pop(id(p))
                out.remove(p)
                changed = True
                break
        node = Node("Elementwise", n.name, leaves, [n.outputs[0]], {"code": tuple(code)})
        fused[n.outputs[0]] = node
        members[id(node)] = merged
        out.append(node)
    g.nodes = out


def _with_acc(leaves: list[str], code, acc: str) -> tuple[list[str], tuple]:
    """Replace leaf `acc` by ("acc",): the value a matmul or attention kernel holds in registers."""
    slot = leaves.index(acc)
    rest = [l for l in leaves if l != acc]

    def fix(a):
        if a and a[0] == "x":
            return ("acc",) if a[1] == slot else ("x", rest.index(leaves[a[1]]))
        return a
    return rest, tuple((d, op, tuple(map(fix, args)), at) for d, op, args, at in code)


def _is_nan_guard(n: Node) -> bool:
    """Where(IsNaN(p), 0, p): what exporters add after softmax for fully masked rows."""
    code = n.attrs["code"]
    return (len(n.inputs) == 1 and len(code) == 2 and code[0][1] == "IsNaN" and code[0][2] == (("x", 0),)
            and code[1][1] == "Where" and code[1][2][0] == ("t", 0) and code[1][2][2] == ("x", 0)
            and code[1][2][1][0] == "c" and code[1][2][1][1] == 0)


def fuse_attention(g: Graph) -> None:
    r = _Rewriter(g)
    for mm2 in [n for n in g.nodes if n.op == "MatMul"]:
        p, guard = mm2.inputs[0], False
        e2 = r.producer(p, "Elementwise")
        if e2 is not None and _is_nan_guard(e2) and r.single_use(p):
            p, guard = e2.inputs[0], True
        sm = r.producer(p, "Softmax")
        if sm is None or not r.single_use(p):
            continue
        rank = len(g.values[p].shape)
        if sm.attrs.get("axis", -1) % rank != rank - 1 or rank < 2 or not r.single_use(sm.inputs[0]):
            continue
        s, leaves, code = sm.inputs[0], [], (("float32", "Identity", (("acc",),), ()),)
        e1 = r.producer(s, "Elementwise")
        if e1 is not None:
            mm1_out = next((l for l in e1.inputs if r.producer(l, "MatMul") and r.single_use(l)), None)
            if mm1_out is None or g.values[mm1_out].shape != g.values[s].shape:
                continue
            leaves, code = _with_acc(list(e1.inputs), e1.attrs["code"], mm1_out)
            s = mm1_out
        mm1 = r.producer(s, "MatMul")
        if mm1 is None or not r.single_use(s):
            continue
        q, kt, v = (g.values[x] for x in (mm1.inputs[0], mm1.inputs[1], mm2.inputs[1]))
        if min(len(q.shape), len(kt.shape), len(v.shape)) < 2 or q.shape[-1] % 4 or v.shape[-1] % 4:
            continue  # the kernel holds rows as vec4
        node = Node("Attention", mm1.name, [q.name, kt.name, v.name, *leaves], [mm2.outputs[0]],
                    {"score_code": code, "nan_guard": guard})
        g.nodes[g.nodes.index(mm2)] = node
        r = _Rewriter(g)
    _reorder_and_prune(g)


def fold_output_transpose(g: Graph) -> None:
    """Attention -> Transpose: the kernel writes the transposed layout itself (heads back into rows)."""
    r = _Rewriter(g)
    for att in [n for n in g.nodes if n.op == "Attention"]:
        y = att.outputs[0]
        t = r.uses.get(y, [None])[0]
        if not r.single_use(y) or t.op != "Transpose" or "out_perm" in att.attrs:
            continue
        att.attrs["out_perm"] = list(t.attrs.get("perm") or range(len(g.values[y].shape))[::-1])
        att.outputs = [t.outputs[0]]
        g.nodes.remove(t)
    g.remove_dead()


RESHAPES = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}


def _epilogue_target(r: _Rewriter, y: str) -> tuple[Node, str] | None:
    """The elementwise node that can become y's epilogue, and the name it reads y by. Through a reshape that
    keeps the last dim (Gemm -> Reshape -> Add, as exporters write 3-D linear layers), the other inputs must
    broadcast over all leading dims or be whole tensors a kernel wrote, so they re-index onto the matmul's rows."""
    if not r.single_use(y):
        return None
    e, via = r.uses[y][0], y
    if e.op in RESHAPES:
        via = e.outputs[0]
        if not r.single_use(via) or r.g.values[via].shape[-1:] != r.g.values[y].shape[-1:]:
            return None
        e = r.uses[via][0]
        shape = r.g.values[via].shape
        for leaf in e.inputs if e.op == "Elementwise" else ():
            ls = r.g.values[leaf].shape
            full = tuple(ls) == tuple(shape) and (r.prod.get(leaf) is None or r.prod[leaf].op not in VIEW_OPS)
            if leaf != via and not full and any(d != 1 for d in ls[:-1]):
                return None
    if e.op != "Elementwise" or r.g.values[e.outputs[0]].shape != r.g.values[via].shape:
        return None
    return e, via


def _chain(leaves1, code1, leaves2, code2) -> tuple[list[str], tuple]:
    """Epilogue code2 applied to the result of epilogue code1 (both read the accumulator as ("acc",))."""
    leaves = list(leaves1) + [l for l in leaves2 if l not in leaves1]
    n1 = len(code1)

    def fix(a):
        if a and a[0] == "acc":
            return ("t", n1 - 1)
        if a and a[0] == "x":
            return ("x", leaves.index(leaves2[a[1]]))
        if a and a[0] == "t":
            return ("t", a[1] + n1)
        return a
    return leaves, tuple(code1) + tuple((d, op, tuple(map(fix, args)), at) for d, op, args, at in code2)


def fuse_epilogue(g: Graph) -> None:
    """Repeat until nothing changes: a MatMul that already has an epilogue can take the next one."""
    changed = True
    while changed:
        changed = False
        r = _Rewriter(g)
        for mm in [n for n in g.nodes if n.op == "MatMul"]:
            y = mm.outputs[0]
            if min(len(g.values[i].shape) for i in mm.inputs[:2]) < 2 or (found := _epilogue_target(r, y)) is None:
                continue
            e, via = found
            old_leaves, old_code = mm.inputs[2:], mm.attrs.get("epilogue")
            if old_code and via != y and any(d != 1 for l in old_leaves for d in g.values[l].shape[:-1]):
                continue  # earlier epilogue inputs could not follow the reshape
            leaves, code = _with_acc(list(e.inputs), e.attrs["code"], via)
            if old_code:
                leaves, code = _chain(old_leaves, old_code, leaves, code)
            fused = Node("MatMul", mm.name, [mm.inputs[0], mm.inputs[1], *leaves], [e.outputs[0]],
                         {"epilogue": code})
            g.nodes[g.nodes.index(e)] = fused
            g.nodes = [n for n in g.nodes if n is not mm and via not in n.outputs]
            changed = True
            break
    _reorder_and_prune(g)


# ---------------------------------------------------------------------------------------------------------------
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


PASSES = [canonicalize, split_large_weights, fuse_layernorm, fuse_rmsnorm, fuse_elementwise, fuse_attention, fold_output_transpose,
          fuse_epilogue, resolve_views]


def fuse(g: Graph) -> Graph:
    """Stage entry point."""
    for p in PASSES:
        p(g)
    return g
