"""Evaluate an ONNX node on constant inputs at compile time, in plain Python (no numpy, no onnx).

`shapes.specialize` folds every node whose inputs are all known: the shape logic exporters write (Shape, Gather,
Concat, Range, Where, ...), masks built from constants, and ops applied to weights (Transpose, Cast, Reshape).
Element values follow ONNX and numpy: float32 results are rounded to float32 after each op (for +, -, *, / and
sqrt that is exactly numpy's result), integer division truncates toward zero, casts truncate and wrap.

Large tensors are only moved (see tensor.py); per-element Python work happens for arithmetic, which in
transformer graphs touches shape vectors and masks.
"""
from __future__ import annotations

import math
from typing import Callable

from . import ops
from .errors import WebjitError
from .fold_index import gather_elements, scatter_nd
from .ir import Node
from .fold_scalar import _axis, _max, _min, _round
from .tensor import FLOATS, Tensor, prod

OutSpec = list[tuple[str, tuple[int, ...]]]  # (dtype, shape) of each output, from shapes.SHAPE_FNS


def _div(a, b):
    if isinstance(a, int) and isinstance(b, int):
        if b == 0:
            return 0
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b > 0) else -q
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _pow(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return a ** b if b >= 0 else (0 if abs(a) != 1 else a ** (b % 2 + 2))
    try:
        return math.pow(a, b)
    except ValueError:
        return math.nan
    except OverflowError:
        return math.inf if a > 0 or float(b).is_integer() and int(b) % 2 == 0 else -math.inf


def _mod(fmod: bool):
    def f(a, b):
        if fmod:
            return math.fmod(a, b) if b != 0 else math.nan
        if b == 0:
            return 0 if isinstance(a, int) else math.nan
        return a % b if isinstance(a, int) else a - math.floor(a / b) * b
    return f






BINARY: dict[str, Callable] = {
    "Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b, "Div": _div, "Pow": _pow,
    "Max": _max, "Min": _min, "Sum": lambda a, b: a + b,
    "And": lambda a, b: a and b, "Or": lambda a, b: a or b, "Xor": lambda a, b: a != b,
    "Equal": lambda a, b: a == b, "Less": lambda a, b: a < b, "Greater": lambda a, b: a > b,
    "LessOrEqual": lambda a, b: a <= b, "GreaterOrEqual": lambda a, b: a >= b,
}
COMPARE = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"}


def _sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _safe(f):
    def g(x):
        try:
            return f(x)
        except (ValueError, ZeroDivisionError):
            return math.nan
        except OverflowError:
            return math.inf
    return g


UNARY: dict[str, Callable] = {
    "Neg": lambda x: -x, "Abs": abs, "Sqrt": _safe(math.sqrt), "Exp": _safe(math.exp), "Log": _safe(
        lambda x: -math.inf if x == 0 else math.log(x)), "Reciprocal": lambda x: _div(1.0, x),
    "Floor": lambda x: float(math.floor(x)) if math.isfinite(x) else x,
    "Ceil": lambda x: float(math.ceil(x)) if math.isfinite(x) else x,
    "Round": lambda x: float(round(x)) if math.isfinite(x) else x,
    "Sign": lambda x: type(x)((x > 0) - (x < 0)) if not (isinstance(x, float) and math.isnan(x)) else x,
    "Erf": math.erf, "Tanh": math.tanh, "Sigmoid": _sigmoid, "Relu": lambda x: x if x > 0 else type(x)(0),
    "Sin": _safe(math.sin), "Cos": _safe(math.cos), "Not": lambda x: not x, "Identity": lambda x: x,
    "Mish": lambda x: x * math.tanh(x if x > 20 else math.log1p(math.exp(x))),
}


MAX_FOLDED_MATMUL = 1 << 16  # multiply-adds: a larger product of constants runs in a kernel


def folds(node: Node, ins: list[Tensor | None]) -> bool:
    """Whether `specialize` evaluates this node, all of whose inputs are constants, here rather than in a kernel.
    Ops declared `folds=False` (ops.py) are left to the kernels: evaluating them here, in Python, would take long
    on real weights (a projection of DeBERTa's relative position embeddings), or is not written."""
    op = ops.ONNX.get(node.op)
    if op is None or not op.folds:
        return False
    if node.op == "MatMul":
        a, b = ins[0], ins[1]
        return a.ndim == 2 and b.ndim == 2 and a.shape[0] * a.shape[1] * b.shape[1] <= MAX_FOLDED_MATMUL
    return True


def evaluate(node: Node, ins: list[Tensor | None], outs: OutSpec | None, opset: int) -> list[Tensor]:
    """The node's outputs for constant inputs `ins` (None for an absent optional input). outs: the output dtypes
    and shapes shape inference gives (None for ops that only fold: Constant, Range, ConstantOfShape)."""
    op = node.op
    try:
        if op in ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout"):
            return [ins[0].reshape(outs[0][1])] + [Tensor.full(outs[0][1], True, "bool")][:len(node.outputs) - 1]
        if op in BINARY or op in ("Mod", "Mean"):
            return [_elementwise(op, node, ins, outs[0])]
        if op in UNARY:
            return [_map(ins[0], UNARY[op], outs[0][0])]
        if op in ("IsNaN", "IsInf"):
            f = math.isnan if op == "IsNaN" else _isinf(node)
            return [_map(ins[0], lambda x: bool(f(x)), "bool")]
        if op in ("Cast", "CastLike"):
            return [ins[0].astype(outs[0][0])]
        if op == "Where":
            c, x, y = (_broadcast(t, outs[0][1]) for t in ins)
            return [Tensor.of([a if k else b for k, a, b in zip(c, x, y)], outs[0][0], outs[0][1])]
        if op == "Clip":
            lo = ins[1].item() if len(ins) > 1 and ins[1] is not None else node.attrs.get("min", -math.inf)
            hi = ins[2].item() if len(ins) > 2 and ins[2] is not None else node.attrs.get("max", math.inf)
            return [_map(ins[0], lambda v: _min(_max(v, lo), hi), outs[0][0])]
        if op == "Transpose":
            return [ins[0].transpose(node.attrs.get("perm"))]
        if op == "Slice":
            return [_slice(node, ins)]
        if op == "Split":
            return _split(node, ins, outs)
        if op == "Concat":
            return [_concat(node, [t for t in ins if t is not None], outs[0])]
        if op == "Gather":
            return [_gather(node, ins[0], ins[1], outs[0])]
        if op == "Expand":
            return [Tensor.of(_broadcast(ins[0], outs[0][1]), outs[0][0], outs[0][1])]
        if op == "Tile":
            return [_tile(ins[0], [int(r) for r in ins[1].values()])]
        if op == "Constant":
            return [_constant(node)]
        if op == "ConstantOfShape":
            value = node.attrs.get("value") or Tensor.of([0.0], "float32", (1,))
            return [Tensor.full([int(d) for d in ins[0].values()], value.item(0), value.dtype)]
        if op == "Range":
            return [_range(*ins)]
        if op == "NonZero":
            return [_nonzero(ins[0])]
        if op == "Trilu":
            return [_trilu(node, ins)]
        if op in REDUCE:
            return [_reduce(node, ins, outs[0], opset)]
        if op == "MatMul":
            return [_matmul(ins[0], ins[1], outs[0])]
        if op == "GatherND":
            return [_gather_nd(node, ins[0], ins[1], outs[0])]
        if op == "GatherElements":
            return [gather_elements(node, ins[0], ins[1])]
        if op == "CumSum":
            return [_cumsum(node, ins[0], int(ins[1].item()))]
        if op == "ScatterND":
            return [scatter_nd(node, *ins)]
    except WebjitError:
        raise
    except (ArithmeticError, ValueError, TypeError, IndexError, AttributeError) as e:
        raise WebjitError(f"node '{node.name}' ({op}): cannot evaluate at compile time: {e}") from None
    raise WebjitError(f"node '{node.name}' ({op}): all its inputs are constants, but webjit cannot evaluate "
                      f"{op} at compile time")


# -- elementwise -------------------------------------------------------------------------------------------------
def _broadcast(t: Tensor, shape: tuple[int, ...]) -> list:
    """t's values broadcast to `shape`, flat in C order."""
    if tuple(t.shape) == tuple(shape):
        return t.values()
    src = (1,) * (len(shape) - t.ndim) + tuple(t.shape)
    strides, s = [], 1
    for d in reversed(src):
        strides.append(s)
        s *= d
    strides = [0 if d == 1 else st for d, st in zip(src, strides[::-1])]
    return t.reshape(src)._gather_strided(list(shape), strides, 0).values()




def _map(t: Tensor, f: Callable, dtype: str) -> Tensor:
    vals = t.values()
    if t.dtype in FLOATS:
        vals = [float(v) for v in vals]
    return Tensor.of(_round([f(v) for v in vals], dtype), dtype, t.shape)


def _elementwise(op: str, node: Node, ins: list[Tensor | None], out: tuple[str, tuple]) -> Tensor:
    dtype, shape = out
    args = [t for t in ins if t is not None]
    if op == "Pow" and args[0].dtype in FLOATS:
        args = [args[0], args[1].astype("float64")]
    cols = [_broadcast(t, shape) for t in args]
    if args[0].dtype in FLOATS:
        cols = [[float(v) for v in c] for c in cols]
    if op == "Mean":
        vals = [sum(xs) / len(xs) for xs in zip(*cols)]
    else:
        f = _mod(bool(node.attrs.get("fmod", 0))) if op == "Mod" else BINARY[op]
        vals = cols[0]
        for c in cols[1:]:
            vals = [f(a, b) for a, b in zip(vals, c)]
            if dtype == "float32" and op not in COMPARE:
                vals = Tensor.of(vals, "float32", (len(vals),)).values()  # round after each step
    return Tensor.of(_round(vals, dtype), dtype, shape)


def _isinf(node: Node):
    pos, neg = node.attrs.get("detect_positive", 1), node.attrs.get("detect_negative", 1)
    return lambda x: math.isinf(x) and ((x > 0 and pos) or (x < 0 and neg))


# -- moving ------------------------------------------------------------------------------------------------------


def _ints(node: Node, ins: list, i: int, attr: str) -> list[int] | None:
    if attr in node.attrs:
        return [int(x) for x in node.attrs[attr]]
    if i < len(ins) and ins[i] is not None:
        return [int(x) for x in ins[i].values()]
    return None


def _slice(node: Node, ins: list) -> Tensor:
    x = ins[0]
    starts, ends = _ints(node, ins, 1, "starts"), _ints(node, ins, 2, "ends")
    axes = _ints(node, ins, 3, "axes") or list(range(len(starts)))
    steps = _ints(node, ins, 4, "steps") or [1] * len(starts)
    ranges = {}
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = _axis(a, x.ndim)
        ranges[a] = range(*slice(s, e, st).indices(x.shape[a]))
    return x.slice_axes(ranges)


def _split(node: Node, ins: list, outs: OutSpec) -> list[Tensor]:
    x = ins[0]
    axis = _axis(node.attrs.get("axis", 0), x.ndim)
    start, parts = 0, []
    for _, shape in outs:
        parts.append(x.slice_axes({axis: range(start, start + shape[axis])}))
        start += shape[axis]
    return parts


def _concat(node: Node, ins: list[Tensor], out: tuple[str, tuple]) -> Tensor:
    axis = _axis(node.attrs["axis"], ins[0].ndim)
    outer = prod(out[1][:axis])
    chunks = [(t.data, prod(t.shape[axis:]) * t.itemsize) for t in ins]
    data = bytearray()
    for i in range(outer):
        for raw, n in chunks:
            data += raw[i * n:(i + 1) * n]
    return Tensor(out[0], out[1], bytes(data))


def _gather(node: Node, data: Tensor, idx: Tensor, out: tuple[str, tuple]) -> Tensor:
    axis = _axis(node.attrs.get("axis", 0), data.ndim)
    dim = data.shape[axis]
    indices = [int(i) for i in idx.values()]
    for i in indices:
        if not -dim <= i < dim:
            raise WebjitError(f"node '{node.name}' (Gather): index {i} out of range for a dim of {dim}")
    outer, inner = prod(data.shape[:axis]), prod(data.shape[axis + 1:]) * data.itemsize
    raw, out_data = data.data, bytearray()
    for o in range(outer):
        for i in indices:
            at = (o * dim + i % dim) * inner
            out_data += raw[at:at + inner]
    return Tensor(data.dtype, out[1], bytes(out_data))


def _gather_nd(node: Node, data: Tensor, idx: Tensor, out: tuple[str, tuple]) -> Tensor:
    b, k = node.attrs.get("batch_dims", 0), idx.shape[-1]
    dims = data.shape[b:b + k]
    inner = prod(data.shape[b + k:]) * data.itemsize
    strides = [prod(data.shape[b + j + 1:]) * data.itemsize for j in range(k)]
    block, per_batch = prod(data.shape[b:]) * data.itemsize, prod(idx.shape[b:-1])
    vals, raw, out_data = [int(v) for v in idx.values()], data.data, bytearray()
    for t in range(len(vals) // k if k else per_batch * prod(idx.shape[:b])):
        at = (t // max(per_batch, 1)) * block
        for j in range(k):
            i = vals[t * k + j]
            if not -dims[j] <= i < dims[j]:
                raise WebjitError(f"node '{node.name}' (GatherND): index {i} out of range for a dim of {dims[j]}")
            at += (i % dims[j]) * strides[j]
        out_data += raw[at:at + inner]
    return Tensor(data.dtype, out[1], bytes(out_data))


def _tile(t: Tensor, repeats: list[int]) -> Tensor:
    for a, r in enumerate(repeats):
        if r != 1:
            outer, inner = prod(t.shape[:a]), prod(t.shape[a:]) * t.itemsize
            data = b"".join(bytes(t.data[o * inner:(o + 1) * inner]) * r for o in range(outer))
            t = Tensor(t.dtype, t.shape[:a] + (t.shape[a] * r,) + t.shape[a + 1:], data)
    return t


# -- making ------------------------------------------------------------------------------------------------------
def _constant(node: Node) -> Tensor:
    a = node.attrs
    if "value" in a:
        return a["value"]
    for key, dtype, many in (("value_float", "float32", False), ("value_floats", "float32", True),
                             ("value_int", "int64", False), ("value_ints", "int64", True)):
        if key in a:
            return Tensor.of(list(a[key]), dtype, (len(a[key]),)) if many else Tensor.scalar(a[key], dtype)
    raise WebjitError(f"node '{node.name}' (Constant): no value webjit can read "
                      f"({', '.join(a) or 'no attributes'})")


def _nonzero(x: Tensor) -> Tensor:
    """The coordinates of x's non-zero elements, one row per axis, in C order (a scalar has rank 1 here)."""
    shape = tuple(x.shape) or (1,)
    flat = [i for i, v in enumerate(x.values()) if v]
    rows = []
    for axis in range(len(shape)):
        inner = prod(shape[axis + 1:])
        rows += [(i // inner) % shape[axis] for i in flat]
    return Tensor.of(rows, "int64", (len(shape), len(flat)))


def _range(start: Tensor, limit: Tensor, delta: Tensor) -> Tensor:
    dtype = start.dtype
    s, l, d = start.item(), limit.item(), delta.item()
    n = max(math.ceil((l - s) / d), 0)
    return Tensor.of([s + i * d for i in range(n)], dtype, (n,))


def _trilu(node: Node, ins: list) -> Tensor:
    x = ins[0]
    k = int(ins[1].item()) if len(ins) > 1 and ins[1] is not None else 0
    upper = node.attrs.get("upper", 1)
    rows, cols = x.shape[-2], x.shape[-1]
    vals = x.values()
    zero = False if x.dtype == "bool" else 0
    for i in range(len(vals)):
        r, c = (i // cols) % rows, i % cols
        if (c - r < k) if upper else (c - r > k):
            vals[i] = zero
    return Tensor.of(vals, x.dtype, x.shape)


def _reduce(node: Node, ins: list, out: tuple[str, tuple], opset: int) -> Tensor:
    x = ins[0]
    axes = _ints(node, ins, 1, "axes") or []
    axes = {_axis(a, x.ndim) for a in axes} if axes else (
        set() if node.attrs.get("noop_with_empty_axes", 0) else set(range(x.ndim)))
    if x.size == 0:  # every group is empty (or so is the output): the reduction's identity, as ONNX defines it
        floats = out[0] in FLOATS
        ident = EMPTY_REDUCE[node.op]
        if isinstance(ident, tuple):
            ident = ident[0] if floats else ident[1]
        return Tensor.full(list(out[1]), ident, out[0])
    groups: dict[tuple, list] = {}
    vals = x.values()
    for flat, v in enumerate(vals):
        idx, rest = [], flat
        for d in reversed(x.shape):
            idx.append(rest % d)
            rest //= d
        idx = idx[::-1]
        groups.setdefault(tuple(0 if a in axes else i for a, i in enumerate(idx)), []).append(v)
    result = [REDUCE[node.op](groups[k]) for k in sorted(groups)]
    return Tensor.of(_round(result, out[0]), out[0], out[1])


REDUCE: dict[str, Callable] = {
    "ReduceSum": sum, "ReduceMean": lambda g: sum(g) / len(g), "ReduceMax": max, "ReduceMin": min,
    "ReduceProd": math.prod, "ReduceSumSquare": lambda g: sum(v * v for v in g),
    "ReduceL1": lambda g: sum(abs(v) for v in g), "ReduceL2": lambda g: math.sqrt(sum(v * v for v in g)),
    "ReduceLogSum": lambda g: _safe(math.log)(sum(g)),
    "ReduceLogSumExp": lambda g: max(g) + _safe(math.log)(sum(math.exp(v - max(g)) for v in g)),
}

# the result of a reduction over no elements: one value, or (for floats, for ints)
EMPTY_REDUCE = {"ReduceSum": 0, "ReduceMean": (math.nan, 0), "ReduceMax": (-math.inf, -2**63),
                "ReduceMin": (math.inf, 2**63 - 1), "ReduceProd": 1, "ReduceSumSquare": 0, "ReduceL1": 0,
                "ReduceL2": 0, "ReduceLogSum": (-math.inf, 0), "ReduceLogSumExp": (-math.inf, 0)}


def _cumsum(node: Node, x: Tensor, axis: int) -> Tensor:
    axis = _axis(axis, x.ndim)
    exclusive, reverse = node.attrs.get("exclusive", 0), node.attrs.get("reverse", 0)
    outer, dim, inner = prod(x.shape[:axis]), x.shape[axis], prod(x.shape[axis + 1:])
    vals, out = x.values(), [0] * x.size
    for o in range(outer):
        for i in range(inner):
            run = 0.0 if x.dtype in FLOATS else 0
            for j in (range(dim - 1, -1, -1) if reverse else range(dim)):
                at = (o * dim + j) * inner + i
                if exclusive:
                    out[at], run = run, run + vals[at]
                else:
                    run += vals[at]
                    out[at] = run
                if x.dtype == "float32":
                    run = Tensor.of([run], "float32", (1,)).item()
    return Tensor.of(_round(out, x.dtype), x.dtype, x.shape)


def _matmul(a: Tensor, b: Tensor, out: tuple[str, tuple]) -> Tensor:
    if a.ndim != 2 or b.ndim != 2:
        raise WebjitError("only 2-D constant MatMuls are folded")
    (m, k), n = a.shape, b.shape[1]
    av, bv = a.values(), b.values()
    res = [sum(av[i * k + j] * bv[j * n + c] for j in range(k)) for i in range(m) for c in range(n)]
    return Tensor.of(_round(res, out[0]), out[0], out[1])
