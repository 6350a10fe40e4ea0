"""Serve a bundle and the browser runtime on 127.0.0.1 (a secure context, so WebGPU is available).

    /            the bundle (manifest.json, kernels/, weights/, reference/)
    /web/        the runtime (web/webjit.js, ...); /web/demo.html runs the bundle on its reference input
    /NAME/       optional extra folders (`make_server(..., mounts={"NAME": folder})`), e.g. a benchmark's pages

Every response carries the cross-origin isolation headers (so SharedArrayBuffer and WASM threads work) and an
explicit MIME type. Directory listings are off.
"""
from __future__ import annotations

import http.server
import sys
import threading
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import WebjitError

def _runtime() -> Path:
    """The browser runtime: web/ of a source checkout, or its copy inside an installed package (webjit/web)."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "web"
    return checkout if (checkout / "webjit.js").is_file() else here / "web"


RUNTIME = _runtime()
MIME = {".js": "text/javascript", ".mjs": "text/javascript", ".wgsl": "text/wgsl", ".wasm": "application/wasm",
        ".json": "application/json", ".bin": "application/octet-stream", ".html": "text/html; charset=utf-8",
        ".md": "text/markdown; charset=utf-8", ".css": "text/css",
        ".whl": "application/zip", ".zip": "application/zip", ".map": "application/json",
        ".onnx": "application/octet-stream", ".data": "application/octet-stream"}
HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
           "Cross-Origin-Resource-Policy": "same-origin", "Cache-Control": "no-cache",
           "X-Content-Type-Options": "nosniff"}


# `webjit serve --csp`: what a strict page sends; the runtime, its workers and the demo pages work under it
# (WebAssembly compiles under 'wasm-unsafe-eval'; nothing uses eval, new Function or inline scripts)
STRICT_CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'"


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME}

    def __init__(self, *args, bundle: Path, runtime: Path, mounts: dict[str, Path] | None = None, **kwargs):
        self.bundle, self.runtime, self.mounts = bundle, runtime, mounts or {}
        super().__init__(*args, directory=str(bundle), **kwargs)

    def translate_path(self, path: str) -> str:
        """/web/... from the runtime folder, /NAME/... from a mounted folder, everything else from the bundle;
        nothing outside these."""
        parts = [p for p in unquote(urlsplit(path).path).split("/") if p]
        root = self.bundle
        if parts[:1] == ["web"]:
            root, parts = self.runtime, parts[1:]
        elif parts and parts[0] in self.mounts:
            root, parts = self.mounts[parts[0]], parts[1:]
        if any(p in (".", "..") or "\\" in p or "\0" in p for p in parts):
            return ""  # outside the served folders: send_head answers 404
        return str(root.joinpath(*parts))

    def send_head(self):
        if not self.translate_path(self.path):
            self.send_error(404, "not found")
            return None
        return super().send_head()

    def list_directory(self, path):
        self.send_error(404, "no directory listings")
        return None

    def do_GET(self):
        if urlsplit(self.path).path == "/":
            self.send_response(302)
            self.send_header("Location", "/web/demo.html")
            self.end_headers()
            return
        super().do_GET()

    def end_headers(self):
        for k, v in HEADERS.items():
            self.send_header(k, v)
        if self.server.csp:
            self.send_header("Content-Security-Policy", STRICT_CSP)
        super().end_headers()

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    verbose = False
    csp = False

    def handle_error(self, request, client_address):
        """A browser that drops a download it no longer needs (a failed load) is not an error of the server."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def start(self) -> "Server":
        """Serve from a background thread (for tests and scripts); `shutdown()` stops it."""
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self


def make_server(bundle: str | Path, port: int = 0, runtime: str | Path = RUNTIME, verbose: bool = False,
                mounts: dict[str, str | Path] | None = None, csp: bool = False) -> Server:
    """A server for `bundle` on 127.0.0.1:`port` (0: any free port). Call `serve_forever()` or `start()`.

    `mounts` maps a top-level name to a folder served under /NAME/ (a name cannot be "web" or hold a slash)."""
    bundle, runtime = Path(bundle).resolve(), Path(runtime).resolve()
    folders = {}
    for name, folder in (mounts or {}).items():
        if not name or name in ("web", ".", "..") or "/" in name or "\\" in name or not Path(folder).is_dir():
            raise WebjitError(f"cannot serve {folder} at /{name}/: not a folder, or not a plain top-level name")
        folders[name] = Path(folder).resolve()
    if not (bundle / "manifest.json").is_file():
        raise WebjitError(f"{bundle}: not a webjit bundle (no manifest.json); make one with `webjit build`")
    if not (runtime / "webjit.js").is_file():
        raise WebjitError(f"{runtime}: the browser runtime (web/webjit.js) is not there")
    try:
        server = Server(("127.0.0.1", port), partial(Handler, bundle=bundle, runtime=runtime, mounts=folders))
    except OSError as e:
        raise WebjitError(f"cannot listen on 127.0.0.1:{port}: {e.strerror}") from None
    server.verbose = verbose
    server.csp = csp
    return server
