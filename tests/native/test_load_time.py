"""Load-time kernels: work on constants that the folder leaves to kernels (a MatMul of two weights too large to
fold, ops it cannot evaluate, a Gather from such a result by constant indices) runs once, when the runner loads the
plan, into buffers of its own outside the arena, on wgpu and on wasmtime. Expected values are onnxruntime's."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import POISON, check_op, compile_model, f32, i64, make_model, mismatch, node, reference
from wasm.check import check_wasm
from webjit.fold import MAX_FOLDED_MATMUL
from webjit.render_wasm import layout
from webjit.space_wasm import retarget

F = np.float32
RUNS = 3


def load_time_model(rows: int = 3):
    """x [rows, 64] -> y = x @ (a @ b) + softmax(leaky_relu(c)) + elu(table)[idx], and u = tanh(softmax(...)).
    a @ b is beyond what the folder multiplies, LeakyRelu, Softmax and Elu are ops it leaves to kernels, and the
    Gather reads a kernel's output: all of it reads only constants. u is a graph output, so its kernel runs every
    time. Returns the model and its feeds."""
    rng = np.random.default_rng(0)
    x = f32(rng, rows, 64)
    inits = {"a": f32(rng, 64, 32, scale=0.3), "b": f32(rng, 32, 64, scale=0.3), "c": f32(rng, 1, 64),
             "table": f32(rng, 10, 64), "idx": i64(7)}
    assert 64 * 32 * 64 > MAX_FOLDED_MATMUL
    nodes = [node("MatMul", ["a", "b"], ["ab"]), node("MatMul", ["x", "ab"], ["y0"]),
             node("LeakyRelu", ["c"], ["c2"], alpha=0.1), node("Softmax", ["c2"], ["s"], axis=-1),
             node("Elu", ["table"], ["t2"]), node("Gather", ["t2", "idx"], ["g"], axis=0),
             node("Add", ["y0", "s"], ["y1"]), node("Add", ["y1", "g"], ["y"]), node("Tanh", ["s"], ["u"])]
    return make_model(nodes, {"x": x}, {"y": F, "u": F}, inits), {"x": x}


@pytest.fixture(scope="module")
def case():
    model, feeds = load_time_model()
    return model, feeds, compile_model(model, feeds), reference(model, feeds)


def check(got: dict, want: dict, label: str) -> None:
    assert set(got) == set(want)
    for name, w in want.items():
        msg = mismatch(name, got[name], w, 1e-4, 1e-4)
        assert msg is None, f"{label}: {msg}"


def runners(plan):
    from webjit.native.wasm_runner import WasmRunner
    from webjit.native.wgpu_runner import WgpuRunner
    return {"wgpu": lambda: WgpuRunner(plan), "wasm": lambda: WasmRunner(plan)}


def wipe_weights(name: str, runner) -> None:
    """Overwrite every weight with zeros and the arena with NaNs."""
    plan = runner.plan
    if name == "wgpu":
        q = runner.device.queue
        for b in runner.weights.values():
            q.write_buffer(b, 0, bytes(b.size))
        for b in runner.arena:
            q.write_buffer(b, 0, np.full(b.size // 4, POISON, np.uint32).tobytes())
    else:
        for n, arr in plan.weights.items():
            runner._view(n, arr.size)[...] = 0
        for n in plan.slots:
            runner._view(n, int(np.prod(plan.shapes[n]))).view(np.uint32)[...] = POISON


def test_work_on_constants_the_folder_leaves_to_kernels_runs_at_load_and_matches_onnxruntime(case):
    model, feeds, plan, _ = case
    assert plan.load >= 4, [k.kind for k in plan.kernels]
    once = plan.kernels[:plan.load]
    assert {"matmul", "gather", "softmax"} <= {k.kind for k in once}
    assert not any(o in plan.outputs for k in once for o in k.outputs)  # a run reads its outputs from the arena
    check_op(model, feeds, all_variants=False)  # poisons the arena before each run: loaded values live elsewhere
    check_wasm(model, feeds, all_variants=False)


@pytest.mark.parametrize("backend", ["wgpu", "wasm"])
def test_load_time_kernels_run_once_and_no_run_reads_the_weights_again(case, backend):
    _, feeds, plan, want = case
    every_run = plan.kernels[plan.load:]
    assert not any(n in plan.weights for k in every_run for n in k.inputs), "the wiping below would prove nothing"
    runner = runners(plan)[backend]()
    assert runner.load_runs == 1
    check(runner.run(feeds), want, "first run")
    wipe_weights(backend, runner)  # a run that ran a load-time kernel again would compute from zeros
    for r in range(RUNS):
        check(runner.run(feeds), want, f"run {r + 2} after the weights were wiped")
    assert runner.load_runs == 1


def test_loaded_values_live_outside_the_arena_and_the_inputs(case):
    _, _, plan, _ = case
    assert set(plan.loaded) == {o for k in plan.kernels[:plan.load] for o in k.outputs}
    assert not set(plan.loaded) & set(plan.slots)
    assert all(plan.where(n) == "loaded" for n in plan.loaded)
    lay = layout(retarget(plan))
    regions = [(lay.offsets[n], plan.loaded[n]) for n in plan.loaded]
    others = [(lay.offsets[n], 4 * int(np.prod(plan.shapes[n]))) for n in [*plan.inputs, *plan.slots]]
    for at, size in regions:
        for start, n in others:
            assert at + size <= start or start + n <= at, "a loaded value overlaps an input or the arena"


@pytest.mark.parametrize("backend", ["wgpu", "wasm"])
def test_a_load_time_kernel_given_another_variant_runs_again_before_the_next_run(case, backend):
    from webjit.native.wgpu_runner import device_limits
    from webjit.space import prune
    _, feeds, plan, want = case
    runner = runners(plan)[backend]()
    i = next(i for i, k in enumerate(plan.kernels[:plan.load]) if k.kind == "matmul")
    space = runner.plan.kernels[i].space
    fitting = prune(space, device_limits()) if backend == "wgpu" else space
    other = next(v for v in fitting if v.key != runner.variants[plan.kernels[i].name].key)
    check(runner.run(feeds), want, "default variants")
    runner.set_variant(i, other)
    check(runner.run(feeds), want, f"load-time matmul on {other.key}")
    check(runner.run(feeds), want, "the run after")
    assert runner.load_runs == 2
