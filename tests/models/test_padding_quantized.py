"""A dynamically quantized model (quantize_dynamic's DynamicQuantizeLinear scales activations by the whole tensor's
range) is length-bucketed once padded rows are zeroed before each DynamicQuantizeLinear (webjit/padding.py): the
build's own check with onnxruntime proves, on the rewritten file, that padding leaves the real positions as they
are, where the unchanged file fails it."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.models

hub = pytest.importorskip("demo_models.hub")


def test_a_q8_encoder_builds_with_length_buckets_and_its_padded_classes_match_onnxruntime(tmp_path):
    import onnxruntime as ort
    import webjit
    from webjit.native.wasm_runner import WasmRunner
    from webjit.padding import masked_quantization
    from webjit.shape_classes import PaddingChanges, check_padding, input_axes
    from webjit.onnx_import import import_onnx
    model = hub.get("bert") / "onnx/model_quantized.onnx"
    out = webjit.build(hub.get("bert"), tmp_path / "b", dtype="q8")
    m = json.loads((out / "manifest.json").read_text())
    assert [d["buckets"] for d in m["dynamic"]["dims"]] == [[16, 32, 64, 128]]
    # the unchanged file fails the check the rewritten one passed
    rng = np.random.default_rng(0)
    feeds = {"input_ids": rng.integers(1, 1000, (1, 32)), "attention_mask": np.ones((1, 32), np.int64),
             "token_type_ids": np.zeros((1, 32), np.int64)}
    g = import_onnx(model)
    with pytest.raises(PaddingChanges):
        check_padding(model, feeds, g.inputs, input_axes(g), {"sequence_length": [16, 32]},
                      {o: [None, "sequence_length", None] for o in g.outputs})
    # a 9-token input padded to the 16 class gives onnxruntime's unpadded output at its 9 rows
    short = {k: v[:, :9] for k, v in feeds.items()}
    padded = {k: np.pad(v, ((0, 0), (0, 7))) for k, v in short.items()}
    with masked_quantization(model, g.inputs, 16) as rewritten:
        plan = webjit.compile(rewritten, values=padded)
    got = WasmRunner(plan).run(padded)
    want = dict(zip([o.name for o in ort.InferenceSession(str(model)).get_outputs()],
                    ort.InferenceSession(str(model)).run(None, short)))
    name = plan.outputs[0]
    np.testing.assert_allclose(got[name][:, :9], want[name], atol=2e-3)
