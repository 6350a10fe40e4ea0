"""Elementwise chains, attention, and matmul epilogues.

Elementwise code is a tuple of lines `(dtype, op, args, attrs)`; an arg is ("x", k) for the node's k-th input,
("t", j) for line j, ("c", value, dtype) for an inline scalar constant, or ("acc",) for the value a matmul or
attention kernel holds in registers. The last line is the result.
"""
from __future__ import annotations

from .. import ops
from ..ir import Graph, Node
from ..tensor import Tensor
from .rewrite import ELEMENTWISE, USES_COORDS, VIEW_OPS, Rewriter, reorder_and_prune

def _node_code(g: Graph, n: Node) -> tuple[list[str], list[tuple]]:
    """One ONNX elementwise node as (leaves, code). Scalar constants are inlined."""
    out = g.values[n.outputs[0]]
    leaves: list[str] = []
    args = []
    attrs = {**dict(ops.ONNX[n.op].defaults if n.op in ops.ONNX else ()),
             **{k: v for k, v in n.attrs.items() if not isinstance(v, Tensor)}}
    inputs = n.inputs[:1] if n.op in ("Trilu", "CastLike") else n.inputs
    if n.op == "Trilu" and n.input(1):
        attrs["k"] = int(g.const(n.inputs[1]).reshape(-1)[0])
    for name in inputs:
        if not name:
            args.append(None)
            continue
        c = g.values[name].const
        if c is not None and c.size == 1 and g.values[name].dtype in ("float32", "int64", "int32", "bool"):
            args.append(("c", c.item(0), g.values[name].dtype))
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
    r = Rewriter(g)
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
    r = Rewriter(g)
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
        r = Rewriter(g)
    reorder_and_prune(g)


def fold_output_transpose(g: Graph) -> None:
    """Attention -> Transpose: the kernel writes the transposed layout itself (heads back into rows)."""
    r = Rewriter(g)
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
COORDINATE_OPS = {"Trilu"}  # elementwise code that reads its element's coordinates, not only its inputs


def _epilogue_target(r: Rewriter, y: str) -> tuple[Node, str] | None:
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
        if (e.op == "Elementwise" and any(line[1] in COORDINATE_OPS for line in e.attrs["code"])
                and tuple(shape[-2:]) != tuple(r.g.values[y].shape[-2:])):
            return None  # the code reads the last two coordinates, which the reshape moved (Trilu of [.., 1, n])
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
        r = Rewriter(g)
        for mm in [n for n in g.nodes if n.op in ("MatMul", "QMatMul")]:
            y, ops = mm.outputs[0], mm.attrs.get("operands", 2)  # QMatMul: quantized B with its scales, zero points
            if min(len(g.values[i].shape) for i in mm.inputs[:2]) < 2 or (found := _epilogue_target(r, y)) is None:
                continue
            e, via = found
            if g.values[e.outputs[0]].dtype != "float32":
                continue  # matmul kernels store float32
            old_leaves, old_code = mm.inputs[ops:], mm.attrs.get("epilogue")
            if old_code and via != y and any(d != 1 for l in old_leaves for d in g.values[l].shape[:-1]):
                continue  # earlier epilogue inputs could not follow the reshape
            leaves, code = _with_acc(list(e.inputs), e.attrs["code"], via)
            if old_code:
                leaves, code = _chain(old_leaves, old_code, leaves, code)
            fused = Node(mm.op, mm.name, [*mm.inputs[:ops], *leaves], [e.outputs[0]], {**mm.attrs, "epilogue": code})
            g.nodes[g.nodes.index(e)] = fused
            g.nodes = [n for n in g.nodes if n is not mm and via not in n.outputs]
            changed = True
            break
    reorder_and_prune(g)
