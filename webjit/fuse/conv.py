"""Conv (1-D and 2-D) as a matmul over im2col patches, so it gets the matmul's tuning space and its fused epilogue
(the bias, and a following activation).

    x [N, C, *in] --patches--> [N, P, C*K] @ W' [C*K, O] (+ bias) --> [N, P, O] --transpose--> [N, O, *out]

With G groups (C/G input channels and O/G outputs each), the patches' channels are already group-major, so they
are a view [N, G, P, C/G*K], and the matmul is batched over the groups:

    [N, G, P, C/G*K] @ W' [G, C/G*K, O/G] (+ bias [G, 1, O/G]) --> [N, G, P, O/G] --> [N, O, *out]

P is the number of output positions, K the kernel's size, W' the weight laid out once at compile time (a move).
Where the kernel tiles the input exactly (kernel == stride, no padding or dilation: ViT's patch embedding), the
patches are a Reshape/Transpose of x: at most one copy, of the input's size. Otherwise the padding is a Concat with zeros and
each kernel offset is a strided Slice (a view), concatenated along a new axis: one copy of the patches, K times
the input (Whisper's front end has K = 3).

ConvInteger (what onnxruntime's quantize_dynamic writes for a Conv) is the same lowering in integers:

    x [N, C, *in] uint8 --(x - x_zero_point) as float32--> --patches--> MatMulInteger(., W', w_zero_point)

The activations are centered first (one pass over the input, not K over the patches), so padding with 0 is padding
with the zero point, as ConvInteger defines it. The MatMulInteger's A is then float32 holding integers without a zero
point, which fuse/quant.py turns into a QMatMul on W' kept packed (int8 or uint8), like any quantized linear layer.
The Cast to float32 that follows a ConvInteger is moved before the output transpose, into the matmul's epilogue.
"""
from __future__ import annotations

from ..errors import UnsupportedOp
from ..ir import Graph, Node
from ..shapes import conv_geometry
from ..tensor import Tensor, prod
from .quant import centered
from .rewrite import Rewriter, reorder_and_prune

OPS = ("Conv", "ConvInteger")


def lower_conv(g: Graph) -> None:
    r = Rewriter(g)
    out: list[Node] = []
    taken: set[int] = set()  # Casts lowered with their ConvInteger
    for n in g.nodes:
        if id(n) in taken:
            continue
        cast = _float_cast(r, n) if n.op == "ConvInteger" else None
        if cast is not None:
            taken.add(id(cast))
        out += _conv(g, r, n, cast) if n.op in OPS else [n]
    g.nodes = out
    reorder_and_prune(g)


def _float_cast(r: Rewriter, n: Node) -> Node | None:
    """The Cast to float32 that is a ConvInteger's only use (as quantize_dynamic writes it), or None. Cast before
    the output transpose, the sums stay float32 end to end and the matmul takes the Cast as its epilogue."""
    y = n.outputs[0]
    use = r.uses.get(y, [None])[0] if r.single_use(y) else None
    return use if use is not None and use.op == "Cast" and r.g.values[use.outputs[0]].dtype == "float32" else None


class _Emit:
    def __init__(self, g: Graph, r: Rewriter, n: Node):
        self.g, self.r, self.n, self.nodes = g, r, n, []

    def __call__(self, op: str, inputs: list[str], shape, out: str | None = None, dtype: str | None = None,
                 **attrs) -> str:
        """A node; its output has the given shape and dtype, by default the first input's dtype."""
        like = self.g.values[inputs[0]]
        out = out or self.r.new_value(f"{self.n.name}_{op.lower()}", like, shape=tuple(shape), dtype=dtype)
        self.nodes.append(Node(op, f"{self.n.name}_{op.lower()}{len(self.nodes)}", inputs, [out], attrs))
        return out

    def ints(self, values) -> str:
        return self.r.new_const(f"{self.n.name}_i", Tensor.of([int(v) for v in values], "int64", (len(values),)))

    def reshape(self, x: str, shape) -> str:
        return self("Reshape", [x, self.ints(shape)], shape)

    def transpose(self, x: str, perm) -> str:
        shape = self.g.values[x].shape
        return self("Transpose", [x], [shape[p] for p in perm], perm=list(perm))


def _conv(g: Graph, r: Rewriter, n: Node, cast: Node | None = None) -> list[Node]:
    """The lowered nodes; with `cast` (a ConvInteger's Cast to float32), they write the Cast's output."""
    integer = n.op == "ConvInteger"
    x, w_name = n.inputs[0], n.inputs[1]
    bias = None if integer else n.input(2)
    w = g.const(w_name)
    groups = int(n.attrs.get("group", 1))
    if w is None or len(w.shape) not in (3, 4) or (integer and groups != 1):
        raise UnsupportedOp(f"node '{n.name}': op {n.op} is supported in 1-D and 2-D with constant weights"
                            f"{' and one group' if integer else ''} (this one: weight "
                            f"{list(g.values[w_name].shape)}, group {groups})")
    e = _Emit(g, r, n)
    if integer:
        zx = n.input(2)
        if zx and prod(g.values[zx].shape) != 1:
            raise UnsupportedOp(f"node '{n.name}': op ConvInteger needs one x_zero_point for the whole input "
                                f"(this one has shape {list(g.values[zx].shape)})")
        x, node = centered(r, n, x, zx, None, "x")
        e.nodes.append(node)
    shape = g.values[x].shape
    batch, chans, spatial, kernel = shape[0], shape[1], list(shape[2:]), list(w.shape[2:])
    begin, end, strides, dilations, outs = conv_geometry(n, spatial, kernel)
    k, positions, o = prod(kernel), prod(outs), w.shape[0]
    if groups < 1 or chans % groups or o % groups or w.shape[1] * groups != chans:
        raise UnsupportedOp(f"node '{n.name}': Conv with group {groups} needs channels ({chans}) and outputs ({o}) "
                            f"divisible by it and a weight of {chans // max(groups, 1)} input channels "
                            f"(this one: {w.shape[1]})")
    tiles = (strides == kernel and dilations == [1] * len(kernel) and not any(begin + end)
             and all(i == s * q for i, s, q in zip(spatial, strides, outs)))
    if tiles:  # the patches are a view: split each spatial dim into (out, kernel) and bring the kernel dims last
        split = [batch, chans] + [d for q, kk in zip(outs, kernel) for d in (q, kk)]
        r2 = len(kernel)
        perm = [0] + [2 + 2 * i for i in range(r2)] + [1] + [3 + 2 * i for i in range(r2)]
        patches = e.reshape(e.transpose(e.reshape(x, split), perm), [batch, positions, chans * k])
    else:
        padded = x
        for axis, (b, a) in enumerate(zip(begin, end), start=2):
            if b or a:
                padded = _pad(e, padded, axis, b, a)
        pieces = []
        for offset in _offsets(kernel):
            starts = [o_ * d for o_, d in zip(offset, dilations)]
            ends = [s + st * (q - 1) + 1 for s, st, q in zip(starts, strides, outs)]
            axes = list(range(2, 2 + len(kernel)))
            piece = e("Slice", [padded, e.ints(starts), e.ints(ends), e.ints(axes), e.ints(strides)],
                      [batch, chans, *outs])
            pieces.append(e.reshape(piece, [batch, chans, 1, positions]))
        stacked = e("Concat", pieces, [batch, chans, k, positions], axis=2) if len(pieces) > 1 else pieces[0]
        patches = e.transpose(e.reshape(stacked, [batch, chans * k, positions]), [0, 2, 1])
    if groups > 1:
        return _grouped(e, r, n, patches, w, bias, groups, [batch, positions, chans * k], outs)
    weight = r.new_const(f"{n.name}_w", w.reshape(o, chans * k).T)
    if integer:
        zw = [n.input(3)] if n.input(3) else []
        y = e("MatMulInteger", [patches, weight, "", *zw], [batch, positions, o], dtype="int32")
        if cast is not None:
            y = e("Cast", [y], [batch, positions, o], dtype="float32", to=cast.attrs["to"])
    else:
        y = e("MatMul", [patches, weight], [batch, positions, o])
    if bias:
        y = e("Add", [y, bias], [batch, positions, o])
    e.reshape(e.transpose(y, [0, 2, 1]), [batch, o, *outs])
    e.nodes[-1].outputs = [(cast or n).outputs[0]]
    return e.nodes


def _grouped(e: _Emit, r: Rewriter, n: Node, patches: str, w: Tensor, bias: str | None, groups: int,
             shape: list[int], outs: list[int]) -> list[Node]:
    """The matmul of a Conv with `groups` groups, batched over them (the module docstring)."""
    batch, positions, ck = shape
    o = w.shape[0]
    cgk, og = ck // groups, o // groups
    per_group = e.transpose(e.reshape(patches, [batch, positions, groups, cgk]), [0, 2, 1, 3])
    weight = r.new_const(f"{n.name}_w", w.reshape(groups, og, cgk).transpose([0, 2, 1]))
    y = e("MatMul", [per_group, weight], [batch, groups, positions, og])
    if bias:
        b = e.g.const(bias)
        b = (r.new_const(f"{n.name}_b", b.reshape(groups, 1, og)) if b is not None
             else e.reshape(bias, [groups, 1, og]))
        y = e("Add", [y, b], [batch, groups, positions, og])
    e.reshape(e.transpose(y, [0, 1, 3, 2]), [batch, o, *outs])
    e.nodes[-1].outputs = [n.outputs[0]]
    return e.nodes


def _pad(e: _Emit, x: str, axis: int, before: int, after: int) -> str:
    shape = list(e.g.values[x].shape)
    parts = []
    for count in (before, None, after):
        if count is None:
            parts.append(x)
        elif count:
            zeros = Tensor.full(tuple(shape[:axis] + [count] + shape[axis + 1:]), 0.0, e.g.values[x].dtype)
            parts.append(e.r.new_const(f"{e.n.name}_pad", zeros))
    shape[axis] += before + after
    return e("Concat", parts, shape, axis=axis)


def _offsets(kernel: list[int]) -> list[tuple[int, ...]]:
    """Every kernel position in C order (the weight's own order)."""
    out = [()]
    for k in kernel:
        out = [o + (i,) for o in out for i in range(k)]
    return out
