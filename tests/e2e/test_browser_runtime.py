"""The web runtime in headless Chromium, on WebGPU (SwiftShader where there is no GPU), running the real
all-MiniLM-L6-v2 bundle at seq 128.

Every expected value comes from onnxruntime: the bundle stores onnxruntime's outputs for its sample inputs, and
the tests compare with those files. Each test's sessions run inside a WebGPU validation error scope
(e2e.browser.run). SwiftShader is slow (about 10 s per forward pass with untuned kernels), so tuning budgets are
tiny: one chunk of variants of the most expensive kernel group.
"""
from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
from browser_checks import ATOL, flip_byte, reference

import demo_models
from e2e.browser import run

pytestmark = [pytest.mark.e2e, pytest.mark.models]

TINY_TUNING = "{budgetMs: 1, repeats: 1, parallel: 2}"  # only the first chunk, always timed: two variants


def test_minilm_runs_on_webgpu_and_matches_onnxruntime_after_tuning(page, minilm_bundle):
    feeds = demo_models.sample_inputs("minilm")
    np.testing.assert_array_equal(feeds["input_ids"], reference(minilm_bundle, "inputs")["input_ids"])
    got = run(page, """async ({webjit, create}, feeds) => {
        const session = await create('/', {executionProviders: ['webgpu'], tuning: %s});
        const tensors = Object.fromEntries(Object.entries(feeds).map(
            ([name, values]) => [name, new webjit.Tensor('int64', values, [1, values.length])]));
        const out = await session.run(tensors);
        const y = out.last_hidden_state;
        return {type: y.type, dims: y.dims, data: Array.from(y.data), report: session.tuningReport,
                inputs: session.inputNames, outputs: session.outputNames};
    }""" % TINY_TUNING, {k: v[0].tolist() for k, v in feeds.items()})
    assert got["inputs"] == list(feeds) and got["outputs"] == ["last_hidden_state"]
    assert got["type"] == "float32" and got["dims"] == [1, 128, 384]
    want = reference(minilm_bundle, "outputs")["last_hidden_state"]
    err = float(np.max(np.abs(np.array(got["data"], np.float32).reshape(want.shape) - want)))
    assert err <= ATOL, f"max abs error {err:.3e} against onnxruntime"

    report = got["report"]
    assert report["source"] == "tuned" and report["timer"] in ("timestamp-query", "wall-clock")
    tuned = [k for k in report["kernels"] if k["tried"] >= 2]
    assert tuned, "the tuner timed no kernel"
    for k in tuned:
        assert k["winner"] == min(k["times"], key=k["times"].get)
    shared = [k for k in report["kernels"] if k["sharedWith"] == tuned[0]["kernel"]]
    assert shared and all(k["winner"] == tuned[0]["winner"] for k in shared)


def test_a_second_load_takes_the_winners_from_the_cache_and_a_corrupt_entry_is_rebuilt(page):
    load = """async ({webjit, create}) => {
        const session = await create('/', {tuning: %s});
        const r = session.tuningReport;
        return {source: r.source, tried: r.kernels.reduce((n, k) => n + k.tried, 0), tuningMs: session.timings.tuningMs,
                winners: Object.fromEntries(r.kernels.map((k) => [k.kernel, k.winner]))};
    }""" % TINY_TUNING
    first = run(page, load)
    assert first["source"] == "tuned" and first["tried"] >= 2
    page.reload()
    page.evaluate("async () => { window.webjit = await import('/web/webjit.js'); }")
    second = run(page, load)
    assert second == {"source": "cache", "tried": 0, "tuningMs": 0, "winners": first["winners"]}

    run(page, """async ({webjit, create}) => {
        const {Bundle} = await import('/web/manifest.js');
        const {cacheKey} = await import('/web/cache.js');
        const bundle = await Bundle.load('/');
        const adapter = await navigator.gpu.requestAdapter();
        const key = cacheKey(bundle.hash, adapter.info);
        const db = await new Promise((ok, fail) => { const r = indexedDB.open('webjit', 1); r.onsuccess = () => ok(r.result); r.onerror = fail; });
        await new Promise((ok, fail) => {
            const tx = db.transaction('tuning', 'readwrite');
            tx.objectStore('tuning').put({version: 1, bundle: bundle.hash, winners: {k00_gather: 'no such variant'}}, key);
            tx.oncomplete = ok; tx.onerror = fail;
        });
        db.close();
    }""")
    third = run(page, load)
    assert third["source"] == "tuned" and third["tried"] >= 2
    fourth = run(page, load)
    assert fourth["source"] == "cache" and fourth["winners"] == third["winners"]


def kernel_files(bundle) -> list[str]:
    """Every variant file of the first kernel: whichever the session starts with (its order depends on the
    adapter), it fetches one of them."""
    return [v["file"] for v in json.loads((bundle / "manifest.json").read_text())["kernels"][0]["variants"]]


@pytest.mark.parametrize("case", ["a weight shard with one byte changed", "a truncated weight shard",
                                  "a kernel file with one byte changed"])
def test_a_tampered_or_truncated_file_is_refused_with_a_hash_error_naming_it(page, minilm_bundle, tampered, case):
    paths = {"a weight shard with one byte changed": ["weights/shard-001.bin"],
             "a truncated weight shard": ["weights/shard-000.bin"]}.get(case) or kernel_files(minilm_bundle)
    edit = (lambda d: d[: len(d) - 1000]) if "truncated" in case else flip_byte
    url = tampered(paths, edit)
    page.goto(url + "web/test/index.html")
    page.evaluate("async () => { window.webjit = await import('/web/webjit.js'); }")
    err = run(page, """async ({webjit, create}) => {
        try { await create('/', {tuning: false}); return null; } catch (e) { return {name: e.name, message: e.message}; }
    }""")
    assert err is not None, "the tampered bundle loaded"
    assert err["name"] == "IntegrityError"
    assert any(err["message"].startswith(f"{p}: SHA-256 hash mismatch") for p in paths), err["message"]
    if "truncated" in case:
        assert "truncated?" in err["message"]


def test_wrong_input_names_types_and_shapes_are_refused_with_clear_errors(page):
    errors = run(page, """async ({webjit, create}) => {
        const session = await create('/', {tuning: false});
        const ids = (n = 128) => new webjit.Tensor('int64', new BigInt64Array(n), [1, n]);
        const good = {input_ids: ids(), attention_mask: ids(), token_type_ids: ids()};
        const cases = {
            unknown: {...good, input_idz: ids()},
            missing: {input_ids: ids(), attention_mask: ids()},
            dtype: {...good, input_ids: new webjit.Tensor('float32', new Float32Array(128), [1, 128])},
            shape: {...good, attention_mask: ids(64)},
            rank: {...good, token_type_ids: new webjit.Tensor('int64', new BigInt64Array(128), [128])},
            range: {...good, input_ids: new webjit.Tensor('int64', new BigInt64Array(128).fill(1n << 40n), [1, 128])},
            notTensor: {...good, input_ids: [1, 2, 3]},
        };
        const out = {};
        for (const [name, feeds] of Object.entries(cases)) {
            try { await session.run(feeds); out[name] = null; } catch (e) { out[name] = e.message; }
        }
        return out;
    }""")
    assert errors == {
        "unknown": "unknown input 'input_idz'; this model's inputs are: input_ids, attention_mask, token_type_ids",
        "missing": "missing input 'token_type_ids' (int64 [1,128])",
        "dtype": "input 'input_ids' has type float32; this model takes int64",
        "shape": "input 'attention_mask' has shape [1,64]; this bundle was compiled for [1,128] "
                 "(build another bundle for other shapes, one with --buckets for other lengths, or compile one in this "
                 "page with compileInBrowser)",
        "rank": "input 'token_type_ids' has shape [128]; this bundle was compiled for [1,128] "
                "(build another bundle for other shapes, one with --buckets for other lengths, or compile one in this "
                "page with compileInBrowser)",
        "range": "input 'input_ids': value 1099511627776 at index 0 is outside the int32 range the kernels use",
        "notTensor": "input 'input_ids' must be a Tensor (int64 [1,128])",
    }


def test_a_webgpu_validation_error_during_a_run_names_the_kernel(page, minilm_bundle):
    m = json.loads((minilm_bundle / "manifest.json").read_text())
    # Make one kernel write the pool buffer it reads: WebGPU refuses that dispatch.
    i, k = next((i, k) for i, k in enumerate(m["kernels"])
                if [b["buffer"] for b in k["bindings"]].count("pool") >= 2 and k["bindings"][0]["buffer"] == "pool")
    k["bindings"][-1]["index"] = k["bindings"][0]["index"]
    page.route("**/manifest.json", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(m),
        headers={"Cross-Origin-Resource-Policy": "same-origin"}))
    message = run(page, """async ({webjit, create}) => {
        const session = await create('/', {tuning: false});
        try { await session.run((await webjit.loadReference(session.bundle)).inputs); return null; }
        catch (e) { return e.message; }
    }""")
    assert message is not None and message.startswith(
        f"WebGPU validation error in kernel {k['name']} (node '{k['node']}', variant {k['variants'][0]['key']}): ")


def test_a_lost_device_gives_a_clear_error_instead_of_a_result(page):
    message = run(page, """async ({webjit, create}) => {
        const session = await create('/', {tuning: false});
        session.device.destroy();
        await session.device.lost;
        const ids = new webjit.Tensor('int64', new BigInt64Array(128), [1, 128]);
        try { await session.run({input_ids: ids, attention_mask: ids, token_type_ids: ids}); return null; }
        catch (e) { return e.message; }
    }""")
    assert message is not None and message.startswith("the WebGPU device was lost (destroyed")
    assert message.endswith("create a new InferenceSession")


def test_a_lost_device_switches_a_webgpu_then_wasm_session_to_wasm_and_it_says_why(page, minilm_bundle):
    got = run(page, """async ({webjit, create}) => {
        const session = await create('/', {executionProviders: [{name: 'webgpu', useCpuAdapter: true}, 'wasm'],
                                           tuning: false});
        const ref = await webjit.loadReference(session.bundle);
        const before = session.executionProvider;
        session.device.destroy();
        await session.device.lost;
        const y = (await session.run(ref.inputs)).last_hidden_state;
        const again = (await session.run(ref.inputs)).last_hidden_state;
        return {before, after: session.executionProvider, fallback: session.fallback, dims: y.dims,
                data: Array.from(y.data), same: again.data.every((v, i) => v === y.data[i])};
    }""")
    assert got["before"] == "webgpu" and got["after"] == "wasm" and got["same"]
    assert got["fallback"]["from"] == "webgpu"
    assert got["fallback"]["reason"].startswith("the WebGPU device was lost (destroyed")
    want = reference(minilm_bundle, "outputs")["last_hidden_state"]
    err = float(np.max(np.abs(np.array(got["data"], np.float32).reshape(want.shape) - want)))
    assert err <= ATOL, f"max abs error {err:.3e} against onnxruntime"


def test_an_unknown_execution_provider_is_refused(page):
    message = run(page, """async ({webjit}) => {
        try { await webjit.InferenceSession.create('/', {executionProviders: ['webnn', 'wasm']}); return null; }
        catch (e) { return e.message; }
    }""")
    assert message == "unknown execution provider webnn; webjit offers webgpu, wasm"


def test_pages_from_the_server_are_cross_origin_isolated(page):
    assert page.evaluate("() => [window.crossOriginIsolated, typeof SharedArrayBuffer, window.isSecureContext]") == \
        [True, "function", True]


def test_a_kernel_that_does_not_compile_is_an_error_naming_the_kernel_and_the_line(page, minilm_bundle):
    m = json.loads((minilm_bundle / "manifest.json").read_text())
    k = m["kernels"][3]
    path = k["variants"][0]["file"]
    broken = (minilm_bundle / path).read_text().replace("fn main(", "fn main(undeclared_type: nope, ", 1).encode()
    m["files"][path] = {"bytes": len(broken), "sha256": hashlib.sha256(broken).hexdigest()}
    headers = {"Cross-Origin-Resource-Policy": "same-origin"}
    page.route("**/manifest.json", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(m), headers=headers))
    page.route("**/" + path, lambda route: route.fulfill(status=200, content_type="text/wgsl", body=broken,
                                                         headers=headers))
    message = run(page, """async ({webjit, create}) => {
        try { await create('/', {tuning: false}); return null; } catch (e) { return e.message; }
    }""")
    assert message is not None and message.startswith(f"kernel {k['name']} {k['variants'][0]['key']} ({path}) "
                                                       "does not compile")
    assert re.search(r"error at line \d+:\d+: .*nope", message), message


def test_the_demo_page_runs_the_bundle_and_matches_onnxruntime(page):
    page.goto(page.url.split("/web/")[0] + "/web/demo.html?budget=0&runs=1")
    page.wait_for_function("() => document.getElementById('log').textContent.includes('done')", timeout=120_000)
    log = page.text_content("#log")
    assert "error:" not in log, log
    err = re.search(r"last_hidden_state \[1,128,384\]: max abs error vs onnxruntime [\d.]+ CPUExecutionProvider: "
                    r"([\d.e+-]+)", log)
    assert err and float(err.group(1)) <= ATOL, log
