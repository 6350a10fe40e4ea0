"""Conv in 1-D and 2-D as a matmul over im2col patches, on both backends against onnxruntime, every variant:
strides, pads (explicit and SAME_UPPER/SAME_LOWER/VALID), dilations, odd channel counts, batch 2, with and without
bias, followed by GELU (the epilogue); the tiling form (kernel == stride: ViT's patch embedding) concatenates nothing."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import check_op, f32, make_model, node
from wasm.check import check_wasm

pytestmark = pytest.mark.native

CASES = {
    "1d pad 1": ((2, 5, 17), (7, 5, 3), dict(pads=[1, 1])),
    "1d stride 2 pad 1 (whisper)": ((1, 6, 20), (8, 6, 3), dict(pads=[1, 1], strides=[2])),
    "1d dilation 2": ((1, 3, 15), (4, 3, 3), dict(dilations=[2], pads=[2, 1])),
    "1d same upper stride 2": ((1, 3, 15), (4, 3, 4), dict(strides=[2], auto_pad="SAME_UPPER")),
    "2d patch (vit)": ((2, 3, 16, 16), (10, 3, 4, 4), dict(strides=[4, 4])),
    "2d asymmetric pads stride 2": ((1, 3, 9, 7), (5, 3, 3, 2), dict(pads=[1, 0, 2, 1], strides=[2, 1])),
    "2d same lower": ((1, 2, 6, 5), (3, 2, 3, 3), dict(auto_pad="SAME_LOWER", strides=[2, 2])),
    "2d valid no bias": ((1, 4, 5, 5), (6, 4, 2, 2), dict(auto_pad="VALID")),
    "1d 3 groups pad 2 (wav2vec2's positions)": ((2, 9, 13), (6, 3, 5), dict(pads=[2, 2], group=3)),
    "1d depthwise stride 2": ((1, 5, 16), (5, 1, 3), dict(strides=[2], pads=[1, 1], group=5)),
    "2d depthwise (convnext)": ((1, 4, 7, 7), (4, 1, 3, 3), dict(pads=[1, 1, 1, 1], group=4)),
    "2d 2 groups patch no bias": ((2, 6, 8, 8), (4, 3, 2, 2), dict(strides=[2, 2], group=2)),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_conv_matches_onnxruntime(case, backend):
    rng = np.random.default_rng(0)
    xs, ws, attrs = CASES[case]
    feeds = {"x": f32(rng, *xs)}
    bias = "no bias" not in case
    inits = {"w": f32(rng, *ws, scale=0.3), **({"b": f32(rng, ws[0])} if bias else {})}
    model = make_model([node("Conv", ["x", "w"] + (["b"] if bias else []), ["c"], **attrs),
                        node("Gelu", ["c"], ["y"])], feeds, {"y": np.float32}, inits, opset=20)
    plan = (check_op if backend == "webgpu" else check_wasm)(model, feeds)
    kinds = [k.kind for k in plan.kernels]
    assert "matmul" in kinds
    if "vit" in case:  # the patches are a reordering of the input: at most one copy of it, no concatenation
        assert kinds.count("concat") == 0 and kinds.count("elementwise") <= 2, kinds
