"""Random valid ONNX graphs built from webjit's op registry, for differential testing against onnxruntime.

A graph grows one step at a time from one to three graph inputs. Each step picks a recipe and applies it to tensors
already in the graph:
- an elementwise op the registry declares for the tensor's element type, with a second operand that broadcasts
  (another tensor, or a new initializer whose shape drops or ones some dims);
- a view: Reshape, Transpose, Slice, Expand, Unsqueeze, Squeeze, Flatten;
- the patterns fusion looks for: a MatMul with bias, activation and residual epilogues; attention (Q·Kᵀ, scale,
  mask, Softmax, ·V); LayerNorm and RMSNorm written out as ReduceMean/Sub/Pow/Sqrt/Div; Softmax; Reduce ops;
- moves: Concat, Gather of a table, Cast to int64 and back, Where over a comparison;
- constants: initializers combined with each other before they meet an input, so that folding runs.

Every tensor carries a bound on its magnitude, so that Exp, Pow and products stay finite and the comparison with
onnxruntime measures webjit, not overflow. Integer tensors stay small (webjit computes int64 in 32 bits).
"""
from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass, field

import numpy as np
from onnx import TensorProto, helper as oh, numpy_helper as nh

from webjit import ops

OPSET = 18
DIMS = (1, 2, 3, 5, 7, 8, 13, 16)
ELEM = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64, "bool": TensorProto.BOOL}
NP = {"float32": np.float32, "int64": np.int64, "bool": np.bool_}
MAX_ELEMENTS = 4096
# Ops whose float32 results are correctly rounded, so equal in every implementation. Ops that jump (Floor, Ceil,
# Round, Sign, comparisons, casts to int) are applied only to exact tensors: after a MatMul or an Exp, two correct
# implementations may differ in the last bit and land on either side of the jump.
EXACT = {"Add", "Sub", "Mul", "Neg", "Abs", "Max", "Min", "Relu", "Floor", "Ceil", "Round", "Sign", "Where", "Cast",
         "Reshape", "Transpose", "Slice", "Expand", "Unsqueeze", "Squeeze", "Flatten", "Concat", "Gather", "Identity",
         "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "Split", "Tile",
         "Trilu", "Clip", "Shape", "Range"}
JUMPS = {"Floor", "Ceil", "Round", "Sign"}


@dataclass
class T:
    name: str
    dtype: str
    shape: tuple
    bound: float = 1.0       # |value| <= bound (floats); ints stay within +-bound
    const: bool = False      # an initializer, or computed from initializers only
    exact: bool = False      # every correct implementation gives these very bits (see EXACT)


@dataclass
class Graph:
    nodes: list = field(default_factory=list)
    inputs: list = field(default_factory=list)      # T
    inits: dict = field(default_factory=dict)       # name -> array
    tensors: list = field(default_factory=list)     # every T, in creation order
    feeds: dict = field(default_factory=dict)
    used: collections.Counter = field(default_factory=collections.Counter)
    consumed: set = field(default_factory=set)

    names: itertools.count = field(default_factory=itertools.count)

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"

    def add(self, op: str, ins: list, dtype: str, shape, bound: float, **attrs) -> T:
        real = [i for i in ins if i is not None]
        out = T(self.fresh("t"), dtype, tuple(int(d) for d in shape), float(bound),
                all(i.const for i in real), op in EXACT and all(i.exact or i.dtype != "float32" for i in real))
        self.nodes.append(oh.make_node(op, [i.name if i is not None else "" for i in ins], [out.name],
                                       name=f"n{len(self.nodes)}_{op}", **attrs))
        self.used[op] += 1
        self.consumed.update(i.name for i in ins if i is not None)
        self.tensors.append(out)
        return out

    def init(self, value, bound: float | None = None) -> T:
        value = np.asarray(value)
        if value.dtype == np.float64:
            value = value.astype(np.float32)
        t = T(self.fresh("c"), str(value.dtype), tuple(value.shape),
              float(np.abs(value).max()) if bound is None and value.size and value.dtype != bool else (bound or 1.0),
              True, True)
        self.inits[t.name] = value
        self.tensors.append(t)
        return t

    def ints(self, values) -> T:
        return self.init(np.asarray(values, np.int64), 1.0)

    def model(self, outputs: list[T]):
        graph = oh.make_graph(
            self.nodes, "fuzz",
            [oh.make_tensor_value_info(t.name, ELEM[t.dtype], list(t.shape)) for t in self.inputs],
            [oh.make_tensor_value_info(t.name, ELEM[t.dtype], list(t.shape)) for t in outputs],
            [nh.from_array(a, n) for n, a in self.inits.items()])
        return oh.make_model(graph, opset_imports=[oh.make_opsetid("", OPSET)], ir_version=9)


def _shape(rng, rank=None) -> tuple:
    rank = int(rng.integers(1, 5)) if rank is None else rank
    while True:
        s = tuple(int(rng.choice(DIMS)) for _ in range(rank))
        if np.prod(s) <= MAX_ELEMENTS:
            return s


def _broadcastable(rng, shape) -> tuple:
    """A shape that broadcasts to `shape`: some leading dims dropped, some dims set to 1."""
    cut = int(rng.integers(0, len(shape) + 1))
    return tuple(1 if rng.random() < 0.3 else d for d in shape[cut:])


def _values(rng, dtype, shape, bound=1.0):
    if dtype == "float32":
        return rng.uniform(-bound, bound, shape).astype(np.float32)
    if dtype == "int64":
        return rng.integers(-int(bound), int(bound) + 1, shape).astype(np.int64)
    return rng.random(shape) < 0.5


# -- recipes: each takes (g, rng, t) and returns the new tensor, or None when it does not apply ------------------
# from the registry: the elementwise ops of each family and element type; those with poles, attributes that need
# choosing, or another opset are built by their own recipes
NEEDS_CARE = {"Exp", "Sqrt", "Log", "Reciprocal", "Clip", "Trilu", "Gelu", "Pow", "Div", "Mod", "Sum", "Mean"}


def _family(shape: str, dtype: str) -> list[str]:
    return sorted(o.name for o in ops.ONNX.values() if o.run == "elementwise" and o.shape == shape
                  and dtype in o.types and o.name not in NEEDS_CARE and o.since <= OPSET)


SAFE_UNARY = _family("same", "float32")
INT_UNARY = _family("same", "int64")
INT_BINARY = _family("broadcast", "int64")


def unary(g, rng, t):
    if t.dtype == "int64":
        return g.add(str(rng.choice(INT_UNARY)), [t], "int64", t.shape, t.bound)
    if t.dtype == "bool":
        return g.add("Not", [t], "bool", t.shape, 1)
    op = str(rng.choice(SAFE_UNARY + ["Exp", "Sqrt", "Log", "Reciprocal", "Clip"]))
    if op in JUMPS and not t.exact:
        return None
    if op == "Exp":
        if t.bound > 6:
            return None
        return g.add("Exp", [t], "float32", t.shape, np.exp(t.bound))
    if op in ("Sqrt", "Log", "Reciprocal"):  # on |x| + 0.5, away from their poles
        a = g.add("Abs", [t], "float32", t.shape, t.bound)
        a = g.add("Add", [a, g.init(np.array(0.5, np.float32))], "float32", t.shape, t.bound + 0.5)
        bound = {"Sqrt": np.sqrt(a.bound), "Log": max(np.log(a.bound), 0.7), "Reciprocal": 2.0}[op]
        return g.add(op, [a], "float32", t.shape, bound)
    if op == "Clip":
        lo, hi = sorted(rng.uniform(-1, 1, 2).astype(np.float32))
        return g.add("Clip", [t, g.init(np.array(lo, np.float32)), g.init(np.array(hi, np.float32))],
                     "float32", t.shape, max(abs(lo), abs(hi)))
    bound = {"Tanh": 1, "Sigmoid": 1, "Erf": 1, "Sin": 1, "Cos": 1, "Sign": 1, "HardSigmoid": 1}.get(op, t.bound + 1)
    return g.add(op, [t], "float32", t.shape, bound)


def _operand(g, rng, t, positive=False):
    """A second operand for t: another tensor of its dtype that broadcasts with it, or a new initializer."""
    others = [o for o in g.tensors if o.dtype == t.dtype and o is not t and _fits(o.shape, t.shape)
              and not positive]
    if others and rng.random() < 0.5:
        return others[int(rng.integers(len(others)))]
    shape = _broadcastable(rng, t.shape)
    v = _values(rng, t.dtype, shape, 2.0 if t.dtype != "int64" else 5)
    if positive:
        v = np.abs(v) + (0.5 if t.dtype == "float32" else 1)
    return g.init(v.astype(NP[t.dtype]))


def _fits(small, big) -> bool:
    if len(small) > len(big):
        return False
    return all(s in (1, b) for s, b in zip(small[::-1], big[::-1]))


def binary(g, rng, t):
    if t.dtype == "bool":
        return g.add(str(rng.choice(["And", "Or", "Xor"])), [t, _operand(g, rng, t)], "bool", t.shape, 1)
    if t.dtype == "int64":
        op = str(rng.choice(INT_BINARY + ["Div", "Mod"]))
        if op == "Mul" and t.bound > 100:
            op = "Add"
        u = _operand(g, rng, t, positive=op in ("Div", "Mod"))
        bound = t.bound * u.bound if op == "Mul" else t.bound + u.bound
        return g.add(op, [t, u], "int64", t.shape, bound)
    op = str(rng.choice(_family("broadcast", "float32") + ["Div", "Pow"]))
    if op == "Pow":
        if t.bound > 10:
            return None
        e = g.init(np.array(float(rng.choice([2.0, 3.0, 0.5, -1.0])), np.float32))
        if float(g.inits[e.name]) in (0.5, -1.0):  # on |x| + 0.5 only
            a = g.add("Abs", [t], "float32", t.shape, t.bound)
            t = g.add("Add", [a, g.init(np.array(0.5, np.float32))], "float32", t.shape, t.bound + 0.5)
        return g.add("Pow", [t, e], "float32", t.shape, max(t.bound, 2) ** 3)
    u = _operand(g, rng, t, positive=op == "Div")
    bound = {"Mul": t.bound * u.bound, "Div": t.bound * 2}.get(op, t.bound + u.bound)
    if bound > 1e4:
        return None
    return g.add(op, [t, u], "float32", _bshape(t.shape, u.shape), bound)


def _bshape(a, b):
    return tuple(np.broadcast_shapes(a, b))


def compare_where(g, rng, t):
    if t.dtype == "bool" or not t.exact:
        return None
    # against a new initializer: two computed floats can be equal up to rounding, and then any two correct
    # implementations may order them differently
    shape = _broadcastable(rng, t.shape)
    u = g.init(_values(rng, t.dtype, shape, max(1, t.bound)).astype(NP[t.dtype]))
    c = g.add(str(rng.choice(["Less", "Greater", "Equal", "LessOrEqual", "GreaterOrEqual"])), [t, u], "bool",
              _bshape(t.shape, u.shape), 1)
    if rng.random() < 0.3:
        return g.add("Cast", [c], "float32", c.shape, 1, to=TensorProto.FLOAT)
    other = _operand(g, rng, t)
    shape = _bshape(c.shape, other.shape)
    return g.add("Where", [c, t, other], t.dtype, _bshape(shape, t.shape), max(t.bound, other.bound))


def cast_int(g, rng, t):
    if t.dtype != "float32" or t.bound > 1e4 or not t.exact:
        return None
    i = g.add("Cast", [g.add("Round", [t], "float32", t.shape, t.bound + 1)], "int64", t.shape, t.bound + 1,
              to=TensorProto.INT64)
    i = g.add(str(rng.choice(["Add", "Sub", "Max", "Min"])), [i, _operand(g, rng, i)], "int64", i.shape, i.bound + 5)
    return g.add("Cast", [i], "float32", i.shape, i.bound, to=TensorProto.FLOAT)


def view(g, rng, t):
    kind = str(rng.choice(["Reshape", "Transpose", "Slice", "Expand", "Unsqueeze", "Squeeze", "Flatten"]))
    s = t.shape
    if kind == "Reshape":
        size, dims = int(np.prod(s)), []
        rest = size
        for d in sorted(DIMS, reverse=True):
            while rest % d == 0 and d > 1 and rng.random() < 0.5 and len(dims) < 3:
                dims.append(d)
                rest //= d
        dims.append(rest)
        rng.shuffle(dims)
        target = list(dims)
        if len(target) > 1 and rng.random() < 0.5:
            target[int(rng.integers(len(target)))] = -1
        return g.add("Reshape", [t, g.ints(target)], t.dtype, dims, t.bound)
    if kind == "Transpose" and len(s) > 1:
        perm = [int(p) for p in rng.permutation(len(s))]
        return g.add("Transpose", [t], t.dtype, [s[p] for p in perm], t.bound, perm=perm)
    if kind == "Slice":
        axis = int(rng.integers(len(s)))
        if s[axis] < 2:
            return None
        step = int(rng.choice([1, 1, 2, -1]))
        start, end = (int(rng.integers(0, s[axis] - 1)), s[axis]) if step > 0 else (s[axis] - 1, -s[axis] - 1)
        n = len(range(start, end if end >= 0 else -1, step)) if step > 0 else len(range(start, -1, step))
        out = list(s)
        out[axis] = n
        return g.add("Slice", [t, g.ints([start]), g.ints([end]), g.ints([axis]), g.ints([step])], t.dtype, out, t.bound)
    if kind == "Expand" and 1 in s:
        target = [int(rng.choice([2, 3, 5])) if d == 1 else d for d in s]
        if np.prod(target) > MAX_ELEMENTS:
            return None
        return g.add("Expand", [t, g.ints(target)], t.dtype, target, t.bound)
    if kind == "Unsqueeze" and len(s) < 4:
        axis = int(rng.integers(0, len(s) + 1))
        return g.add("Unsqueeze", [t, g.ints([axis])], t.dtype, s[:axis] + (1,) + s[axis:], t.bound)
    if kind == "Squeeze" and 1 in s and len(s) > 1:
        axis = s.index(1)
        return g.add("Squeeze", [t, g.ints([axis])], t.dtype, s[:axis] + s[axis + 1:], t.bound)
    if kind == "Flatten" and len(s) > 1:
        axis = int(rng.integers(0, len(s)))
        return g.add("Flatten", [t], t.dtype, (int(np.prod(s[:axis])), int(np.prod(s[axis:]))), t.bound, axis=axis)
    return None


def _act(g, rng, t):
    op = str(rng.choice(["", "Relu", "Gelu", "Tanh", "Sigmoid"]))
    if not op:
        return t
    if op == "Gelu":  # as exporters write it at opset 18: x * 0.5 * (1 + erf(x / sqrt 2))
        e = g.add("Erf", [g.add("Div", [t, g.init(np.array(1.4142135, np.float32))], "float32", t.shape, t.bound)],
                  "float32", t.shape, 1)
        h = g.add("Add", [e, g.init(np.array(1.0, np.float32))], "float32", t.shape, 2)
        return g.add("Mul", [g.add("Mul", [t, h], "float32", t.shape, 2 * t.bound), g.init(np.array(0.5, np.float32))],
                     "float32", t.shape, t.bound)
    return g.add(op, [t], "float32", t.shape, 1 if op in ("Tanh", "Sigmoid") else t.bound)


def matmul(g, rng, t):
    if t.dtype != "float32" or len(t.shape) < 1 or t.bound > 100:
        return None
    k, n = t.shape[-1], int(rng.choice(DIMS[1:]))
    w = g.init(rng.uniform(-1, 1, (k, n)).astype(np.float32) / np.sqrt(k))
    if rng.random() < 0.3 and len(t.shape) >= 2:  # a batched product of two computed tensors
        other = [o for o in g.tensors if o.dtype == "float32" and not o.const and len(o.shape) == len(t.shape)
                 and o.shape[:-2] == t.shape[:-2] and o.shape[-2] == k and o.bound < 100]
        if other:
            w = other[int(rng.integers(len(other)))]
            n = w.shape[-1]
    shape = t.shape[:-1] + (n,) if len(t.shape) > 1 or len(w.shape) > 2 else (n,)
    if len(w.shape) > 2:
        shape = t.shape[:-1] + (n,)
    y = g.add("MatMul", [t, w], "float32", shape, t.bound * max(w.bound, 1) * np.sqrt(k) + 1)
    if rng.random() < 0.7:
        y = g.add("Add", [y, g.init(rng.uniform(-1, 1, (n,)).astype(np.float32))], "float32", y.shape, y.bound + 1)
    y = _act(g, rng, y)
    if rng.random() < 0.3 and y.shape == t.shape:
        y = g.add("Add", [y, t], "float32", y.shape, y.bound + t.bound)
    return y


def softmax(g, rng, t):
    if t.dtype != "float32" or t.bound > 1e3:
        return None
    return g.add("Softmax", [t], "float32", t.shape, 1, axis=int(rng.integers(-len(t.shape), len(t.shape))))


def layernorm(g, rng, t):
    if t.dtype != "float32" or t.shape[-1] < 2 or t.bound > 1e3:
        return None
    d = t.shape[-1]
    scale, bias = g.init(rng.uniform(0.5, 1.5, (d,)).astype(np.float32)), g.init(rng.uniform(-1, 1, (d,)).astype(np.float32))
    form = str(rng.choice(["op", "decomposed", "rms"]))
    if form == "op":
        return g.add("LayerNormalization", [t, scale, bias], "float32", t.shape, 8, axis=-1, epsilon=1e-5)
    red = t.shape[:-1] + (1,)
    axes = g.ints([-1])
    if form == "rms":
        sq = g.add("Pow", [t, g.init(np.array(2.0, np.float32))], "float32", t.shape, t.bound ** 2)
        ms = g.add("ReduceMean", [sq, axes], "float32", red, sq.bound)
        r = g.add("Sqrt", [g.add("Add", [ms, g.init(np.array(1e-5, np.float32))], "float32", red, ms.bound)],
                  "float32", red, 1)
        return g.add("Mul", [g.add("Div", [t, r], "float32", t.shape, np.sqrt(d)), scale], "float32", t.shape, 2 * np.sqrt(d))
    mean = g.add("ReduceMean", [t, axes], "float32", red, t.bound)
    c = g.add("Sub", [t, mean], "float32", t.shape, 2 * t.bound)
    var = g.add("ReduceMean", [g.add("Pow", [c, g.init(np.array(2.0, np.float32))], "float32", t.shape, 4 * t.bound ** 2),
                               axes], "float32", red, 4 * t.bound ** 2)
    std = g.add("Sqrt", [g.add("Add", [var, g.init(np.array(1e-5, np.float32))], "float32", red, var.bound)],
                "float32", red, 1)
    n = g.add("Div", [c, std], "float32", t.shape, np.sqrt(d))
    return g.add("Add", [g.add("Mul", [n, scale], "float32", t.shape, 2 * np.sqrt(d)), bias], "float32", t.shape,
                 2 * np.sqrt(d) + 1)


def attention(g, rng, t):
    if t.dtype != "float32" or len(t.shape) != 3 or t.shape[-1] < 2 or t.bound > 100:
        return None
    b, s, d = t.shape
    heads = int(rng.choice([h for h in (1, 2, 3, 4) if d % h == 0]))
    hd = d // heads

    def proj():
        w = g.init(rng.uniform(-1, 1, (d, d)).astype(np.float32) / np.sqrt(d))
        p = g.add("MatMul", [t, w], "float32", (b, s, d), t.bound * np.sqrt(d) + 1)
        p = g.add("Reshape", [p, g.ints([b, s, heads, hd])], "float32", (b, s, heads, hd), p.bound)
        return p
    q, k, v = proj(), proj(), proj()
    q = g.add("Transpose", [q], "float32", (b, heads, s, hd), q.bound, perm=[0, 2, 1, 3])
    kt = g.add("Transpose", [k], "float32", (b, heads, hd, s), k.bound, perm=[0, 2, 3, 1])
    v = g.add("Transpose", [v], "float32", (b, heads, s, hd), v.bound, perm=[0, 2, 1, 3])
    sc = g.add("MatMul", [q, kt], "float32", (b, heads, s, s), 1e3)
    sc = g.add("Div", [sc, g.init(np.array(np.sqrt(hd), np.float32))], "float32", sc.shape, 1e3)
    if rng.random() < 0.6:  # an additive padding mask, as BERT exporters write it
        keep = (rng.random((b, 1, 1, s)) < 0.8).astype(np.float32)
        keep[..., 0] = 1
        sc = g.add("Add", [sc, g.init((1 - keep) * np.float32(-1e4))], "float32", sc.shape, 1e4)
    p = g.add("Softmax", [sc], "float32", sc.shape, 1, axis=-1)
    o = g.add("MatMul", [p, v], "float32", (b, heads, s, hd), v.bound)
    o = g.add("Transpose", [o], "float32", (b, s, heads, hd), o.bound, perm=[0, 2, 1, 3])
    return g.add("Reshape", [o, g.ints([b, s, d])], "float32", (b, s, d), o.bound)


def reduce(g, rng, t):
    if t.dtype == "bool":
        return None
    op = str(rng.choice(["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"] if t.dtype == "float32"
                        else ["ReduceSum", "ReduceMax", "ReduceMin"]))
    axes = sorted({int(a) for a in rng.integers(0, len(t.shape), int(rng.integers(1, len(t.shape) + 1)))})
    keep = int(rng.integers(0, 2))
    shape = [1 if i in axes else d for i, d in enumerate(t.shape)] if keep else \
        [d for i, d in enumerate(t.shape) if i not in axes]
    size = int(np.prod([t.shape[a] for a in axes]))
    bound = t.bound * size if op == "ReduceSum" else t.bound
    if bound > 1e5 or (t.dtype == "int64" and bound > 1e6):
        return None
    return g.add(op, [t, g.ints(axes)], t.dtype, shape, bound, keepdims=keep)


def concat(g, rng, t):
    axis = int(rng.integers(len(t.shape)))
    mates = [o for o in g.tensors if o.dtype == t.dtype and len(o.shape) == len(t.shape) and o is not t
             and all(a == b for i, (a, b) in enumerate(zip(o.shape, t.shape)) if i != axis)]
    other = mates[int(rng.integers(len(mates)))] if mates else g.init(_values(rng, t.dtype, t.shape, 2))
    shape = list(t.shape)
    shape[axis] += other.shape[axis]
    if np.prod(shape) > MAX_ELEMENTS:
        return None
    return g.add("Concat", [t, other], t.dtype, shape, max(t.bound, other.bound), axis=axis)


def gather(g, rng, t):
    axis = int(rng.integers(len(t.shape)))
    n = t.shape[axis]
    idx_shape = _shape(rng, int(rng.integers(0, 3)))
    idx = g.init(rng.integers(-n, n, idx_shape).astype(np.int64)) if rng.random() < 0.7 else None
    if idx is None:  # indices fed at run time, as token ids are
        idx = T(g.fresh("ids"), "int64", idx_shape, n)
        g.inputs.append(idx)
        g.tensors.append(idx)
        g.feeds[idx.name] = rng.integers(-n, n, idx_shape).astype(np.int64)
    shape = t.shape[:axis] + idx.shape + t.shape[axis + 1:]
    if np.prod(shape) > MAX_ELEMENTS:
        return None
    return g.add("Gather", [t, idx], t.dtype, shape, t.bound, axis=axis)


def shape_logic(g, rng, t):
    """Reshape to a target computed from the tensor's own shape, as exporters write it (Shape, Gather, Concat),
    and position ids from Range over a dim: all of it folds at compile time."""
    if len(t.shape) < 2:
        return None
    shp = g.add("Shape", [t], "int64", (len(t.shape),), max(t.shape))
    if rng.random() < 0.5 and len(t.shape) > 2:
        lead = g.add("Slice", [shp, g.ints([0]), g.ints([len(t.shape) - 2]), g.ints([0])], "int64",
                     (len(t.shape) - 2,), max(t.shape))
        target = g.add("Concat", [lead, g.ints([-1])], "int64", (len(t.shape) - 1,), max(t.shape), axis=0)
        last = t.shape[-2] * t.shape[-1]
        return g.add("Reshape", [t, target], t.dtype, t.shape[:-2] + (last,), t.bound)
    d = g.add("Gather", [shp, g.ints(-1)], "int64", (), t.shape[-1], axis=0)
    pos = g.add("Range", [g.ints(0), d, g.ints(1)], "int64", (t.shape[-1],), t.shape[-1])
    if t.dtype == "int64":
        return g.add("Add", [t, pos], "int64", t.shape, t.bound + t.shape[-1])
    f = g.add("Cast", [pos], "float32", pos.shape, pos.bound, to=TensorProto.FLOAT)
    if t.dtype == "bool":
        return None
    return g.add("Add", [t, g.add("Mul", [f, g.init(np.array(0.1, np.float32))], "float32", f.shape, f.bound)],
                 "float32", t.shape, t.bound + f.bound)


def rows(g, rng, t):
    """Row ops: LogSoftmax, CumSum, Trilu, Split, Tile, the other Reduce ops, Sum and Mean of several inputs."""
    if t.dtype == "bool":
        return None
    kind = str(rng.choice(["LogSoftmax", "CumSum", "Trilu", "Split", "Tile", "ReduceOther", "Variadic", "Identity"]))
    s = t.shape
    if kind == "LogSoftmax" and t.dtype == "float32" and t.bound < 1e3:
        return g.add("LogSoftmax", [t], "float32", s, t.bound * 2 + np.log(max(s)) + 1, axis=-1)
    if kind == "CumSum" and t.bound * s[-1] < 1e5:
        return g.add("CumSum", [t, g.ints(int(rng.integers(-len(s), len(s))))], t.dtype, s, t.bound * max(s),
                     exclusive=int(rng.integers(2)), reverse=int(rng.integers(2)))
    if kind == "Trilu" and len(s) >= 2:
        return g.add("Trilu", [t, g.ints(int(rng.integers(-2, 3)))], t.dtype, s, t.bound, upper=int(rng.integers(2)))
    if kind == "Split" and s[-1] >= 2:
        first = int(rng.integers(1, s[-1]))
        out = T(g.fresh("t"), t.dtype, s[:-1] + (first,), t.bound, t.const)
        rest = T(g.fresh("t") + "b", t.dtype, s[:-1] + (s[-1] - first,), t.bound, t.const)
        g.nodes.append(oh.make_node("Split", [t.name, g.ints([first, s[-1] - first]).name], [out.name, rest.name],
                                    name=f"n{len(g.nodes)}_Split", axis=-1))
        g.used["Split"] += 1
        g.consumed.add(t.name)
        g.tensors += [out, rest]
        return out
    if kind == "Tile":
        reps = [int(rng.choice([1, 2, 3])) for _ in s]
        if np.prod(s) * np.prod(reps) > MAX_ELEMENTS:
            return None
        return g.add("Tile", [t, g.ints(reps)], t.dtype, [d * r for d, r in zip(s, reps)], t.bound)
    if kind == "ReduceOther":
        ops_ = ["ReduceL1", "ReduceSumSquare", "ReduceProd"] + (["ReduceL2", "ReduceLogSumExp"] if t.dtype == "float32" else [])
        op = str(rng.choice(ops_))
        axis = int(rng.integers(len(s)))
        n = s[axis]
        bound = {"ReduceL1": lambda: t.bound * n, "ReduceSumSquare": lambda: t.bound ** 2 * n,
                 "ReduceProd": lambda: float(np.power(np.float64(t.bound), n)),  # inf past float64, not an error
                 "ReduceL2": lambda: t.bound * np.sqrt(n), "ReduceLogSumExp": lambda: t.bound + np.log(n)}[op]()
        if bound > 1e5 or (op == "ReduceLogSumExp" and t.bound > 50):
            return None
        return g.add(op, [t, g.ints([axis])], t.dtype, s[:axis] + (1,) + s[axis + 1:], bound, keepdims=1)
    if kind == "Variadic" and t.dtype == "float32":
        a, b = _operand(g, rng, t), _operand(g, rng, t)
        shape = _bshape(_bshape(t.shape, a.shape), b.shape)
        return g.add(str(rng.choice(["Sum", "Mean"])), [t, a, b], "float32", shape, t.bound + a.bound + b.bound)
    if kind == "Identity":
        return g.add("Identity", [t], t.dtype, s, t.bound)
    return None


def gemm(g, rng, t):
    if t.dtype != "float32" or len(t.shape) != 2 or t.bound > 100:
        return None
    m, k = t.shape
    n = int(rng.choice(DIMS[1:]))
    trans_b = int(rng.integers(2))
    w = g.init(rng.uniform(-1, 1, (n, k) if trans_b else (k, n)).astype(np.float32) / np.sqrt(k))
    c = g.init(rng.uniform(-1, 1, (n,) if rng.random() < 0.7 else (m, n)).astype(np.float32))
    alpha, beta = float(rng.choice([1.0, 0.5])), float(rng.choice([1.0, 2.0]))
    return g.add("Gemm", [t, w, c], "float32", (m, n), t.bound * np.sqrt(k) + 3, transB=trans_b, alpha=alpha, beta=beta)


def quantized_linear(g, rng, t):
    """What quantize_dynamic writes for a linear layer: DynamicQuantizeLinear, MatMulInteger with int8 weights (or
    uint8 ones and their zero point), Cast, and the two scales; uint8 and int32 stay inside the recipe. Only of a
    tensor whose bits every correct implementation agrees on (`exact`): round(x / scale) turns an ulp of x at a tie
    into a whole step, so quantizing a LayerNorm's output, say, would compare rounding noise."""
    if t.dtype != "float32" or len(t.shape) < 1 or t.bound > 100 or not t.exact:
        return None
    k, n = t.shape[-1], int(rng.choice(DIMS[1:]))
    names = [g.fresh("q"), g.fresh("qs"), g.fresh("qz")]
    g.nodes.append(oh.make_node("DynamicQuantizeLinear", [t.name], names, name=f"n{len(g.nodes)}_DynamicQuantizeLinear"))
    g.used["DynamicQuantizeLinear"] += 1
    g.consumed.add(t.name)
    # tensors of the recipe's own: not in g.tensors, so no other recipe reads them and none becomes an output
    q, scale, zero = (T(x, d, s, 1.0) for x, d, s in zip(names, ("uint8", "float32", "uint8"), (t.shape, (), ())))
    if rng.random() < 0.5:
        w, zw = g.init(rng.integers(-127, 128, (k, n)).astype(np.int8)), None
    else:
        zw = g.init(np.array(int(rng.integers(100, 156)), np.uint8))
        w = g.init(rng.integers(0, 256, (k, n)).astype(np.uint8))
    acc = g.add("MatMulInteger", [q, w, zero] + ([zw] if zw else []), "int32", t.shape[:-1] + (n,), 1.0)
    y = g.add("Cast", [acc], "float32", acc.shape, 1.0, to=TensorProto.FLOAT)
    s = g.add("Mul", [scale, g.init(np.array(1 / (127 * np.sqrt(k)), np.float32))], "float32", (), 1.0)
    for own in (acc, y, s, w) + ((zw,) if zw else ()):
        g.tensors.remove(own)
    return g.add("Mul", [y, s], "float32", y.shape, 2 * t.bound * np.sqrt(k) + 1)


RECIPES = [unary, unary, binary, binary, binary, compare_where, cast_int, view, view, matmul, matmul, softmax,
           layernorm, attention, attention, reduce, concat, gather, shape_logic, rows, gemm, quantized_linear]


def generate(seed: int, steps: int | None = None):
    """(model, feeds) of a random graph. Same seed, same graph."""
    rng = np.random.default_rng(seed)
    g = Graph()
    for i in range(int(rng.integers(1, 4))):
        dtype = "float32" if i == 0 or rng.random() < 0.7 else str(rng.choice(["int64", "bool"]))
        t = T(g.fresh("in"), dtype, _shape(rng, 3 if rng.random() < 0.4 else None), 2.0 if dtype == "float32" else 5,
              exact=True)
        g.inputs.append(t)
        g.tensors.append(t)
        g.feeds[t.name] = _values(rng, dtype, t.shape, t.bound)
    if rng.random() < 0.3:  # a constant subgraph, for the folder and for kernels on constants
        c = g.init(rng.uniform(-1, 1, _shape(rng, 2)).astype(np.float32))
        g.add("Tanh", [g.add("Mul", [c, c], "float32", c.shape, 1)], "float32", c.shape, 1)
    for _ in range(steps or int(rng.integers(3, 12))):
        live = [t for t in g.tensors if not (t.const and t.name in g.inits) and np.prod(t.shape) > 0]
        t = live[-1] if rng.random() < 0.5 else live[int(rng.integers(len(live)))]
        recipe = RECIPES[int(rng.integers(len(RECIPES)))]
        before = (len(g.nodes), len(g.tensors), dict(g.inits), len(g.inputs))
        try:
            out = recipe(g, rng, t)
        except (ValueError, IndexError):
            out = None
        if out is None or np.prod(out.shape) > MAX_ELEMENTS:
            _undo(g, before)
    produced = [t for t in g.tensors if t.name not in g.inits and t not in g.inputs]
    sinks = [t for t in produced if t.name not in g.consumed] or g.tensors[-1:]
    extra = [t for t in produced if t not in sinks and rng.random() < 0.15]
    outputs = sinks + extra
    if not produced:
        outputs = [g.add("Identity", [g.inputs[0]], g.inputs[0].dtype, g.inputs[0].shape, g.inputs[0].bound)]
    # an input no node reads still has to be fed: onnxruntime rejects unknown feeds, so keep only those read
    read = {i for n in g.nodes for i in n.input}
    g.inputs = [t for t in g.inputs if t.name in read]
    g.feeds = {n: v for n, v in g.feeds.items() if n in read}
    return g.model(outputs), g.feeds, dict(g.used)


def _undo(g: Graph, before) -> None:
    nodes, tensors, inits, inputs = before
    for n in g.nodes[nodes:]:
        g.used[n.op_type] -= 1
    del g.nodes[nodes:]
    del g.tensors[tensors:]
    del g.inputs[inputs:]
    g.inits = inits
    g.feeds = {n: v for n, v in g.feeds.items() if any(t.name == n for t in g.inputs)}
    g.consumed = {i for n in g.nodes for i in n.input}

