"""`webjit doctor`: what this machine offers webjit, and what to install where something is missing.

Each check returns a `Check(name, ok, detail, fix)`. The compiler needs only Python and Jinja2; validating needs
onnxruntime and a native backend (wgpu-py with a WebGPU adapter, or wasmtime); browser tests and the benchmark
need Chromium with Playwright. The browser checks open a blank page on a local server and read what the page
sees: the WebGPU adapter and its features, relaxed SIMD, threads (cross-origin isolation).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# (distribution, import name, what it is for, how to get it)
PACKAGES = [
    ("jinja2", "jinja2", "rendering kernels (required)", "pip install jinja2"),
    ("numpy", "numpy", "reading --inputs and checking outputs", "pip install numpy"),
    ("onnx", "onnx", "older opsets and the test suite", "pip install onnx"),
    ("onnxruntime", "onnxruntime", "the reference for validate, build and bench", "pip install 'webjit[validate]'"),
    ("wgpu", "wgpu", "running WGSL kernels natively", "pip install wgpu"),
    ("wasmtime", "wasmtime", "running WebAssembly kernels natively", "pip install wasmtime"),
    ("playwright", "playwright", "driving Chromium (browser tests, benchmark)", "pip install playwright"),
]
CHROMIUM_CANDIDATES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]

# What the page reports, as one JSON object.
PROBE = """async () => {
  const relaxed = WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 123, 1, 123, 3, 2,
    1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 0, 32, 0, 253, 133, 2, 11]));
  const out = {relaxed, isolated: self.crossOriginIsolated === true, cores: navigator.hardwareConcurrency,
               webgpu: 'gpu' in navigator, adapter: null};
  if (out.webgpu) {
    const a = await navigator.gpu.requestAdapter();
    if (a) out.adapter = {vendor: a.info.vendor, architecture: a.info.architecture, fallback: !!a.info.isFallbackAdapter,
                          features: [...a.features].sort()};
  }
  return out;
}"""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def packages() -> list[Check]:
    out = []
    for dist, module, purpose, fix in PACKAGES:
        if importlib.util.find_spec(module) is None:
            out.append(Check(dist, False, f"missing: {purpose}", fix))
            continue
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        out.append(Check(dist, True, f"{version}: {purpose}"))
    return out


def native_webgpu() -> Check:
    """The wgpu-py adapter, probed in a child process (a broken Vulkan driver can crash the process that asks)."""
    if importlib.util.find_spec("wgpu") is None:
        return Check("native WebGPU", False, "wgpu-py is missing", "pip install wgpu")
    code = ("import wgpu; a = wgpu.gpu.request_adapter_sync(power_preference='high-performance'); i = a.info; "
            "print(i.get('device', ''), '|', i.get('adapter_type', ''), '|', i.get('backend_type', ''), '|', "
            "' '.join(sorted(f for f in a.features if f in ('shader-f16', 'subgroup', 'timestamp-query'))))")
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return Check("native WebGPU", False, "asking wgpu for an adapter did not answer in 60 s", _VULKAN_FIX)
    if r.returncode != 0 or "|" not in r.stdout:
        why = (r.stderr.strip().splitlines() or ["no adapter"])[-1][:160]
        return Check("native WebGPU", False, why, _VULKAN_FIX)
    device, kind, backend, features = (s.strip() for s in r.stdout.strip().split("|"))
    return Check("native WebGPU", True, f"{device} ({kind}, {backend}); features: {features or 'none'}")


_VULKAN_FIX = "apt-get install mesa-vulkan-drivers (the lavapipe CPU adapter), or a GPU driver with Vulkan"


def native_wasm() -> Check:
    if importlib.util.find_spec("wasmtime") is None:
        return Check("native WebAssembly", False, "wasmtime is missing", "pip install wasmtime")
    import wasmtime
    relaxed = "(module (func (param v128) (result v128) (f32x4.relaxed_madd (local.get 0) (local.get 0) (local.get 0))))"
    config = wasmtime.Config()
    config.wasm_relaxed_simd = True
    try:
        wasmtime.Module(wasmtime.Engine(config), wasmtime.wat2wasm(relaxed))
    except Exception as e:  # noqa: BLE001 - any failure means the same thing here
        return Check("native WebAssembly", False, f"wasmtime cannot compile relaxed SIMD ({e})", "pip install -U wasmtime")
    return Check("native WebAssembly", True, f"wasmtime {importlib.metadata.version('wasmtime')}, SIMD and relaxed SIMD")


def chromium_path() -> str | None:
    env = os.environ.get("WEBJIT_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser() -> list[Check]:
    path = chromium_path()
    if path is None:
        where = os.environ.get("WEBJIT_CHROMIUM") or " or ".join(CHROMIUM_CANDIDATES) + " on PATH"
        return [Check("Chromium", False, f"not found ({where})",
                      "apt-get install chromium (or set WEBJIT_CHROMIUM to a Chromium or Chrome binary)")]
    if importlib.util.find_spec("playwright") is None:
        return [Check("Chromium", True, path), Check("browser probe", False, "playwright is missing",
                                                     "pip install playwright (it drives the installed Chromium)")]
    from playwright.sync_api import Error, sync_playwright

    from .serve import make_server
    with tempfile.TemporaryDirectory(prefix="webjit-doctor-") as tmp:
        (Path(tmp) / "index.html").write_text("<!doctype html><title>webjit doctor</title>")
        (Path(tmp) / "manifest.json").write_text("{}")  # webjit serve's server wants a bundle folder; none is loaded
        server = make_server(tmp).start()
        try:
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--enable-unsafe-webgpu",
                                                                   "--disable-background-networking", "--no-first-run"])
                try:
                    page = b.new_page()
                    page.goto(server.url + "index.html")
                    seen = page.evaluate(PROBE)
                    version = b.version
                finally:
                    b.close()
        except Error as e:
            return [Check("Chromium", False, f"{path} did not start: {str(e).splitlines()[0]}",
                          "apt-get install chromium (a build Playwright can drive)")]
        finally:
            server.shutdown()
            server.server_close()
    a = seen["adapter"]
    checks = [Check("Chromium", True, f"{path} (version {version})")]
    if a is None:
        checks.append(Check("browser WebGPU", False, "no adapter" if seen["webgpu"] else "navigator.gpu is missing",
                            "a Chromium with WebGPU (--enable-unsafe-webgpu on Linux), served from 127.0.0.1 or https"))
    else:
        f = set(a["features"])
        kind = "CPU (webjit runs wasm there)" if a["fallback"] or a["architecture"] == "swiftshader" else "GPU"
        checks.append(Check("browser WebGPU", True, f"{a['vendor']} {a['architecture']}, {kind}; shader-f16 "
                            f"{'yes' if 'shader-f16' in f else 'no'}, subgroups {'yes' if 'subgroups' in f else 'no'}"))
    checks.append(Check("browser WebAssembly", seen["relaxed"], "relaxed SIMD" if seen["relaxed"]
                        else "no relaxed SIMD: the fixed-SIMD modules run (slower)", "" if seen["relaxed"] else
                        "a newer Chromium"))
    checks.append(Check("browser threads", seen["isolated"], f"cross-origin isolated, {seen['cores']} cores"
                        if seen["isolated"] else "not cross-origin isolated", "" if seen["isolated"] else
                        "serve with COOP: same-origin and COEP: require-corp (webjit serve does)"))
    return checks


def run(browser_checks: bool = True) -> list[Check]:
    """Every check, in the order printed."""
    checks = [Check("python", sys.version_info >= (3, 11), sys.version.split()[0], "Python 3.11 or newer")]
    checks += packages() + [native_webgpu(), native_wasm()]
    if browser_checks:
        checks += browser()
    return checks


def report(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{'ok ' if c.ok else 'no '} {c.name.ljust(width)}  {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"    {' ' * width}  -> {c.fix}")
    missing = sum(not c.ok for c in checks)
    lines.append("everything webjit uses is here" if not missing else
                 f"{missing} missing: see the -> lines (the compiler itself needs only Python and jinja2)")
    return "\n".join(lines)
