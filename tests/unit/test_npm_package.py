"""The runtime as an npm package: `npm pack` in web/ makes a tarball with the modules and the .d.ts files that
TypeScript generates from their JSDoc; installed into a scratch folder, it imports by its name under node and
type-checks the TypeScript example (examples/embed.ts) strictly."""
from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="needs npm")


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    if not (ROOT / "node_modules" / ".bin" / "tsc").exists():
        pytest.fail("node_modules/.bin/tsc is missing: run npm install at the repository root (make test does)")
    out = tmp_path_factory.mktemp("pack")
    r = subprocess.run(["npm", "pack", "--pack-destination", str(out)], cwd=WEB, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (path,) = out.glob("webjit-*.tgz")
    return path


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory) -> Path:
    """A scratch project with the tarball installed (the package has no dependencies: nothing else is fetched)."""
    app = tmp_path_factory.mktemp("app")
    (app / "package.json").write_text(json.dumps({"name": "app", "private": True, "type": "module"}))
    r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--offline", str(tarball)], cwd=app,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return app


def test_the_tarball_holds_the_runtime_and_its_types_and_nothing_else(tarball):
    with tarfile.open(tarball) as t:
        names = {n.removeprefix("package/") for n in t.getnames()}
    version = json.loads((WEB / "package.json").read_text())["version"]
    assert tarball.name == f"webjit-{version}.tgz"
    assert {"webjit.js", "session.js", "wasm/worker.js", "compiler_worker.js", "types/webjit.d.ts",
            "types/session.d.ts", "package.json", "README.md"} <= names
    assert not any(n.startswith(("test/", "demo/")) for n in names), sorted(names)
    shipped_js = {n for n in names if n.endswith(".js")}
    on_disk = {p.relative_to(WEB).as_posix() for p in [*WEB.glob("*.js"), *WEB.glob("webgpu/*.js"), *WEB.glob("wasm/*.js")]}
    assert shipped_js == on_disk, "every runtime module ships, and no other script"


def test_the_installed_package_imports_by_name_under_node(installed):
    r = subprocess.run(["node", "--input-type=module", "-e",
                        "const m = await import('webjit'); console.log(JSON.stringify(Object.keys(m).sort()));"],
                       cwd=installed, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    exported = json.loads(r.stdout)
    assert {"InferenceSession", "Tensor", "compileInBrowser", "ManifestError", "IntegrityError"} <= set(exported)


def test_the_typescript_example_type_checks_against_the_generated_types(installed):
    shutil.copy(ROOT / "examples" / "embed.ts", installed / "embed.ts")
    config = json.loads((ROOT / "examples" / "tsconfig.json").read_text())
    config["compilerOptions"]["typeRoots"] = [str(ROOT / "node_modules")]  # @webgpu/types, from the repository
    (installed / "tsconfig.json").write_text(json.dumps(config))
    tsc = ROOT / "node_modules" / ".bin" / "tsc"
    r = subprocess.run([str(tsc), "-p", "tsconfig.json"], cwd=installed, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    # and it can fail: a wrong call is an error
    (installed / "embed.ts").write_text((installed / "embed.ts").read_text().replace(
        "new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length])", "new Tensor('int65', ids)"))
    r = subprocess.run([str(tsc), "-p", "tsconfig.json"], cwd=installed, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "int65" in r.stdout
