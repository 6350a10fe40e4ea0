"""Constant tensors without numpy: what the compiler holds for weights and folded values.

The compiler must also run where numpy does not exist (Pyodide in a browser, see inbrowser.py), and must give the
same bytes there as in CPython. So every constant it reads, folds or rewrites is a `Tensor`: a dtype (numpy's
names), a shape and little-endian bytes. Large weights are only ever moved (reshaped, transposed, sliced, cast
to another width) with C-speed slicing of `array.array`s; per-element Python work is kept to small shape tensors.

    t = Tensor.of([1, 128], "int64")     # from Python values
    t.shape, t.dtype, t.tobytes()
    t.values()                           # flat list of Python numbers
    np.asarray(t)                        # works where numpy exists (the native runners, tests)
"""
from __future__ import annotations

import math
import struct
import sys
from array import array
from typing import Iterable, Sequence

from .errors import WebjitError

if sys.byteorder != "little":  # array.array uses the machine's order; bundles are little-endian
    raise ImportError("webjit's constant tensors assume a little-endian machine")

# numpy dtype name -> array typecode (bool is one byte per value, as in numpy and ONNX)
TYPECODES = {"float32": "f", "float64": "d", "int8": "b", "uint8": "B", "int16": "h", "uint16": "H", "int32": "i",
             "uint32": "I", "int64": "q", "uint64": "Q", "bool": "B"}
ITEMSIZE = {**{k: array(c).itemsize for k, c in TYPECODES.items()}, "float16": 2, "bfloat16": 2}
FLOATS = {"float16", "bfloat16", "float32", "float64"}
INT_RANGE = {"int8": (-2**7, 2**7 - 1), "uint8": (0, 2**8 - 1), "int16": (-2**15, 2**15 - 1),
             "uint16": (0, 2**16 - 1), "int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1),
             "int64": (-2**63, 2**63 - 1), "uint64": (0, 2**64 - 1)}
F32_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]
F32_TINY = struct.unpack("<f", b"\x00\x00\x80\x00")[0]  # the smallest normal float32
F16_MAX = 65504.0


class DType(str):
    """A dtype name that also answers `.name`, as numpy's dtypes do."""

    @property
    def name(self) -> str:
        return str(self)

    def __eq__(self, other) -> bool:  # also equal to numpy's np.float32 and np.dtype("float32")
        if isinstance(other, str):
            return str.__eq__(self, other)
        return (getattr(other, "name", None) or getattr(other, "__name__", None)) == str(self)

    def __ne__(self, other) -> bool:
        return not self == other

    __hash__ = str.__hash__


def f32(x: float) -> float:
    """x rounded to the nearest float32 (overflow gives infinity, as numpy's float32 does)."""
    return array("f", [x])[0]


def f32_bits(x: float) -> int:
    """The IEEE bits of x as a float32."""
    return int.from_bytes(array("f", [x]).tobytes(), "little")


def prod(xs: Iterable[int]) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


class Tensor:
    """An immutable n-d array: `dtype` (numpy name), `shape`, `data` (C-order little-endian bytes)."""

    __slots__ = ("dtype", "shape", "data")

    def __init__(self, dtype: str, shape: Sequence[int], data: bytes | bytearray | memoryview):
        if dtype not in ITEMSIZE:
            raise WebjitError(f"webjit cannot hold constants of type {dtype}")
        self.dtype, self.shape, self.data = DType(dtype), tuple(int(d) for d in shape), data
        if len(data) != prod(self.shape) * ITEMSIZE[dtype]:
            raise WebjitError(f"a {dtype} tensor of shape {list(self.shape)} needs "
                              f"{prod(self.shape) * ITEMSIZE[dtype]} bytes, got {len(data)}")

    # -- making ------------------------------------------------------------------------------------------------
    @classmethod
    def of(cls, values, dtype: str, shape: Sequence[int] | None = None) -> "Tensor":
        """From Python numbers (flat, or nested lists when `shape` is None)."""
        if shape is None:
            shape, values = _nested_shape(values), list(_flatten(values))
        return cls(dtype, shape, _pack(list(values), dtype))

    @classmethod
    def full(cls, shape: Sequence[int], value, dtype: str) -> "Tensor":
        one = _pack([value], dtype)
        return cls(dtype, shape, one * prod(shape))

    @classmethod
    def scalar(cls, value, dtype: str) -> "Tensor":
        return cls.of([value], dtype, ())

    @classmethod
    def from_array(cls, arr) -> "Tensor":
        """From a Tensor, or an array-like with numpy's interface (dtype.name, shape, tobytes)."""
        if isinstance(arr, Tensor):
            return arr
        if hasattr(arr, "dtype") and hasattr(arr, "tobytes"):
            dtype = arr.dtype.name
            if hasattr(arr, "astype") and arr.dtype.byteorder == ">":
                arr = arr.astype(arr.dtype.newbyteorder("<"))
            return cls(dtype, arr.shape, arr.tobytes(order="C") if hasattr(arr, "flags") else arr.tobytes())
        raise WebjitError(f"expected an array, got {type(arr).__name__}")

    # -- reading -----------------------------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def nbytes(self) -> int:
        return len(self.data)

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self.dtype]

    def tobytes(self) -> bytes:
        return bytes(self.data)

    def values(self) -> list:
        """The elements in C order, as Python numbers (bool as bool)."""
        if self.dtype in ("float16", "bfloat16"):
            raw = self.data
            if self.dtype == "bfloat16":  # the top half of a float32
                raw = b"".join(b"\0\0" + bytes(raw[i:i + 2]) for i in range(0, len(raw), 2))
                return list(array("f", raw))
            return list(struct.unpack(f"<{self.size}e", raw))
        a = array(TYPECODES[self.dtype])
        a.frombytes(self.data)
        return [bool(x) for x in a] if self.dtype == "bool" else a.tolist()

    def item(self, index: int | None = None):
        if index is None:
            if self.size != 1:
                raise WebjitError(f"a tensor of shape {list(self.shape)} is not a scalar")
            index = 0
        n = self.itemsize
        return Tensor(self.dtype, (), self.data[index * n:(index + 1) * n]).values()[0]

    def __iter__(self):
        if self.ndim > 1:
            raise TypeError("iterate over a flat tensor (reshape(-1)) only")
        return iter(self.values())

    def __getitem__(self, i: int):
        if self.ndim != 1 or not isinstance(i, int):
            raise TypeError("index a flat tensor with an int only")
        return self.item(i % self.size if i < 0 else i)

    def __len__(self) -> int:
        return self.shape[0]

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __repr__(self) -> str:
        return f"Tensor({self.dtype}, {list(self.shape)})"

    def __array__(self, dtype=None, copy=None):
        import numpy as np
        arr = np.frombuffer(bytes(self.data), dtype=np.dtype(self.dtype)).reshape(self.shape)
        return arr if dtype is None else arr.astype(dtype)

    # -- moving ------------------------------------------------------------------------------------------------
    def reshape(self, *shape) -> "Tensor":
        shape = list(shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)
        if -1 in shape:
            known = prod(d for d in shape if d != -1)
            shape[shape.index(-1)] = self.size // known if known else 0
        if prod(shape) != self.size:
            raise WebjitError(f"cannot reshape {list(self.shape)} to {shape}")
        return Tensor(self.dtype, shape, self.data)

    @property
    def T(self) -> "Tensor":
        return self.transpose()

    def transpose(self, perm: Sequence[int] | None = None) -> "Tensor":
        perm = list(range(self.ndim))[::-1] if perm is None else [p % max(self.ndim, 1) for p in perm]
        if perm == sorted(perm):
            return self
        shape = [self.shape[p] for p in perm]
        strides = _strides(self.shape)
        return self._gather_strided(shape, [strides[p] for p in perm], 0)

    def slice_axes(self, ranges: dict[int, range]) -> "Tensor":
        """Elements at the given index range of each axis (other axes whole): Slice, and np.take of a range."""
        strides = _strides(self.shape)
        shape, steps, offset = [], [], 0
        for a, n in enumerate(self.shape):
            r = ranges.get(a, range(n))
            shape.append(len(r))
            steps.append(strides[a] * r.step)
            offset += (r.start if len(r) else 0) * strides[a]
        return self._gather_strided(shape, steps, offset)

    def _gather_strided(self, shape: list[int], strides: list[int], offset: int) -> "Tensor":
        """A new C-order tensor of `shape` whose element i reads source element offset + sum(i_k * strides[k])."""
        n = prod(shape)
        if n == 0:
            return Tensor(self.dtype, shape, b"")
        src = _raw_array(self)
        out = array(src.typecode)
        if not shape:
            out.append(src[offset])
        else:
            inner, step = shape[-1], strides[-1]
            outer = shape[:-1]
            for idx in _ndindex(outer):
                base = offset + sum(i * s for i, s in zip(idx, strides))
                if step > 0:
                    out.extend(src[base:base + step * (inner - 1) + 1:step])
                elif step < 0:
                    stop = base + step * inner
                    out.extend(src[base:stop if stop >= 0 else None:step])
                else:  # a broadcast axis
                    out.extend(array(src.typecode, [src[base]]) * inner)
        return Tensor(self.dtype, shape, out.tobytes())

    def astype(self, dtype: str) -> "Tensor":
        """Cast as numpy's astype does (floats to ints truncate toward zero; to bool: nonzero)."""
        if dtype == self.dtype:
            return self
        if dtype in TYPECODES and self.dtype in TYPECODES and self.dtype != "bool" and dtype != "bool" and (
                (dtype in FLOATS) or (self.dtype not in FLOATS and _fits(self, dtype))):
            src = array(TYPECODES[self.dtype])
            src.frombytes(self.data)
            return Tensor(dtype, self.shape, array(TYPECODES[dtype], src).tobytes())
        return Tensor(dtype, self.shape, _pack([cast_value(v, dtype) for v in self.values()], dtype))


def cast_value(v, dtype: str):
    """One Python number converted as numpy casts it to `dtype`."""
    if dtype == "bool":
        return bool(v)
    if dtype in FLOATS:
        return float(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return INT_RANGE[dtype][0]  # what x86 gives; undefined in numpy
        v = int(v)  # truncates toward zero
    lo, hi = INT_RANGE[dtype]
    return ((int(v) - lo) % (hi - lo + 1)) + lo  # wraps, as a C cast does


def _fits(t: Tensor, dtype: str) -> bool:
    if t.size == 0:
        return True
    vals = t.values()
    lo, hi = INT_RANGE[dtype]
    return lo <= min(vals) and max(vals) <= hi


def _pack(values: list, dtype: str) -> bytes:
    if dtype == "float16":
        return struct.pack(f"<{len(values)}e", *(_f16_safe(v) for v in values))
    if dtype == "bfloat16":
        raise WebjitError("webjit cannot make bfloat16 constants")
    if dtype == "bool":
        return bytes(1 if v else 0 for v in values)
    code = TYPECODES[dtype]
    if dtype in FLOATS:
        return array(code, [float(v) for v in values]).tobytes()
    return array(code, [int(v) for v in values]).tobytes()


def _f16_safe(v: float) -> float:
    """struct refuses float16 overflow; numpy gives infinity."""
    v = float(v)
    if math.isfinite(v) and abs(v) >= 65520.0:
        return math.copysign(math.inf, v)
    return v


def _raw_array(t: Tensor) -> array:
    """The tensor's elements as an array of same-width integers or floats (float16 as its 16-bit patterns)."""
    code = TYPECODES.get(t.dtype, "H")
    a = array(code)
    a.frombytes(t.data)
    return a


def _strides(shape: Sequence[int]) -> list[int]:
    out, s = [], 1
    for d in reversed(shape):
        out.append(s)
        s *= d
    return out[::-1]


def _ndindex(shape: Sequence[int]):
    if not shape:
        yield ()
        return
    for i in range(shape[0]):
        for rest in _ndindex(shape[1:]):
            yield (i,) + rest


def _nested_shape(values) -> tuple[int, ...]:
    if isinstance(values, (list, tuple)):
        return (len(values),) + (_nested_shape(values[0]) if values else ())
    return ()


def _flatten(values):
    if isinstance(values, (list, tuple)):
        for v in values:
            yield from _flatten(v)
    else:
        yield values
