"""The browser runtime's pure logic (manifest checks, plan walking, cache keys, tuner selection, tensors) under
Node's test runner: `node --test web/test/`. What needs WebGPU is tested in a real browser (tests/e2e)."""
import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_runtime_unit_tests_pass_under_node():
    r = subprocess.run(["node", "--test", "test/"], cwd=WEB, capture_output=True, text=True, timeout=120)
    summary = "\n".join(line for line in r.stdout.splitlines() if line.startswith(("not ok", "# tests", "# fail")))
    assert r.returncode == 0, summary + "\n" + r.stdout[-4000:] + r.stderr[-2000:]
    assert "# fail 0" in r.stdout


def test_the_runtime_type_checks_with_typescript():
    """tsc over the runtime's JSDoc (web/tsconfig.json, strict): no errors. `make test` installs typescript."""
    tsc = WEB.parent / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.fail("node_modules/.bin/tsc is missing: run npm install at the repository root (make test does)")
    r = subprocess.run([str(tsc), "-p", "tsconfig.json"], cwd=WEB, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
