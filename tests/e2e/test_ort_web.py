"""onnxruntime-web 1.30 (from npm, node_modules/onnxruntime-web) in headless Chromium beside webjit: it loads the
real all-MiniLM-L6-v2 ONNX file with its external data on the wasm EP and agrees with onnxruntime (Python), and a
short run of the benchmark harness (python -m e2e.bench) writes a JSON and an HTML report with both engines."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from e2e import bench, measure

pytestmark = [pytest.mark.e2e, pytest.mark.models]

MODEL, SEQ = "minilm", 128

# Loads onnxruntime-web's wasm build, the ONNX file and its external data files from the server, runs the feeds
# given by Python once on one thread and returns every output as a plain array.
RUN_ORT_WEB = """async ({model, external, feeds}) => {
    const ort = await import('/ort/ort.wasm.min.mjs');
    ort.env.wasm.wasmPaths = new URL('/ort/', location.href).href;
    ort.env.wasm.numThreads = 1;
    const get = async (f) => new Uint8Array(await (await fetch('/model/' + f)).arrayBuffer());
    const session = await ort.InferenceSession.create(await get(model), {
        executionProviders: ['wasm'],
        externalData: await Promise.all(external.map(async (path) => ({path, data: await get(path)}))),
    });
    const inputs = Object.fromEntries(feeds.map((f) => [f.name,
        new ort.Tensor('int64', BigInt64Array.from(f.data, BigInt), f.shape)]));
    const out = await session.run(inputs);
    return {version: ort.env.versions.web, outputs: Object.fromEntries(Object.entries(out).map(([k, t]) =>
        [k, {dims: t.dims, data: Array.from(t.data)}]))};
}"""


@pytest.fixture(scope="module")
def ort_web():
    why = measure.ort_web_missing()
    if why:
        pytest.skip(why)


@pytest.fixture(scope="module")
def server(ort_web, minilm_bundle, tmp_path_factory):
    import demo_models
    model = demo_models.get(MODEL)
    data = tmp_path_factory.mktemp("ort-data")
    measure.write_data(model, demo_models.sample_inputs(MODEL, seq=SEQ), data)
    s = measure.make_bench_server(minilm_bundle, model, data)
    yield s, model, json.loads((data / "feeds.json").read_text())
    s.shutdown()
    s.server_close()


def test_ort_web_runs_minilm_with_external_data_on_wasm_and_matches_onnxruntime(chromium, server):
    import onnxruntime

    import demo_models
    s, model, spec = server
    feeds = demo_models.sample_inputs(MODEL, seq=SEQ)
    assert spec["model"]["externalData"], "the MiniLM export keeps its weights in an external data file"
    want = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in want.get_outputs()]
    expected = dict(zip(names, want.run(names, feeds)))
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(s.url + "bench/bench.html")  # no engine: a blank page on the origin
        got = page.evaluate(RUN_ORT_WEB, {"model": model.name, "external": spec["model"]["externalData"],
                                          "feeds": [{"name": k, "shape": list(v.shape), "data": v.ravel().tolist()}
                                                    for k, v in feeds.items()]})
    finally:
        context.close()
    pinned = json.loads((Path(__file__).parents[2] / "package.json").read_text())["devDependencies"]["onnxruntime-web"]
    assert got["version"] == pinned, "the page runs the onnxruntime-web that package.json pins"
    assert set(got["outputs"]) == set(expected)
    for name, want_value in expected.items():
        out = got["outputs"][name]
        assert out["dims"] == list(want_value.shape)
        np.testing.assert_allclose(np.asarray(out["data"], dtype=np.float32).reshape(want_value.shape), want_value,
                                   rtol=0, atol=1e-4)


def test_a_short_harness_run_writes_a_report_with_the_three_engines(chromium, ort_web, minilm_bundle, tmp_path,
                                                                    capsys):
    """webjit, onnxruntime-web and transformers.js (installed from npm on first use) on the same file; each
    agrees with onnxruntime (Python), and the report compares webjit with both."""
    out = tmp_path / "bench"
    code = bench.bench(["--models", MODEL, "--seq", str(SEQ), "--engines", "webjit,ort,tjs", "--backends", "wasm1",
                        "--runs", "3", "--throttle", "1", "--bundle", str(minilm_bundle), "--out", str(out)],
                       browser=chromium)
    assert code == 0
    [path] = out.glob("report-*.json")
    report = json.loads(path.read_text())
    results = {(r["engine"], r["backend"]): r for r in report["results"]}
    assert set(results) == {("webjit", "wasm 1T"), ("ORT-web", "wasm 1T"), ("transformers.js", "wasm 1T")}
    for r in results.values():
        assert not r.get("error"), r.get("error")
        assert r["warm"]["runs"] == 3 and r["warm"]["medianMs"] == pytest.approx(np.median(r["warm"]["runsMs"]))
        assert r["maxAbsError"] <= 1e-4
        assert r["coldStartMs"] > r["cold"]["loadedMs"] > 0 and r["secondVisitMs"] > 0
    assert report["machine"]["chromium"] and report["machine"]["cores"]
    pinned = json.loads((measure.TJS_ROOT / "package.json").read_text())["devDependencies"]["@huggingface/transformers"]
    assert report["machine"]["transformersJs"] == pinned
    assert results["transformers.js", "wasm 1T"]["cold"]["engine"]["version"] == pinned
    html = (out / "report.html").read_text()
    assert f'<svg class="chart latency" data-model="{MODEL}" data-profile="1x"' in html
    assert '<svg class="chart speedup"' in html
    printed = capsys.readouterr().out
    assert "webjit wasm 1T / ORT-web wasm 1T:" in printed
    assert "webjit wasm 1T / transformers.js wasm 1T:" in printed


def test_the_text_run_times_both_pipelines_from_text_to_pooled_embeddings(chromium, tmp_path, capsys):
    """--text: webjit's and transformers.js's feature-extraction pipelines on the same texts, tokenization and
    mean pooling included, each giving the embeddings of Python's tokenizers + onnxruntime + numpy pooling."""
    out = tmp_path / "bench"
    code = bench.bench(["--text", "--models", MODEL, "--seq", "40", "--engines", "webjit,tjs", "--backends", "wasm1",
                        "--runs", "2", "--throttle", "1", "--out", str(out)], browser=chromium)
    assert code == 0
    [path] = out.glob("report-*.json")
    results = {r["engine"]: r for r in json.loads(path.read_text())["results"]}
    assert set(results) == {"webjit", "transformers.js"}
    for r in results.values():
        assert not r.get("error"), r.get("error")
        assert r["model"] == f"{MODEL} text" and r["warm"]["runs"] == 2
        assert r["maxAbsError"] <= 1e-4
    assert "webjit wasm 1T / transformers.js wasm 1T:" in capsys.readouterr().out


def test_the_texts_have_the_length_asked_for_whatever_length_the_tokenizer_cuts_or_pads_to():
    from tokenizers import Tokenizer

    from demo_models import hub
    path = hub.get(MODEL) / "tokenizer.json"
    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    for tokens in (40, 100, 200):
        lengths = [len(tok.encode(t).ids) for t in measure.texts_of(path, tokens)]
        assert len(lengths) == measure.TEXTS and all(tokens - 3 <= n <= tokens for n in lengths), lengths
