"""Benchmark reports: the stdout summary and the self-contained HTML page (inline SVG charts, no scripts).

A report is the JSON that `python -m e2e.bench` writes: {"machine": {...}, "settings": {...}, "results": [...]},
one result per model, CPU profile, engine and backend. `render_html` takes one or several reports (several
machines) and gives one page: a cross-machine chart per model and profile when there are several, then one section
per machine with its identity, a latency chart per model and profile, a speedup chart per model, and tables of every
figure. Every string that comes from a report is escaped.
"""
from __future__ import annotations

from html import escape

from .charts import bar_chart

WEBJIT, ORT, TJS = "webjit", "ORT-web", "transformers.js"
BASELINES = (ORT, TJS)


def key(r: dict) -> tuple:
    return (r["model"], r["profile"])


def median(r: dict) -> float | None:
    return (r.get("warm") or {}).get("medianMs")


def speedups(report: dict, baseline: str = ORT) -> list[dict]:
    """webjit against `baseline` (ORT-web or transformers.js) on the same model, profile and backend, from the warm
    medians of one report: ratio = the baseline's median / webjit's (above 1: webjit is faster)."""
    base = {(*key(r), r["backend"]): median(r) for r in report["results"] if r["engine"] == baseline}
    out = []
    for r in report["results"]:
        theirs = base.get((*key(r), r["backend"]))
        if r["engine"] == WEBJIT and median(r) and theirs:
            out.append({"model": r["model"], "profile": r["profile"], "backend": r["backend"], "baseline": baseline,
                        "webjitMs": median(r), "baselineMs": theirs, "ratio": theirs / median(r)})
    return out


def groups(report: dict) -> list[tuple]:
    """(model, profile) pairs in the order they were measured."""
    return list(dict.fromkeys(key(r) for r in report["results"]))


def tuning_note(r: dict) -> str:
    """Where webjit's WebGPU kernels came from on the cold and the second visit ('' for other results)."""
    cold = ((r.get("cold") or {}).get("engine") or {})
    second = ((r.get("second") or {}).get("engine") or {})
    if r.get("engine") != WEBJIT or r.get("ep") != "webgpu" or not cold.get("tuning"):
        return ""
    return (f"tuning: cold {cold['tuning']} ({cold.get('tuningMs', 0):.0f} ms, {cold.get('variantsTimed', 0)} "
            f"variants timed), second visit {second.get('tuning')}")


def _ms(v) -> str:
    return "—" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def _mb(v) -> str:
    return "—" if v is None else f"{v / 2**20:.1f}"


def _ratio(ratio: float) -> str:
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"


def machine_line(m: dict) -> str:
    """The machine of a report in one line: CPU, cores, OS, Chromium, the WebGPU adapter, onnxruntime-web."""
    adapter = m.get("adapter") or {}
    return (f"{m.get('cpu')} ({m.get('cores')} cores), {m.get('os')}, Chromium {m.get('chromium')}, WebGPU "
            f"{adapter.get('vendor', '-')}/{adapter.get('architecture', '-')}, "
            f"onnxruntime-web {m.get('onnxruntimeWeb')}"
            + (f", transformers.js {m['transformersJs']}" if m.get("transformersJs") else ""))


def summary(report: dict) -> str:
    """The stdout table: per model and profile, every engine/backend's figures, then webjit against ORT-web and
    transformers.js."""
    lines = [machine_line(report["machine"])]
    head = f"  {'engine':<15} {'backend':<8} {'median':>9} {'p90':>9} {'runs':>5} {'cold start':>11} " \
           f"{'2nd visit':>10} {'max err':>9}"
    for model, profile in groups(report):
        lines += ["", f"{model} at CPU {profile} (ms)", head]
        for r in report["results"]:
            if key(r) != (model, profile):
                continue
            if r.get("error"):
                lines.append(f"  {r['engine']:<15} {r['backend']:<8} failed: {r['error'][:90]}")
                continue
            w = r["warm"]
            runs = f"{w['runs']}{'*' if w['stoppedEarly'] else ''}"
            err = "—" if r["maxAbsError"] is None else f"{r['maxAbsError']:.1e}"
            lines.append(f"  {r['engine']:<15} {r['backend']:<8} {_ms(w['medianMs']):>9} {_ms(w['p90Ms']):>9} "
                         f"{runs:>5} {_ms(r['coldStartMs']):>11} {_ms(r['secondVisitMs']):>10} {err:>9}")
        for r in report["results"]:
            if key(r) == (model, profile) and tuning_note(r):
                lines.append(f"  webjit {r['backend']} {tuning_note(r)}")
        for baseline in BASELINES:
            for s in speedups(report, baseline):
                if (s["model"], s["profile"]) == (model, profile):
                    lines.append(f"  webjit {s['backend']} / {baseline} {s['backend']}: {_ratio(s['ratio'])}")
    if any((r.get("warm") or {}).get("stoppedEarly") for r in report["results"]):
        lines += ["", "  * warm loop stopped early by --max-seconds"]
    return "\n".join(lines)


STYLE = """body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child,td.t{text-align:left}td{white-space:nowrap}td.t,td:last-child{white-space:normal}h2{margin-top:2em;border-bottom:2px solid #444}
svg{display:block;margin:.5em 0}figure{margin:1em 0}figcaption{font-weight:600}"""


def render_html(reports: list[dict]) -> str:
    """One self-contained page for one or several reports (one section per machine)."""
    e = escape
    names = [_machine_name(rep, i) for i, rep in enumerate(reports)]
    body = ["<h1>webjit vs onnxruntime-web and transformers.js in Chromium</h1>",
            (f"<p>{len(reports)} machine(s): {e(', '.join(names))}. Warm latency is the median of the warm runs; "
            "speedup is ORT-web's (or transformers.js's) median over webjit's on the same backend (above 1: webjit "
            "is faster). "
            "Cold start runs from navigation to the first result; the second visit is the same page again in the "
            "same browser context. CPU profiles are Chromium's DevTools CPU throttling, which is set on the page: "
            "the wasm engines' Web Workers are not slowed by it, so at 4x the N-thread figures mostly show how much "
            "work an engine keeps on the page's main thread.</p>")]
    if len(reports) > 1:
        body.append(_cross_machine(reports, names))
    for rep, name in zip(reports, names):
        body.append(_machine_section(rep, name))
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>webjit benchmark</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _machine_name(rep: dict, i: int) -> str:
    m = rep["machine"]
    return f"{m.get('host', f'machine {i + 1}')} ({m.get('cpu', '?')}, {(m.get('adapter') or {}).get('architecture', 'no WebGPU')})"


def _cross_machine(reports: list[dict], names: list[str]) -> str:
    out = ["<h2>Across machines</h2>"]
    pairs = list(dict.fromkeys(p for rep in reports for p in groups(rep)))
    for model, profile in pairs:
        rows = list(dict.fromkeys(f"{r['engine']} {r['backend']}" for rep in reports for r in rep["results"]
                                  if key(r) == (model, profile)))
        values = {(f"{r['engine']} {r['backend']}", name): median(r)
                  for rep, name in zip(reports, names) for r in rep["results"] if key(r) == (model, profile)}
        out.append(bar_chart(f"{model}, CPU {profile}: warm median (ms)", rows, names, values, unit="ms",
                             kind="cross", data={"model": model, "profile": profile}))
    ups = {name: speedups(rep) for rep, name in zip(reports, names)}
    for model in dict.fromkeys(u["model"] for mine in ups.values() for u in mine):
        rows = list(dict.fromkeys(f"{u['backend']}, CPU {u['profile']}" for mine in ups.values() for u in mine
                                  if u["model"] == model))
        values = {(f"{u['backend']}, CPU {u['profile']}", name): u["ratio"]
                  for name, mine in ups.items() for u in mine if u["model"] == model}
        out.append(bar_chart(f"{model}: speedup of webjit over ORT-web (x)", rows, names, values, unit="x",
                             kind="cross-speedup", data={"model": model}, reference=1.0))
    return "\n".join(out)


def machine_table(rep: dict) -> str:
    """Who measured, when, and with which settings, as an HTML table."""
    e = escape
    m, s = rep["machine"], rep.get("settings", {})
    out = ["<table>"]
    for label, value in [("host", m.get("host")), ("CPU", m.get("cpu")), ("cores", m.get("cores")),
                         ("OS", m.get("os")), ("Chromium", m.get("chromium")),
                         ("WebGPU adapter", " / ".join(str(v) for v in (m.get("adapter") or {}).values() if v)),
                         ("onnxruntime-web", m.get("onnxruntimeWeb")),
                         ("transformers.js", m.get("transformersJs") or "not measured"),
                         ("measured", rep.get("created")),
                         ("settings", ", ".join(f"{k}={v}" for k, v in s.items()))]:
        out.append(f"<tr><th>{e(label)}</th><td class=t>{e(str(value))}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _machine_section(rep: dict, name: str) -> str:
    e = escape
    out = [f"<h2>{e(name)}</h2>", machine_table(rep)]
    for model, profile in groups(rep):
        results = [r for r in rep["results"] if key(r) == (model, profile)]
        backends = list(dict.fromkeys(r["backend"] for r in results))
        engines = list(dict.fromkeys(r["engine"] for r in results))
        values = {(r["backend"], r["engine"]): median(r) for r in results}
        out.append(bar_chart(f"{model}, CPU {profile}: warm median (ms)", backends, engines, values, unit="ms",
                             kind="latency", data={"model": model, "profile": profile}))
    ups = [u for baseline in BASELINES for u in speedups(rep, baseline)]
    for model, baseline in dict.fromkeys((u["model"], u["baseline"]) for u in ups):
        mine = [u for u in ups if (u["model"], u["baseline"]) == (model, baseline)]
        backends = list(dict.fromkeys(u["backend"] for u in mine))
        profiles = list(dict.fromkeys(u["profile"] for u in mine))
        values = {(u["backend"], u["profile"]): u["ratio"] for u in mine}
        out.append(bar_chart(f"{model}: speedup of webjit over {baseline} (x)", backends, profiles, values,
                             unit="x", kind="speedup", data={"model": model, "baseline": baseline}, reference=1.0))
    out.append(_table(rep["results"]))
    if ups:
        out.append("<table><tr><th>model</th><th>profile</th><th>backend</th><th>webjit ms</th><th>against</th>"
                   "<th>its ms</th><th>speedup</th></tr>")
        for u in ups:
            out.append(f"<tr><td>{e(u['model'])}</td><td>{e(u['profile'])}</td><td>{e(u['backend'])}</td>"
                       f"<td>{_ms(u['webjitMs'])}</td><td>{e(u['baseline'])}</td><td>{_ms(u['baselineMs'])}</td>"
                       f"<td>{e(_ratio(u['ratio']))}</td></tr>")
        out.append("</table>")
    return "\n".join(out)


COLUMNS = ["model", "profile", "engine", "backend", "median ms", "p90 ms", "runs", "cold start ms",
           "2nd visit ms", "max abs error", "JS heap MB", "GPU buffers MB", "note"]


def _table(results: list[dict]) -> str:
    e = escape
    rows = ["<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in COLUMNS) + "</tr>"]
    for r in results:
        w = r.get("warm") or {}
        err = r.get("maxAbsError")
        cells = [r["model"], r["profile"], r["engine"], r["backend"], _ms(w.get("medianMs")), _ms(w.get("p90Ms")),
                 f"{w.get('runs', 0)}/{w.get('runsAsked', 0)}", _ms(r.get("coldStartMs")),
                 _ms(r.get("secondVisitMs")), "—" if err is None else f"{err:.1e}", _mb(r.get("jsHeapBytes")),
                 _mb(r.get("gpuBufferBytes")), r.get("error") or r.get("note") or tuning_note(r)]
        rows.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
    return "\n".join(rows + ["</table>"])
