"""Strided views: how a kernel reads a tensor without copying it.

Reshape, Squeeze, Unsqueeze, Flatten, Transpose, Slice, Expand, Split and Gather with a constant scalar index
produce no kernel. Their output is a `View` of an existing buffer: an element offset plus one stride per dim.
Kernels read every input through such a view, composed with broadcasting into the kernel's output coordinates
(an `Access`).
"""
from __future__ import annotations

from dataclasses import dataclass


from .ir import Shape


def contiguous_strides(shape: Shape) -> tuple[int, ...]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return tuple(reversed(strides))


@dataclass(frozen=True)
class View:
    base: str             # the value that owns the buffer
    shape: Shape
    offset: int
    strides: tuple[int, ...]

    @staticmethod
    def of(name: str, shape: Shape) -> "View":
        return View(name, tuple(shape), 0, contiguous_strides(shape))

    @property
    def contiguous(self) -> bool:
        return self.offset == 0 and all(s == c or d == 1 for s, c, d in
                                        zip(self.strides, contiguous_strides(self.shape), self.shape))

    def transpose(self, perm) -> "View":
        return View(self.base, tuple(self.shape[p] for p in perm), self.offset, tuple(self.strides[p] for p in perm))

    def slice(self, axis: int, start: int, step: int, size: int) -> "View":
        shape, strides = list(self.shape), list(self.strides)
        shape[axis] = size
        offset = self.offset + start * strides[axis]
        strides[axis] *= step
        return View(self.base, tuple(shape), offset, tuple(strides))

    def expand(self, shape: Shape) -> "View":
        pad = len(shape) - len(self.shape)
        strides = [0] * pad + [s if d == n else 0 for s, d, n in zip(self.strides, self.shape, shape[pad:])]
        return View(self.base, tuple(shape), self.offset, tuple(strides))

    def reshape(self, shape: Shape) -> "View | None":
        """The reshaped view, or None when strides cannot express it (then a copy is needed).

        Walk both shapes from the innermost dim, in chunks of old dims that are contiguous with each other. Each
        chunk must be exactly covered by a run of new dims, which then get strides inside that chunk.
        """
        shape = tuple(shape)
        if self.contiguous:
            return View(self.base, shape, self.offset, contiguous_strides(shape))
        old = [(d, s) for d, s in zip(self.shape, self.strides) if d != 1]
        new_strides = [0] * len(shape)
        j = len(shape) - 1
        i = len(old) - 1
        while i >= 0:
            # one chunk: old dims i0..i whose strides nest without gaps
            size, stride = old[i][0], old[i][1]
            while i > 0 and old[i - 1][1] == old[i][1] * old[i][0]:
                i -= 1
                size *= old[i][0]
            i -= 1
            covered = 1
            while j >= 0 and (covered < size or shape[j] == 1):
                new_strides[j] = covered * stride
                covered *= shape[j]
                j -= 1
            if covered != size:
                return None
        if any(shape[k] != 1 for k in range(j + 1)):
            return None
        return View(self.base, shape, self.offset, tuple(new_strides))

    def access(self, out_shape: Shape) -> "Access":
        """Read this view broadcast to out_shape (right-aligned, as ONNX broadcasting)."""
        v = self.expand(out_shape) if tuple(self.shape) != tuple(out_shape) else self
        return Access(v.offset, tuple(0 if d == 1 else s for s, d in zip(v.strides, out_shape)))


@dataclass(frozen=True)
class Access:
    """Element index of one input for output coordinates c: offset + sum(c[d] * strides[d])."""
    offset: int
    strides: tuple[int, ...]

    def indices(self, shape: Shape):
        """All indices for an output of this shape, in row-major order, as a numpy array (for tests)."""
        import numpy as np
        idx = np.full(shape, self.offset, dtype=np.int64)
        for d, s in enumerate(self.strides):
            r = [1] * len(shape)
            r[d] = shape[d]
            idx = idx + np.arange(shape[d]).reshape(r) * s
        return idx
