"""Fixtures for the browser tests: the MiniLM bundle (built once per test process), a server for it, and headless
Chromium with WebGPU on SwiftShader. The tests skip where Chromium or Playwright is missing."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from e2e import browser as harness

MODEL = "minilm"


@pytest.fixture(scope="session")
def chromium():
    why = harness.available()
    if why:
        pytest.skip(why)
    with harness.chromium() as b:
        yield b


@pytest.fixture(scope="session")
def minilm_bundle(tmp_path_factory) -> Path:
    """The MiniLM bundle at seq 128 with the sample inputs and onnxruntime's outputs for them."""
    import demo_models
    from webjit.bundle import build
    cached = (demo_models.cache_dir() / MODEL / "model.onnx").is_file()
    if not cached:
        pytest.importorskip("torch", reason="exporting the demo model needs the export extra")
    model = demo_models.get(MODEL)
    return build(model, tmp_path_factory.mktemp("minilm") / "bundle", values=demo_models.sample_inputs(MODEL))


@pytest.fixture(scope="session")
def serve():
    """serve(folder) -> base URL; servers stop at the end of the session."""
    from webjit.serve import make_server
    servers = []

    def start(folder: Path) -> str:
        servers.append(make_server(folder).start())
        return servers[-1].url
    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="session")
def minilm_url(minilm_bundle, serve) -> str:
    return serve(minilm_bundle)


@pytest.fixture
def page(chromium, minilm_url):
    """A fresh browser context (its own IndexedDB) with a page on the bundle server."""
    context = chromium.new_context()
    yield harness.open_page(context, minilm_url)
    context.close()


@pytest.fixture
def tampered(minilm_bundle, tmp_path, serve):
    """tampered(path, edit) -> URL of a copy of the bundle whose file `path` (or each of a list of paths) went
    through edit(bytes) -> bytes."""
    def make(path, edit) -> str:
        copy = tmp_path / "bundle"
        shutil.copytree(minilm_bundle, copy, copy_function=_link_or_copy)
        for one in [path] if isinstance(path, str) else path:
            target = copy / one
            data = edit(target.read_bytes())
            target.unlink()  # a hard link: replace it, never write through it
            target.write_bytes(data)
        return serve(copy)
    return make


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
