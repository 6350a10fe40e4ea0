"""The compiler in the browser (web/compiler.js): webjit's Python compiler in Pyodide, loaded from our own files
(`python -m webjit.pyodide_dist`, served at /pyodide/), compiles the real all-MiniLM-L6-v2 at sequence length 96
(a length no shipped bundle has) in a worker of headless Chromium; the bundle it returns runs on WebGPU and on
WebAssembly and matches onnxruntime, and its files are byte for byte those `webjit.inbrowser.compile_files` writes
in CPython, for MiniLM and for GPT-2. The demo page's "compile a model in your browser" panel does the same from
its buttons.

One blank page, and one compiler worker with one Pyodide in it, serve the tests of compileInBrowser itself (Pyodide
starts once); the demo page is another, shared by the panel's tests. The server is the demo page's bundle, which
carries MiniLM's ONNX model at /source/.
"""
from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

import demo_models
from e2e import browser as harness
from e2e.browser import run, wire_feeds

pytestmark = [pytest.mark.e2e, pytest.mark.models]

SEQ = 96
ATOL = 1e-4
BACKENDS = ["webgpu", "wasm"]

# Compiles a model in the page's worker; keeps the result as window.compiled[key] (for the sessions of later tests)
# unless `keep` is false, and returns the SHA-256 of every file, the timings and the progress stages seen.
COMPILE = """async ({webjit}, {key, model, shapes, keep}) => {
    const stages = new Set();
    const compiled = await webjit.compileInBrowser(model, {shapes, backends: %s,
                                                           onProgress: (e) => stages.add(e.stage)});
    const hex = async (b) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', b)),
                                        (x) => x.toString(16).padStart(2, '0')).join('');
    const sha = {};
    for (const [path, bytes] of compiled.files) sha[path] = await hex(bytes);
    window.compiled = window.compiled || {};
    if (keep) window.compiled[key] = compiled;
    return {sha, timings: compiled.timings, stages: [...stages], url: compiled.url};
}""" % json.dumps(BACKENDS)

# Runs a compiled bundle on one execution provider.
RUN = """async ({create, feeds}, {key, ep, inputs}) => {
    const session = await create(window.compiled[key], {executionProviders: [ep], tuning: {budgetMs: 1}, cache: false});
    const t0 = performance.now();
    const out = await session.run(feeds(inputs));
    const ms = performance.now() - t0;
    const y = out.last_hidden_state;
    return {ep: session.executionProvider, dims: y.dims, data: Array.from(y.data), ms};
}"""


def shapes_of(feeds: dict) -> dict:
    return {name: list(a.shape) for name, a in feeds.items()}


def cpython_sha(model, feeds) -> dict:
    """compile_files in this process, for the same model, shapes and backends as the page."""
    from webjit.inbrowser import compile_files
    files = compile_files(str(model), shapes_of(feeds), backends=BACKENDS)
    return {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}


@pytest.fixture(scope="module")
def dist():
    from webjit.pyodide_dist import DistError, build
    try:
        return build()  # up to date after `make test`; otherwise made now
    except DistError as e:
        pytest.fail(f"no Pyodide distribution: {e}")


@pytest.fixture(scope="module")
def minilm():
    if not (demo_models.cache_dir() / "minilm" / "model.onnx").is_file():
        pytest.importorskip("torch", reason="exporting the demo model needs the export extra")
    return demo_models.get("minilm"), demo_models.sample_inputs("minilm", seq=SEQ)


@pytest.fixture(scope="module")
def demo_bundle(minilm, tmp_path_factory):
    """The demo page's bundle, which carries the MiniLM model as source/model.onnx (and its external data)."""
    from demo_models.demo_bundle import build
    return build(tmp_path_factory.mktemp("minilm-demo") / "bundle")


@pytest.fixture(scope="module")
def server(dist, demo_bundle):
    """The demo bundle at / (MiniLM's ONNX model at /source/), the runtime at /web/, Pyodide at /pyodide/, and
    GPT-2's model folder at /gpt2/."""
    from webjit.serve import make_server
    mounts = {"pyodide": dist}
    if _can_export_gpt2():
        mounts["gpt2"] = demo_models.get("gpt2").parent  # exports it now if no worker has yet
    s = make_server(demo_bundle, mounts=mounts).start()
    yield s
    s.shutdown()
    s.server_close()


@pytest.fixture(scope="module")
def page(chromium, server):
    context = chromium.new_context()
    requests = []
    context.on("request", lambda r: requests.append(r.url))
    page = harness.open_page(context, server.url, timeout_ms=600_000)
    page.requests = requests
    yield page
    context.close()


@pytest.fixture(scope="module")
def compiled_minilm(page, minilm):
    model, feeds = minilm
    return run(page, COMPILE, {"key": "minilm", "model": "/source/model.onnx", "shapes": shapes_of(feeds), "keep": True})


def test_pyodide_loads_from_local_files_and_compiles_minilm_at_a_new_length(page, server, dist, compiled_minilm):
    assert all(u.startswith(server.url) for u in page.requests), "every request stays on our server"
    fetched = {u[len(server.url + "pyodide/"):] for u in page.requests if u.startswith(server.url + "pyodide/")}
    assert {"pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"} <= fetched
    assert {f for f in fetched if f.endswith(".whl")} == {p.name for p in dist.glob("*.whl")}, \
        "loadPackage('webjit') fetches webjit, jinja2 and markupsafe, and nothing else"
    t = compiled_minilm["timings"]
    assert not t["warm"] and t["pyodideMs"] > 0 and t["packagesMs"] > 0 and t["compileMs"] > 0
    assert {"pyodide", "packages", "fetch", "done"} <= set(compiled_minilm["stages"])
    assert compiled_minilm["url"].startswith("webjit-compiled:")
    assert "manifest.json" in compiled_minilm["sha"] and any(p.startswith("wasm/") for p in compiled_minilm["sha"])
    print(f"\npyodide start {t['pyodideMs']:.0f} ms, packages {t['packagesMs']:.0f} ms, "
          f"fetch {t['fetchMs']:.0f} ms, MiniLM seq {SEQ} compile {t['compileMs']:.0f} ms")


@pytest.mark.parametrize("ep", BACKENDS)
def test_the_compiled_bundle_runs_and_matches_onnxruntime(page, compiled_minilm, minilm, ep):
    import onnxruntime as ort
    model, feeds = minilm
    got = run(page, RUN, {"key": "minilm", "ep": ep, "inputs": wire_feeds(feeds)})
    assert got["ep"] == ep and got["dims"] == [1, SEQ, 384]
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    want = session.run(["last_hidden_state"], feeds)[0]
    err = float(np.max(np.abs(np.array(got["data"], np.float32).reshape(want.shape) - want)))
    assert err <= ATOL, f"max abs error {err:.3e} against onnxruntime on {ep}"


def test_the_files_equal_compile_files_in_cpython_for_minilm(compiled_minilm, minilm):
    assert compiled_minilm["sha"] == cpython_sha(*minilm)


def test_a_second_compile_reuses_the_worker_and_pyodide(page, compiled_minilm, minilm):
    got = run(page, COMPILE, {"key": "again", "model": "/source/model.onnx", "shapes": shapes_of(minilm[1]), "keep": False})
    assert got["timings"]["warm"] and got["timings"]["pyodideMs"] == 0 and got["timings"]["packagesMs"] == 0
    assert got["sha"] == compiled_minilm["sha"]


def test_model_bytes_with_external_data_compile_and_bad_locations_or_no_pyodide_fail_in_one_line(page, compiled_minilm, minilm):
    got = run(page, """async ({webjit}, shapes) => {
        const bytes = async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer());
        const model = await bytes('/source/model.onnx');
        const compiled = await webjit.compileInBrowser(model, {shapes,
            externalData: [{path: 'model.onnx.data', data: await bytes('/source/model.onnx.data')}]});
        const refused = await webjit.compileInBrowser(model, {shapes, externalData: [{path: '../x', data: '/x'}]})
            .then(() => null, (e) => e.message);
        const missing = await webjit.compileInBrowser(model, {shapes}).then(() => null, (e) => e.message);
        const nowhere = await webjit.compileInBrowser(model, {shapes, pyodideURL: '/nowhere/'}).then(() => null, (e) => e.message);
        return {manifest: compiled.manifest.format, length: model.byteLength, refused, missing, nowhere};
    }""", shapes_of(minilm[1]))
    assert got["nowhere"].startswith("Pyodide is not at ") and "webjit.pyodide_dist" in got["nowhere"]
    assert got["manifest"] == "webjit-bundle" and got["length"] > 0
    assert "not a plain relative path" in got["refused"]
    assert got["missing"] and "\n" not in got["missing"]


def _can_export_gpt2() -> bool:
    import importlib.util
    return (demo_models.cache_dir() / "gpt2" / "model.onnx").is_file() or importlib.util.find_spec("torch") is not None


def test_the_files_equal_compile_files_in_cpython_for_gpt2(page, server, compiled_minilm):
    if not _can_export_gpt2():
        pytest.skip("exporting GPT-2 needs the export extra")
    model, feeds = demo_models.get("gpt2"), demo_models.sample_inputs("gpt2")
    got = run(page, COMPILE, {"key": "gpt2", "model": "/gpt2/model.onnx", "shapes": shapes_of(feeds), "keep": False})
    assert got["sha"] == cpython_sha(model, feeds)


def test_the_lockfile_lists_webjit_without_its_native_only_dependencies(dist):
    packages = json.loads((dist / "pyodide-lock.json").read_text())["packages"]
    assert packages["webjit"]["depends"] == ["jinja2"] and packages["jinja2"]["depends"] == ["markupsafe"]
    for name in ("webjit", "jinja2", "markupsafe"):
        assert (dist / packages[name]["file_name"]).is_file()
        assert packages[name]["file_name"].endswith("-py3-none-any.whl")


@pytest.fixture(scope="module")
def demo_page(chromium, server):
    """The demo page on WebAssembly (quicker than SwiftShader) with two sentences embedded."""
    context = chromium.new_context(viewport={"width": 1100, "height": 1300})
    page = harness.open_demo(context, server.url + "web/demo/?n=2&budget=1&backend=wasm", timeout_ms=600_000)
    yield page
    assert not page.errors, f"uncaught errors in the page: {page.errors}"
    context.close()


def compile_and_run(page) -> dict:
    page.click("#compile-go")
    page.wait_for_function("['compiled', 'error'].includes(demo.compiler.state)")
    assert page.evaluate("demo.compiler.state") == "compiled", page.text_content("#compile-status")
    assert page.get_attribute("#compile-progress", "value") == "1"
    page.click("#compile-run")
    page.wait_for_function("['done', 'error'].includes(demo.compiler.state)")
    assert page.evaluate("demo.compiler.state") == "done", page.text_content("#compile-status")
    return page.evaluate("demo.compiler")


def test_the_demo_page_compiles_minilm_for_a_new_length_and_runs_it(demo_page):
    demo_page.fill("#compile-seq", "40")
    got = compile_and_run(demo_page)
    assert got["seq"] == 40 and got["run"]["ep"] == "wasm" and got["run"]["ms"] > 0
    assert got["run"]["similarity"] > 0.9999, "the compiled model embeds the sentence as the page's bundle does"
    assert re.match(r"Compiled \d+ files \([\d.]+ MiB\) in [\d.]+ s", demo_page.text_content("#compile-status"))
    assert "cosine similarity to the page's bundle: 1.0000" in demo_page.text_content("#compile-out")


def test_the_demo_page_compiles_a_picked_onnx_file_with_its_external_data(demo_page, minilm):
    model = minilm[0]
    demo_page.set_input_files("#compile-files", [str(model), str(model.parent / "model.onnx.data")])
    demo_page.fill("#compile-shapes", " ".join(f"{n}=1x24" for n in minilm[1]))
    got = compile_and_run(demo_page)
    assert got["source"] == "file" and got["timings"]["compileMs"] > 0
    assert [o["name"] for o in got["run"]["outputs"]] == ["last_hidden_state"]
    assert got["run"]["outputs"][0]["dims"] == [1, 24, 384]
