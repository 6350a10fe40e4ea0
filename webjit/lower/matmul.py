"""Matrix multiplication with an optional fused epilogue (bias, activation, residual, scaling)."""
from __future__ import annotations

from ..tensor import prod

from ..shapes import broadcast
from ..space import MATMUL_DIRECT, MATMUL_TILES, MATMUL_TK, MATMUL_VEC4, Variant, ceil_div, round_up
from .elementwise import bindings, leaf
from .spec import KernelSpec

DEFAULT_TILE = (32, 32, 2, 2, 16, 1)
DEFAULT_VEC4 = (32, 32, 2, 4, 4, 0)


def vec4_ok(a, b, n: int, k: int) -> bool:
    """A and B can be read as vec4: unit inner strides, everything else a multiple of 4."""
    return (k % 4 == 0 and n % 4 == 0 and a.strides[-1] == 1 and b.strides[-1] == 1
            and all(s % 4 == 0 for s in a.strides[:-1] + b.strides[:-1]) and a.offset % 4 == 0 and b.offset % 4 == 0)


def matmul_space(batch: int, m: int, n: int, k: int, vec4: bool = False) -> tuple[Variant, ...]:
    def pad(x):
        return max(16, round_up(x, 16))
    out = []
    for bm, bn, tm, tn in MATMUL_TILES:
        if bm > 2 * pad(m) or bn > 2 * pad(n):
            continue
        threads = (bm // tm) * (bn // tn)
        grid = (ceil_div(n, bn), ceil_div(m, bm), batch)
        for tk in MATMUL_TK:
            if tk <= 2 * max(8, k):
                out.append(Variant((("BM", bm), ("BN", bn), ("S", 1), ("TK", tk), ("TM", tm), ("TN", tn)),
                                   grid, threads, 4 * tk * (bm + bn), tm * tn + tm + tn))
        if (tm, tn) in MATMUL_DIRECT:
            out.append(Variant((("BM", bm), ("BN", bn), ("S", 0), ("TK", 1), ("TM", tm), ("TN", tn)),
                               grid, threads, 0, tm * tn + tm + tn))
        if vec4 and (tm, tn) in MATMUL_VEC4:
            out.append(Variant((("BM", bm), ("BN", bn), ("S", 0), ("TK", 4), ("TM", tm), ("TN", tn), ("V", 1)),
                               grid, threads, 0, tm * tn + 4 * tm + tn))
    # Order matters when tuning stops at a budget: the default first, then vec4 loads, then the most work per
    # thread (fewer, fatter threads suit CPU-emulated adapters and GPUs alike), staged variants last.
    default = DEFAULT_VEC4 if vec4 else DEFAULT_TILE
    return tuple(sorted(out, key=lambda v: (_tile(v) != default, not v.v.get("V"), v.v["S"],
                                            -v.v["TM"] * v.v["TN"], -v.v["BM"] * v.v["BN"])))


def _tile(v: Variant) -> tuple:
    return v.v["BM"], v.v["BN"], v.v["TM"], v.v["TN"], v.v["TK"], v.v["S"]


def _epilogue_leaf(c, name: str, slot: int, out_shape, logical) -> dict:
    """An epilogue input in the matmul's (batch.., m, n) coordinates. The fused output may carry another shape
    with the same elements (a reshape fused through, see fuse._epilogue_target)."""
    if tuple(out_shape) == tuple(logical):
        return leaf(c, name, slot, out_shape)
    view, shape = c.view(name), tuple(c.shape(name))
    extra = len(shape) - len(out_shape)
    if extra > 0 and all(d == 1 for d in shape[:extra]):
        # an input of the epilogue before a reshape that dropped leading 1s (Gemm's C [1, N], then Squeeze):
        # those dims broadcast, so drop them before expanding to the fused output
        view = view.reshape(shape[extra:])
    view = view.expand(tuple(out_shape)).reshape(tuple(logical)) if view is not None else None
    if view is None:
        raise c.unsupported(f"epilogue input '{name}' cannot be re-indexed from {list(out_shape)} to {list(logical)}")
    return {"slot": slot, "dtype": c.dtype(name), "access": view.access(tuple(logical))}


def MatMul(c, *, epilogue=None):
    a, b, rest = c.node.inputs[0], c.node.inputs[1], c.node.inputs[2:]
    if c.dtype(a) != "float32" or c.dtype(b) != "float32":
        raise c.unsupported(f"MatMul on {c.dtype(a)}; webjit multiplies float32 matrices")
    out = c.node.outputs[0]
    sa, sb = c.shape(a), c.shape(b)
    # 1-D operands: read A as [1, K] and B as [K, 1]; the output buffer holds the same elements either way.
    va = c.view(a).reshape((1,) + sa) if len(sa) == 1 else c.view(a)
    vb = c.view(b).reshape(sb + (1,)) if len(sb) == 1 else c.view(b)
    m, k = va.shape[-2:]
    n = vb.shape[-1]
    batch = broadcast(va.shape[:-2], vb.shape[:-2])
    nb = prod(batch)
    bases, slots = bindings(c, [a, b, *rest])
    params = {"batch": list(batch), "M": m, "N": n, "K": k,
              "a": {"slot": slots[0], "access": va.access(batch + (m, k))},
              "b": {"slot": slots[1], "access": vb.access(batch + (k, n))},
              "leaves": [_epilogue_leaf(c, x, s, c.shape(out), batch + (m, n)) for x, s in zip(rest, slots[2:])],
              "code": [list(l) for l in (epilogue or ())]}
    # the vec4 form declares A's and B's buffers as arrays of vec4: an epilogue input read from one of them
    # (x + x·W, a residual of the matmul's own input) needs the scalar form
    shared = bool(set(slots[2:]) & {slots[0], slots[1]})
    space = matmul_space(nb, m, n, k, not shared and vec4_ok(params["a"]["access"], params["b"]["access"], n, k))
    return [KernelSpec("matmul", c.node.name, params, tuple(bases), (out,), space,
                       flops=2 * nb * m * n * k, bytes=4 * nb * (m * k + k * n + m * n))]


OPS = {"MatMul": MatMul}
