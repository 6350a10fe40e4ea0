"""Load-time kernels in headless Chromium: a bundle whose constant work the compiler leaves to kernels (a MatMul of
two weights, a Softmax of a constant, a Gather from such a result; tests/native/test_load_time.py) gives
onnxruntime's outputs over several runs on WebGPU (SwiftShader where there is no GPU) and on WebAssembly with one
and two threads. After the session loads, the test zeroes every weight: only the load-time kernels read weights,
so the runs still match only if those kernels ran at load and no run ran them again. They are not tuned."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from test_browser_runtime import reference

from e2e import browser as harness
from e2e.browser import run

pytestmark = [pytest.mark.e2e]

RUNS = 3

# Loads the bundle, zeroes its weights where the session keeps them, then runs the reference inputs RUNS times.
RUN_WIPED = """async ({webjit, create}, {options, runs}) => {
    const session = await create('/', options);
    const m = session.bundle.manifest;
    if (session.device) {
        for (const b of session.buffers.weight) session.device.queue.writeBuffer(b, 0, new Uint8Array(b.size));
    } else {
        for (const {tensor, offset} of m.wasm.weights) new Uint8Array(session.memory.buffer, offset, m.weights.tensors[tensor].bytes).fill(0);
    }
    const ref = await webjit.loadReference(session.bundle);
    const out = [];
    for (let r = 0; r < runs; r++) {
        const o = await session.run(ref.inputs);
        out.push(Object.fromEntries(Object.entries(o).map(([name, t]) => [name, Array.from(t.data)])));
    }
    const rows = session.tuningReport.kernels || [];
    return {ep: session.executionProvider, threads: session.wasm ? session.wasm.threads : 0, out,
            tried: Object.fromEntries(rows.map((k) => [k.kernel, k.tried]))};
}"""


@pytest.fixture(scope="module")
def load_time_bundle(tmp_path_factory):
    from native.test_load_time import load_time_model
    from webjit.bundle import build
    model, feeds = load_time_model()
    folder = tmp_path_factory.mktemp("load-time")
    onnx.save(model, str(folder / "model.onnx"))
    return build(folder / "model.onnx", folder / "bundle", values=feeds)


@pytest.fixture
def page(chromium, load_time_bundle, serve):
    context = chromium.new_context()
    yield harness.open_page(context, serve(load_time_bundle))
    context.close()


@pytest.mark.parametrize("options", [
    {"executionProviders": ["webgpu"], "tuning": {"budgetMs": 500}},
    {"executionProviders": ["wasm"], "wasm": {"numThreads": 1}, "tuning": {"budgetMs": 300}},
    {"executionProviders": ["wasm"], "wasm": {"numThreads": 2}, "tuning": {"budgetMs": 300}},
], ids=["webgpu", "wasm-1-thread", "wasm-2-threads"])
def test_load_time_kernels_run_once_at_load_and_every_run_matches_onnxruntime(page, load_time_bundle, options):
    m = json.loads((load_time_bundle / "manifest.json").read_text())
    load = m["load"]
    assert load >= 4 and not any(b["buffer"] == "weight" for k in m["kernels"][load:] for b in k["bindings"])
    want = reference(load_time_bundle, "outputs")
    got = run(page, RUN_WIPED, {"options": options, "runs": RUNS})
    assert got["ep"] == options["executionProviders"][0]
    if got["ep"] == "wasm":
        assert got["threads"] == options["wasm"]["numThreads"]
    for r, out in enumerate(got["out"]):
        for name, ref in want.items():
            y = np.array(out[name], np.float32).reshape(ref.shape)
            err = float(np.max(np.abs(y - ref)))
            assert err <= 1e-4, f"run {r + 1}, output '{name}': max abs error {err:.3e} against onnxruntime"
    once = [k["name"] for k in m["kernels"][:load]]
    assert all(got["tried"][n] == 0 for n in once), got["tried"]
    assert any(t > 0 for n, t in got["tried"].items() if n not in once), "nothing was tuned"
