"""onnxruntime's contrib ops (domain com.microsoft), as its transformer optimizer writes them into hub models, in
terms of standard ONNX ops, so the shapes, fold and fuse stages see what an exporter would have written and fuse it
into the same kernels (LayerNormalization, RMSNorm, matmul epilogues).

| contrib op                       | becomes                                                               |
|----------------------------------|-----------------------------------------------------------------------|
| SkipLayerNormalization           | Add(input, skip[, bias]) -> LayerNormalization                        |
| SkipSimplifiedLayerNormalization | Add(input, skip[, bias]) -> x / sqrt(mean(x^2) + eps) * gamma          |
| SimplifiedLayerNormalization     | x / sqrt(mean(x^2) + eps) * scale                                     |
| BiasGelu, Gelu                   | [Add(x, bias)] -> Gelu                                                |
| FastGelu                         | [Add(x, bias)] -> Gelu(approximate="tanh")                            |
| QuickGelu                        | x * Sigmoid(alpha x)                                                  |
| EmbedLayerNormalization          | Gathers of the word, position and segment tables, Add, LayerNorm      |
| Attention (no past)              | MatMul + bias, heads split by Reshape/Transpose, scaled Q·Kᵀ with the |
|                                  | mask added, Softmax, ·V, heads merged: the attention kernel's pattern  |

(onnxruntime registers SimplifiedLayerNormalization in the default domain.) Other contrib ops stay as they are and are refused by name (with their domain) in the shapes stage. Optional
statistics outputs (mean, inverse standard deviation) are refused when something reads them.
"""
from __future__ import annotations

from . import ops
from .errors import UnsupportedOp
from .ir import Graph, Node, Value
from .tensor import Tensor

DOMAIN = ops.MS


class _Builder:
    def __init__(self, g: Graph, node: Node):
        self.g, self.node, self.nodes = g, node, []
        self.dtype = g.values[node.inputs[0]].dtype
        self.masks: dict[str, str] = {}

    def op(self, op: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        out = out or self._value(f"{self.node.name}/{op.lower()}")
        self.nodes.append(Node(op, f"{self.node.name}/{op}_{len(self.nodes)}", inputs, [out], attrs))
        return out

    def const(self, value: float, dtype: str | None = None) -> str:
        name = self._value(f"{self.node.name}/c")
        t = Tensor.scalar(value, dtype or self.dtype)
        self.g.values[name] = Value(name, t.dtype.name, (), t)
        return name

    def ints(self, values: list[int]) -> str:
        name = self._value(f"{self.node.name}/axes")
        t = Tensor.of(values, "int64", (len(values),))
        self.g.values[name] = Value(name, "int64", t.shape, t)
        return name

    def int_const(self, value: int) -> str:
        name = self._value(f"{self.node.name}/i")
        t = Tensor.scalar(value, "int64")
        self.g.values[name] = Value(name, "int64", (), t)
        return name

    def _value(self, base: str) -> str:
        name = self.g.fresh(base)
        self.g.values[name] = Value(name, self.dtype)
        return name

    def mean_last(self, x: str) -> str:
        if self.g.opset >= 18:
            return self.op("ReduceMean", [x, self.ints([-1])], keepdims=1)
        return self.op("ReduceMean", [x], axes=[-1], keepdims=1)

    def rms(self, x: str, gamma: str, eps: float, out: str) -> None:
        sq = self.op("Pow", [x, self.const(2.0)])
        var = self.op("Add", [self.mean_last(sq), self.const(eps)])
        inv = self.op("Reciprocal", [self.op("Sqrt", [var])])
        self.op("Mul", [self.op("Mul", [x, inv]), gamma], out)

    def skip_sum(self) -> str:
        n = self.node
        s = self.op("Add", [n.inputs[0], n.inputs[1]])
        bias = n.input(4) if n.op == "SkipLayerNormalization" else n.input(3)
        return self.op("Add", [s, bias]) if bias else s


def expand_contrib(g: Graph) -> None:
    """Stage entry point (after import): replace the contrib nodes this module knows, in place."""
    read = {x for n in g.nodes for x in n.inputs} | set(g.outputs)
    masks: dict[str, str] = {}  # EmbedLayerNormalization's mask_index output -> the 2-D mask it summarises
    out: list[Node] = []
    for n in g.nodes:
        rule = RULES.get(n.op) if n.domain == DOMAIN or (n.domain == "" and n.op in ONNX_DOMAIN) else None
        if rule is None:
            out.append(n)
            continue
        stats = _STATS.get(n.op, ())
        used = [n.outputs[i] for i in stats if i < len(n.outputs) and n.outputs[i] and n.outputs[i] in read]
        if used:
            raise UnsupportedOp(f"node '{n.name}': op {DOMAIN}.{n.op}: webjit does not compute its statistics "
                                f"outputs, and '{used[0]}' is read")
        b = _Builder(g, n)
        b.masks = masks
        rule(b, n, **n.attrs)
        out += b.nodes
    g.nodes = out


def SkipLayerNormalization(b: _Builder, n: Node, *, epsilon=1e-12):
    s = b.skip_sum()
    beta = n.input(3) or b.g.fresh(f"{n.name}/beta")
    if not n.input(3):  # LayerNormalization wants a bias; a zero one
        width_of = b.g.values[n.inputs[2]].shape
        t = Tensor.full(width_of, 0.0, b.g.values[n.inputs[2]].dtype)
        b.g.values[beta] = Value(beta, t.dtype.name, t.shape, t)
    b.op("LayerNormalization", [s, n.inputs[2], beta], n.outputs[0], axis=-1, epsilon=float(epsilon))
    _sum_output(b, n, s)


def SkipSimplifiedLayerNormalization(b: _Builder, n: Node, *, epsilon=1e-12):
    s = b.skip_sum()
    b.rms(s, n.inputs[2], float(epsilon), n.outputs[0])
    _sum_output(b, n, s)


def SimplifiedLayerNormalization(b: _Builder, n: Node, *, axis=-1, epsilon=1e-5, stash_type=1):
    if axis != -1 and axis != len(b.g.values[n.inputs[0]].shape or ()) - 1:
        raise UnsupportedOp(f"node '{n.name}': op {DOMAIN}.SimplifiedLayerNormalization over axis {axis}; "
                            f"webjit normalises the last axis")
    b.rms(n.inputs[0], n.inputs[1], float(epsilon), n.outputs[0])


def _sum_output(b: _Builder, n: Node, s: str) -> None:
    if len(n.outputs) > 3 and n.outputs[3]:
        b.op("Identity", [s], n.outputs[3])


def _gelu(approximate: str):
    def rule(b: _Builder, n: Node, **_):
        x = b.op("Add", [n.inputs[0], n.input(1)]) if n.input(1) else n.inputs[0]
        b.op("Gelu", [x], n.outputs[0], approximate=approximate)
    return rule


def QuickGelu(b: _Builder, n: Node, *, alpha=1.702):
    x = n.inputs[0]
    b.op("Mul", [x, b.op("Sigmoid", [b.op("Mul", [x, b.const(float(alpha))])])], n.outputs[0])


def EmbedLayerNormalization(b: _Builder, n: Node, *, epsilon=1e-12, mask_index_type=1):
    ids, segments, word, pos, seg_table, gamma, beta = (n.input(i) for i in range(7))
    mask, position_ids = n.input(7), n.input(8)
    b.dtype = b.g.values[word].dtype
    x = b.op("Gather", [word, ids])
    if not position_ids:
        length = b.op("Gather", [b.op("Shape", [ids]), b.ints([1])])
        steps = b.op("Range", [b.int_const(0), b.op("Squeeze", [length]), b.int_const(1)])
        position_ids = b.op("Unsqueeze", [steps, b.ints([0])])
    x = b.op("Add", [x, b.op("Gather", [pos, position_ids])])
    if segments and seg_table:
        x = b.op("Add", [x, b.op("Gather", [seg_table, segments])])
    b.op("LayerNormalization", [x, gamma, beta], n.outputs[0], axis=-1, epsilon=float(epsilon))
    if len(n.outputs) > 1 and n.outputs[1]:
        if not mask:
            raise UnsupportedOp(f"node '{n.name}': op {DOMAIN}.EmbedLayerNormalization without a mask input "
                                f"gives a mask_index webjit does not compute")
        b.masks[n.outputs[1]] = mask
        # the count of unmasked positions, for any reader other than Attention (which takes the mask itself)
        b.op("Cast", [b.op("ReduceSum", [mask, b.ints([1])], keepdims=0)], n.outputs[1], to=6)
    if len(n.outputs) > 2 and n.outputs[2]:
        b.op("Identity", [x], n.outputs[2])


def Attention(b: _Builder, n: Node, *, num_heads, unidirectional=0, qkv_hidden_sizes=None,
              mask_filter_value=-10000.0, scale=None, do_rotary=0, past_present_share_buffer=0):
    x, weights, bias, mask = n.input(0), n.input(1), n.input(2), n.input(3)
    if any(n.input(i) for i in (4, 5, 6)) or (len(n.outputs) > 1 and n.outputs[1]) or unidirectional or do_rotary:
        raise UnsupportedOp(f"node '{n.name}': op {DOMAIN}.Attention with a past, an attention bias, a causal "
                            f"mask or rotary embeddings is not supported yet")
    w = b.g.values[weights].shape
    if w is None or len(w) != 2 or (qkv_hidden_sizes and len(set(qkv_hidden_sizes)) != 1):
        raise UnsupportedOp(f"node '{n.name}': op {DOMAIN}.Attention needs 2-D weights with equal Q, K and V sizes")
    hidden = w[1] // 3
    head = hidden // int(num_heads)
    qkv = b.op("MatMul", [x, weights])
    if bias:
        qkv = b.op("Add", [qkv, bias])
    heads = []
    for i in range(3):
        part = b.op("Slice", [qkv, b.ints([i * hidden]), b.ints([(i + 1) * hidden]), b.ints([-1])])
        split = b.op("Reshape", [part, b.ints([0, 0, int(num_heads), head])])
        heads.append(b.op("Transpose", [split], perm=[0, 2, 3, 1] if i == 1 else [0, 2, 1, 3]))
    q, kt, v = heads
    scores = b.op("Mul", [b.op("MatMul", [q, kt]), b.const(float(scale) if scale else head ** -0.5)])
    if mask:
        raw = b.masks.get(mask, mask)
        shape = b.g.values[raw].shape
        if shape is not None and len(shape) != 2:
            raise UnsupportedOp(f"node '{n.name}': op {DOMAIN}.Attention with a {len(shape)}-D mask_index; webjit "
                                f"reads the raw [batch, sequence] mask")
        keep = b.op("Cast", [b.op("Unsqueeze", [raw, b.ints([1, 2])])], to=1)
        fill = b.op("Mul", [b.op("Sub", [b.const(1.0, "float32"), keep]), b.const(float(mask_filter_value), "float32")])
        scores = b.op("Add", [scores, fill])
    probs = b.op("Softmax", [scores], axis=-1)
    merged = b.op("Transpose", [b.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    b.op("Reshape", [merged, b.ints([0, 0, hidden])], n.outputs[0])


RULES = {"SkipLayerNormalization": SkipLayerNormalization,
         "SkipSimplifiedLayerNormalization": SkipSimplifiedLayerNormalization,
         "SimplifiedLayerNormalization": SimplifiedLayerNormalization,
         "BiasGelu": _gelu("none"), "Gelu": _gelu("none"), "FastGelu": _gelu("tanh"), "QuickGelu": QuickGelu,
         "EmbedLayerNormalization": EmbedLayerNormalization, "Attention": Attention}
# onnxruntime registers some in the default domain, though no ONNX opset defines them (see ops.py)
ONNX_DOMAIN = set(RULES) & ops.names("rewrite")
_STATS = {"SkipLayerNormalization": (1, 2), "SkipSimplifiedLayerNormalization": (1, 2),
          "SimplifiedLayerNormalization": (1,)}
