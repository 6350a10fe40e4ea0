"""A short run of the text-generation benchmark (python -m e2e.bench --generate) on the small hub GPT-2, on one
wasm thread: both engines' greedy ids equal onnxruntime's own loop on the same file, the figures follow from the
recorded token times, and the JSON, the HTML and the summary hold both engines."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from e2e import generate_bench, measure

pytestmark = [pytest.mark.e2e, pytest.mark.models]

hub = pytest.importorskip("demo_models.hub")

PROMPT, NEW, PAST, STEPS = 16, 8, (16, 32), 2


@pytest.fixture(scope="module")
def ort_web():
    why = measure.ort_web_missing()
    if why:
        pytest.skip(why)


def test_a_short_generation_run_reports_both_engines_with_onnxruntimes_greedy_ids(chromium, ort_web, tmp_path,
                                                                                   capsys):
    from webjit.native.generate import reference_greedy
    out = tmp_path / "bench"
    code = generate_bench.bench(["--models", "gpt2", "--prompt", str(PROMPT), "--new", str(NEW),
                                 "--past", ",".join(map(str, PAST)), "--past-steps", str(STEPS), "--context", "64",
                                 "--backends", "wasm1", "--out", str(out)], browser=chromium)
    assert code == 0
    [path] = out.glob("generate-*.json")
    report = json.loads(path.read_text())
    results = {(r["engine"], r["backend"]): r for r in report["results"]}
    assert set(results) == {("webjit", "wasm 1T"), ("ORT-web", "wasm 1T")}
    model = hub.get("gpt2") / "onnx" / "model.onnx"
    prompts = report["prompts"]["gpt2"]
    assert len(prompts["workload"]) == PROMPT and [len(prompts[f"past {n}"]) for n in PAST] == list(PAST)
    want = {name: reference_greedy(model, p, NEW if name == "workload" else STEPS + 1) for name, p in prompts.items()}
    for r in results.values():
        assert not r.get("error"), r.get("error")
        assert r["ids"] == want
        ms = r["stepMs"]
        assert len(ms) == NEW and not r["stoppedEarly"]
        assert r["prefillTokensPerSecond"] == pytest.approx(1000 * PROMPT / ms[0])
        assert r["decodeTokensPerSecond"] == pytest.approx(1000 * (NEW - 1) / sum(ms[1:]))
        assert r["decodeMedianMs"] == pytest.approx(float(np.median(ms[1:])))
        assert set(r["msPerToken"]) == {str(n) for n in PAST} and all(v > 0 for v in r["msPerToken"].values())
        assert r["crossOriginIsolated"] and not r["pageErrors"]
    assert results["webjit", "wasm 1T"]["engineInfo"]["executionProvider"] == "wasm"
    assert results["ORT-web", "wasm 1T"]["engineInfo"]["presentLocation"] == "cpu"
    assert report["checks"] and all(c["firstDifference"] is None for c in report["checks"])
    html = (out / "generate.html").read_text()
    for kind in ("decode", "prefill", "per-token", "ratio"):
        assert f'<svg class="chart {kind}" data-model="gpt2" data-profile="1x"' in html
    printed = capsys.readouterr().out
    assert re.search(r"webjit/ORT-web +wasm 1T +[\d.]+x +[\d.]+x", printed)
    assert "greedy ids: all" in printed and "MISMATCH" not in printed
