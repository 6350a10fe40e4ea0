"""The ops webjit compiles, each declared once.

A declaration says what every stage needs to know about an op: its domain and the first opset of that domain
webjit reads it at, the element types it computes on, which inputs decide its output's shape, whether the folder
evaluates it at compile time, and how it runs:

- elementwise: fused into an Elementwise kernel; each backend's renderer has its expression per element type
  (render_wgsl.FLOAT/INT/BOOL, wasm_code.FLOAT/INT/BOOL);
- view: a different view of its input's buffer, copied only when a kernel needs it dense;
- kernel: lowered under its own name (`webjit.lower.REGISTRY`);
- rewrite: a compiler pass turns it into other ops (contrib.py, fuse/conv.py, fuse/quant.py, fuse/canonical.py);
- fold: evaluated at compile time only; its inputs must be constants.

Shape rules live in shapes.py (shape="same", "broadcast" or "compare" for the elementwise families; otherwise
`SHAPE_FNS[name]`), fold rules in fold.py, lowerings in lower/. Each of those stages takes the list of ops it
handles from here, and tests/native/test_op_registry.py checks every op declared here, on both backends, against
onnxruntime.
"""
from __future__ import annotations

from dataclasses import dataclass

MIN_OPSET = 13  # the oldest default-domain opset webjit reads (older models are converted, onnx_import.py)

F, I, B = frozenset({"float32"}), frozenset({"int32", "int64"}), frozenset({"bool"})
ANY = F | I | B
Q8 = frozenset({"int8", "uint8"})
MS = "com.microsoft"


@dataclass(frozen=True)
class Op:
    name: str
    run: str                                # elementwise | view | kernel | rewrite | fold
    types: frozenset = F                    # element types of its first input it computes on
    domain: str = ""                        # "" is ai.onnx
    since: int = 1                          # first opset of its domain with the semantics webjit implements
    shape: str = "own"                      # same | broadcast | compare | own (shapes.SHAPE_FNS[name]) | none
    value_inputs: tuple[int, ...] = ()      # inputs that decide the output's shape: folded at compile time
    dense_inputs: tuple[int, ...] = ()      # inputs the kernel reads as contiguous buffers, not through views
    folds: bool = True                      # the folder evaluates it when all its inputs are constants
    view: bool = False                      # can also become a view of its input (Gather of one index)
    defaults: tuple = ()                    # (attribute, ONNX default) of the attributes its expression reads

    @property
    def qualified(self) -> str:
        return f"{self.domain}.{self.name}" if self.domain else self.name


def _ew(names: str, types=F, shape="same", **kw) -> list[Op]:
    return [Op(n, "elementwise", types, shape=shape, **kw) for n in names.split()]


def _reduce(names: str, types) -> list[Op]:
    return [Op(n, "kernel", types, value_inputs=(1,), dense_inputs=(0,)) for n in names.split()]


DECLARED: list[Op] = [
    # elementwise, one input
    *_ew("Sqrt Exp Log Erf Tanh Sigmoid Relu Reciprocal Sin Cos Floor Ceil Round"),
    *_ew("Softplus", folds=False),
    Op("LeakyRelu", "elementwise", shape="same", folds=False, defaults=(("alpha", 0.01),)),
    Op("Elu", "elementwise", shape="same", folds=False, defaults=(("alpha", 1.0),)),
    Op("HardSigmoid", "elementwise", shape="same", folds=False, defaults=(("alpha", 0.2), ("beta", 0.5))),
    *_ew("HardSwish", since=14, folds=False),
    *_ew("Mish", since=18),
    *_ew("Gelu", since=20, folds=False),
    *_ew("Abs Neg Sign", F | I),
    *_ew("Not", B),
    *_ew("IsNaN IsInf", F, shape="own", since=10),
    Op("Clip", "elementwise", F | I, shape="same", since=11, value_inputs=(1, 2)),
    Op("Trilu", "elementwise", F | I, shape="same", since=14, value_inputs=(1,)),
    # elementwise, several inputs (broadcasting)
    *_ew("Add Sub Mul Div Pow Max Min Mod", F | I, shape="broadcast"),
    *_ew("Sum Mean", F, shape="broadcast"),
    *_ew("And Or Xor", B, shape="broadcast"),
    *_ew("Equal", ANY, shape="compare"),
    *_ew("Less Greater LessOrEqual GreaterOrEqual", F | I, shape="compare"),
    *_ew("Where Cast CastLike", ANY, shape="own"),
    # views and moves
    Op("Identity", "view", ANY, shape="same"),
    Op("Dropout", "view", shape="same"),
    Op("Flatten", "view", ANY), Op("Transpose", "view", ANY),
    Op("Reshape", "view", ANY, value_inputs=(1,)),
    Op("Squeeze", "view", ANY, value_inputs=(1,)), Op("Unsqueeze", "view", ANY, value_inputs=(1,)),
    Op("Slice", "view", ANY, value_inputs=(1, 2, 3, 4)), Op("Expand", "view", ANY, value_inputs=(1,)),
    Op("Split", "view", ANY, value_inputs=(1,)),
    Op("Gather", "kernel", ANY, view=True, dense_inputs=(0, -1)),
    Op("Concat", "kernel", ANY),
    Op("Tile", "kernel", ANY, value_inputs=(1,)),
    Op("GatherElements", "kernel", F | I, since=11, dense_inputs=(0, 1)),
    Op("GatherND", "kernel", F | I, since=11, dense_inputs=(0, 1)),
    Op("ScatterND", "kernel", F | I, since=11, dense_inputs=(1, 2)),
    Op("CumSum", "kernel", F | I, since=11, shape="same", value_inputs=(1,), dense_inputs=(0,)),
    # matrix products and rows
    Op("MatMul", "kernel"),
    Op("Gemm", "rewrite", folds=False),
    Op("Conv", "rewrite", folds=False),
    Op("Softmax", "kernel", shape="same", dense_inputs=(0,), folds=False),
    Op("LogSoftmax", "kernel", shape="same", dense_inputs=(0,), folds=False),
    Op("LayerNormalization", "kernel", since=17, dense_inputs=(0,), folds=False),
    *_reduce("ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd ReduceSumSquare ReduceL1", F | I),
    *_reduce("ReduceL2 ReduceLogSum ReduceLogSumExp", F),
    # quantization: rewritten into QMatMul / QGather kernels or into float ops (fuse/quant.py)
    Op("DequantizeLinear", "rewrite", Q8 | {"int32"}, since=10, folds=False),  # a quantized weight stays so
    Op("QuantizeLinear", "rewrite", F, since=10, folds=False),
    Op("DynamicQuantizeLinear", "rewrite", F, since=11, folds=False),
    Op("MatMulInteger", "rewrite", Q8, since=10, folds=False),
    Op("ConvInteger", "rewrite", Q8, since=10, folds=False),
    Op("MatMulNBits", "rewrite", F, domain=MS, folds=False),
    # evaluated at compile time only
    *[Op(n, "fold", ANY, shape="none") for n in ("Constant", "Shape", "Size", "NonZero")],
    Op("ConstantOfShape", "fold", frozenset({"int64"}), shape="none", since=9, value_inputs=(0,)),
    Op("Range", "fold", F | I, shape="none", since=11, value_inputs=(0, 1, 2)),
    Op("If", "fold", B, shape="none", value_inputs=(0,)),  # a merged decoder's use_cache_branch picks the branch
    # onnxruntime's contrib ops, as its optimizer and quantizers write them (contrib.py writes them as ONNX ops)
    *[Op(n, "rewrite", domain=MS, shape="none") for n in (
        "SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "BiasGelu", "Gelu", "FastGelu", "QuickGelu",
        "EmbedLayerNormalization", "Attention")],
    Op("SimplifiedLayerNormalization", "rewrite", shape="none"),  # onnxruntime registers it in the default domain
]


def _index(ops: list[Op]) -> dict[tuple[str, str], Op]:
    out: dict[tuple[str, str], Op] = {}
    for op in ops:
        if (op.domain, op.name) in out:
            raise AssertionError(f"{op.qualified} is declared twice")
        out[(op.domain, op.name)] = op
    return out


REGISTRY: dict[tuple[str, str], Op] = _index(DECLARED)
ONNX: dict[str, Op] = {name: op for (domain, name), op in REGISTRY.items() if domain == ""}


def get(name: str, domain: str = "") -> Op | None:
    return REGISTRY.get((domain, name))


def names(run: str | None = None, domain: str = "", **where) -> set[str]:
    """Names of the ops of a domain that run a given way (None: every way) and have the given field values."""
    return {op.name for op in REGISTRY.values() if op.domain == domain and (run is None or op.run == run)
            and all(getattr(op, k) == v for k, v in where.items())}


def supported() -> list[str]:
    return sorted(op.qualified for op in REGISTRY.values())


def unsupported(nodes, opsets: dict[str, int]) -> list[tuple[str, int, str]]:
    """(qualified op, opset, first node's name) of every op among `nodes` that webjit has no declaration for, in
    the order they first appear. nodes: (domain, op type, node name) triples. opsets: version per domain."""
    seen: dict[str, tuple[str, int, str]] = {}
    for domain, op_type, node in nodes:
        version = opsets.get(domain, 1)
        op = REGISTRY.get((domain, op_type))
        if op is None or version < op.since:
            q = f"{domain}.{op_type}" if domain else op_type
            seen.setdefault(q, (q, version, node))
    return list(seen.values())


def table() -> str:
    """The registry as a text table, one op per line (`webjit ops`)."""
    rows = [("op", "since", "types", "runs", "folds")]
    for op in sorted(REGISTRY.values(), key=lambda o: (o.domain, o.name)):
        since = max(op.since, MIN_OPSET) if op.domain == "" else op.since
        rows.append((op.qualified, f"opset {since}", " ".join(sorted(op.types)), op.run + (" (or view)" if op.view else ""),
                     "yes" if op.folds and op.run != "fold" else "-" if op.run == "fold" else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
