"""The benchmark report: JSON in, summary and self-contained HTML out, and the merge of several machines."""
from __future__ import annotations

import json
import re
from html import escape, unescape

import numpy as np
import pytest

from e2e import bench
from e2e.report import render_html, speedups, summary

MODELS, PROFILES = ["minilm", "gpt2"], ["1x", "4x"]
CONFIGS = [("webjit", "webgpu"), ("ORT-web", "webgpu"), ("webjit", "wasm 1T"), ("ORT-web", "wasm 1T"),
           ("webjit", "wasm 2T"), ("ORT-web", "wasm 2T"), ("transformers.js", "wasm 1T"),
           ("transformers.js", "wasm 2T")]
BASELINES = ["ORT-web", "transformers.js"]


def make_report(host: str, seed: int, models=MODELS, note: str = "") -> dict:
    """A report as `python -m e2e.bench` writes it, with random timings."""
    rng = np.random.default_rng(seed)
    results = []
    for model in models:
        for profile in PROFILES:
            for engine, backend in CONFIGS:
                runs = sorted(rng.uniform(50, 500, size=7).tolist())
                results.append({
                    "model": model, "seq": 128, "profile": profile, "throttle": float(profile[:-1]),
                    "engine": engine, "backend": backend, "ep": backend.split()[0], "threads": 1,
                    "coldStartMs": float(rng.uniform(500, 5000)), "secondVisitMs": float(rng.uniform(300, 3000)),
                    "warm": {"medianMs": float(np.median(runs)), "p90Ms": float(np.percentile(runs, 90)),
                             "runs": len(runs), "runsAsked": 20, "stoppedEarly": True, "runsMs": runs},
                    "maxAbsError": float(rng.uniform(0, 1e-5)), "jsHeapBytes": int(rng.integers(1, 9)) << 20,
                    "gpuBufferBytes": None, "note": note})
    return {"created": "2026-11-26T00:00:00+00:00",
            "machine": {"host": host, "cpu": "Some CPU", "cores": 2, "os": "Linux", "chromium": "156",
                        "adapter": {"vendor": "google", "architecture": "swiftshader"}},
            "settings": {"runs": 20}, "results": results}


def test_the_page_has_one_latency_chart_per_model_and_profile():
    report = make_report("alpha", 0)
    html = render_html([report])
    charts = re.findall(r'<svg class="chart latency" data-model="([^"]*)" data-profile="([^"]*)"', html)
    assert sorted(charts) == sorted({(r["model"], r["profile"]) for r in report["results"]})
    speedup = re.findall(r'<svg class="chart speedup" data-model="([^"]*)" data-baseline="([^"]*)"', html)
    assert sorted(speedup) == sorted({(r["model"], b) for r in report["results"] for b in BASELINES})


def test_the_page_is_self_contained():
    html = render_html([make_report("alpha", 1)])
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)=", html)


@pytest.mark.parametrize("baseline", BASELINES)
def test_speedups_are_the_baseline_medians_over_webjit_medians_of_the_same_backend_and_profile(baseline):
    report = make_report("alpha", 2)
    medians = {(r["model"], r["profile"], r["engine"], r["backend"]): r["warm"]["medianMs"] for r in report["results"]}
    want = {(m, p, b): medians[m, p, baseline, b] / medians[m, p, "webjit", b]
            for (m, p, e, b) in medians if e == "webjit" and (m, p, baseline, b) in medians}
    got = {(s["model"], s["profile"], s["backend"]): s["ratio"] for s in speedups(report, baseline)}
    assert got.keys() == want.keys()
    for k, ratio in want.items():
        assert got[k] == pytest.approx(ratio, rel=1e-12)
    text, html = summary(report), render_html([report])
    for (m, p, b), ratio in want.items():
        words = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"
        assert f"webjit {b} / {baseline} {b}: {words}" in text
        assert words in html


def test_merge_lists_both_machines_in_one_page(tmp_path):
    a, b = make_report("alpha-host", 3), make_report("beta-host", 4, models=["minilm"])
    paths = []
    for rep in (a, b):
        paths.append(tmp_path / f"{rep['machine']['host']}.json")
        paths[-1].write_text(json.dumps(rep))
    out = tmp_path / "merged.html"
    assert bench.main(["merge", *map(str, paths), "-o", str(out)]) == 0
    html = out.read_text()
    sections = re.findall(r"<h2>([^<]*)</h2>", html)
    assert any("alpha-host" in s for s in sections) and any("beta-host" in s for s in sections)
    cross = re.findall(r'<svg class="chart cross" data-model="([^"]*)" data-profile="([^"]*)"', html)
    assert sorted(cross) == sorted({(r["model"], r["profile"]) for rep in (a, b) for r in rep["results"]})
    assert sorted(re.findall(r'<svg class="chart cross-speedup" data-model="([^"]*)"', html)) == sorted(
        {r["model"] for rep in (a, b) for r in rep["results"]})
    assert len(re.findall(r'<svg class="chart latency"', html)) == len({(r["model"], r["profile"]) for r in a["results"]}) \
        + len({(r["model"], r["profile"]) for r in b["results"]})


def test_strings_from_the_report_are_escaped():
    evil = '<script>alert("x")</script> & \'quote\''
    report = make_report(evil, 5, models=[evil], note=evil)
    report["machine"]["cpu"] = evil
    for r in report["results"]:
        r["backend"] = evil + r["backend"]
    html = render_html([report, make_report("other", 6)])
    assert evil not in html and "<script" not in html
    assert escape(evil) in html
    assert evil in unescape(html)


def test_merge_of_a_file_that_is_not_a_report_is_one_line_and_exit_status_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    assert bench.main(["merge", str(bad), "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.json" in err and "Traceback" not in err


def test_an_unknown_model_is_one_line_and_exit_status_2(capsys):
    assert bench.main(["--models", "minilm,nosuchmodel"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nosuchmodel" in err and "Traceback" not in err


def test_an_unknown_precision_of_a_model_is_one_line_and_exit_status_2(capsys):
    assert bench.main(["--models", "minilm:q3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "q3" in err and "q8" in err and "Traceback" not in err
