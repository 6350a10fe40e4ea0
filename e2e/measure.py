"""The browser side of the benchmark: the files a measurement page reads, the server for them, the machine's
identity, and one measurement (a fresh browser context, a cold visit, a warm loop, a second visit).

A measurement page (pages/bench.html) is served with the webjit bundle at /, the runtime at /web/, the ONNX model
folder at /model/, onnxruntime-web's dist/ at /ort/, the inputs and onnxruntime's outputs at /data/, and the
page itself at /bench/, all from 127.0.0.1 with the cross-origin isolation headers. For transformers.js, its
browser build is at /tjs/, the onnxruntime-web files that build loads at /tjs-ort/, and the same ONNX file laid
out as a hub repository (config.json, onnx/) at /tjs-model/.
"""
from __future__ import annotations

import json
import os
import platform
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PAGES = Path(__file__).resolve().parent / "pages"
ORT_DIST = ROOT / "node_modules" / "onnxruntime-web" / "dist"
# transformers.js has its own folder: it pins its own onnxruntime-web, and its onnxruntime-node dependency would
# download binaries in an install script, which --ignore-scripts skips (the page needs neither)
TJS_ROOT = Path(__file__).resolve().parent / "tjs"
TJS_DIST = TJS_ROOT / "node_modules" / "@huggingface" / "transformers" / "dist"
TJS_ORT_DIST = TJS_ROOT / "node_modules" / "onnxruntime-web" / "dist"
ENGINE_LABELS = {"webjit": "webjit", "ort": "ORT-web", "tjs": "transformers.js"}
LOAD_TIMEOUT_S = 600  # a visit that has not given its first result by then (plus the warm loop's time) failed


@dataclass(frozen=True)
class Config:
    """One engine on one backend: engine 'webjit', 'ort' or 'tjs', ep 'webgpu' or 'wasm', threads for wasm."""
    engine: str
    ep: str
    threads: int = 1

    @property
    def engine_label(self) -> str:
        return ENGINE_LABELS[self.engine]

    @property
    def backend(self) -> str:
        return "webgpu" if self.ep == "webgpu" else f"wasm {self.threads}T"


def ort_web_missing() -> str | None:
    """Why onnxruntime-web cannot be served, or None when it can."""
    if not (ORT_DIST / "ort.wasm.min.mjs").is_file():
        return f"onnxruntime-web is not installed ({ORT_DIST} is missing): run `npm install` in {ROOT}"
    return None


def install_tjs() -> None:
    """Install transformers.js into e2e/tjs/ from npm when it is not there yet (a UsageError-worthy RuntimeError
    when npm fails)."""
    import subprocess
    if (TJS_DIST / "transformers.js").is_file() and TJS_ORT_DIST.is_dir():
        return
    cmd = ["npm", "install", "--prefix", str(TJS_ROOT), "--no-audit", "--no-fund", "--ignore-scripts"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise RuntimeError(f"cannot run npm to install transformers.js: {e}") from None
    if done.returncode != 0 or not (TJS_DIST / "transformers.js").is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"installing transformers.js failed ({' '.join(cmd)}): {tail[0]}")


def tjs_version() -> str | None:
    try:
        return json.loads((TJS_DIST.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def write_hub_layout(model: Path, config: dict, out: Path) -> None:
    """`out` as a hub repository that holds `model`'s folder as its onnx/ (a link: the very same files) and
    `config`, for transformers.js."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config))
    link = out / "onnx"
    if not link.exists():
        link.symlink_to(model.resolve().parent, target_is_directory=True)


def ort_web_version() -> str | None:
    try:
        return json.loads((ORT_DIST.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def write_data(model: Path, feeds: dict[str, np.ndarray], out: Path, dtype: str = "fp32") -> None:
    """Write `feeds`, onnxruntime's (Python, CPU) outputs for them, and the list of the model's files into `out`
    as raw little-endian arrays and feeds.json, for the measurement page; `dtype`: the precision transformers.js
    knows the file by."""
    import onnx
    import onnxruntime
    out.mkdir(parents=True, exist_ok=True)
    proto = onnx.load(str(model), load_external_data=False)
    external = sorted({e.value for t in proto.graph.initializer for e in t.external_data if e.key == "location"})
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(names, feeds)))

    def save(kind: str, name: str, array: np.ndarray) -> dict:
        file = f"{kind}-{len(list(out.glob(kind + '-*')))}.bin"
        np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tofile(out / file)
        return {"name": name, "dtype": str(array.dtype), "shape": list(array.shape), "file": file}

    spec = {"model": {"file": model.name, "externalData": external, "dtype": dtype},
            "inputs": [save("input", k, v) for k, v in feeds.items()],
            "outputs": [save("output", k, v) for k, v in outputs.items()]}
    (out / "feeds.json").write_text(json.dumps(spec, indent=1))


# The text of --text runs (e2e.bench): plain sentences, repeated to the length asked for
SENTENCES = ("The quick brown fox jumps over the lazy dog near the river bank. "
             "A webjit bundle runs the same model on WebGPU and on WebAssembly in the browser. "
             "Tokenizers split words into pieces, and the model reads the pieces in order. ")
TEXTS = 2  # texts per call


def texts_of(tokenizer: Path, tokens: int) -> list[str]:
    """TEXTS texts of `tokens` tokens each (special tokens included) with the tokenizer at `tokenizer`."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(tokenizer))
    tok.no_truncation()  # a hub tokenizer.json may cut or pad to its own length: these texts are measured whole
    tok.no_padding()
    words = (SENTENCES * (tokens // 8 + 1)).split()
    out = []
    for i in range(TEXTS):
        lo, hi = 1, len(words) - i
        while lo < hi:  # the most words (from the i-th on) that stay within `tokens`
            mid = (lo + hi + 1) // 2
            if len(tok.encode(" ".join(words[i:i + mid])).ids) <= tokens:
                lo = mid
            else:
                hi = mid - 1
        out.append(" ".join(words[i:i + lo]))
    return out


def write_text_data(repo: Path, model: Path, texts: list[str], out: Path, dtype: str) -> None:
    """Write `texts` and their mean-pooled, L2-normalised embeddings (Python's tokenizers, then onnxruntime on
    `model`, pooled in numpy) into `out`/feeds.json, for a --text measurement."""
    import onnxruntime
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(repo / "tokenizer.json"))
    tok.enable_padding()
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc], np.int64)
    mask = np.array([e.attention_mask for e in enc], np.int64)
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    given = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    feeds = {i.name: given[i.name] for i in session.get_inputs()}
    hidden = session.run(None, feeds)[0]
    pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    out.mkdir(parents=True, exist_ok=True)
    pooled.astype("<f4").tofile(out / "output-0.bin")
    spec = {"model": {"file": model.name, "externalData": [], "dtype": dtype}, "texts": texts, "inputs": [],
            "tokens": [len(e.ids) for e in enc],
            "outputs": [{"name": "embeddings", "dtype": "float32", "shape": list(pooled.shape), "file": "output-0.bin"}]}
    (out / "feeds.json").write_text(json.dumps(spec, indent=1))


def make_bench_server(bundle: Path, model: Path, data: Path, hub: Path | None = None):
    """A started server for one model's measurements (see the module docstring for what it serves where); `hub`:
    the model as write_hub_layout lays it out."""
    from webjit.serve import make_server
    mounts = {"bench": PAGES, "model": model.parent, "data": data}
    if ORT_DIST.is_dir():
        mounts["ort"] = ORT_DIST
    if hub is not None and TJS_DIST.is_dir():
        mounts.update({"tjs": TJS_DIST, "tjs-ort": TJS_ORT_DIST, "tjs-model": hub})
    return make_server(bundle, mounts=mounts).start()


def machine(browser, server_url: str) -> dict:
    """Who measured: CPU model, cores, OS, Chromium version and the WebGPU adapter the page sees."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server_url + "bench/bench.html?runs=0&engine=none")  # a page on the origin; its result is unused
        seen = page.evaluate("""async () => {
            const a = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
            const i = a && a.info;
            return {hardwareConcurrency: navigator.hardwareConcurrency, crossOriginIsolated: self.crossOriginIsolated,
                    userAgent: navigator.userAgent,
                    adapter: i ? {vendor: i.vendor, architecture: i.architecture, device: i.device,
                                  description: i.description} : null};
        }""")
    finally:
        context.close()
    return {"host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(),
            "chromium": browser.version, "onnxruntimeWeb": ort_web_version(), "transformersJs": tjs_version(), **seen}


def measure(browser, server_url: str, config: Config, *, throttle: float, runs: int, max_seconds: float,
            budget_ms: float) -> dict:
    """One measurement in a fresh browser context at CPU throttling `throttle`: the cold visit (navigation to
    first result, then the warm loop), the JS heap after it, then a second visit of the same page in the same
    context (webjit finds its tuning winners in IndexedDB; nothing else is cached but HTTP revalidation).
    A visit that takes longer than LOAD_TIMEOUT_S plus `max_seconds` raises Playwright's TimeoutError."""
    query = {"engine": config.engine, "ep": config.ep, "threads": config.threads, "budgetMs": budget_ms}
    context = browser.new_context()
    errors: list[str] = []
    try:
        page = context.new_page()
        page.set_default_timeout((LOAD_TIMEOUT_S + max_seconds) * 1000)
        page.on("pageerror", lambda e: errors.append(str(e)))
        cdp = context.new_cdp_session(page)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
        cold = _visit(page, server_url, {**query, "runs": runs, "maxMs": max_seconds * 1000})
        if "error" in cold:
            return {"error": cold["error"], "stack": cold.get("stack"), "pageErrors": errors}
        heap = cdp.send("Runtime.getHeapUsage")
        second = _visit(page, server_url, {**query, "runs": 0})
        if "error" in second:
            return {"error": "second visit: " + second["error"], "stack": second.get("stack"), "pageErrors": errors}
    finally:
        context.close()
    times = cold["runsMs"]
    return {"coldStartMs": cold["firstResultMs"], "secondVisitMs": second["firstResultMs"],
            "warm": {"medianMs": float(np.median(times)) if times else None,
                     "p90Ms": float(np.percentile(times, 90)) if times else None,
                     "runs": len(times), "runsAsked": runs, "stoppedEarly": cold["stoppedEarly"], "runsMs": times},
            "maxAbsError": cold["maxAbsError"], "secondVisitMaxAbsError": second["maxAbsError"],
            "jsHeapBytes": heap["usedSize"], "jsHeapTotalBytes": heap["totalSize"],
            "gpuBufferBytes": cold["gpuBufferBytes"], "gpuBufferPeakBytes": cold["gpuBufferPeakBytes"],
            "crossOriginIsolated": cold["crossOriginIsolated"],
            "cold": {k: cold[k] for k in ("loadedMs", "firstRunMs", "engine")},
            "second": {k: second[k] for k in ("loadedMs", "firstRunMs", "engine")},
            "pageErrors": errors}


def _visit(page, server_url: str, query: dict) -> dict:
    page.goto(f"{server_url}bench/bench.html?{urlencode(query)}")
    page.wait_for_function("() => window.benchResult !== undefined")
    return page.evaluate("() => window.benchResult")
