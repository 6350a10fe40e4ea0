"""Every op webjit declares (webjit/ops.py), for every element type it declares, on both native backends, against
onnxruntime on the same one-node graph.

`CASES` holds one generator per declared op; the first test checks that the two lists are the same, so an op added
to the registry without a case here (or a case for an op that is not declared) fails. Each generator gets an
element type and returns the node's inputs: graph inputs (fed at run time) and initializers (inputs that decide a
shape, and weights). The checks:

1. the graph compiles and runs on WebGPU (wgpu on lavapipe) and on WebAssembly (wasmtime), and every output matches
   the reference: onnxruntime's CPU provider with graph optimizations off, or, where onnxruntime has no kernel for
   that element type, ONNX's reference evaluator. Floats to 1e-4, integers and bools exactly.
2. the same graph with every input an initializer: an op declared `folds` is evaluated at compile time (no kernel
   is left); any other op runs in a kernel and still matches. Folding never blocks a compile.
Fold-only ops (Shape, Range, If, ...) are checked through the second form only.

Inputs are odd-sized (5, 7, 13 along the last axis) so that vectorised and tiled code meets remainders.
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper as oh, numpy_helper as nh

from helpers import mismatch
from webjit import ops

pytestmark = pytest.mark.native
MS = ops.MS
ATOL = RTOL = 1e-4
RNG_SEED = 7
NP = {"float32": np.float32, "int32": np.int32, "int64": np.int64, "bool": np.bool_, "int8": np.int8,
      "uint8": np.uint8}


class In:
    """One node input: a graph input (fed at run time) or an initializer (const=True)."""

    def __init__(self, value, const: bool = False):
        self.value, self.const = np.asarray(value), const


def feed(v):
    return In(v)


def const(v):
    return In(v, const=True)


class Case:
    def __init__(self, inputs, attrs=None, outs=None, opset=18):
        self.inputs = inputs                  # list of In (None: an absent optional input)
        self.attrs = dict(attrs or {})
        self.outs = outs                      # element type per output (None: one output of input 0's type)
        self.opset = opset


def values(rng, dtype, shape=(2, 3, 7), lo=-4.0, hi=4.0, nonzero=False):
    """Random values of a dtype: floats in [lo, hi), integers in [-9, 9], bools half true."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in ("int32", "int64", "int8"):
        v = rng.integers(-9, 10, shape)
    elif dtype == "uint8":
        v = rng.integers(0, 256, shape)
    else:
        v = rng.uniform(lo, hi, shape)
    v = v.astype(NP[dtype])
    if nonzero:
        v[v == 0] = 1
    return v


# -- case generators, by family ----------------------------------------------------------------------------------
def unary(lo=-4.0, hi=4.0, outs=None, opset=18, **attrs):
    return lambda rng, t: Case([feed(values(rng, t, lo=lo, hi=hi))], attrs, outs and [outs], opset)


def binary(nonzero=False, outs=None, n=2, lo=-4.0, hi=4.0, **attrs):
    def make(rng, t):
        shapes = [(2, 3, 7), (3, 1), (7,)][:n]
        return Case([feed(values(rng, t, s, lo, hi, nonzero=nonzero and i > 0)) for i, s in enumerate(shapes)],
                     attrs, outs and [outs])
    return make


def compare(rng, t):
    a = values(rng, t)
    b = values(rng, t, (3, 7))
    if t == "float32":
        a, b = np.round(a), np.round(b)  # so that some elements are equal
    return Case([feed(a), feed(b)], outs=["bool"])


def special_floats(rng, t):
    x = values(rng, t)
    x.flat[:4] = [np.nan, np.inf, -np.inf, 0.0]
    return x


def _pow(rng, t):
    if t == "float32":
        return Case([feed(values(rng, t, lo=0.1, hi=3.0)), feed(values(rng, t, (3, 1), -2.0, 2.0))])
    return Case([feed(values(rng, t)), feed(np.abs(values(rng, t, (3, 1))) % 4)])


def _mod(rng, t):
    if t == "float32":  # ONNX requires fmod=1 for floats
        return Case([feed(values(rng, t)), feed(values(rng, t, (3, 1), 0.5, 3.0))], {"fmod": 1})
    return Case([feed(values(rng, t)), feed(values(rng, t, (3, 1), nonzero=True))])


def _where(rng, t):
    return Case([feed(values(rng, "bool", (3, 7))), feed(values(rng, t)), feed(values(rng, t, (7,)))], outs=[t])


def _cast(rng, t):
    to = {"float32": "int32", "int32": "float32", "int64": "float32", "bool": "float32"}[t]
    return Case([feed(values(rng, t))], {"to": oh.np_dtype_to_tensor_dtype(np.dtype(NP[to]))}, [to])


def _cast_like(rng, t):
    to = {"float32": "int64", "int32": "float32", "int64": "bool", "bool": "int32"}[t]
    return Case([feed(values(rng, t)), const(values(rng, to, (1,)))], outs=[to])


def _clip(rng, t):
    lo, hi = (np.array(-1.5, NP[t]), np.array(2.0, NP[t])) if t == "float32" else (np.array(-3, NP[t]), np.array(4, NP[t]))
    return Case([feed(values(rng, t)), const(lo), const(hi)])


def _trilu(rng, t):
    return Case([feed(values(rng, t, (2, 5, 7))), const(np.array(1, np.int64))], {"upper": 0})


def _reshape(rng, t):
    return Case([feed(values(rng, t)), const(np.array([7, -1], np.int64))])


def _slice(rng, t):
    return Case([feed(values(rng, t, (4, 5, 7))), const(np.array([1, 6], np.int64)), const(np.array([4, 0], np.int64)),
                 const(np.array([0, 2], np.int64)), const(np.array([2, -2], np.int64))])


def _gather(rng, t):
    return Case([feed(values(rng, t, (5, 7))), feed(np.array([[4, 0], [-1, 2]], np.int64))], {"axis": 1})


def _gather_elements(rng, t):
    return Case([feed(values(rng, t, (3, 7))), feed(rng.integers(-3, 3, (3, 5)).astype(np.int64))], {"axis": 0})


def _gather_nd(rng, t):
    return Case([feed(values(rng, t, (4, 5, 7))), feed(np.array([[3, 1], [0, 4], [2, 2]], np.int64))])


def _scatter_nd(rng, t):
    return Case([feed(values(rng, t, (4, 5, 7))), const(np.array([[3, 1], [0, 4]], np.int64)),
                 feed(values(rng, t, (2, 7)))])


def _reduce(rng, t):
    lo = 0.5 if t == "float32" else -4.0  # ReduceLogSum and ReduceL2 of positive floats
    x = values(rng, t, (3, 5, 7), lo=lo)
    if t != "float32":
        x = x % 3 + 1  # ReduceProd of ints stays small
    return Case([feed(x), const(np.array([0, 2], np.int64))], {"keepdims": 1})


def _layer_norm(rng, t):
    return Case([feed(values(rng, t, (2, 5, 13))), const(values(rng, t, (13,))), const(values(rng, t, (13,)))],
                {"axis": -1, "epsilon": 1e-5})


def _conv(rng, t):
    return Case([feed(values(rng, t, (1, 3, 9, 11))), const(values(rng, t, (4, 3, 3, 3), -0.5, 0.5)),
                 const(values(rng, t, (4,)))], {"strides": [2, 1], "pads": [1, 0, 1, 2], "dilations": [1, 2]})


def _dequantize(rng, t):
    x = values(rng, t, (5, 7)) if t != "int32" else rng.integers(-300, 300, (5, 7)).astype(np.int32)
    zp = [const(np.array(3, NP[t]))] if t != "int32" else []
    return Case([feed(x), const(np.array(0.05, np.float32)), *zp], outs=["float32"])


def _quantize(rng, t):
    return Case([feed(values(rng, t)), const(np.array(0.03, np.float32)), const(np.array(128, np.uint8))],
                outs=["uint8"])


def _matmul_integer(rng, t):
    a = values(rng, t, (2, 5, 13))
    b = values(rng, "int8", (13, 7))
    return Case([feed(a), const(b), const(np.array(3, NP[t])), const(np.array(0, np.int8))], outs=["int32"])


def _conv_integer(rng, t):
    return Case([feed(values(rng, t, (1, 3, 9, 11))), const(values(rng, "int8", (4, 3, 3, 3))),
                 const(np.array(5, NP[t])), const(np.array(0, np.int8))],
                {"strides": [2, 1], "pads": [1, 0, 1, 2]}, outs=["int32"])


def _matmul_nbits(rng, t):
    k, n, block = 64, 7, 32
    packed = rng.integers(0, 256, (n, k // block, block // 2)).astype(np.uint8)
    scales = rng.uniform(0.01, 0.1, (n * (k // block),)).astype(np.float32)
    return Case([feed(values(rng, t, (2, 3, k))), const(packed), const(scales)],
                {"K": k, "N": n, "bits": 4, "block_size": block})


def _if(rng, t):
    def branch(op):
        return oh.make_graph([oh.make_node(op, ["x0"], ["r"])], op, [], [oh.make_tensor_value_info("r", 1, None)])
    return Case([const(np.array(True))], {"then_branch": branch("Relu"), "else_branch": branch("Neg")},
                outs=["float32"])


def _embed_layer_norm(rng, t):
    ids = rng.integers(0, 30, (2, 9)).astype(np.int32)
    return Case([feed(ids), feed(np.zeros_like(ids)), const(values(rng, t, (30, 16))), const(values(rng, t, (9, 16))),
                 const(values(rng, t, (2, 16))), const(values(rng, t, (16,))), const(values(rng, t, (16,))),
                 feed(np.ones_like(ids))], {"epsilon": 1e-5}, outs=["float32", "int32"])


def _attention(rng, t):
    x = values(rng, t, (2, 9, 15), -1, 1)
    mask = np.ones((2, 9), np.int32)
    mask[1, -3:] = 0
    return Case([feed(x), const(values(rng, t, (15, 45), -0.3, 0.3)), const(values(rng, t, (45,), -0.3, 0.3)),
                 feed(mask)], {"num_heads": 3})


def _skip(n_extra, **attrs):
    def make(rng, t):
        x = [feed(values(rng, t, (2, 5, 13))), feed(values(rng, t, (2, 5, 13)))]
        return Case(x + [const(values(rng, t, (13,))) for _ in range(n_extra)], {"epsilon": 1e-5, **attrs})
    return make


def _simplified(rng, t):
    return Case([feed(values(rng, t, (2, 5, 13))), const(values(rng, t, (13,)))], {"epsilon": 1e-5, "axis": -1})


def _with_bias(rng, t):
    return Case([feed(values(rng, t, (2, 5, 13))), const(values(rng, t, (13,)))])


CASES = {
    **{op: unary() for op in "Exp Erf Tanh Sigmoid Relu Sin Cos Floor Ceil Round Softplus Abs Neg Sign Not".split()},
    "Sqrt": unary(0.0, 9.0), "Log": unary(0.05, 9.0), "Reciprocal": unary(0.5, 4.0),
    "LeakyRelu": unary(), "Elu": unary(), "HardSigmoid": unary(),  # their default attributes (test_attributes below)
    "HardSwish": unary(), "Mish": unary(), "Gelu": unary(opset=20, approximate="tanh"),
    "IsNaN": lambda rng, t: Case([feed(special_floats(rng, t))], outs=["bool"]),
    "IsInf": lambda rng, t: Case([feed(special_floats(rng, t))], {"detect_negative": 0}, outs=["bool"]),
    "Clip": _clip, "Trilu": _trilu,
    **{op: binary() for op in "Add Sub Mul Max Min And Or Xor".split()},
    "Div": binary(nonzero=True), "Pow": _pow, "Mod": _mod, "Sum": binary(n=3), "Mean": binary(n=3),
    **{op: compare for op in "Equal Less Greater LessOrEqual GreaterOrEqual".split()},
    "Where": _where, "Cast": _cast, "CastLike": _cast_like,
    "Identity": unary(), "Dropout": unary(), "Reshape": _reshape,
    "Flatten": lambda rng, t: Case([feed(values(rng, t, (2, 3, 7)))], {"axis": 2}),
    "Transpose": lambda rng, t: Case([feed(values(rng, t, (2, 3, 7)))], {"perm": [2, 0, 1]}),
    "Split": lambda rng, t: Case([feed(values(rng, t)), const(np.array([2, 5], np.int64))], {"axis": -1},
                                 outs=[t, t]),
    "Squeeze": lambda rng, t: Case([feed(values(rng, t, (2, 1, 7))), const(np.array([1], np.int64))]),
    "Unsqueeze": lambda rng, t: Case([feed(values(rng, t)), const(np.array([0, 3], np.int64))]),
    "Slice": _slice, "Expand": lambda rng, t: Case([feed(values(rng, t, (3, 1))), const(np.array([2, 3, 7], np.int64))]),
    "Gather": _gather, "Concat": lambda rng, t: Case([feed(values(rng, t)), feed(values(rng, t, (2, 5, 7)))], {"axis": 1}),
    "Tile": lambda rng, t: Case([feed(values(rng, t, (2, 5))), const(np.array([2, 3], np.int64))]),
    "GatherElements": _gather_elements, "GatherND": _gather_nd, "ScatterND": _scatter_nd,
    "CumSum": lambda rng, t: Case([feed(values(rng, t)), const(np.array(-1, np.int64))], {"reverse": 1}),
    "MatMul": lambda rng, t: Case([feed(values(rng, t, (5, 13))), const(values(rng, t, (13, 7)))]),
    "Gemm": lambda rng, t: Case([feed(values(rng, t, (5, 13))), const(values(rng, t, (7, 13))), const(values(rng, t, (7,)))],
                                {"transB": 1, "alpha": 0.5}),
    "Conv": _conv,
    "Softmax": unary(axis=1), "LogSoftmax": unary(axis=-1), "LayerNormalization": _layer_norm,
    **{op: _reduce for op in ops.names("kernel") if op.startswith("Reduce")},
    "DequantizeLinear": _dequantize, "QuantizeLinear": _quantize,
    "DynamicQuantizeLinear": lambda rng, t: Case([feed(values(rng, t))], outs=["uint8", "float32", "uint8"]),
    "MatMulInteger": _matmul_integer, "ConvInteger": _conv_integer, (MS, "MatMulNBits"): _matmul_nbits,
    "Constant": lambda rng, t: Case([], {"value": nh.from_array(values(rng, t, (3, 5)))}, outs=[t]),
    "Shape": lambda rng, t: Case([feed(values(rng, t))], {"start": 1}, outs=["int64"]),
    "Size": lambda rng, t: Case([feed(values(rng, t))], outs=["int64"]),
    "NonZero": lambda rng, t: Case([const(values(rng, t, (3, 5)))], outs=["int64"]),
    "ConstantOfShape": lambda rng, t: Case([const(np.array([2, 3], np.int64))],
                                           {"value": nh.from_array(np.array([1.5], np.float32))}, outs=["float32"]),
    "Range": lambda rng, t: Case([const(np.array(v, NP[t])) for v in ((1, 20, 3) if t != "float32" else (0.5, 4.0, 0.75))]),
    "If": _if,
    (MS, "SkipLayerNormalization"): _skip(3), (MS, "SkipSimplifiedLayerNormalization"): _skip(1),
    "SimplifiedLayerNormalization": _simplified,
    (MS, "BiasGelu"): _with_bias, (MS, "FastGelu"): _with_bias, (MS, "Gelu"): unary(),
    (MS, "QuickGelu"): unary(alpha=1.702), (MS, "EmbedLayerNormalization"): _embed_layer_norm,
    (MS, "Attention"): _attention,
}
KEYS = {(k if isinstance(k, tuple) else ("", k)) for k in CASES}


def _case(key):
    return CASES[key] if key in CASES else CASES[key[1]]


# -- building and running ----------------------------------------------------------------------------------------
def build(key, case: Case, all_const: bool):
    """The one-node model and its feeds."""
    domain, op = key
    names = [f"x{i}" if i is not None else "" for i, x in enumerate(case.inputs)]
    feeds = {n: x.value for n, x in zip(names, case.inputs) if x is not None and not (x.const or all_const)}
    inits = [nh.from_array(x.value, n) for n, x in zip(names, case.inputs) if x is not None and (x.const or all_const)]
    if op == "If":  # the branches read an outer value
        inits.append(nh.from_array(np.linspace(-1, 1, 7, dtype=np.float32), "x0_outer"))
        case.attrs = {k: _outer(v) for k, v in case.attrs.items()}
    types = case.outs or [str(case.inputs[0].value.dtype)]
    outs = [f"y{i}" for i in range(len(types))]
    node = oh.make_node(op, names, outs, name=f"the_{op.lower()}", domain=domain, **case.attrs)
    graph = oh.make_graph([node], "registry", [oh.make_tensor_value_info(n, oh.np_dtype_to_tensor_dtype(a.dtype), a.shape)
                                               for n, a in feeds.items()],
                          [oh.make_tensor_value_info(o, oh.np_dtype_to_tensor_dtype(np.dtype(NP[t])), None)
                           for o, t in zip(outs, types)], inits)
    opsets = [oh.make_opsetid("", case.opset)] + ([oh.make_opsetid(MS, 1)] if domain else [])
    return oh.make_model(graph, opset_imports=opsets, ir_version=9), feeds


def _outer(branch):
    """An If branch reading the graph's x0_outer (the If's own input x0 is the condition)."""
    if not isinstance(branch, onnx.GraphProto):
        return branch
    for n in branch.node:
        n.input[:] = ["x0_outer" if i == "x0" else i for i in n.input]
    return branch


def reference(model, feeds) -> dict[str, np.ndarray]:
    """onnxruntime, graph optimizations off; ONNX's reference evaluator where onnxruntime has no kernel."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    names = [o.name for o in model.graph.output]
    try:
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        if "NOT_IMPLEMENTED" not in str(e) and "implementation" not in str(e):
            raise
        from onnx.reference import ReferenceEvaluator
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(zip(names, ReferenceEvaluator(model).run(None, feeds)))
    return dict(zip(names, sess.run(names, feeds)))


def compile_plan(model, feeds):
    import webjit
    with tempfile.TemporaryDirectory(prefix="webjit-registry-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, str(path))
        return webjit.compile(path, values=feeds)


def run_both(plan, feeds, want, label):
    from webjit.native.wasm_runner import WasmRunner
    from webjit.native.wgpu_runner import WgpuRunner
    bad = []
    for backend, runner in (("webgpu", WgpuRunner), ("wasm", WasmRunner)):
        got = runner(plan).run(feeds)
        for name, w in want.items():
            msg = mismatch(name, got[name], np.asarray(w), ATOL, RTOL)
            if msg:
                bad.append(f"{label} on {backend}: {msg}")
    assert not bad, "\n".join(bad)


def _params():
    for key, op in sorted(ops.REGISTRY.items()):
        if key not in KEYS:
            continue
        for t in sorted(op.types):
            yield pytest.param(key, t, id=f"{op.qualified}-{t}")


# -- the tests ---------------------------------------------------------------------------------------------------
def test_every_declared_op_has_a_case_and_every_case_an_op():
    declared = set(ops.REGISTRY)
    assert declared - KEYS == set(), f"declared ops without a case: {sorted(declared - KEYS)}"
    assert KEYS - declared == set(), f"cases for ops webjit does not declare: {sorted(KEYS - declared)}"


def test_every_stage_takes_its_ops_from_the_registry():
    """The stage tables agree with the declarations: a shape rule for every op that has one, a lowering for every
    kernel op, a contrib rule for every contrib op, and nothing in a stage that is not declared."""
    from webjit import contrib, shapes
    from webjit.lower import REGISTRY as LOWERINGS
    from webjit.fuse.rewrite import ELEMENTWISE, VIEW_OPS
    declared = {op.name for op in ops.REGISTRY.values()}
    with_shape = {op.name for op in ops.REGISTRY.values() if op.shape != "none"}
    assert set(shapes.SHAPE_FNS) == with_shape
    assert ops.names("kernel") <= set(LOWERINGS)
    assert set(contrib.RULES) == {op.name for op in ops.REGISTRY.values() if op.run == "rewrite" and op.shape == "none"}
    assert ELEMENTWISE == ops.names("elementwise") and VIEW_OPS <= declared
    assert set(shapes.VALUE_INPUTS) <= declared and shapes.FOLD_ONLY == ops.names("fold")


@pytest.mark.parametrize("op", sorted(o.name for o in ops.ONNX.values() if o.defaults))
def test_attributes_given_and_defaulted(op):
    """An op's attributes given explicitly, and left to their ONNX defaults (cases above use the defaults)."""
    attrs = {k: v * 1.5 + 0.1 for k, v in ops.ONNX[op].defaults}
    model, feeds = build(("", op), unary(**attrs)(np.random.default_rng(RNG_SEED), "float32"), all_const=False)
    run_both(compile_plan(model, feeds), feeds, reference(model, feeds), f"{op} with {attrs}")


def test_webjit_ops_lists_every_declared_op(capsys):
    from webjit.cli import main
    assert main(["ops"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert listed == {op.qualified for op in ops.REGISTRY.values()}


@pytest.mark.parametrize("key,dtype", list(_params()))
def test_op_matches_onnxruntime_on_both_backends(key, dtype):
    op = ops.REGISTRY[key]
    if op.run == "fold":
        pytest.skip("evaluated at compile time only: see the all-constant test")
    case = _case(key)(np.random.default_rng(RNG_SEED), dtype)
    model, feeds = build(key, case, all_const=False)
    want = reference(model, feeds)
    plan = compile_plan(model, feeds)
    run_both(plan, feeds, want, f"{op.qualified} of {dtype}")


@pytest.mark.parametrize("key,dtype", list(_params()))
def test_op_on_constants_folds_or_runs_in_a_kernel(key, dtype):
    op = ops.REGISTRY[key]
    case = _case(key)(np.random.default_rng(RNG_SEED), dtype)
    model, feeds = build(key, case, all_const=True)
    want = reference(model, feeds)
    plan = compile_plan(model, {})
    if op.run == "rewrite":
        pass  # the ops it becomes decide
    elif op.folds:
        assert not plan.kernels, f"{op.qualified} is declared to fold, but the plan has {[k.name for k in plan.kernels]}"
    else:
        assert plan.kernels, f"{op.qualified} is declared not to fold, yet nothing runs"
    run_both(plan, {}, want, f"{op.qualified} of {dtype} on constants")
