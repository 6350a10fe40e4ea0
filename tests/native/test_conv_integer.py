"""ConvInteger in 1-D and 2-D, lowered to im2col patches of the centered activations and a quantized matmul, on
both backends against onnxruntime.

The ConvInteger cases compare int32 outputs exactly: the activations minus their zero point and the weights minus
theirs are integers, and their products are summed exactly (every partial sum here is far below 2^24). They cover
strides, explicit and automatic pads (padding is the zero point, so a padded position adds nothing), dilations,
int8 and uint8 weights, absent zero points, batch 2, and the tiling form (kernel == stride: ViT's patch embedding).

The quantize_dynamic cases run onnxruntime's own quantizer on small float Conv models (as the q8 ViT and Whisper
files are made): DynamicQuantizeLinear on the activations -> ConvInteger -> Cast -> Mul by the two scales -> Add of
the reshaped bias. webjit quantizes the activations at run time with onnxruntime's rounding, so the integers agree;
what may differ is float32 rounding in the scale and the quantization of an element that lies on a rounding tie,
either of which moves an output by about one quantization step of the activation times a weight. The bound is
therefore relative to the output's range: RANGE_FRACTION (0.2%) of max - min, about half an int8 step at that scale.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest

from helpers import check_op, compile_model, f32, make_model, node, reference
from wasm.check import check_wasm

pytestmark = pytest.mark.native

RANGE_FRACTION = 0.002
BACKENDS = ("webgpu", "wasm")

# name -> (x shape, weight shape, weight dtype, zero points (x, w) or None, attributes)
CASES = {
    "1d pad 1 stride 2 (whisper)": ((1, 6, 20), (8, 6, 3), np.int8, (131, 3), dict(pads=[1, 1], strides=[2])),
    "1d dilation 2 uint8 weight batch 2": ((2, 5, 17), (7, 5, 3), np.uint8, (7, 250), dict(dilations=[2], pads=[2, 1])),
    "1d same upper no zero points": ((1, 3, 15), (4, 3, 4), np.uint8, None, dict(strides=[2], auto_pad="SAME_UPPER")),
    "2d patch (vit)": ((2, 3, 16, 16), (10, 3, 4, 4), np.int8, (255, -128), dict(strides=[4, 4])),
    "2d asymmetric pads stride 2": ((1, 3, 9, 7), (5, 3, 3, 2), np.int8, (0, 0),
                                    dict(pads=[1, 0, 2, 1], strides=[2, 1])),
    "2d same lower": ((1, 2, 6, 5), (3, 2, 3, 3), np.uint8, (100, 128), dict(auto_pad="SAME_LOWER", strides=[2, 2])),
}


def integers(rng, shape, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def conv_integer_model(case: str):
    rng = np.random.default_rng(0)
    xs, ws, wdtype, zps, attrs = CASES[case]
    feeds = {"x": integers(rng, xs, np.uint8)}
    inits = {"w": integers(rng, ws, wdtype)}
    inputs = ["x", "w"]
    if zps is not None:
        inits.update(zx=np.array(zps[0], np.uint8), zw=np.array(zps[1], wdtype))
        inputs += ["zx", "zw"]
    model = make_model([node("ConvInteger", inputs, ["y"], **attrs)], feeds, {"y": np.int32}, inits, opset=13)
    return model, feeds


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_integer_matches_onnxruntime(case, backend):
    model, feeds = conv_integer_model(case)
    plan = (check_op if backend == "webgpu" else check_wasm)(model, feeds, atol=0, rtol=0)
    kinds = [k.kind for k in plan.kernels]
    assert "matmul" in kinds
    if "vit" in case:  # the patches are a view of the centered input: nothing is concatenated
        assert "concat" not in kinds, kinds


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_integer_with_a_zero_point_per_output_channel(backend):
    """ONNX allows one weight zero point per output channel; neither onnxruntime nor onnx.reference implements it,
    so the expected values are numpy's: (x - zx) correlated with (w - zw[o]), padded by 1, stride 2, in int64."""
    from webjit.native.wasm_runner import WasmRunner
    from webjit.native.wgpu_runner import WgpuRunner
    rng = np.random.default_rng(0)
    x, w, zw = integers(rng, (2, 6, 20), np.uint8), integers(rng, (8, 6, 3), np.int8), integers(rng, (8,), np.int8)
    model = make_model([node("ConvInteger", ["x", "w", "zx", "zw"], ["y"], pads=[1, 1], strides=[2])], {"x": x},
                       {"y": np.int32}, {"w": w, "zx": np.array(131, np.uint8), "zw": zw}, opset=13)
    xc = np.pad(x.astype(np.int64) - 131, ((0, 0), (0, 0), (1, 1)))
    wc = w.astype(np.int64) - zw[:, None, None]
    want = np.stack([np.einsum("nck,ock->no", xc[:, :, 2 * p:2 * p + 3], wc) for p in range(10)], -1)
    plan = compile_model(model, {"x": x})
    got = (WgpuRunner if backend == "webgpu" else WasmRunner)(plan).run({"x": x})["y"]
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


def float_conv(rng, xs, ws, attrs, activation):
    """A float Conv with bias (then `activation`), quantized by onnxruntime's quantize_dynamic."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    feeds = {"x": f32(rng, *xs)}
    inits = {"w": f32(rng, *ws, scale=0.3), "b": f32(rng, ws[0])}
    model = make_model([node("Conv", ["x", "w", "b"], ["c"], **attrs), node(activation, ["c"], ["y"])],
                       feeds, {"y": np.float32}, inits, opset=17)
    with tempfile.TemporaryDirectory(prefix="webjit-test-") as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "q8.onnx"
        onnx.save(model, str(src))
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        q8 = onnx.load(str(dst))
    assert "ConvInteger" in {n.op_type for n in q8.graph.node}
    return q8, feeds


QUANTIZED = {
    "1d (whisper's front end)": ((1, 12, 30), (16, 12, 3), dict(pads=[1, 1], strides=[2]), "Relu"),
    "2d patch embedding (vit)": ((1, 3, 16, 16), (24, 3, 4, 4), dict(strides=[4, 4]), "Sigmoid"),
    "2d padded": ((2, 4, 9, 8), (6, 4, 3, 3), dict(pads=[1, 1, 1, 1]), "Relu"),
}


@pytest.mark.parametrize("case", QUANTIZED)
@pytest.mark.parametrize("backend", BACKENDS)
def test_quantize_dynamic_conv_matches_onnxruntime(case, backend):
    xs, ws, attrs, activation = QUANTIZED[case]
    model, feeds = float_conv(np.random.default_rng(1), xs, ws, attrs, activation)
    want = reference(model, feeds)["y"]
    bound = RANGE_FRACTION * float(np.ptp(want))
    plan = (check_op if backend == "webgpu" else check_wasm)(model, feeds, atol=bound, rtol=0, all_variants=False)
    kinds = [k.kind for k in plan.kernels]
    # the Cast is the matmul's epilogue: one kernel follows it (the scales, the bias and the activation)
    assert kinds[kinds.index("matmul") + 1:] == ["elementwise"], kinds
    if "vit" in case:
        assert "concat" not in kinds, kinds


def test_grouped_conv_integer_is_refused_naming_the_node():
    from webjit.errors import UnsupportedOp
    rng = np.random.default_rng(0)
    feeds = {"x": integers(rng, (1, 4, 10), np.uint8)}
    model = make_model([node("ConvInteger", ["x", "w"], ["y"], group=2, name="grouped")], feeds, {"y": np.int32},
                       {"w": integers(rng, (6, 2, 3), np.int8)}, opset=13)
    with pytest.raises(UnsupportedOp, match="node 'grouped': op ConvInteger .* one group"):
        compile_model(model, feeds)
