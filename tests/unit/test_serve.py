"""`webjit serve`: the bundle and the runtime from 127.0.0.1, with cross-origin isolation headers and explicit
MIME types, and nothing outside the two folders (no browser needed)."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from webjit.errors import WebjitError
from webjit.serve import make_server


@pytest.fixture
def bundle_dir(tmp_path):
    b = tmp_path / "bundle"
    (b / "kernels").mkdir(parents=True)
    (b / "weights").mkdir()
    (b / "manifest.json").write_text(json.dumps({"format": "webjit-bundle"}))
    (b / "kernels" / "k.wgsl").write_text("@compute @workgroup_size(1) fn main() {}")
    (b / "weights" / "shard-000.bin").write_bytes(b"\0" * 16)
    (b / "model.wasm").write_bytes(b"\0asm")
    (tmp_path / "secret.txt").write_text("outside the bundle")
    return b


@pytest.fixture
def server(bundle_dir):
    s = make_server(bundle_dir).start()
    yield s
    s.shutdown()
    s.server_close()


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.mark.parametrize("path, mime", [
    ("manifest.json", "application/json"),
    ("kernels/k.wgsl", "text/wgsl"),
    ("weights/shard-000.bin", "application/octet-stream"),
    ("model.wasm", "application/wasm"),
    ("web/webjit.js", "text/javascript"),
    ("web/demo.html", "text/html; charset=utf-8"),
])
def test_files_are_served_with_their_mime_type_and_cross_origin_isolation(server, path, mime):
    status, headers, _ = get(server.url + path)
    assert status == 200
    assert headers["Content-Type"] == mime
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"


def test_the_server_listens_on_the_loopback_address_only(server):
    assert server.server_address[0] == "127.0.0.1"
    assert server.url.startswith("http://127.0.0.1:")


def test_the_runtime_comes_from_the_web_folder_and_the_root_leads_to_the_demo(server):
    status, _, body = get(server.url + "web/webjit.js")
    assert status == 200 and b"export { InferenceSession }" in body
    req = urllib.request.Request(server.url)
    opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
                                              {"redirect_request": lambda *a: None}))
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(req, timeout=10)
    assert e.value.code == 302 and e.value.headers["Location"] == "/web/demo.html"


@pytest.mark.parametrize("path", ["../secret.txt", "%2e%2e/secret.txt", "web/../../secret.txt", "kernels/",
                                  "web/%2e%2e/%2e%2e/secret.txt"])
def test_nothing_outside_the_bundle_and_runtime_is_served_and_folders_are_not_listed(server, path):
    status, _, body = get(server.url + path)
    assert status == 404
    assert b"outside the bundle" not in body


def test_a_folder_without_a_manifest_is_refused(tmp_path):
    with pytest.raises(WebjitError, match="not a webjit bundle"):
        make_server(tmp_path)


def test_the_serve_command_prints_its_address_and_serves(bundle_dir):
    p = subprocess.Popen([sys.executable, "-m", "webjit", "serve", str(bundle_dir), "--port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith(f"serving {bundle_dir} at http://127.0.0.1:"), line + p.stderr.read()
        url = line.split(" at ")[1].split(" ")[0]
        status, headers, body = get(url + "manifest.json")
        assert status == 200 and json.loads(body) == {"format": "webjit-bundle"}
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_the_serve_command_on_a_folder_that_is_not_a_bundle_exits_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "webjit", "serve", str(tmp_path), "--port", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("webjit: error:") and "not a webjit bundle" in r.stderr


def test_the_wheel_carries_the_whole_browser_runtime_for_webjit_serve(tmp_path):
    """`pip install webjit` without a checkout: every runtime file of web/ (not its tests) is in the wheel under
    webjit/web/, where serve.py looks when there is no checkout."""
    import subprocess
    import sys
    import zipfile
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(root), "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    names = set(zipfile.ZipFile(next(tmp_path.glob("webjit-*.whl"))).namelist())
    web = root / "web"
    wanted = {f"webjit/web/{p.relative_to(web).as_posix()}" for p in web.rglob("*")
              if p.is_file() and not {"test", "types"} & set(p.relative_to(web).parts)}  # types/: npm pack's output
    assert wanted and not wanted - names, f"missing from the wheel: {sorted(wanted - names)}"
