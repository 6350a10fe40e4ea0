"""What each WebAssembly kernel template substitutes, computed from a KernelSpec's params and a variant.

One function per kernel kind, `kind(params, variant, inb, outb) -> dict`, where inb / outb are the byte offsets of
the kernel's input and output buffers in the linear memory. This is where the shape arithmetic of the WASM backend
lives: element strides become byte strides, loop nests are collapsed, tiles and tails are counted. The templates
(templates_wasm/) only substitute and unroll.
"""
from __future__ import annotations

import math

from .tensor import F32_MAX, F32_TINY, f32, prod

from .errors import UnsupportedOp
from .wasm_code import REDUCE, TYPES, expressions, literal, scalar
from .space import ceil_div
from .space_wasm import i8_row
from .views import contiguous_strides


def _prod(xs) -> int:
    return prod(xs)


def _nest(shape, accesses, keep: bool = False) -> dict:
    """A strided loop nest over `shape` for accesses [(buffer byte offset, element offset, element strides)]:
    dims of size 1 dropped and neighbours merged where every access walks them as one (unless keep: the code reads
    coordinates), then split into outer dims and rows walked in vectors of 4."""
    dims = [(d, tuple(st[i] for _, _, st in accesses)) for i, d in enumerate(shape)]
    merged: list[tuple[int, tuple]] = []
    for size, st in dims if keep else [x for x in dims if x[0] != 1]:
        if merged and not keep and all(a == b * size for a, b in zip(merged[-1][1], st)):
            merged[-1] = (merged[-1][0] * size, st)
        else:
            merged.append((size, st))
    merged = merged or [(1, (0,) * len(accesses))]
    outer, (width, inner) = [d for d, _ in merged[:-1]], merged[-1]
    return {"outer": outer, "outer_div": list(contiguous_strides(tuple(outer))), "nvec": ceil_div(width, 4),
            "full": width // 4, "tail": width % 4, "units": _prod(outer) * ceil_div(width, 4),
            "accesses": [{"base": buf + 4 * off, "rows": [4 * st[i] for _, st in merged[:-1]],
                          "stride": 4 * inner[i], "step": 16 * inner[i]} for i, (buf, off, _) in enumerate(accesses)]}


def _access(base: int, access, rank: int, names: tuple[str, str]) -> dict:
    """Byte base and strides of an access over batch + (two dims): the batch strides, then the two named ones."""
    st = [4 * s for s in access.strides]
    return {"base": base + 4 * access.offset, "batch": st[:rank], names[0]: st[rank], names[1]: st[rank + 1]}


def _reciprocals(code) -> list:
    """Elementwise code with each float division by a constant turned into a multiplication by its reciprocal (a
    division costs several multiplications; the result differs by an ulp or so). Divisors whose reciprocal is not a
    normal f32 number stay divisions, and so do those marked `exact` (quantization: in round(x / scale) an ulp moves
    a tie to the next integer)."""
    out = []
    for dtype, op, args, attrs in code:
        c = args[1] if op == "Div" and dtype == "float32" and len(args) == 2 and args[1] is not None else None
        if ("exact", 1) in tuple(map(tuple, attrs)):
            c = None
        if c is not None and c[0] == "c" and c[2] == "float32" and math.isfinite(c[1]) and c[1] != 0:
            r = 1.0 / f32(c[1])
            if F32_TINY <= abs(r) <= F32_MAX:
                op, args = "Mul", (args[0], ("c", r, "float32"))
        out.append([dtype, op, args, attrs])
    return out


def _leaves(p, inb, rank: int, names=("m", "n")) -> list[dict]:
    return [{**_access(inb[l["slot"]], l["access"], rank, names), "dtype": l["dtype"]} for l in p["leaves"]]


def elementwise(p, v, inb, outb) -> dict:
    lines, coords = expressions(_reciprocals(p["code"]), p["leaves"])
    accesses = [(inb[l["slot"]], l["access"].offset, l["access"].strides) for l in p["leaves"]]
    accesses.append((outb[0], 0, contiguous_strides(tuple(p["shape"]))))
    return {**_nest(p["shape"], accesses, keep=coords), "leaves": [{"dtype": l["dtype"]} for l in p["leaves"]],
            "lines": lines, "out_dtype": p["out_dtype"], "coords_used": coords}


def concat(p, v, inb, outb) -> dict:
    shape, axis = list(p["shape"]), p["axis"]
    out_strides, pieces, start = contiguous_strides(tuple(shape)), [], 0
    for piece in p["pieces"]:
        sub = shape[:axis] + [piece["end"] - start] + shape[axis + 1:]
        a = piece["access"]  # takes output coordinates: shift it to the piece's own
        pieces.append(_nest(sub, [(inb[piece["slot"]], a.offset + start * a.strides[axis], a.strides),
                                  (outb[0], start * out_strides[axis], out_strides)]))
        start = piece["end"]
    return {"pieces": pieces, "rank": max(len(x["outer"]) for x in pieces)}


def matmul(p, v, inb, outb) -> dict:
    batch, m, n, k = p["batch"], p["M"], p["N"], p["K"]
    r, cols = len(batch), 4 * v["NR"]
    npanels = ceil_div(n, cols)
    last = n - (npanels - 1) * cols
    panels = [{"nv": v["NR"], "lanes": 4}]
    if last != cols:
        nv = ceil_div(last, 4)
        panels = ([] if npanels == 1 else panels) + [{"nv": nv, "lanes": last - 4 * (nv - 1)}]
    lines, coords = expressions(_reciprocals(p["code"]), p["leaves"])
    return {"units": _prod(batch) * npanels, "npanels": npanels, "last_n0": (npanels - 1) * cols,
            "batch": batch, "batch_div": list(contiguous_strides(tuple(batch))), "M": m, "K": k,
            "mfull": m // v["MR"] * v["MR"], "mtail": m % v["MR"], "nkb": ceil_div(k, v["KB"]), "panels": panels,
            "a": _access(inb[p["a"]["slot"]], p["a"]["access"], r, ("m", "k")),
            "b": _access(inb[p["b"]["slot"]], p["b"]["access"], r, ("k", "n")),
            "out": {"base": outb[0], "batch": 4 * m * n, "m": 4 * n},
            "leaves": _leaves(p, inb, r), "lines": lines, "coords_used": coords, "quant": _quant(p, inb)}


def gemv(p, v, inb, outb) -> dict:
    """A matmul of one row (decode steps): blocks of NB columns, B read row by row (gemv.wat.j2)."""
    batch, n, nb = p["batch"], p["N"], v["NB"]
    r = len(batch)
    nblocks = ceil_div(n, nb)
    last = n - (nblocks - 1) * nb
    blocks = [{"full": nb // 4, "tail": 0}]
    if last != nb:
        blocks = ([] if nblocks == 1 else blocks) + [{"full": last // 4, "tail": last % 4}]
    lines, coords = expressions(_reciprocals(p["code"]), p["leaves"])
    return {"units": _prod(batch) * nblocks, "nblocks": nblocks, "last_n0": (nblocks - 1) * nb,
            "batch": batch, "batch_div": list(contiguous_strides(tuple(batch))), "K": p["K"], "blocks": blocks,
            "a": _access(inb[p["a"]["slot"]], p["a"]["access"], r, ("m", "k")),
            "b": _access(inb[p["b"]["slot"]], p["b"]["access"], r, ("k", "n")),
            "out": {"base": outb[0], "batch": 4 * n, "m": 4 * n},
            "leaves": _leaves(p, inb, r), "lines": lines, "coords_used": coords}


def matmul_i8(p, v, inb, outb) -> dict:
    """A matmul of uint8 A and int8 B summed in int32 (matmul_i8.wat.j2): as `matmul`, and the rows of the byte
    planes its K block of A is split into."""
    return {**matmul(p, v, inb, outb), "KBP": i8_row(p, v)}


def form(kind: str, variant: dict) -> str:
    """The template a kernel's variant renders with: a matmul's gemv variants (NB) and its integer variants (dot)
    have their own."""
    if kind == "matmul" and "NB" in variant:
        return "gemv"
    return "matmul_i8" if kind == "matmul" and variant.get("dot") else kind


def _quant(p, inb) -> dict | None:
    """Byte bases and row sizes of a quantized B (lower/quant.py), its zero points and scales."""
    q = p.get("quant")
    if q is None:
        return None
    row = q["NP"] * q["bits"] // 8
    qa = q.get("aint")
    aint = qa and {"zero": qa["zero"], "base": inb[qa["slot"]] + 4 * qa["offset"] if qa["slot"] is not None else None}
    run = 64 * q.get("groups", 0)  # aint: bytes of a 16-column panel of B, then the column sums (quant_pack.grouped)
    return {"bits": q["bits"], "signed": q["signed"], "bs": q["bs"], "row": row, "zero": literal(q["zero"], "float32"),
            "aint": aint, "run": run, "sums": run * ceil_div(p["N"], 16),
            "zp": {"base": inb[q["zp"]], "row": row} if q["zp"] is not None else None,
            "scale": {"base": inb[q["scale"]], "row": 4 * q["NS"]} if q["scale"] is not None else None}


def attention(p, v, inb, outb) -> dict:
    batch, m, n, d, dv = p["batch"], p["M"], p["N"], p["D"], p["DV"]
    r = len(batch)
    q = _access(inb[p["q"]["slot"]], p["q"]["access"], r, ("m", "d"))
    k = _access(inb[p["k"]["slot"]], p["k"]["access"], r, ("d", "n"))
    val = _access(inb[p["v"]["slot"]], p["v"]["access"], r, ("n", "e"))
    out = _access(outb[0], p["out"], r, ("m", "e"))
    leaves = _leaves(p, inb, r)
    lines, coords = expressions(_reciprocals(p["code"]), p["leaves"])
    evecs = [(4 * j * val["e"], 4 * j * out["e"], min(4, dv - 4 * j)) for j in range(ceil_div(dv, 4))]
    ptrs = [("pk", 4 * k["n"]), ("ps", 16), ("n", 4)]
    ptrs += [(f"pl{i}_{row}", 4 * leaf["n"]) for row in range(v["BQ"]) for i, leaf in enumerate(leaves)]
    mblocks = ceil_div(m, v["BQ"])
    return {"units": _prod(batch) * mblocks, "mblocks": mblocks, "batch": batch,
            "batch_div": list(contiguous_strides(tuple(batch))), "M": m, "N": n, "q": q, "k": k, "v": val,
            "out": out, "leaves": leaves, "lines": lines, "coords_used": coords, "nan_guard": p["nan_guard"],
            "dfull": d // 4, "dtail": d % 4,
            "groups": n // 4, "ntail": n % 4, "svec": ceil_div(n, 4), "srow": 16 * ceil_div(n, 4),
            "echunks": [evecs[i:i + v["EV"]] for i in range(0, len(evecs), v["EV"])], "score_ptrs": ptrs}


def _mask(lanes: int) -> str:
    return f"(v128.const i32x4{''.join(' -1' if j < lanes else ' 0' for j in range(4))})"


def norm(p, v, inb, outb) -> dict:
    length = p["length"]

    def vec(x):
        return {"base": inb[x["slot"]], "stride": 0 if x["broadcast"] else 4} if x else None
    return {"rows": p["outer"], "full": length // 4, "tail": length % 4, "row_bytes": 4 * length, "x": inb[0],
            "out": outb[0], "length_f": scalar(length, "float32"), "epsilon": scalar(p["epsilon"], "float32"),
            "rms": p["rms"], "scale": vec(p["scale"]), "bias": vec(p["bias"]), "tail_mask": _mask(length % 4),
            "mean_out": outb[1] if p["stats"] >= 1 else None, "inv_out": outb[2] if p["stats"] >= 2 else None}


def softmax(p, v, inb, outb) -> dict:
    outer, length, inner = p["outer"], p["length"], p["inner"]
    groups = ceil_div(inner, 4)
    common = {"length": length, "inner": inner, "x": inb[0], "out": outb[0], "log": p["log"], "groups": groups,
              "block_bytes": 4 * length * inner, "lstep": 4 * inner, "row_bytes": 4 * length}
    if inner == 1:
        return {**common, "units": outer, "full": length // 4, "tail": length % 4}
    return {**common, "units": outer * groups, "full": 0, "tail": inner % 4}


def reduce(p, v, inb, outb) -> dict:
    t = TYPES[p["dtype"]]
    ident_f, ident_i, vops, hops, vmap, post = REDUCE[p["op"]]
    i = 0 if t == "f32" else 1
    if t == "bool" or (ident_f, ident_i)[i] is None:
        raise UnsupportedOp(f"Reduce {p['op']} of {p['dtype']} tensors")
    red, strides = list(p["red_shape"]) or [1], list(p["red_strides"]) or [0]
    count = _prod(p["red_shape"])
    n = scalar(count, "float32") if t == "f32" else str(count)
    return {"total": max(1, _prod(p["out_shape"])), "out_shape": p["out_shape"],
            "out_div": list(contiguous_strides(tuple(p["out_shape"]))), "out_strides": [4 * s for s in p["out_strides"]],
            "red_shape": red[:-1], "red_div": list(contiguous_strides(tuple(red[:-1]))),
            "red_strides": [4 * s for s in strides[:-1]], "red_count": _prod(red[:-1]), "full": red[-1] // 4,
            "tail": red[-1] % 4, "stride": 4 * strides[-1], "x": inb[0], "out": outb[0], "T": t,
            "identity": literal((ident_f, ident_i)[i], p["dtype"]), "vop": vops[i], "hop": hops[i],
            "vmap": vmap[i] if vmap else "{0}", "shift": p["op"] == "log_sum_exp",
            "fill": literal(-math.inf if p["op"] == "log_sum_exp" else (ident_f, ident_i)[i], p["dtype"]),
            "post": post[i].format("(local.get $res)", n=n) if post else None}


def gather(p, v, inb, outb) -> dict:
    rows, inner, quant = p["chunks"], p["inner"], p.get("quant")
    row_bytes = quant["NP"] if quant else 4 * inner  # a quantized table: one byte per value
    chunks = [{"lo": lo, "hi": hi, "base": inb[i], "block": row_bytes * (hi - lo)}
              for i, (lo, hi) in enumerate(zip(rows, rows[1:]))]
    return {"units": p["outer"] * p["count"], "count": p["count"], "dim": p["dim"], "idx": inb[len(chunks)],
            "out": outb[0], "row_bytes": row_bytes, "out_row_bytes": 4 * inner, "full": inner // 4,
            "tail": inner % 4, "chunks": chunks, "quant": quant}


def gather_elements(p, v, inb, outb) -> dict:
    shape = p["shape"]
    return {"total": _prod(shape), "shape": shape, "shape_div": list(contiguous_strides(tuple(shape))),
            "axis": p["axis"], "dim": p["dim"], "data_strides": [4 * s for s in p["data_strides"]],
            "data": inb[0], "idx": inb[-1], "out": outb[0]}


def gather_nd(p, v, inb, outb) -> dict:
    inner = p["inner"]
    return {"count": p["count"], "depth": p["depth"], "dims": p["dims"], "strides": [4 * s for s in p["strides"]],
            "data": inb[0], "idx": inb[-1], "out": outb[0], "row_bytes": 4 * inner, "full": inner // 4,
            "tail": inner % 4}


def cumsum(p, v, inb, outb) -> dict:
    outer, dim, inner = p["outer"], p["dim"], p["inner"]
    groups = ceil_div(inner, 4)
    return {"units": outer * groups, "groups": groups, "dim": dim, "tail": inner % 4,
            "block_bytes": 4 * dim * inner, "start": 4 * (dim - 1) * inner if p["reverse"] else 0,
            "step": -4 * inner if p["reverse"] else 4 * inner, "x": inb[0], "out": outb[0],
            "add": "f32x4.add" if TYPES[p["dtype"]] == "f32" else "i32x4.add", "exclusive": p["exclusive"]}


# ScatterND reduction -> its lane op per type
SCATTER = {"none": (None, None), "add": ("f32x4.add", "i32x4.add"), "mul": ("f32x4.mul", "i32x4.mul"),
           "max": ("f32x4.max", "i32x4.max_s"), "min": ("f32x4.min", "i32x4.min_s")}


def scatter_nd(p, v, inb, outb) -> dict:
    inner, t = p["inner"], TYPES[p["dtype"]]
    return {"units": 1 if p["serial"] else p["count"], "serial": p["serial"], "count": p["count"],
            "depth": p["depth"], "dims": p["dims"], "strides": [4 * s for s in p["strides"]],
            "idx": inb[p["idx_slot"]], "upd": inb[p["upd_slot"]], "out": outb[0], "row_bytes": 4 * inner,
            "full": inner // 4, "tail": inner % 4, "op": SCATTER[p["reduction"]][0 if t == "f32" else 1]}


KINDS = {"elementwise": elementwise, "concat": concat, "matmul": matmul, "attention": attention, "norm": norm,
         "softmax": softmax, "reduce": reduce, "gather": gather, "gather_elements": gather_elements,
         "gather_nd": gather_nd, "cumsum": cumsum, "scatter_nd": scatter_nd, "gemv": gemv,
         "matmul_i8": matmul_i8}
