"""Golden kernels: each kernel kind renders a fixed small case. A change to generated code shows up as a diff.

After an intended change, regenerate with WEBJIT_UPDATE_GOLDEN=1 and review the diff of tests/golden/.
"""
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import webjit
from webjit.render_wgsl import render

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
F, I = TensorProto.FLOAT, TensorProto.INT64
rng = np.random.default_rng(0)


def _w(name, *shape):
    return helper.make_tensor(name, F, shape, rng.standard_normal(shape).astype(np.float32).ravel())


def _model(nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_tensor_value_info(n, F if len(o) < 2 else o[1], None) for n, *o in outputs],
                          list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])


CASES = {
    # kind -> (model, input shapes)
    "matmul": (_model([helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Add", ["y", "b"], ["z"]),
                       helper.make_node("Gelu", ["z"], ["out"])],
                      [("x", F, [2, 7, 16])], [("out",)], [_w("w", 16, 12), _w("b", 12)]), {}),
    "attention": (_model([helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
                          helper.make_node("MatMul", ["q", "kt"], ["s"]),
                          helper.make_node("Mul", ["s", "scale"], ["s2"]),
                          helper.make_node("Add", ["s2", "mask"], ["s3"]),
                          helper.make_node("Softmax", ["s3"], ["p"], axis=-1),
                          helper.make_node("MatMul", ["p", "v"], ["out"])],
                         [("q", F, [1, 2, 5, 8]), ("k", F, [1, 2, 5, 8]), ("v", F, [1, 2, 5, 8]),
                          ("mask", F, [1, 1, 1, 5])], [("out",)],
                         [helper.make_tensor("scale", F, [], [0.35])]), {}),
    "norm": (_model([helper.make_node("LayerNormalization", ["x", "g", "b"], ["out"], epsilon=1e-5)],
                    [("x", F, [3, 10])], [("out",)], [_w("g", 10), _w("b", 10)]), {}),
    "softmax": (_model([helper.make_node("Softmax", ["x"], ["out"], axis=1)], [("x", F, [2, 5, 3])], [("out",)]), {}),
    "elementwise": (_model([helper.make_node("Greater", ["a", "b"], ["c"]), helper.make_node("Tanh", ["a"], ["t"]),
                            helper.make_node("Where", ["c", "t", "b"], ["out"])],
                           [("a", F, [2, 3, 4]), ("b", F, [4])], [("out",)]), {}),
    "reduce": (_model([helper.make_node("ReduceMean", ["x", "axes"], ["out"], keepdims=0)], [("x", F, [2, 3, 4])],
                      [("out",)], [helper.make_tensor("axes", I, [2], [0, 2])]), {}),
    "gather": (_model([helper.make_node("Gather", ["table", "ids"], ["out"])], [("ids", I, [1, 6])], [("out",)],
                      [_w("table", 50, 8)]), {}),
    "gather_elements": (_model([helper.make_node("GatherElements", ["x", "i"], ["out"], axis=1)],
                               [("x", F, [3, 4]), ("i", I, [3, 2])], [("out",)]), {}),
    "gather_nd": (_model([helper.make_node("GatherND", ["x", "i"], ["out"])], [("x", F, [3, 4, 2]), ("i", I, [5, 2])],
                         [("out",)]), {}),
    "cumsum": (_model([helper.make_node("CumSum", ["x", "axis"], ["out"], exclusive=1)], [("x", F, [3, 5])],
                      [("out",)], [helper.make_tensor("axis", I, [], [1])]), {}),
    "scatter_nd": (_model([helper.make_node("ScatterND", ["x", "i", "u"], ["out"], reduction="add")],
                          [("x", F, [4, 3, 5]), ("u", F, [2, 3, 5])], [("out",)],
                          [helper.make_tensor("i", I, [2, 1], [2, -1])]), {}),
    "concat": (_model([helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Concat", ["r", "b"], ["out"], axis=1)],
                      [("a", F, [2, 3]), ("b", F, [2, 5])], [("out",)]), {}),
}


def _sources(kind, tmp_path):
    model, _ = CASES[kind]
    path = tmp_path / f"{kind}.onnx"
    onnx.save(model, path)
    plan = webjit.compile(path)
    kernels = [k for k in plan.kernels if k.kind == kind]
    assert len(kernels) == 1, [k.kind for k in plan.kernels]
    k = kernels[0]
    return k, {v.key: render(k, v, plan.dtypes) for v in k.space}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_default_variant_renders_as_the_golden_file(kind, tmp_path):
    k, sources = _sources(kind, tmp_path)
    got = sources[k.default().key]
    golden = GOLDEN / f"{kind}.wgsl"
    if os.environ.get("WEBJIT_UPDATE_GOLDEN"):
        golden.write_text(got)
    assert golden.exists(), f"no golden file for {kind}: run with WEBJIT_UPDATE_GOLDEN=1"
    assert got == golden.read_text()


# Variants beyond the default whose code is worth pinning: the matmul's workgroup-staged and direct forms.
MORE = {"matmul": {"staged": "BM32_BN32_S1_TK16_TM2_TN2", "direct": "BM32_BN32_S0_TK1_TM2_TN2"}}


@pytest.mark.parametrize("kind,form", [(k, f) for k, forms in MORE.items() for f in forms])
def test_other_forms_render_as_their_golden_files(kind, form, tmp_path):
    _, sources = _sources(kind, tmp_path)
    got = sources[MORE[kind][form]]
    golden = GOLDEN / f"{kind}.{form}.wgsl"
    if os.environ.get("WEBJIT_UPDATE_GOLDEN"):
        golden.write_text(got)
    assert golden.exists(), f"no golden file for {kind} ({form}): run with WEBJIT_UPDATE_GOLDEN=1"
    assert got == golden.read_text()


@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_variant_renders_distinct_code(kind, tmp_path):
    k, sources = _sources(kind, tmp_path)
    # the first line names the variant; the code after it must differ too, or the space holds duplicates
    bodies = {}
    for key, src in sources.items():
        bodies.setdefault(src.split("\n", 1)[1], []).append(key)
    same = [keys for keys in bodies.values() if len(keys) > 1]
    assert not same and len(sources) >= 1, f"variants that render the same code: {same}"


def test_names_from_the_model_never_reach_kernel_source(tmp_path):
    evil = "x*/ fn main() {} /*"
    g = helper.make_graph([helper.make_node("Relu", [evil], ["y"], name="n*/ @compute")], "g",
                          [helper.make_tensor_value_info(evil, F, [4])], [helper.make_tensor_value_info("y", F, None)])
    path = tmp_path / "evil.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), path)
    plan = webjit.compile(path)
    for k in plan.kernels:
        for v in k.space:
            src = render(k, v, plan.dtypes)
            assert evil not in src and "*/" not in src and "n*/" not in src
