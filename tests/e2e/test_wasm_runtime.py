"""The 'wasm' execution provider (web/wasm/) in headless Chromium, running the real all-MiniLM-L6-v2 bundle at
seq 128 on WebAssembly SIMD: on the main thread, on two Web Workers over a shared memory, on the fixed-SIMD module
where relaxed SIMD is missing, and as the fallback of a ['webgpu', 'wasm'] session where WebGPU is missing.
Expected values are onnxruntime's outputs stored in the bundle."""
from __future__ import annotations

import json

import numpy as np
import pytest
from browser_checks import ATOL, flip_byte, reference

from e2e import browser as harness
from e2e.browser import run

pytestmark = [pytest.mark.e2e, pytest.mark.models]

# Runs the bundle's reference inputs once and returns the output with what the session says it runs on, and how
# often a 1 ms interval timer of the main thread fired during the run (never, while the main thread is blocked).
RUN_REFERENCE = """async ({webjit, create}, options) => {
    const session = await create('/', options);
    const ref = await webjit.loadReference(session.bundle);
    let ticks = 0;
    const timer = setInterval(() => { ticks++; }, 1);
    const y = (await session.run(ref.inputs)).last_hidden_state;
    clearInterval(timer);
    return {ep: session.executionProvider, wasm: session.wasm || null, fallback: session.fallback || null,
            choice: session.providerChoice || null, report: session.tuningReport.providerChoice || null, type: y.type, dims: y.dims,
            data: Array.from(y.data), ticks};
}"""

# Before any script of the page runs: no WebGPU at all, and (optionally) no relaxed SIMD (its probe fails).
NO_WEBGPU = "delete Navigator.prototype.gpu;"
NO_ADAPTER = "GPU.prototype.requestAdapter = async () => null;"
NO_RELAXED_SIMD = """{
  const validate = WebAssembly.validate;
  WebAssembly.validate = (bytes) => {
    const b = new Uint8Array(bytes.buffer || bytes);
    for (let i = 0; i + 2 < b.length; i++) if (b[i] === 0xfd && b[i + 1] === 0x85 && b[i + 2] === 0x02) return false;
    return validate(bytes);
  };
}"""


def check_output(got, bundle):
    assert got["type"] == "float32" and got["dims"] == [1, 128, 384]
    want = reference(bundle, "outputs")["last_hidden_state"]
    err = float(np.max(np.abs(np.array(got["data"], np.float32).reshape(want.shape) - want)))
    assert err <= ATOL, f"max abs error {err:.3e} against onnxruntime"


@pytest.fixture
def page_without(chromium, minilm_url):
    """page_without(*scripts): a fresh context whose pages run the scripts before anything else."""
    contexts = []

    def make(*scripts):
        contexts.append(chromium.new_context())
        for s in scripts:
            contexts[-1].add_init_script(s)
        return harness.open_page(contexts[-1], minilm_url)
    yield make
    for c in contexts:
        c.close()


@pytest.mark.parametrize("threads", [1, 2])
def test_minilm_runs_on_wasm_and_matches_onnxruntime_and_workers_leave_the_main_thread_free(page, minilm_bundle, threads):
    got = run(page, RUN_REFERENCE, {"executionProviders": ["wasm"], "wasm": {"numThreads": threads}})
    assert got["ep"] == "wasm"
    assert got["wasm"]["threads"] == threads and got["wasm"]["simd"] == "relaxed"
    m = json.loads((minilm_bundle / "manifest.json").read_text())
    assert got["wasm"]["file"] == next(x["file"] for x in m["wasm"]["modules"]
                                       if x["simd"] == "relaxed" and x["shared"] == (threads > 1))
    check_output(got, minilm_bundle)
    if threads > 1:
        assert got["ticks"] > 0, "the main thread was blocked while the workers ran"


def test_on_a_cpu_webgpu_adapter_a_webgpu_then_wasm_session_runs_on_wasm_and_says_why(page, minilm_bundle):
    adapter = page.evaluate("""async () => { const a = await navigator.gpu.requestAdapter();
                                             return a ? [a.info.vendor, a.info.architecture].join(' ') : null; }""")
    if not adapter or "swiftshader" not in adapter.lower():
        pytest.skip(f"the adapter here is not a CPU one ({adapter})")
    got = run(page, RUN_REFERENCE, {"executionProviders": ["webgpu", "wasm"], "tuning": False})
    assert got["ep"] == "wasm" and got["fallback"] is None
    assert got["choice"]["over"] == "webgpu" and "swiftshader" in got["choice"]["reason"]
    assert "computes on the CPU" in got["choice"]["reason"] and got["report"] == got["choice"]
    check_output(got, minilm_bundle)
    forced = run(page, """async ({create}) => {
        const s = await create('/', {executionProviders: [{name: 'webgpu', useCpuAdapter: true}, 'wasm'], tuning: false});
        return [s.executionProvider, s.providerChoice || null];
    }""")
    assert forced == ["webgpu", None], "useCpuAdapter keeps WebGPU on a CPU adapter"


@pytest.mark.parametrize("missing", ["navigator.gpu", "an adapter"])
def test_without_webgpu_a_webgpu_then_wasm_session_falls_back_to_wasm_and_says_so(page_without, minilm_bundle,
                                                                                   missing):
    page = page_without(NO_WEBGPU if missing == "navigator.gpu" else NO_ADAPTER)
    assert page.evaluate("() => 'gpu' in navigator") is (missing != "navigator.gpu")
    got = run(page, RUN_REFERENCE, {"executionProviders": ["webgpu", "wasm"]})
    assert got["ep"] == "wasm"
    assert got["fallback"]["from"] == "webgpu" and got["fallback"]["reason"].startswith("webgpu: WebGPU is ")
    assert got["wasm"]["threads"] == page.evaluate("() => Math.min(navigator.hardwareConcurrency, 4)")
    check_output(got, minilm_bundle)
    message = run(page, """async ({webjit}) => {
        try { await webjit.InferenceSession.create('/', {executionProviders: ['webgpu']}); return null; }
        catch (e) { return e.message; }
    }""")
    assert message.startswith("WebGPU is not available here (navigator.gpu is undefined)" if missing == "navigator.gpu"
                              else "WebGPU is available but no adapter was found")


def test_without_relaxed_simd_the_fixed_simd_module_runs_and_matches_onnxruntime(page_without, minilm_bundle):
    page = page_without(NO_RELAXED_SIMD)
    got = run(page, RUN_REFERENCE, {"executionProviders": ["wasm"], "wasm": {"numThreads": 1}})
    assert got["wasm"]["simd"] == "fixed"
    check_output(got, minilm_bundle)


def test_a_tampered_wasm_module_is_refused_with_a_hash_error_naming_it(page, minilm_bundle, tampered):
    m = json.loads((minilm_bundle / "manifest.json").read_text())
    path = next(x["file"] for x in m["wasm"]["modules"] if x["simd"] == "relaxed" and not x["shared"])
    page.goto(tampered(path, flip_byte) + "web/test/index.html")
    page.evaluate("async () => { window.webjit = await import('/web/webjit.js'); }")
    error = run(page, """async ({webjit, create}) => {
        try { await create('/', {executionProviders: ['wasm'], wasm: {numThreads: 1}}); return null; }
        catch (e) { return {name: e.name, message: e.message}; }
    }""")
    assert error is not None and error["name"] == "IntegrityError"
    assert error["message"].startswith(f"{path}: SHA-256 hash mismatch: expected {m['files'][path]['sha256']}, got ")


def test_wasm_tunes_its_candidates_on_load_and_a_second_load_takes_the_winners_from_the_cache(page):
    body = """async ({webjit, create}) => {
        const options = {executionProviders: ['wasm'], wasm: {numThreads: 2}, tuning: {budgetMs: 1500}};
        const summary = (s) => ({source: s.tuningReport.source, timer: s.tuningReport.timer,
            tried: s.tuningReport.kernels.reduce((n, k) => n + k.tried, 0),
            winners: s.tuningReport.kernels.map((k) => `${k.kernel}=${k.winner}`)});
        const first = summary(await create('/', options));
        const second = summary(await create('/', options));
        const forced = summary(await create('/', {...options, tuning: {budgetMs: 0, force: true}}));
        return {first, second, forced};
    }"""
    got = run(page, body)
    assert got["first"]["source"] == "tuned" and got["first"]["timer"] == "wall-clock" and got["first"]["tried"] > 1
    assert got["second"]["source"] == "cache" and got["second"]["tried"] == 0
    assert got["second"]["winners"] == got["first"]["winners"]
    assert got["forced"]["source"] == "tuned"  # force skips the cache; a zero budget still times one kernel group


# Before any script of the page: Worker objects remember their name, and window.failThread = N makes the next
# 'run' message to worker N name a module that does not exist, so that thread throws while the others wait at the
# module's barrier, as they would behind a thread whose kernel trapped.
FAIL_ONE_THREAD = """{
  const Real = Worker;
  window.Worker = class extends Real {
    constructor(url, options) { super(url, options); this.label = options && options.name; }
    postMessage(message, transfer) {
      if (window.failThread !== undefined && this.label === `webjit wasm ${window.failThread}` && message.type === 'run') {
        message = {...message, cls: 1e6};
      }
      return transfer ? super.postMessage(message, transfer) : super.postMessage(message);
    }
  };
}"""


def test_a_thread_that_fails_rejects_the_run_at_once_and_the_session_then_says_it_broke(page_without, minilm_bundle):
    page = page_without(FAIL_ONE_THREAD)
    got = run(page, """async ({webjit, create}) => {
        const session = await create('/', {executionProviders: ['wasm'], wasm: {numThreads: 2}, tuning: false});
        const ref = await webjit.loadReference(session.bundle);
        await session.run(ref.inputs);
        window.failThread = 1;
        const t0 = performance.now();
        const first = await session.run(ref.inputs).then(() => null, (e) => e.message);
        const ms = performance.now() - t0;
        window.failThread = undefined;
        const again = await session.run(ref.inputs).then(() => null, (e) => e.message);
        return {threads: session.wasm.threads, first, ms, again};
    }""")
    assert got["threads"] == 2
    assert got["first"] and got["first"].startswith("a WebAssembly kernel failed: ") and "thread 1" in got["first"]
    assert got["ms"] < 10_000, f"the run took {got['ms']:.0f} ms to fail"
    assert got["again"] and "failed earlier" in got["again"] and "create a new InferenceSession" in got["again"]
