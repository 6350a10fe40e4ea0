"""Stage 2: bind input shapes, infer every shape, and fold everything that does not depend on input data.

After `specialize`, every value has a concrete shape and dtype, every value computable at compile time is a
constant, and the graph keeps only the nodes that do tensor work on the inputs.
"""
from __future__ import annotations

from typing import Callable

from . import fold, ops
from .branches import inline_if
from .errors import UnsupportedOp, WebjitError
from .shapes_quant import quant_shapes
from .ir import Graph, Node, Shape, Value
from .tensor import Tensor, prod

# Inputs that decide an output's shape. webjit compiles for fixed shapes, so these must be known at compile time:
# either folded from constants or, for graph inputs, taken from the sample values the user gives.
VALUE_INPUTS: dict[str, tuple[int, ...]] = {op.name: op.value_inputs for op in ops.ONNX.values() if op.value_inputs}
FOLD_ONLY = ops.names("fold")


def broadcast(*shapes: Shape) -> Shape:
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for dims in zip(*[(1,) * (rank - len(s)) + tuple(s) for s in shapes]):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise WebjitError(f"shapes {', '.join(str(tuple(s)) for s in shapes)} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


class _Ctx:
    """What a shape function sees: the node, its input values, and a way to demand constant inputs."""

    def __init__(self, node: Node, ins: list[Value | None], opset: int):
        self.node, self.ins, self.opset = node, ins, opset

    def shape(self, i: int) -> Shape:
        return self.ins[i].shape

    def has(self, i: int) -> bool:
        return i < len(self.ins) and self.ins[i] is not None

    def const(self, i: int) -> Tensor | None:
        if not self.has(i):
            return None
        v = self.ins[i]
        if v.const is None:
            raise WebjitError(f"node '{self.node.name}' ({self.node.op}): input '{v.name}' decides the output "
                              f"shape but is only known at run time; give its value with --inputs")
        return v.const

    def ints(self, i: int, attr: str | None = None) -> list[int] | None:
        """An int list from input i, or from an attribute in older opsets."""
        if attr is not None and attr in self.node.attrs:
            return [int(x) for x in self.node.attrs[attr]]
        c = self.const(i)
        return None if c is None else [int(x) for x in c.values()]

    def axis(self, a: int, rank: int) -> int:
        if not -rank <= a < max(rank, 1):
            raise WebjitError(f"node '{self.node.name}' ({self.node.op}): axis {a} out of range for rank {rank}")
        return a % rank if rank else 0


def _reshape(c: _Ctx):
    shape, allowzero = c.ints(1), c.node.attrs.get("allowzero", 0)
    src = c.shape(0)
    out = [src[i] if (d == 0 and not allowzero) else d for i, d in enumerate(shape)]
    if -1 in out:
        known = prod(d for d in out if d != -1)
        out[out.index(-1)] = prod(src) // known if known else 0
    if prod(out) != prod(src):
        raise WebjitError(f"node '{c.node.name}' (Reshape): cannot reshape {list(src)} to {shape}")
    return [(c.ins[0].dtype, tuple(out))]


def _squeeze(c: _Ctx):
    src = c.shape(0)
    axes = c.ints(1, "axes")
    axes = [c.axis(a, len(src)) for a in axes] if axes else [i for i, d in enumerate(src) if d == 1]
    return [(c.ins[0].dtype, tuple(d for i, d in enumerate(src) if i not in axes))]


def _unsqueeze(c: _Ctx):
    src, axes = list(c.shape(0)), c.ints(1, "axes")
    rank = len(src) + len(axes)
    for a in sorted(c.axis(a, rank) for a in axes):
        src.insert(a, 1)
    return [(c.ins[0].dtype, tuple(src))]


def _slice(c: _Ctx):
    src = list(c.shape(0))
    starts, ends = c.ints(1), c.ints(2)
    axes = c.ints(3) or list(range(len(starts)))
    steps = c.ints(4) or [1] * len(starts)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = c.axis(a, len(src))
        src[a] = len(range(*slice(s, e, st).indices(src[a])))
    return [(c.ins[0].dtype, tuple(src))]


def _split(c: _Ctx):
    src, n = c.shape(0), len(c.node.outputs)
    axis = c.axis(c.node.attrs.get("axis", 0), len(src))
    sizes = c.ints(1, "split")
    if not sizes:
        each = -(-src[axis] // n)
        sizes = [min(each, src[axis] - i * each) for i in range(n)]
    return [(c.ins[0].dtype, src[:axis] + (s,) + src[axis + 1:]) for s in sizes]


def _reduce(c: _Ctx):
    src = c.shape(0)
    axes = c.ints(1, "axes") if (c.opset >= 18 or c.node.op == "ReduceSum") else c.node.attrs.get("axes")
    if not axes:
        axes = [] if c.node.attrs.get("noop_with_empty_axes", 0) else list(range(len(src)))
    axes = {c.axis(a, len(src)) for a in axes}
    keep = c.node.attrs.get("keepdims", 1)
    out = tuple(1 if i in axes else d for i, d in enumerate(src) if keep or i not in axes)
    return [(c.ins[0].dtype, out)]


def _matmul(c: _Ctx):
    a, b = c.shape(0), c.shape(1)
    a2, b2 = (1,) + a if len(a) == 1 else a, b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise WebjitError(f"node '{c.node.name}' (MatMul): shapes {list(a)} and {list(b)} do not multiply")
    out = broadcast(a2[:-2], b2[:-2]) + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return [(c.ins[0].dtype, out)]


def _gemm(c: _Ctx):
    a, b = c.shape(0), c.shape(1)
    m = a[1] if c.node.attrs.get("transA", 0) else a[0]
    n = b[0] if c.node.attrs.get("transB", 0) else b[1]
    return [(c.ins[0].dtype, (m, n))]


def conv_geometry(node: Node, spatial: Shape, kernel: Shape) -> tuple[list[int], list[int], list[int], list[int],
                                                                       list[int]]:
    """Conv's (pads_begin, pads_end, strides, dilations, output sizes) over the spatial dims, from its attributes
    (auto_pad SAME_UPPER / SAME_LOWER / VALID or explicit pads), as ONNX defines them."""
    a, r = node.attrs, len(spatial)
    strides = [int(s) for s in a.get("strides") or [1] * r]
    dilations = [int(d) for d in a.get("dilations") or [1] * r]
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        total = [max((-(-i // s) - 1) * s + k - i, 0) for i, s, k in zip(spatial, strides, span)]
        small = [t // 2 for t in total]
        begin = small if auto == "SAME_UPPER" else [t - p for t, p in zip(total, small)]
        end = [t - b for t, b in zip(total, begin)]
    elif auto == "VALID":
        begin, end = [0] * r, [0] * r
    else:
        pads = [int(p) for p in a.get("pads") or [0] * (2 * r)]
        begin, end = pads[:r], pads[r:]
    out = [(i + b + e - k) // s + 1 for i, b, e, k, s in zip(spatial, begin, end, span, strides)]
    if any(o < 1 for o in out):
        raise WebjitError(f"node '{node.name}' (Conv): a kernel of {list(kernel)} does not fit input {list(spatial)}")
    return begin, end, strides, dilations, out


def _conv(c: _Ctx):
    x, w = c.shape(0), c.shape(1)
    if len(x) != len(w) or len(x) < 3 or w[1] * int(c.node.attrs.get("group", 1)) != x[1]:
        raise WebjitError(f"node '{c.node.name}' (Conv): input {list(x)} and weight {list(w)} do not fit")
    out = conv_geometry(c.node, x[2:], w[2:])[-1]
    return [(c.ins[0].dtype, (x[0], w[0], *out))]


def _concat(c: _Ctx):
    shapes = [s.shape for s in c.ins if s is not None]
    axis = c.axis(c.node.attrs["axis"], len(shapes[0]))
    if any(len(s) != len(shapes[0]) or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]
           for s in shapes):
        raise WebjitError(f"node '{c.node.name}' (Concat): inputs of shapes {', '.join(map(str, map(list, shapes)))} "
                          f"do not join along axis {axis}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return [(c.ins[0].dtype, tuple(out))]


def _gather(c: _Ctx):
    src, idx = c.shape(0), c.shape(1)
    axis = c.axis(c.node.attrs.get("axis", 0), len(src))
    return [(c.ins[0].dtype, src[:axis] + idx + src[axis + 1:])]


def _gather_nd(c: _Ctx):
    src, idx, b = c.shape(0), c.shape(1), c.node.attrs.get("batch_dims", 0)
    return [(c.ins[0].dtype, idx[:-1] + src[b + idx[-1]:])]


def _transpose(c: _Ctx):
    src = c.shape(0)
    perm = c.node.attrs.get("perm") or list(range(len(src)))[::-1]
    return [(c.ins[0].dtype, tuple(src[p] for p in perm))]


def _expand(c: _Ctx):
    return [(c.ins[0].dtype, broadcast(c.shape(0), tuple(c.ints(1))))]


def _tile(c: _Ctx):
    return [(c.ins[0].dtype, tuple(d * r for d, r in zip(c.shape(0), c.ints(1))))]


def _flatten(c: _Ctx):
    src = c.shape(0)
    axis = c.node.attrs.get("axis", 1)
    if not -len(src) <= axis <= len(src):  # Flatten's axis runs over [-r, r]
        raise WebjitError(f"node '{c.node.name}' (Flatten): axis {axis} out of range for rank {len(src)}")
    axis = axis + len(src) if axis < 0 else axis
    return [(c.ins[0].dtype, (prod(src[:axis]), prod(src[axis:])))]


def _layernorm(c: _Ctx):
    src = c.shape(0)
    axis = c.axis(c.node.attrs.get("axis", -1), len(src))
    stat = src[:axis] + (1,) * (len(src) - axis)
    return [(c.ins[0].dtype, src), ("float32", stat), ("float32", stat)][:len(c.node.outputs)]


def _cast(c: _Ctx):
    from .onnx_import import dtype_name
    return [(dtype_name(c.node.attrs["to"]), c.shape(0))]


def _same(c: _Ctx):
    return [(c.ins[0].dtype, c.shape(0))] + [("bool", c.shape(0))] * (len(c.node.outputs) - 1)


def _bcast(c: _Ctx):
    return [(c.ins[0].dtype, broadcast(*[v.shape for v in c.ins if v is not None]))]


SHAPE_FNS: dict[str, Callable[[_Ctx], list[tuple[str, Shape]]]] = {
    **{op: _same for op in ops.names(shape="same")},
    **{op: _bcast for op in ops.names(shape="broadcast")},
    **{op: (lambda c: [("bool", _bcast(c)[0][1])]) for op in ops.names(shape="compare")},
    "IsNaN": lambda c: [("bool", c.shape(0))], "IsInf": lambda c: [("bool", c.shape(0))],
    "Where": lambda c: [(c.ins[1].dtype, broadcast(c.shape(0), c.shape(1), c.shape(2)))],
    "Cast": _cast, "CastLike": lambda c: [(c.ins[1].dtype, c.shape(0))],
    "MatMul": _matmul, "Gemm": _gemm, "Conv": _conv, "Reshape": _reshape, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Flatten": _flatten, "Slice": _slice, "Split": _split, "Concat": _concat, "Transpose": _transpose,
    "Expand": _expand, "Tile": _tile, "Gather": _gather, "GatherND": _gather_nd,
    "GatherElements": lambda c: [(c.ins[0].dtype, c.shape(1))],
    "ReduceMean": _reduce, "ReduceSum": _reduce, "ReduceMax": _reduce, "ReduceMin": _reduce,
    "LayerNormalization": _layernorm, "ScatterND": lambda c: [(c.ins[0].dtype, c.shape(0))],
    **{op: _reduce for op in ("ReduceProd", "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum",
                              "ReduceLogSumExp")},
    **quant_shapes(_matmul, _conv),
}


def _unsupported(node: Node, opset: int, why: str = "") -> UnsupportedOp:
    op = f"{node.domain}.{node.op}" if node.domain else node.op
    return UnsupportedOp(f"node '{node.name}': op {op} (opset {opset}) is not supported{why}. "
                         f"Supported ops: {', '.join(ops.supported())}")


MAX_TENSOR_BYTES = 2 ** 31  # no browser gives one WebGPU buffer or one wasm32 memory more than this


def _check_size(v: Value, node: Node | None = None) -> None:
    """A value too large for any device webjit targets is refused here, before anything is allocated."""
    from .tensor import ITEMSIZE
    where = f"node '{node.name}' ({node.op}): output" if node is not None else "input"
    if any(d < 0 for d in v.shape):
        raise WebjitError(f"{where} '{v.name}' has shape {list(v.shape)}, with a negative dim")
    if prod(v.shape) * ITEMSIZE.get(v.dtype, 4) > MAX_TENSOR_BYTES:
        raise WebjitError(f"{where} '{v.name}' has shape {list(v.shape)}, more than the "
                          f"{MAX_TENSOR_BYTES >> 30} GiB one buffer can hold in a browser")


def bind_inputs(g: Graph, shapes: dict[str, Shape], values: dict[str, Tensor]) -> None:
    """Give every input a concrete shape. A symbolic dim bound by one input (say seq=128 by input_ids) also
    binds it in the others, so `--shape input_ids=1x128` is enough for a BERT-style model."""
    for name in list(shapes) + list(values):
        if name not in g.inputs:
            raise WebjitError(f"no model input named '{name}' (inputs: {', '.join(g.inputs)})")
    for name, arr in values.items():
        got, declared = arr.dtype.name, g.values[name].dtype
        if got != declared:
            raise WebjitError(f"input '{name}': values of type {got}, the model declares {declared}")
    given = {n: tuple(int(d) for d in (values[n].shape if n in values else shapes[n]))
             for n in g.inputs if n in values or n in shapes}
    symbols: dict[str, int] = {}
    for name, shape in given.items():
        declared = g.values[name].shape
        if declared is None:
            continue
        if len(shape) != len(declared):
            raise WebjitError(f"input '{name}': shape {list(shape)} has rank {len(shape)}, "
                              f"the model declares {list(declared)}")
        for d, m in zip(shape, declared):
            if isinstance(m, int) and m != d:
                raise WebjitError(f"input '{name}': shape {list(shape)} contradicts the model's {list(declared)}")
            if isinstance(m, str) and symbols.setdefault(m, d) != d:
                raise WebjitError(f"input '{name}': dim '{m}' is {d} here but {symbols[m]} in another input")
    for name in g.inputs:
        v = g.values[name]
        if name in given:
            v.shape = given[name]
            _check_size(v)
            continue
        dims = [symbols.get(d, d) if isinstance(d, str) else d for d in (v.shape or ["?"])]
        if any(isinstance(d, str) for d in dims):
            raise WebjitError(f"input '{name}' has dims {list(v.shape or '?')} that are not fixed; "
                              f"give them with --shape {name}=1x128 (for example) or --inputs")
        v.shape = tuple(dims)
        _check_size(v)


def _fold(node: Node, g: Graph) -> list[Tensor]:
    if node.op == "Shape":
        s = g.values[node.inputs[0]].shape
        start, end = node.attrs.get("start", 0), node.attrs.get("end", None)
        dims = list(s[slice(start, end)])
        return [Tensor.of(dims, "int64", (len(dims),))]
    if node.op == "Size":
        return [Tensor.scalar(g.values[node.inputs[0]].size, "int64")]
    ins = [g.values[i] if i else None for i in node.inputs]
    outs = SHAPE_FNS[node.op](_Ctx(node, ins, g.opset)) if node.op in SHAPE_FNS else None
    return fold.evaluate(node, [v.const if v is not None else None for v in ins], outs, g.opset)


def _malformed_is_an_error(node: Node, fn, *args):
    """fn(*args), where a node missing an input or attribute its op needs (a damaged or hand-made model) makes
    the shape or fold rule fail on a lookup: that is a clear error about the node, not a crash."""
    try:
        return fn(*args)
    except (IndexError, KeyError, TypeError, AttributeError) as e:
        raise WebjitError(f"node '{node.name}' ({node.op}): its {len(node.inputs)} inputs and attributes "
                          f"{sorted(node.attrs) or '(none)'} do not fit the op ({type(e).__name__}: {e})") from None


def specialize(g: Graph, shapes: dict[str, Shape] | None = None, values: dict | None = None,
               keep: set[str] | frozenset = frozenset()) -> Graph:
    """Stage entry point.

    shapes: concrete shapes for inputs with symbolic dims. values: input values; those feeding a shape-deciding
    input (VALUE_INPUTS) become compile-time constants. keep: input names never to fold (for testing).
    """
    shapes = shapes or {}
    values = {n: Tensor.from_array(v) for n, v in (values or {}).items()}  # numpy arrays or Tensors
    bind_inputs(g, shapes, values)
    uses = g.consumers()
    for name in g.inputs:
        if name in values and name not in keep and any(
                name in [n.input(i) for i in VALUE_INPUTS.get(n.op, ())] for n in uses.get(name, [])):
            g.values[name].const = values[name]
    kept, queue = [], list(reversed(g.nodes))
    while queue:
        node = queue.pop()
        if node.op == "If":
            queue.extend(reversed(inline_if(g, node)))
            continue
        ins = [g.values[i] if i else None for i in node.inputs]
        if node.op not in SHAPE_FNS and node.op not in FOLD_ONLY:
            raise _unsupported(node, g.opset)
        if (all(v.const is not None for v in ins if v)
                and _malformed_is_an_error(node, fold.folds, node, [v and v.const for v in ins])
                or node.op in ("Shape", "Size")):
            for name, arr in zip(node.outputs, _malformed_is_an_error(node, _fold, node, g)):
                if name:
                    g.values[name] = Value(name, arr.dtype.name, tuple(arr.shape), arr)
            continue
        if node.op in FOLD_ONLY:
            raise WebjitError(f"node '{node.name}' ({node.op}): inputs must be known at compile time")
        for name, (dtype, shape) in zip(node.outputs, _malformed_is_an_error(node, SHAPE_FNS[node.op],
                                                                             _Ctx(node, ins, g.opset))):
            if name:
                g.values[name].dtype, g.values[name].shape = dtype, tuple(int(d) for d in shape)
                _check_size(g.values[name], node)
        kept.append(node)
    g.nodes = kept
    g.remove_dead()
    return g
