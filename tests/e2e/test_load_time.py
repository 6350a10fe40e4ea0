"""Load-time kernels in headless Chromium: a bundle whose constant work the compiler leaves to kernels (a MatMul of
two weights, a Softmax of a constant, a Gather from such a result; tests/native/test_load_time.py) gives
onnxruntime's outputs over several runs on WebGPU (SwiftShader where there is no GPU) and on WebAssembly with one
and two threads, also as a bundle with shape classes (each class has load-time kernels of its own). After the
session loads, the test zeroes every weight: only the load-time kernels read weights, so the runs still match only
if those kernels ran at load and no run ran them again. They are not tuned."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from browser_checks import reference

from e2e import browser as harness
from e2e.browser import run

pytestmark = [pytest.mark.e2e]

RUNS = 3

# Loads the bundle, zeroes its weights where the session keeps them, then runs each feed set (x: {data, dims}; the
# bundle's reference inputs when none are given) in turn, RUNS times over.
RUN_WIPED = """async ({webjit, create}, {options, runs, xs}) => {
    const session = await create('/', options);
    const m = session.bundle.manifest;
    if (session.device) {
        for (const b of session.buffers.weight) session.device.queue.writeBuffer(b, 0, new Uint8Array(b.size));
    } else {
        for (const {tensor, offset} of m.wasm.weights) {
            new Uint8Array(session.memory.buffer, offset, m.weights.tensors[tensor].bytes).fill(0);
        }
    }
    const feeds = xs ? xs.map(({data, dims}) => ({x: new webjit.Tensor('float32', Float32Array.from(data), dims)}))
        : [(await webjit.loadReference(session.bundle)).inputs];
    const out = [];
    for (let r = 0; r < runs; r++) {
        for (const f of feeds) {
            const o = await session.run(f);
            out.push(Object.fromEntries(Object.entries(o).map(([name, t]) => [name, Array.from(t.data)])));
        }
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


OPTIONS = [
    {"executionProviders": ["webgpu"], "tuning": {"budgetMs": 500}},
    {"executionProviders": ["wasm"], "wasm": {"numThreads": 1}, "tuning": {"budgetMs": 300}},
    {"executionProviders": ["wasm"], "wasm": {"numThreads": 2}, "tuning": {"budgetMs": 300}},
]
IDS = ["webgpu", "wasm-1-thread", "wasm-2-threads"]


@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
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


@pytest.fixture(scope="module")
def bucketed(tmp_path_factory):
    """The model with x [rows, 64] for rows up to 4, built with a class at rows 2; onnxruntime's outputs for rows
    1, 4 and 2 (the smaller class, the largest, and back)."""
    from helpers import f32, reference as ort_outputs
    from native.test_load_time import load_time_model
    from webjit.bundle import build
    model, feeds = load_time_model(rows=4)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "rows"
    folder = tmp_path_factory.mktemp("load-time-buckets")
    onnx.save(model, str(folder / "model.onnx"))
    out = build(folder / "model.onnx", folder / "bundle", values=feeds, buckets=["rows=2"])
    rng = np.random.default_rng(5)
    xs = [f32(rng, n, 64) for n in (1, 4, 2)]
    return out, xs, [ort_outputs(model, {"x": x}) for x in xs]


@pytest.fixture
def bucketed_page(chromium, bucketed, serve):
    context = chromium.new_context()
    yield harness.open_page(context, serve(bucketed[0]))
    context.close()


@pytest.mark.parametrize("options", OPTIONS[:2], ids=IDS[:2])
def test_every_shape_class_runs_its_own_load_time_kernels_once(bucketed_page, bucketed, options):
    out, xs, want = bucketed
    m = json.loads((out / "manifest.json").read_text())
    assert [c["load"] for c in m["dynamic"]["classes"]] == [m["load"]] and m["load"] >= 4
    wired = [{"data": x.ravel().tolist(), "dims": list(x.shape)} for x in xs]
    got = run(bucketed_page, RUN_WIPED, {"options": options, "runs": 2, "xs": wired})
    assert got["ep"] == options["executionProviders"][0]
    for i, o in enumerate(got["out"]):
        ref = want[i % len(xs)]
        for name, w in ref.items():
            err = float(np.max(np.abs(np.array(o[name], np.float32).reshape(w.shape) - w)))
            assert err <= 1e-4, f"call {i + 1} (rows {xs[i % len(xs)].shape[0]}), '{name}': max abs error {err:.3e}"
