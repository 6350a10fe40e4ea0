"""A Pyodide distribution that can load the compiler in a page, served from our own server (no CDN):

    python -m webjit.pyodide_dist -o build/pyodide       # then: await pyodide.loadPackage('webjit')

It holds the Pyodide core from npm (node_modules/pyodide, `npm install` puts it there), three pure-Python wheels
(webjit itself, jinja2 from PyPI, markupsafe built from its sdist without its C speedups) and a pyodide-lock.json
that lists them, written by `pyodide lockfile add-wheels` (pyodide-build, run in a Python >= 3.12 virtual
environment kept in build/pyodide-venv). webjit's native-only dependencies (numpy, onnx, wgpu, wasmtime) carry the
marker `sys_platform != "emscripten"` in pyproject.toml, so the lockfile does not list them.

Every step is skipped when its output is newer than its inputs, so a second run takes about a second.
"""
from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "node_modules" / "pyodide"
CORE_FILES = ["pyodide.mjs", "pyodide.js", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
              "pyodide-lock.json", "package.json"]
VENV = ROOT / "build" / "pyodide-venv"
VENV_PACKAGES = ["pyodide-build", "pkginfo"]
LOCK = "pyodide-lock.json"
PURE = ["jinja2"]  # pure-Python wheels fetched from PyPI as they are


class DistError(Exception):
    """A step that cannot be done; main() prints it as one line."""


def say(step: str, text: str) -> None:
    print(f"pyodide dist [{step}] {text}", flush=True)


def run(cmd: list[str], what: str, env: dict | None = None, cwd: Path | None = None) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if done.returncode:
        lines = [l for l in (done.stderr + done.stdout).splitlines() if l.strip() and "WARNING: Location" not in l]
        raise DistError(f"{what} failed (exit {done.returncode}): {lines[-1].strip() if lines else 'no output'}")


def newest(paths) -> float:
    return max((p.stat().st_mtime for p in paths), default=0.0)


def sources() -> list[Path]:
    """What the webjit wheel is built from."""
    files = [ROOT / "pyproject.toml"]
    for folder in ("webjit", "web"):
        files += [p for p in (ROOT / folder).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and "test" not in p.relative_to(ROOT).parts[1:2]]
    return files


def copy_core(out: Path) -> None:
    if not (CORE / "pyodide.mjs").is_file():
        raise DistError(f"{CORE.relative_to(ROOT)} is missing: run `npm install` (package.json lists pyodide)")
    version = __import__("json").loads((CORE / "package.json").read_text())["version"]
    copied = 0
    for name in CORE_FILES:
        src, dst = CORE / name, out / ("pyodide-lock.core.json" if name == LOCK else name)
        if not src.is_file():
            raise DistError(f"{src} is missing: reinstall it with `npm install`")
        if dst.is_file() and dst.stat().st_size == src.stat().st_size and dst.stat().st_mtime >= src.stat().st_mtime:
            continue
        shutil.copy2(src, dst)
        copied += 1
    say("core", f"Pyodide {version}: {copied} of {len(CORE_FILES)} files copied" if copied else f"Pyodide {version}: up to date")


def wheel_of(out: Path, name: str) -> Path | None:
    found = sorted(out.glob(f"{name}-*.whl"))
    return found[-1] if found else None


def build_webjit(out: Path) -> Path:
    old = wheel_of(out, "webjit")
    if old and old.stat().st_mtime >= newest(sources()):
        say("webjit", f"{old.name}: up to date")
        return old
    say("webjit", "building the wheel (pip wheel --no-deps)")
    with tempfile.TemporaryDirectory() as tmp:
        # from a clean copy of the sources: setuptools' build/lib in the checkout may hold modules deleted since
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "webjit", "web"):
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
            elif (ROOT / name).is_file():
                shutil.copy2(ROOT / name, src / name)
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp, str(src)],
            "pip wheel of webjit")
        (built,) = Path(tmp).glob("webjit-*.whl")
        if old:
            old.unlink()
        return Path(shutil.move(str(built), out / built.name))


def fetch_pure(out: Path, name: str) -> Path:
    old = wheel_of(out, name)
    if old:
        say(name, f"{old.name}: present")
        return old
    say(name, "downloading the wheel from PyPI")
    with tempfile.TemporaryDirectory() as tmp:
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", "-d", tmp, name],
            f"pip download {name}")
        (got,) = Path(tmp).glob("*.whl")
        if not got.name.endswith("-py3-none-any.whl"):
            raise DistError(f"{got.name} is not a pure-Python wheel; Pyodide cannot load it")
        return Path(shutil.move(str(got), out / got.name))


def build_markupsafe(out: Path) -> Path:
    """markupsafe's sdist built with no C compiler (CC=false): its setup falls back to the pure-Python module."""
    old = wheel_of(out, "markupsafe")
    if old:
        say("markupsafe", f"{old.name}: present")
        return old
    say("markupsafe", "building a pure wheel from the sdist (C speedups skipped)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", str(tmp),
             "markupsafe"], "pip download of the markupsafe sdist")
        (sdist,) = tmp.glob("*.tar.gz")
        with tarfile.open(sdist) as t:
            t.extractall(tmp / "src", filter="data")
        (src,) = (tmp / "src").iterdir()
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "whl"),
             str(src)], "building the markupsafe wheel", env={**os.environ, "CC": "false"})
        (built,) = (tmp / "whl").glob("*.whl")
        pure = built.name.split("-")[:2]  # the tags of a build without extensions may still name this platform
        dst = out / f"{pure[0].lower()}-{pure[1]}-py3-none-any.whl"
        with tempfile.TemporaryDirectory() as check:
            shutil.unpack_archive(built, check, "zip")
            if any(p.suffix in (".so", ".pyd") for p in Path(check).rglob("*")):
                raise DistError(f"{built.name} holds a compiled extension; expected the pure-Python fallback")
        shutil.move(str(built), dst)
        return dst


def lock_python() -> str:
    """A Python >= 3.12 for pyodide-build (under 3.11 pip picks a version that cannot read Pyodide 314's lockfile)."""
    candidates = [shutil.which(f"python3.{m}") for m in (14, 13, 12)]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted((str(p) for p in pyenv.glob("3.1[2-9]*/bin/python3")), reverse=True)
    if sys.version_info >= (3, 12):
        candidates.insert(0, sys.executable)
    for c in candidates:
        if c and subprocess.run([c, "-c", "import sys, venv; assert sys.version_info >= (3, 12)"],
                                capture_output=True).returncode == 0:
            return c
    raise DistError("pyodide-build needs Python >= 3.12 and none was found (install one, e.g. `pyenv install 3.12`)")


def venv_tool() -> Path:
    tool = VENV / "bin" / "pyodide"
    if tool.is_file() and subprocess.run([tool, "--version"], capture_output=True).returncode == 0:
        say("venv", f"{VENV.relative_to(ROOT)}: ready")
        return tool
    python = lock_python()
    say("venv", f"creating {VENV.relative_to(ROOT)} with {python} and installing {', '.join(VENV_PACKAGES)}")
    shutil.rmtree(VENV, ignore_errors=True)
    run([python, "-m", "venv", str(VENV)], "creating the virtual environment")
    run([str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", *VENV_PACKAGES],
        f"pip install {' '.join(VENV_PACKAGES)}")
    return tool


def write_lock(out: Path, wheels: list[Path]) -> None:
    lock = out / LOCK
    inputs = [*wheels, out / "pyodide-lock.core.json"]
    if lock.is_file() and lock.stat().st_mtime >= newest(inputs):
        say("lock", f"{LOCK}: up to date")
        return
    tool = venv_tool()
    say("lock", f"pyodide lockfile add-wheels {' '.join(w.name for w in wheels)}")
    tmp = out / f".{LOCK}.tmp"
    # Pyodide's own jinja2 and markupsafe entries name wheels on its CDN: ours replace them.
    run([str(tool), "lockfile", "add-wheels", "--input", str(out / "pyodide-lock.core.json"), "--output", str(tmp),
         *map(str, wheels)], "pyodide lockfile add-wheels", cwd=out)
    os.replace(tmp, lock)


def build(out: str | Path = ROOT / "build" / "pyodide") -> Path:
    """Write (or bring up to date) the distribution in `out`; returns it."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".building", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time (parallel test workers each ask for it)
        copy_core(out)
        wheels = [build_webjit(out), *(fetch_pure(out, n) for n in PURE), build_markupsafe(out)]
        write_lock(out, wheels)
        (out / LOCK).touch()  # the Makefile's target: up to date now
    say("done", f"{out}: serve it (e.g. at /pyodide/) and `loadPyodide({{indexURL}})`, then loadPackage('webjit')")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m webjit.pyodide_dist", description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default=str(ROOT / "build" / "pyodide"), metavar="DIR",
                   help="the distribution folder (default build/pyodide)")
    args = p.parse_args(argv)
    try:
        build(args.output)
    except DistError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
