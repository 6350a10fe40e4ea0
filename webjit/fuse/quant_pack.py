"""Quantized weights in the form the matmul kernels read, in plain Python (C-speed slicing, no per-element loops).

A packed matrix holds element (r, n) of a [rows, N] integer matrix at index r * NP + n, NP = N rounded up to
a whole number of 32-bit words and at least a multiple of 4 (so 4 columns are always one load): `bits` 8 (one byte
per value) or 4 (two values per byte, the even column in the low nibble), padding zero. It is stored as uint32
words, 4-byte aligned on every backend.
"""
from __future__ import annotations

from array import array

from ..tensor import Tensor

LOW = bytes(b & 15 for b in range(256))
HIGH = bytes(b >> 4 for b in range(256))


def row_length(n: int, bits: int) -> int:
    """NP: elements per packed row."""
    per_word = 32 // bits
    return -(-max(n, 1) // per_word) * per_word


def nibbles(data: bytes) -> bytes:
    """Each byte as two bytes, its low nibble first."""
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(LOW)
    out[1::2] = data.translate(HIGH)
    return bytes(out)


def pack(values: bytes, rows: int, n: int, bits: int) -> Tensor:
    """A row-major [rows, n] matrix of one byte per value (two's complement for signed) -> packed uint32 words."""
    np_ = row_length(n, bits)
    pad = bytes(np_ - n)
    padded = values if np_ == n else b"".join(values[r * n:(r + 1) * n] + pad for r in range(rows))
    if bits == 4:
        lo, hi = int.from_bytes(padded[0::2], "little"), int.from_bytes(padded[1::2], "little")
        padded = (lo | (hi << 4)).to_bytes(len(padded) // 2, "little")
    return Tensor("uint32", (rows, np_ * bits // 32), padded)


def padded_columns(t: Tensor, n: int) -> Tensor:
    """A [rows, n] float32 tensor with its rows padded by zeros to a multiple of 4 columns."""
    ns = -(-n // 4) * 4
    rows = t.size // n
    if ns == n:
        return t.reshape(rows, n)
    raw, pad, w = t.tobytes(), bytes(4 * (ns - n)), 4 * n
    return Tensor("float32", (rows, ns), b"".join(raw[r * w:(r + 1) * w] + pad for r in range(rows)))


def transposed_bytes(data: bytes, rows: int, cols: int, keep: int) -> bytes:
    """The first `keep` columns of a [rows, cols] byte matrix, transposed to [keep, rows]."""
    t = Tensor("uint8", (rows, cols), data)
    if keep != cols:
        t = t.slice_axes({1: range(keep)})
    return t.T.tobytes()


PANEL = 16  # columns of a panel of grouped(): 4 v128 of 4 columns' 4 bytes, one 64-byte cache line a group


def grouped(values: bytes, k: int, n: int) -> Tensor:
    """A row-major [k, n] int8 matrix for byte dot products: in panels of PANEL columns, each a run of groups of 4
    rows, each group PANEL words, word c holding the bytes of rows 4g .. 4g + 3 of the panel's column c (row 4g in
    the low byte); rows and columns past the matrix zero. Then the columns' sums over k as int32 words (as many as
    the panels have columns). A kernel that walks k for a few columns reads one run of consecutive lines
    (templates_wasm/matmul_i8.wat.j2 reads 4 columns' 4 bytes as one vector), and the sums take a zero point of
    the other operand out of the products. Shape: [panels * (groups + 1), PANEL] words."""
    panels, groups = -(-max(n, 1) // PANEL), -(-k // 4)
    run = 4 * PANEL * groups  # bytes of one panel
    out = bytearray(run * panels + 4 * PANEL * panels)
    for r in range(k):
        g, b = divmod(r, 4)
        row = values[r * n:(r + 1) * n]
        for p in range(panels):
            cols = row[p * PANEL:(p + 1) * PANEL]
            start = p * run + 4 * PANEL * g + b
            out[start:start + 4 * len(cols):4] = cols
    signed = array("b", values)
    sums = array("i", [sum(signed[c::n]) for c in range(n)] + [0] * (PANEL * panels - n))
    out[run * panels:] = sums.tobytes()
    return Tensor("uint32", (panels * groups + panels, PANEL), bytes(out))
