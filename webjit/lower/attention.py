"""Fused attention: softmax(score(Q·Kᵀ)) · V in one pass with an online softmax (no score matrix in memory)."""
from __future__ import annotations

from ..tensor import prod

from ..shapes import broadcast
from ..space import ATTENTION_TILES, Variant, ceil_div
from ..views import Access, contiguous_strides
from .elementwise import bindings, leaf
from .spec import KernelSpec


def attention_space(batch: int, m: int, n: int, d: int, dv: int) -> tuple[Variant, ...]:
    out = []
    for bq, bk in ATTENTION_TILES:
        if bk > 2 * max(n, 8) or bq > 2 * max(m, 16):
            continue
        # Each thread keeps its query row and output row (d + dv floats) whatever the tile: that cost is the
        # model's, not the variant's, so only the tile-dependent registers count against the budget.
        out.append(Variant((("BK", bk), ("BQ", bq)), (ceil_div(m, bq), batch, 1), bq, 4 * bk * (d + dv), 8))
    return tuple(sorted(out, key=lambda v: (v.v["BQ"], v.v["BK"]) != (32, 16)))


def Attention(c, *, score_code, nan_guard=False, out_perm=None):
    q, kt, v, rest = c.node.inputs[0], c.node.inputs[1], c.node.inputs[2], c.node.inputs[3:]
    if any(c.dtype(x) != "float32" for x in (q, kt, v)):
        raise c.unsupported("attention on non-float32 tensors")
    out = c.node.outputs[0]
    sq, sk, sv = c.shape(q), c.shape(kt), c.shape(v)
    m, d = sq[-2:]
    n, dv = sk[-1], sv[-1]
    batch = broadcast(sq[:-2], sk[:-2], sv[:-2])
    nb = prod(batch)
    bases, slots = bindings(c, [q, kt, v, *rest])
    # where the output goes: [batch.., m, e] row-major, or that tensor transposed by out_perm
    logical = batch + (m, dv)
    perm = out_perm or list(range(len(logical)))
    written = contiguous_strides(tuple(logical[p] for p in perm))
    out_access = Access(0, tuple(written[perm.index(i)] for i in range(len(logical))))
    params = {"batch": list(batch), "M": m, "N": n, "D": d, "DV": dv, "nan_guard": bool(nan_guard),
              "out": out_access,
              "q": {"slot": slots[0], "access": c.access(q, batch + (m, d))},
              "k": {"slot": slots[1], "access": c.access(kt, batch + (d, n))},
              "v": {"slot": slots[2], "access": c.access(v, batch + (n, dv))},
              "leaves": [leaf(c, x, s, batch + (m, n)) for x, s in zip(rest, slots[3:])],
              "code": [list(l) for l in score_code]}
    return [KernelSpec("attention", c.node.name, params, tuple(bases), (out,), attention_space(nb, m, n, d, dv),
                       flops=2 * nb * m * n * (d + dv), bytes=4 * nb * (m * d + n * d + n * dv + m * dv))]


OPS = {"Attention": Attention}
