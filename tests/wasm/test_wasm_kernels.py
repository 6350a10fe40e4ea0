"""Every variant of every WebAssembly kernel kind against onnxruntime, on awkward shapes.

The cases are the WebGPU kernel tests' own (tests/native/test_kernels.py: M=77, K=1280, N=320 projections, 33-token
attention with head dims 64 and 80, odd row lengths, strided and broadcast views, int64 and bool tensors); only the
backend differs. `check_wasm` sweeps each kernel's WebAssembly space, relaxed and fixed SIMD forms, and runs the
defaults on an engine without relaxed SIMD. No GPU needed.
"""
from __future__ import annotations

import numpy as np
import pytest

from native.test_kernels import ATTENTION, ELEMENTWISE, INDEXING, MATMUL, NORM, SOFTMAX, F, f32, make_model, node
from wasm.check import check_wasm

CASES = {"matmul": MATMUL, "attention": ATTENTION, "norm": NORM, "softmax": SOFTMAX, "elementwise": ELEMENTWISE,
         "indexing": INDEXING}


@pytest.mark.parametrize("case", [pytest.param(c, id=f"{group}-{c.__name__}") for group, cases in CASES.items()
                                  for c in cases])
def test_every_wasm_variant_matches_onnxruntime(case):
    model, feeds, options = case(np.random.default_rng(0))
    options.pop("all_variants", None)  # a limit for the WebGPU sweep (shader compiles on lavapipe); here, sweep all
    check_wasm(model, feeds, **options)


def test_split_weights_run_on_wasm(monkeypatch):
    """Weights split for WebGPU's binding limit (an embedding table by rows, a MatMul weight by columns) keep working
    on the CPU backend, where they are ordinary regions of the one linear memory."""
    from webjit.space import DEFAULT_LIMITS
    monkeypatch.setitem(DEFAULT_LIMITS, "maxStorageBufferBindingSize", 16384)
    rng = np.random.default_rng(0)
    ids = rng.integers(-300, 300, (2, 9)).astype(np.int64)
    ids[0, :4] = [0, 99, 100, -1]
    nodes = [node("Gather", ["table", "ids"], ["e"], axis=0), node("MatMul", ["e", "w"], ["y"])]
    inits = {"table": f32(rng, 300, 40), "w": f32(rng, 40, 200, scale=0.2)}
    check_wasm(make_model(nodes, {"ids": ids}, {"y": F}, inits), {"ids": ids},
               expect_kinds=["gather", "matmul", "matmul", "concat"])


def test_division_by_a_constant_becomes_a_multiplication_and_still_matches():
    """Float division by a constant is rendered as a multiplication by its reciprocal, except where the reciprocal
    is not a normal f32 (division by 0 or by a denormal): results still match onnxruntime, infinities included."""
    from webjit.render_wasm import layout, render
    from webjit.space_wasm import retarget
    from wasm.check import check_wasm
    rng = np.random.default_rng(0)
    x = np.concatenate([f32(rng, 61, scale=3.0), np.array([0.0, -0.0, np.inf, -np.inf, 3e38], F)])
    consts = {"three": np.array(3.0, F), "zero": np.array(0.0, F), "tiny": np.array(1e-40, F)}
    nodes = [node("Div", ["x", c], [f"by_{c}"]) for c in consts]
    plan = check_wasm(make_model(nodes, {"x": x}, {f"by_{c}": F for c in consts}, consts), {"x": x})
    plan = retarget(plan)
    divides = {k.outputs[0]: "f32x4.div" in render(k, k.space[0], plan.dtypes, layout(plan)) for k in plan.kernels}
    assert divides == {"by_three": False, "by_zero": True, "by_tiny": True}


@pytest.mark.parametrize("k, n", [(37, 1030), (2, 3), (16, 257), (53, 64)])
def test_one_row_matmuls_in_every_gemv_and_tile_form_match_onnxruntime(k, n):
    """Decode-step matmuls, [1, 1, K] x [K, N] + bias + residual: the gemv forms' blocks of NB columns end in a
    partial block and a partial vector (N = 1030, 257, 3), and K leaves a remainder after the R-row steps."""
    rng = np.random.default_rng(k * n)
    x, w, b, r = f32(rng, 1, 1, k), f32(rng, k, n), f32(rng, n), f32(rng, 1, 1, n)
    nodes = [node("MatMul", ["x", "w"], ["mm"]), node("Add", ["mm", "b"], ["s"]), node("Add", ["s", "r"], ["y"])]
    plan = check_wasm(make_model(nodes, {"x": x, "r": r}, {"y": F}, {"w": w, "b": b}), {"x": x, "r": r},
                      expect_kinds=["matmul"])
    from webjit.space_wasm import space
    keys = [v.key for v in space(plan.kernels[0])]
    assert keys[0].startswith("NB") and any(key.startswith("KB") for key in keys)


def test_batched_one_row_matmuls_use_the_gemv_form_per_batch():
    rng = np.random.default_rng(5)
    x, w = f32(rng, 3, 1, 40), f32(rng, 3, 40, 300)
    nodes = [node("MatMul", ["x", "w"], ["y"])]
    check_wasm(make_model(nodes, {"x": x}, {"y": F}, {"w": w}), {"x": x}, expect_kinds=["matmul"])


def test_one_row_matmuls_read_reversed_operands():
    """A and B through negative strides (Slices with step -1) into the gemv forms: memarg offsets cannot be negative,
    so a step's rows must be addressed by adding to the pointer."""
    rng = np.random.default_rng(7)
    x, w = f32(rng, 1, 40), f32(rng, 40, 33)
    rev = lambda name, out, axis: node("Slice", [name, f"{out}_s", f"{out}_e", f"{out}_a", f"{out}_t"], [out])  # noqa: E731
    consts = {"xr_s": np.array([-1]), "xr_e": np.array([-100]), "xr_a": np.array([1]), "xr_t": np.array([-1]),
              "wr_s": np.array([-1]), "wr_e": np.array([-100]), "wr_a": np.array([0]), "wr_t": np.array([-1])}
    nodes = [rev("x", "xr", 1), rev("w", "wr", 0), node("MatMul", ["xr", "wr"], ["y"])]
    check_wasm(make_model(nodes, {"x": x}, {"y": F}, {"w": w, **consts}), {"x": x})
