"""The barrier between kernels gives up: a thread left waiting there (because another thread trapped or is stuck)
traps after the module's timeout and marks byte 8 of the memory, which the browser's worker reads to say why, so a
run with a broken thread fails instead of hanging."""
from __future__ import annotations

import time

import numpy as np
import pytest
import wasmtime

from helpers import compile_model, f32, make_model, node
from webjit.native.wasm_runner import WasmRunner
from webjit.render_wasm import BARRIER_TIMEOUT_S, function_name, module



def test_a_thread_alone_at_the_barrier_traps_after_the_timeout_and_marks_the_memory():
    rng = np.random.default_rng(0)
    feeds = {"x": f32(rng, 64)}
    plan = compile_model(make_model([node("Relu", ["x"], ["r"]), node("Exp", ["r"], ["y"])], feeds,
                                    {"y": np.float32}), feeds)
    runner = WasmRunner(plan, threads=2)
    names = [function_name(k) for k in runner.plan.kernels]
    wat = module([runner.functions[k.name] for k in runner.plan.kernels], names, runner.layout, shared=True,
                 barrier_timeout_s=0.2)
    run = wasmtime.Instance(runner.stores[0], wasmtime.Module(runner.engine, wasmtime.wat2wasm(wat)),
                            [runner.memory]).exports(runner.stores[0])["run"]
    assert runner.mem[8:12].view(np.int32)[0] == 0
    started = time.perf_counter()
    with pytest.raises(wasmtime.Trap, match="unreachable"):
        run(runner.stores[0], 0, 2)  # the second thread never comes
    waited = time.perf_counter() - started
    assert 0.2 <= waited < 5, f"gave up after {waited:.2f} s"
    assert runner.mem[8:12].view(np.int32)[0] == 1


def test_two_threads_pass_the_barrier_with_the_default_timeout_and_leave_the_mark_clear():
    rng = np.random.default_rng(1)
    feeds = {"x": f32(rng, 4096)}
    model = make_model([node("Relu", ["x"], ["r"]), node("Exp", ["r"], ["y"])], feeds, {"y": np.float32})
    runner = WasmRunner(compile_model(model, feeds), threads=2)
    got = runner.run(feeds)["y"]
    np.testing.assert_allclose(got, np.exp(np.maximum(feeds["x"], 0)), rtol=1e-5)
    assert runner.mem[8:12].view(np.int32)[0] == 0 and BARRIER_TIMEOUT_S >= 10
