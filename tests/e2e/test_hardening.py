"""The runtime under hostile bundles, strict pages and long use, in headless Chromium, on a small BERT (Optimum's
export, seq 16):
- a page pins the manifest with `integrity` (Subresource Integrity form): the right hash loads, a changed manifest
  or another hash is refused with an IntegrityError naming both;
- under `webjit serve --csp` (no eval, no inline scripts) the runtime runs on WebGPU and on wasm with worker
  threads, and the bundle check page works, with no CSP violation reported;
- run() after release() rejects clearly, and 8 concurrent runs with different inputs each get their own outputs;
- 1,000 runs and 20 create/release cycles on each provider leave the live GPU buffer bytes at their baseline
  and the JS heap within a few MB of it.
Expected outputs come from onnxruntime on the same inputs."""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
import time

import numpy as np
import pytest

from e2e import browser as harness
from e2e.browser import run, wire_feeds
from webjit.serve import make_server

pytestmark = [pytest.mark.e2e, pytest.mark.models]

hub = pytest.importorskip("demo_models.hub")
SEQ = 16


def feeds(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, SEQ + 1))
    mask = np.zeros((1, SEQ), np.int64)
    mask[0, :n] = 1
    return {"input_ids": rng.integers(1, 1000, (1, SEQ)).astype(np.int64) * mask, "attention_mask": mask,
            "token_type_ids": np.zeros((1, SEQ), np.int64)}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from webjit.bundle import build
    model = hub.get("bert") / "onnx/model.onnx"
    return model, build(model, tmp_path_factory.mktemp("bert") / "bundle", values=feeds(0))


def pin(path) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


@pytest.fixture
def page(chromium, bundle, serve):
    context = chromium.new_context()
    yield harness.open_page(context, serve(bundle[1]))
    context.close()


LOAD = """async ({webjit}, {integrity}) => {
    try { const s = await webjit.InferenceSession.create('/', {executionProviders: ['wasm'], integrity, tuning: false});
          await s.release(); return 'loaded'; }
    catch (e) { return `${e.name}: ${e.message}`; }
}"""


def test_a_pinned_manifest_loads_and_any_other_is_refused(chromium, page, bundle, tmp_path, serve):
    good = pin(bundle[1] / "manifest.json")
    assert run(page, LOAD, {"integrity": good}) == "loaded"
    assert run(page, LOAD, {"integrity": f"sha384-{'A' * 64} {good}"}) == "loaded"  # one of several matches
    other = "sha256-" + base64.b64encode(b"\0" * 32).decode()
    refused = run(page, LOAD, {"integrity": other})
    assert refused.startswith("IntegrityError: ") and good in refused and other in refused
    assert run(page, LOAD, {"integrity": "md5-abc"}).startswith("TypeError: integrity must be 'sha256-'")
    # the same bundle with one manifest field changed (a kernel's dispatch), served elsewhere, under the old pin
    changed = tmp_path / "changed"
    shutil.copytree(bundle[1], changed)
    m = json.loads((changed / "manifest.json").read_text())
    m["kernels"][0]["variants"][0]["dispatch"][0] += 1
    (changed / "manifest.json").write_text(json.dumps(m))
    context = chromium.new_context()
    try:
        other_page = harness.open_page(context, serve(changed))
        assert run(other_page, LOAD, {"integrity": good}).startswith("IntegrityError: ")
        assert run(other_page, LOAD, {"integrity": None}) == "loaded"  # without a pin, as before
    finally:
        context.close()


def test_the_runtime_and_the_check_page_work_under_a_strict_csp(chromium, bundle):
    from webjit.validate import reference
    model, folder = bundle
    server = make_server(folder, csp=True).start()
    context = chromium.new_context()
    try:
        violations = []
        page = harness.open_page(context, server.url)
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        f = feeds(3)
        body = """async ({create, feeds}, {wired}) => {
            const out = {};
            for (const [name, options] of Object.entries({
                webgpu: {executionProviders: ['webgpu'], tuning: false},
                wasm: {executionProviders: ['wasm'], wasm: {numThreads: 2}, tuning: {budgetMs: 300}}})) {
                const s = await create('/', options);
                const y = (await s.run(feeds(wired))).last_hidden_state;
                out[name] = {ep: s.executionProvider, threads: s.wasm ? s.wasm.threads : 0, data: Array.from(y.data)};
            }
            return {out, isolated: crossOriginIsolated};
        }"""
        got = run(page, body, {"wired": wire_feeds(f)})
        want = reference(model, f)["last_hidden_state"]
        assert got["isolated"] and got["out"]["wasm"]["threads"] == 2
        for name, o in got["out"].items():
            assert o["ep"] == name
            err = float(np.max(np.abs(np.array(o["data"], np.float32).reshape(want.shape) - want)))
            assert err < 1e-4, f"{name}: {err}"
        page.goto(server.url + "web/demo.html?budget=0&runs=1")
        log, deadline = "", time.monotonic() + 120
        while "done" not in log and time.monotonic() < deadline:  # (wait_for_function evaluates a string: no)
            time.sleep(0.2)
            log = page.text_content("#log") or ""
        assert "error:" not in log and "max abs error" in log, log
        assert not violations, violations
    finally:
        context.close()
        server.shutdown()
        server.server_close()


def test_released_sessions_reject_and_concurrent_runs_are_queued(page, bundle):
    from webjit.validate import reference
    model = bundle[0]
    inputs = [feeds(10 + i) for i in range(8)]
    body = """async ({create, feeds}, {wired}) => {
        const out = {};
        for (const [name, options] of Object.entries({
            webgpu: {executionProviders: ['webgpu'], tuning: false},
            wasm: {executionProviders: ['wasm'], wasm: {numThreads: 2}, tuning: false}})) {
            const s = await create('/', options);
            const ys = await Promise.all(wired.map((w) => s.run(feeds(w))));
            await s.release();
            let after = null;
            try { await s.run(feeds(wired[0])); } catch (e) { after = e.message; }
            out[name] = {data: ys.map((y) => Array.from(y.last_hidden_state.data)), after};
        }
        return out;
    }"""
    got = run(page, body, {"wired": [wire_feeds(f) for f in inputs]})
    for name, o in got.items():
        assert o["after"] == "this session was released; create a new InferenceSession", name
        for i, (f, data) in enumerate(zip(inputs, o["data"])):
            want = reference(model, f)["last_hidden_state"]
            err = float(np.max(np.abs(np.array(data, np.float32).reshape(want.shape) - want)))
            assert err < 1e-4, f"{name} run {i}: {err}"


def test_long_use_returns_gpu_buffers_and_heap_to_their_baseline(chromium, bundle, serve):
    """Figures: live GPU buffer bytes and JS heap (CDP Runtime.getHeapUsage, after a collection) before, after
    1,000 runs and after 20 create/release cycles, per provider."""
    context = chromium.new_context()
    try:
        page = harness.open_page(context, serve(bundle[1]))
        cdp = context.new_cdp_session(page)
        page.evaluate("""() => {
            const live = window.liveGpu = {bytes: 0, peak: 0};
            const make = GPUDevice.prototype.createBuffer, destroy = GPUBuffer.prototype.destroy;
            const sizes = new WeakMap();
            GPUDevice.prototype.createBuffer = function (d) { const b = make.call(this, d); sizes.set(b, b.size); live.bytes += b.size; live.peak = Math.max(live.peak, live.bytes); return b; };
            GPUBuffer.prototype.destroy = function () { if (sizes.has(this)) { live.bytes -= sizes.get(this); sizes.delete(this); } return destroy.call(this); };
        }""")

        def heap() -> int:
            cdp.send("HeapProfiler.collectGarbage")
            return int(cdp.send("Runtime.getHeapUsage")["usedSize"])

        figures = {}
        for provider, options in {"webgpu": {"executionProviders": ["webgpu"], "tuning": False},
                                  "wasm": {"executionProviders": ["wasm"], "wasm": {"numThreads": 1}, "tuning": False}}.items():
            base_gpu, base_heap = page.evaluate("() => window.liveGpu.bytes"), heap()
            page.evaluate("""async ({options, wired}) => {
                const f = Object.fromEntries(Object.entries(wired).map(([n, {data, dims}]) => [n,
                    new window.webjit.Tensor('int64', BigInt64Array.from(data, (v) => BigInt(v)), dims)]));
                const s = await window.webjit.InferenceSession.create('/', options);
                for (let i = 0; i < 1000; i++) await s.run(f);
                await s.release();
            }""", {"options": options, "wired": wire_feeds(feeds(1))})
            after_runs = (page.evaluate("() => window.liveGpu.bytes"), heap())
            page.evaluate("""async ({options}) => {
                for (let i = 0; i < 20; i++) { const s = await window.webjit.InferenceSession.create('/', options); await s.release(); }
            }""", {"options": options})
            after_cycles = (page.evaluate("() => window.liveGpu.bytes"), heap())
            figures[provider] = {"gpu": [base_gpu, after_runs[0], after_cycles[0]],
                                 "heap": [base_heap, after_runs[1], after_cycles[1]]}
        assert page.evaluate("() => window.liveGpu.peak") > 100_000  # the WebGPU session's buffers were counted
        print("long use:", json.dumps(figures))
        for provider, f in figures.items():
            assert f["gpu"][1] == f["gpu"][0] == f["gpu"][2], (provider, f)
            assert max(f["heap"]) - f["heap"][0] < 8 * 2**20, (provider, f)
    finally:
        context.close()


def test_a_second_load_takes_the_verified_weights_from_cache_storage(chromium, bundle, serve):
    """Load 1 fetches and hashes the weight shards and WebAssembly modules, and keeps them by their SHA-256; load 2
    in the same browser profile fetches none of them and still gives onnxruntime's outputs; `cache: false`
    fetches again."""
    from webjit.validate import reference
    model, folder = bundle
    context = chromium.new_context()
    try:
        page = harness.open_page(context, serve(folder))
        fetched = []
        page.on("request", lambda r: fetched.append(r.url) if "/weights/" in r.url or "/wasm/" in r.url else None)
        f = feeds(4)
        body = """async ({create, feeds}, {wired, options}) => {
            const s = await create('/', options);
            const y = (await s.run(feeds(wired))).last_hidden_state;
            return {data: Array.from(y.data), hits: s.bundle.store ? s.bundle.store.hits : null};
        }"""
        options = {"executionProviders": ["wasm"], "wasm": {"numThreads": 1}, "tuning": False}
        first = run(page, body, {"wired": wire_feeds(f), "options": options})
        n_first = len(fetched)
        page.wait_for_timeout(500)  # the store writes in the background
        fetched.clear()
        second = run(page, body, {"wired": wire_feeds(f), "options": options})
        n_second = len(fetched)
        fetched.clear()
        third = run(page, body, {"wired": wire_feeds(f), "options": {**options, "cache": False}})
    finally:
        context.close()
    want = reference(model, f)["last_hidden_state"]
    for got in (first, second, third):
        err = float(np.max(np.abs(np.array(got["data"], np.float32).reshape(want.shape) - want)))
        assert err < 1e-4
    assert n_first > 0 and first["hits"]["files"] == 0
    assert n_second == 0 and second["hits"]["files"] >= 1, (n_second, second["hits"])
    assert any("/weights/" in u for u in fetched) and third["hits"] is None
