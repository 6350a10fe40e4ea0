"""Launch the system Chromium with WebGPU and open a page on a bundle server.

The browser is always Debian's /usr/bin/chromium, which renders WebGPU with SwiftShader when
there is no GPU. Pages must come from http://127.0.0.1 (a secure context), or `navigator.gpu` is undefined.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

CHROMIUM = os.environ.get("WEBJIT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
BLANK = "web/test/index.html"  # an empty page on the server's origin

# Imports the runtime into the page once; each page.evaluate then finds it as window.webjit.
IMPORT = "async () => { window.webjit = await import('/web/webjit.js'); return true; }"


def available() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed"
    return None


@contextlib.contextmanager
def chromium():
    """A headless Chromium with WebGPU enabled."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


DEMO_READY = "['ready', 'error'].includes(document.body.dataset.state)"


def open_demo(context, url: str, timeout_ms: int = 240_000):
    """The demo page (web/demo/) at `url`, loaded and ready (its corpus embedded). Uncaught page errors are collected
    in page.errors."""
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url)
    page.wait_for_function(DEMO_READY)
    assert page.evaluate("document.body.dataset.state") == "ready", page.text_content("#status")
    return page


def open_page(context, server_url: str, timeout_ms: int = 240_000):
    """A page on the server's origin with the runtime imported as window.webjit. Console errors and uncaught page
    errors are collected in page.webjit_errors."""
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.webjit_errors = []
    page.on("pageerror", lambda e: page.webjit_errors.append(str(e)))
    page.goto(server_url + BLANK)
    page.evaluate(IMPORT)
    return page


# Runs a test body in the page with every device it creates inside a WebGPU validation error scope (and listening
# for uncaptured errors); the scopes are popped and the sessions released when the body ends.
HARNESS = """
window.webjitTest = async (body, arg) => {
  const errors = [];
  const sessions = [];
  const create = async (url, options) => {
    const s = await window.webjit.InferenceSession.create(url, options);
    if (s.device) {  // a WebGPU session ('wasm' ones have no device)
      s.device.pushErrorScope('validation');
      s.device.addEventListener('uncapturederror', (e) => errors.push(e.error.message));
    }
    sessions.push(s);
    return s;
  };
  // int64 feeds sent as wire_feeds() writes them -> {name: Tensor}
  const feeds = (wired) => Object.fromEntries(Object.entries(wired).map(([name, { data, dims }]) => [
    name, new window.webjit.Tensor('int64', BigInt64Array.from(data, (v) => BigInt(v)), dims)]));
  let result;
  try {
    result = await body({ webjit: window.webjit, create, feeds }, arg);
  } finally {
    for (const s of sessions) {
      if (s.gpu && s.gpu.lost) continue;
      const e = s.device ? await s.device.popErrorScope().catch(() => null) : null;
      if (e) errors.push(e.message);
      await s.release();
    }
  }
  return { result, errors };
};
"""


def wire_feeds(feeds: dict) -> dict:
    """Integer input arrays as JSON for `run`; in the page, `feeds(wired)` makes them int64 Tensors again."""
    return {name: {"data": [int(x) for x in arr.ravel().tolist()], "dims": list(arr.shape)}
            for name, arr in feeds.items()}


def run(page, body: str, arg=None):
    """Run `body`, JS of the form `async ({webjit, create, feeds}, arg) => ...`, in the page: sessions made with
    `create` run inside a WebGPU validation error scope, and any error that reaches a scope fails the test.
    `feeds(wired)` turns inputs sent with `wire_feeds` into Tensors."""
    if not page.evaluate("() => typeof window.webjitTest === 'function'"):
        page.evaluate(f"() => {{ {HARNESS} }}")
    out = page.evaluate(f"async (arg) => window.webjitTest({body}, arg)", arg)
    assert not out["errors"], f"WebGPU validation errors: {out['errors']}"
    assert not page.webjit_errors, f"uncaught errors in the page: {page.webjit_errors}"
    return out["result"]
