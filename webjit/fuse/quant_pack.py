"""Quantized weights in the form the matmul kernels read, in plain Python (C-speed slicing, no per-element loops).

A packed matrix holds element (r, n) of a [rows, N] integer matrix at index r * NP + n, NP = N rounded up to
a whole number of 32-bit words and at least a multiple of 4 (so 4 columns are always one load): `bits` 8 (one byte
per value) or 4 (two values per byte, the even column in the low nibble), padding zero. It is stored as uint32
words, 4-byte aligned on every backend.
"""
from __future__ import annotations

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
