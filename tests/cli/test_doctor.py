"""`webjit doctor` on this machine: with everything present it says so and exits 0; with Chromium missing it names
it, says how to install it, and exits 1. `webjit --version` prints the package version."""
from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import pytest

from e2e.browser import available


def doctor(*args, **env):
    return subprocess.run([sys.executable, "-m", "webjit", "doctor", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})


def test_with_everything_present_the_doctor_says_so_and_exits_0():
    if available():
        pytest.skip(f"this machine lacks a browser part: {available()}")
    r = doctor()
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == "everything webjit uses is here"
    assert all(line.startswith("ok ") for line in lines[:-1]), r.stdout
    for name in ("jinja2", "onnxruntime", "native WebGPU", "native WebAssembly", "Chromium", "browser WebGPU",
                 "browser WebAssembly", "browser threads"):
        assert any(line.split()[1:2] == name.split()[:1] for line in lines), name
    # what it reports is what the machine has (onnxruntime's version from the installed package)
    assert importlib.metadata.version("onnxruntime") in r.stdout


def test_with_chromium_missing_the_doctor_names_it_says_how_to_install_it_and_exits_1(tmp_path):
    r = doctor(WEBJIT_CHROMIUM=str(tmp_path / "no-chromium"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    line = next(line for line in r.stdout.splitlines() if line.split()[1:2] == ["Chromium"])
    assert line.startswith("no ") and "no-chromium" in line
    assert "-> apt-get install chromium" in r.stdout
    assert r.stdout.splitlines()[-1].startswith("1 missing")


def test_version_prints_the_package_version():
    r = subprocess.run([sys.executable, "-m", "webjit", "--version"], capture_output=True, text=True, timeout=60)
    import webjit
    assert r.returncode == 0 and r.stdout.strip() == f"webjit {webjit.__version__}"
