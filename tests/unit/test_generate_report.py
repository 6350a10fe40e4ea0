"""The text-generation benchmark's report and command line: greedy ids compared against the reference and across
engines, ratios of the same backend, a self-contained escaped page, one-line usage errors, and bench-only models
kept out of the hub export that the test suite runs."""
from __future__ import annotations

import re

import numpy as np
import pytest

from e2e import bench
from e2e.generate_report import REFERENCE, compare, ratios, render_html, summary

PAST = ["16", "128"]
CONFIGS = [("webjit", "wasm 1T"), ("ORT-web", "wasm 1T"), ("webjit", "wasm 2T"), ("ORT-web", "wasm 2T")]


def make_report(seed: int, ids: dict | None = None) -> dict:
    """A report as `python -m e2e.bench --generate` writes it, with random figures and the given greedy ids per
    (engine, backend) (the reference's by default)."""
    rng = np.random.default_rng(seed)
    reference = [int(x) for x in rng.integers(0, 1000, 12)]
    probe = [int(x) for x in rng.integers(0, 1000, 3)]
    results = []
    for engine, backend in CONFIGS:
        got = (ids or {}).get((engine, backend), reference)
        results.append({
            "model": "gpt2-124m", "profile": "1x", "throttle": 1.0, "engine": engine, "backend": backend,
            "prefillTokensPerSecond": float(rng.uniform(50, 500)), "decodeTokensPerSecond": float(rng.uniform(5, 50)),
            "prefillMs": 1.0, "decodeMs": 1.0, "decodeMedianMs": float(rng.uniform(20, 200)),
            "newTokens": len(got), "newTokensAsked": 12, "stoppedEarly": False,
            "msPerToken": {n: float(rng.uniform(10, 90)) for n in PAST},
            "prefillMsAt": {n: float(rng.uniform(10, 900)) for n in PAST}, "loadedMs": 1500.0,
            "ids": {"workload": got, "past 16": probe}})
    report = {"created": "2026-12-04T00:00:00+00:00",
              "machine": {"host": "alpha", "cpu": "Some CPU", "cores": 2, "os": "Linux", "chromium": "156"},
              "settings": {"prompt": 128, "new": 12, "past": [16, 128], "pastSteps": 4},
              "results": results, "reference": {"gpt2-124m": {"workload": reference}}}
    report["checks"] = compare(report)
    return report


def test_matching_ids_give_one_agreeing_check_per_result_and_generation():
    report = make_report(0)
    checks = report["checks"]
    against = {(c["generation"], c["against"]) for c in checks}
    assert {g for g, a in against if a == REFERENCE} == {"workload"}
    assert len([c for c in checks if c["generation"] == "workload"]) == len(CONFIGS)
    assert len([c for c in checks if c["generation"] == "past 16"]) == len(CONFIGS) - 1  # against the first
    assert all(c["firstDifference"] is None for c in checks)
    assert "greedy ids: all" in summary(report) and "MISMATCH" not in summary(report)


def test_a_differing_id_is_reported_at_its_first_index_in_the_summary_and_the_page():
    base = make_report(1)["reference"]["gpt2-124m"]["workload"]
    wrong = base[:5] + [(base[5] + 1) % 1000] + base[6:]
    report = make_report(1, {("ORT-web", "wasm 2T"): wrong})
    [bad] = [c for c in report["checks"] if c["firstDifference"] is not None]
    assert (bad["engine"], bad["backend"], bad["generation"], bad["firstDifference"]) == ("ORT-web", "wasm 2T",
                                                                                          "workload", 5)
    assert "MISMATCH: 1 of" in summary(report)
    assert "MISMATCH at token 5" in render_html(report)


def test_a_shorter_generation_is_compared_over_the_tokens_it_has():
    base = make_report(2)["reference"]["gpt2-124m"]["workload"]
    report = make_report(2, {("webjit", "wasm 1T"): base[:4]})
    [c] = [c for c in report["checks"] if (c["engine"], c["backend"], c["generation"]) == ("webjit", "wasm 1T",
                                                                                           "workload")]
    assert c["firstDifference"] is None and c["tokens"] == 4


def test_ratios_are_webjits_over_ort_webs_on_the_same_backend_and_per_token_times_inverted():
    report = make_report(3)
    by = {(r["engine"], r["backend"]): r for r in report["results"]}
    for u in ratios(report):
        mine, theirs = by["webjit", u["backend"]], by["ORT-web", u["backend"]]
        assert u["decode"] == pytest.approx(mine["decodeTokensPerSecond"] / theirs["decodeTokensPerSecond"])
        assert u["prefill"] == pytest.approx(mine["prefillTokensPerSecond"] / theirs["prefillTokensPerSecond"])
        assert u["decodeMedian"] == pytest.approx(theirs["decodeMedianMs"] / mine["decodeMedianMs"])
        for n in PAST:
            assert u["past"][n] == pytest.approx(theirs["msPerToken"][n] / mine["msPerToken"][n])
    assert sorted(u["backend"] for u in ratios(report)) == ["wasm 1T", "wasm 2T"]


def test_the_page_is_self_contained_and_escapes_the_reports_strings():
    report = make_report(4)
    report["results"][0]["model"] = "<b>x</b>"
    report["checks"] = compare(report)
    html = render_html(report)
    assert "<script" not in html.lower() and not re.search(r"(src|href)=", html)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


@pytest.mark.parametrize("args, says", [
    (["--prompt", "0"], "--prompt, --new, --past and --past-steps must be >= 1"),
    (["--past", "16,x"], "--throttle and --past take comma lists"),
    (["--context", "100"], "--context 100: the generations need 521 positions"),
    (["--models", "bert"], "unknown model 'bert'"),
    (["--backends", "wasm3"], "unknown backend wasm3"),
])
def test_a_bad_generate_option_is_one_line_and_exit_status_2(args, says, capsys):
    assert bench.main(["--generate", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err


def test_a_workload_longer_than_the_models_positions_is_one_line_and_exit_status_2(capsys):
    assert bench.main(["--generate", "--models", "gpt2", "--engines", "webjit"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gpt2: the generations need 521 positions and the model has 128" in err


def test_the_benchmark_decoders_are_not_among_the_architectures_hub_all_exports():
    hub = pytest.importorskip("demo_models.hub")
    assert set(hub.BENCH_ARCHS).isdisjoint(hub.ARCHS)
    for arch, spec in hub.BENCH_ARCHS.items():
        assert spec.forms == ("fp32",) and hub.files(arch) == ["onnx/model.onnx"]
