"""Golden WebAssembly kernels: each kind renders the same small cases as the WebGPU goldens (tests/unit), into
tests/golden/wasm/<kind>.wat, so a change to generated code shows up as a diff. Regenerate after an intended
change with WEBJIT_UPDATE_GOLDEN=1 and review the diff."""
import os
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

import webjit
from unit.test_golden_kernels import CASES
from webjit.render_wasm import layout, render
from webjit.space_wasm import retarget

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "wasm"


def _sources(kind, tmp_path):
    model, _ = CASES[kind]
    path = tmp_path / f"{kind}.onnx"
    onnx.save(model, path)
    plan = retarget(webjit.compile(path))
    lay = layout(plan)
    kernels = [k for k in plan.kernels if k.kind == kind]
    assert len(kernels) == 1, [k.kind for k in plan.kernels]
    k = kernels[0]
    return k, {v.key: render(k, v, plan.dtypes, lay) for v in k.space}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_default_variant_renders_as_the_golden_file(kind, tmp_path):
    k, sources = _sources(kind, tmp_path)
    got = sources[k.default().key]
    golden = GOLDEN / f"{kind}.wat"
    if os.environ.get("WEBJIT_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(got)
    assert golden.exists(), f"no golden file for {kind}: run with WEBJIT_UPDATE_GOLDEN=1"
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
    evil = 'x) (func $evil) ;; "'
    g = helper.make_graph([helper.make_node("Relu", [evil], ["y"], name="n) (export \"evil\"")], "g",
                          [helper.make_tensor_value_info(evil, TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "evil.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), path)
    plan = retarget(webjit.compile(path))
    for k in plan.kernels:
        for v in k.space:
            src = render(k, v, plan.dtypes, layout(plan))
            assert "evil" not in src and '"' not in src
