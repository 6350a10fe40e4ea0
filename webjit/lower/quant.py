"""Matmuls whose B stays quantized (QMatMul, written by fuse/quant.py): the kernel reads packed 8- or 4-bit values
with their block scales and zero points, and dequantizes them as it loads B (no widened copy of B exists).

  B(k, n) = (q(k, n) - zero(k // bs, n)) * scale(k // bs, n)

q, and the zero points when they are a matrix, are packed as in fuse/quant_pack.py (element (r, n) at r * NP + n;
for `aint`, int8 B for byte dot products: panels of 16 columns, each a run of groups of 4 rows, then column sums);
scales are float32 [blocks, NS], NS = N rounded up to 4. A zero point that is one number is compiled in (`zero`);
without scales B is the integer q - zero (MatMulInteger: the float32 sum of integer products is exact below 2^24).
"""
from __future__ import annotations

from ..tensor import prod
from ..views import Access
from .elementwise import bindings
from .matmul import _epilogue_leaf, matmul_space
from .spec import KernelSpec


def QMatMul(c, *, bits, signed, bs, scale, zp, zero, operands, za=False, aint=False, epilogue=None):
    from ..fuse.quant_pack import row_length
    ins = c.node.inputs
    a, w, rest = ins[0], ins[1], ins[operands:]
    if c.dtype(a) != ("uint8" if aint else "float32"):
        raise c.unsupported(f"QMatMul on {c.dtype(a)}")
    out = c.node.outputs[0]
    va = c.view(a)
    if len(va.shape) == 1:
        va = va.reshape((1,) + va.shape)
    m, k = va.shape[-2:]
    n = c.shape(out)[-1] if len(c.shape(out)) else 1
    batch = tuple(va.shape[:-2])
    nb = prod(batch)
    zname = ins[2 + scale + zp] if za else None
    zconst = c.g.const(zname) if zname else None
    names = [a, w] + ([ins[2]] if scale else []) + ([ins[2 + scale]] if zp else []) + (
        [zname] if zname and zconst is None else []) + list(rest)
    bases, slots = bindings(c, names)
    np_ = row_length(n, bits)
    quant = {"bits": bits, "signed": bool(signed), "bs": bs, "NP": np_, "NS": -(-n // 4) * 4, "zero": float(zero),
             "scale": slots[2] if scale else None, "zp": slots[2 + scale] if zp else None}
    if aint:
        # A holds uint8 values (as int32 elements); the sum is over (A - za) * B, za one number
        quant["groups"] = -(-k // 4)  # B's groups of 4 rows (fuse/quant_pack.grouped)
        quant["aint"] = {"zero": int(zconst.item(0)) if zconst is not None else 0,
                         "slot": slots[2 + scale + zp] if zname and zconst is None else None,
                         "offset": c.view(zname).access(()).offset if zname and zconst is None else 0}
    params = {"batch": list(batch), "M": m, "N": n, "K": k,
              "a": {"slot": slots[0], "access": va.access(batch + (m, k))},
              "b": {"slot": slots[1], "access": Access(0, (0,) * len(batch) + (np_, 1))},
              "quant": quant,
              "leaves": [_epilogue_leaf(c, x, s, c.shape(out), batch + (m, n))
                         for x, s in zip(rest, slots[len(names) - len(rest):])],
              "code": [list(l) for l in (epilogue or ())]}
    wbytes = k * n * bits // 8 + (4 * -(-k // bs) * n if scale else 0) + (4 * n if aint else 0)
    return [KernelSpec("matmul", c.node.name, params, tuple(bases), (out,), matmul_space(nb, m, n, k),
                       flops=2 * nb * m * n * k, bytes=4 * nb * (m * k + m * n) + wbytes)]


def QGather(c, *, bits, signed, dim, inner):
    """Rows of a packed table (one byte per value; rows padded to NP values) gathered as integers."""
    from ..fuse.quant_pack import row_length
    from .elementwise import space_1d
    table, idx = c.node.inputs
    count = prod(c.shape(idx))
    params = {"dtype": c.dtype(c.node.outputs[0]), "outer": 1, "dim": dim, "inner": inner, "chunks": [0, dim],
              "count": count, "quant": {"bits": bits, "signed": bool(signed), "NP": row_length(inner, bits)}}
    bases, _ = bindings(c, [table, idx])
    return [KernelSpec("gather", c.node.name, params, tuple(bases), tuple(c.node.outputs), space_1d(count * inner),
                       bytes=5 * count * inner)]


OPS = {"QMatMul": QMatMul, "QGather": QGather}


def packed_weights(kernels) -> dict[str, str]:
    """Weight name -> the values its uint32 words pack ("int8", "uint8", "uint4"), for the bundle's records."""
    out = {}
    for k in kernels:
        q = k.params.get("quant")
        if q is None:
            continue
        kind = ("int" if q["signed"] else "uint") + str(q["bits"])
        slots = [k.params["b"]["slot"], q.get("zp")] if "b" in k.params else [0]
        out.update({k.inputs[s]: kind for s in slots if s is not None})
    return out
