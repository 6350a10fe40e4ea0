"""Text-generation benchmark reports: the greedy-id checks, the stdout summary and the self-contained HTML page.

A report is the JSON that `python -m e2e.bench --generate` writes: {"machine", "settings", "results", "prompts",
"reference", "checks"}, one result per model, CPU profile, engine and backend, with its figures (prefill and decode
tokens/s, ms per token at each past) and its greedy ids per generation; "prompts" holds each model's prompt per
generation, "reference" onnxruntime's (Python) ids of each model's workload. Ratios are webjit's over
onnxruntime-web's on the same model, profile and backend, measured in the same run: tokens/s over tokens/s, and
ms per token the other way round, so that above 1 webjit is faster in each.
"""
from __future__ import annotations

from html import escape

from .charts import bar_chart
from .report import ORT, STYLE, WEBJIT, _ms, machine_line, machine_table

REFERENCE = "onnxruntime (Python)"
WORKLOAD = "workload"  # the generation that the figures and the reference are of


def compare(report: dict) -> list[dict]:
    """Per model and generation, every result's greedy ids against the reference's (onnxruntime's loop, for the
    workload) or else against the first result's: `firstDifference` is the first token index that differs, None
    when the `tokens` both have agree."""
    out = []
    results = [r for r in report["results"] if r.get("ids")]
    for model in dict.fromkeys(r["model"] for r in results):
        mine = [r for r in results if r["model"] == model]
        for gen in dict.fromkeys(g for r in mine for g in r["ids"]):
            want = (report.get("reference", {}).get(model) or {}).get(gen)
            first, against = None, REFERENCE
            if want is None:
                first = next(r for r in mine if gen in r["ids"])
                want, against = first["ids"][gen], f"{first['engine']} {first['backend']} at CPU {first['profile']}"
            for r in mine:
                if r is first or gen not in r["ids"]:
                    continue
                got = r["ids"][gen]
                n = min(len(got), len(want))
                diff = next((i for i in range(n) if got[i] != want[i]), None)
                who = f"{model} {gen}: {r['engine']} {r['backend']} at CPU {r['profile']}"
                text = (f"{who} agrees with {against} over {n} tokens" if diff is None else
                        f"{who} differs from {against} at token {diff} (id {got[diff]}, not {want[diff]})")
                out.append({"model": model, "generation": gen, "engine": r["engine"], "backend": r["backend"],
                            "profile": r["profile"], "against": against, "tokens": n, "firstDifference": diff,
                            "text": text})
    return out


def _over(a, b):
    return a / b if a and b else None


def ratios(report: dict) -> list[dict]:
    """webjit over ORT-web per model, profile and backend: prefill and decode tokens/s, and the inverse of the
    median decode step's ms and, per past, of ms per token (above 1: webjit is faster)."""
    ort = {(r["model"], r["profile"], r["backend"]): r for r in report["results"]
           if r["engine"] == ORT and not r.get("error")}
    out = []
    for r in report["results"]:
        o = ort.get((r["model"], r["profile"], r["backend"]))
        if r["engine"] != WEBJIT or r.get("error") or o is None:
            continue
        out.append({"model": r["model"], "profile": r["profile"], "backend": r["backend"],
                    "prefill": _over(r["prefillTokensPerSecond"], o["prefillTokensPerSecond"]),
                    "decode": _over(r["decodeTokensPerSecond"], o["decodeTokensPerSecond"]),
                    "decodeMedian": _over(o.get("decodeMedianMs"), r.get("decodeMedianMs")),
                    "past": {n: _over(o["msPerToken"].get(n), v) for n, v in r["msPerToken"].items()}})
    return out


def groups(report: dict) -> list[tuple]:
    """(model, profile) pairs in the order they were measured."""
    return list(dict.fromkeys((r["model"], r["profile"]) for r in report["results"]))


def _num(v, width: int) -> str:
    return f"{'—' if v is None else f'{v:,.1f}':>{width}}"


def _x(v, width: int) -> str:
    return f"{'—' if v is None else f'{v:.2f}x':>{width}}"


def summary(report: dict) -> str:
    """The stdout table: per model and profile, every engine/backend's figures, then webjit over ORT-web, then
    the greedy-id checks."""
    s = report["settings"]
    pasts = [str(n) for n in s["past"]]
    lines = [machine_line(report["machine"])]
    head = (f"  {'engine':<15} {'backend':<8} {'prefill tok/s':>13} {'decode tok/s':>12} {'median ms':>9}"
            + "".join(f"{f'ms/tok @{n}':>12}" for n in pasts) + f" {'load s':>7}")
    for model, profile in groups(report):
        lines += ["", f"{model} at CPU {profile}: prompt {s['prompt']} + {s['new']} new tokens (greedy), the median "
                      f"decode step; ms per token at a past of {', '.join(pasts)} ({s['pastSteps']} steps each)", head]
        for r in report["results"]:
            if (r["model"], r["profile"]) != (model, profile):
                continue
            if r.get("error"):
                lines.append(f"  {r['engine']:<15} {r['backend']:<8} failed: {r['error'][:90]}")
                continue
            star = "*" if r["stoppedEarly"] else " "
            lines.append(f"  {r['engine']:<15} {r['backend']:<8} {_num(r['prefillTokensPerSecond'], 13)} "
                         f"{_num(r['decodeTokensPerSecond'], 12)} {_num(r.get('decodeMedianMs'), 9)}"
                         + "".join(_num(r["msPerToken"].get(n), 12) for n in pasts)
                         + f" {_num(r['loadedMs'] / 1000, 7)}{star}")
        for u in ratios(report):
            if (u["model"], u["profile"]) == (model, profile):
                lines.append(f"  {'webjit/ORT-web':<15} {u['backend']:<8} {_x(u['prefill'], 13)} {_x(u['decode'], 12)} "
                             f"{_x(u['decodeMedian'], 9)}"
                             + "".join(_x(u["past"].get(n), 12) for n in pasts))
    checks = report.get("checks", [])
    bad = [c for c in checks if c["firstDifference"] is not None]
    lines += ["", "  ratios: webjit's tokens/s over ORT-web's (ms per token: ORT-web's over webjit's); above 1: "
                  "webjit is faster"]
    if any(r.get("stoppedEarly") for r in report["results"]):
        lines.append("  * stopped early by --max-seconds: fewer tokens than asked")
    if bad:
        lines += ["", f"MISMATCH: {len(bad)} of {len(checks)} greedy-id comparisons differ"]
        lines += [f"  {c['text']}" for c in bad]
    elif checks:
        against = sorted({c["against"] for c in checks if c["generation"] == WORKLOAD})
        lines += ["", f"greedy ids: all {len(checks)} comparisons agree (the workload's against "
                      f"{', '.join(against) or 'the first result'}, the other generations across engines)"]
    return "\n".join(lines)


def render_html(report: dict) -> str:
    """One self-contained page: the machine, per model and profile charts of tokens/s, ms per token and ratios,
    then tables of every figure and of the greedy-id checks."""
    e = escape
    s = report["settings"]
    pasts = [str(n) for n in s["past"]]
    body = ["<h1>webjit vs onnxruntime-web: text generation in Chromium</h1>",
            (f"<p>Greedy generation on the same ONNX decoder: a prompt of {s['prompt']} tokens, then {s['new']} new "
             "tokens. Prefill tokens/s is the prompt's length over the first token's time (the prompt in one step); "
             "decode tokens/s counts the other tokens. The time per token at a past is the median of "
             f"{s['pastSteps']} decode steps after a prompt of that length. Ratios are webjit's over onnxruntime-web's "
             "on the same backend, measured in the same run (above 1: webjit is faster).</p>"),
            machine_table(report)]
    ups = ratios(report)
    for model, profile in groups(report):
        results = [r for r in report["results"]
                   if (r["model"], r["profile"]) == (model, profile) and not r.get("error")]
        backends = list(dict.fromkeys(r["backend"] for r in results))
        engines = list(dict.fromkeys(r["engine"] for r in results))
        data = {"model": model, "profile": profile}
        body.append(f"<h2>{e(model)}, CPU {e(profile)}</h2>")
        for what, title in (("decodeTokensPerSecond", "decode"), ("prefillTokensPerSecond", "prefill")):
            values = {(r["backend"], r["engine"]): r[what] for r in results}
            body.append(bar_chart(f"{model}, CPU {profile}: {title} tokens/s", backends, engines, values,
                                  unit="tok/s", kind=title, data=data))
        series = [f"{r['engine']} {r['backend']}" for r in results]
        values = {(f"past {n}", f"{r['engine']} {r['backend']}"): r["msPerToken"].get(n)
                  for r in results for n in pasts}
        body.append(bar_chart(f"{model}, CPU {profile}: ms per decode token, by past",
                              [f"past {n}" for n in pasts], series, values, unit="ms", kind="per-token", data=data))
        mine = [u for u in ups if (u["model"], u["profile"]) == (model, profile)]
        if mine:
            metrics = ["prefill", "decode", *(f"past {n}" for n in pasts)]
            values = {(u["backend"], m): u[m] if m in ("prefill", "decode") else u["past"].get(m.removeprefix("past "))
                      for u in mine for m in metrics}
            body.append(bar_chart(f"{model}, CPU {profile}: webjit over ORT-web (x)", [u["backend"] for u in mine],
                                  metrics, values, unit="x", kind="ratio", data=data, reference=1.0))
    body += [_table(report["results"], pasts), _checks(report.get("checks", []))]
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>webjit text-generation benchmark</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _table(results: list[dict], pasts: list[str]) -> str:
    e = escape
    columns = ["model", "profile", "engine", "backend", "prefill tok/s", "decode tok/s", "prefill ms", "decode ms",
               "decode median ms", "new tokens", *(f"ms/token @{n}" for n in pasts),
               *(f"prefill ms @{n}" for n in pasts), "load ms", "note"]
    rows = ["<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in columns) + "</tr>"]
    for r in results:
        if r.get("error"):
            cells = [r["model"], r["profile"], r["engine"], r["backend"], *["—"] * (len(columns) - 5), r["error"]]
        else:
            cells = [r["model"], r["profile"], r["engine"], r["backend"], _ms(r["prefillTokensPerSecond"]),
                     _ms(r["decodeTokensPerSecond"]), _ms(r["prefillMs"]), _ms(r["decodeMs"]),
                     _ms(r.get("decodeMedianMs")),
                     f"{r['newTokens']}/{r['newTokensAsked']}", *(_ms(r["msPerToken"].get(n)) for n in pasts),
                     *(_ms(r["prefillMsAt"].get(n)) for n in pasts), _ms(r["loadedMs"]),
                     "stopped early by --max-seconds" if r["stoppedEarly"] else ""]
        rows.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
    return "\n".join(rows + ["</table>"])


def _checks(checks: list[dict]) -> str:
    rows = ["<table class=checks><tr><th>greedy ids</th><th>result</th></tr>"]
    for c in checks:
        verdict = "agree" if c["firstDifference"] is None else f"MISMATCH at token {c['firstDifference']}"
        rows.append(f"<tr><td class=t>{escape(c['text'])}</td><td>{escape(verdict)}</td></tr>")
    return "\n".join(rows + ["</table>"])
