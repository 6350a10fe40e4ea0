"""`webjit build` writes the plan's WebAssembly modules and the memory layout the browser's 'wasm' execution
provider needs (web/wasm/). Checked here the way the browser uses them, on wasmtime: a memory of `pages`, the
weights copied from the shards to their offsets, inputs written at theirs, `load(0, 1)` once, `run(0, 1)`, the output
read back and compared with onnxruntime's (stored in the bundle)."""
from __future__ import annotations

import json
import subprocess
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import wasmtime

import webjit.bundle as bundle
from unit.test_bundle import ROOT, tiny_model
from webjit.errors import WebjitError
from webjit.native.wasm_runner import _engine


@pytest.fixture
def model(tmp_path):
    m, feeds = tiny_model()
    path = tmp_path / "model.onnx"
    onnx.save(m, str(path))
    return path, feeds


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def run_like_the_browser(out: Path, simd: str, feeds: dict, choice=lambda kernel: 0, runs: int = 1,
                         wipe: bool = False) -> dict[str, np.ndarray]:
    """Run the bundle's unshared module of one SIMD form as web/wasm/ does (`load` once, then `runs` runs), kernel k
    on its candidate choice(k). wipe: zero the weights after `load`."""
    m = manifest(out)
    w = m["wasm"]
    mod = next(x for x in w["modules"] if x["simd"] == simd and not x["shared"])
    engine = _engine(simd == "relaxed")
    store = wasmtime.Store(engine)
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(w["pages"], w["pages"])))
    mem = np.ctypeslib.as_array(memory.data_ptr(store), shape=(memory.data_len(store),))
    shards = [(out / s["file"]).read_bytes() for s in m["weights"]["shards"]]
    for e in w["weights"]:
        at = e["offset"]
        for part in m["weights"]["tensors"][e["tensor"]]["parts"]:
            mem[at:at + part["bytes"]] = np.frombuffer(shards[part["shard"]], np.uint8, part["bytes"], part["offset"])
            at += part["bytes"]
    for info, at in zip(m["inputs"], w["inputs"]):
        data = np.asarray(feeds[info["name"]]).astype(info["deviceDtype"]).tobytes()
        mem[at:at + len(data)] = np.frombuffer(data, np.uint8)
    base = 0
    for i, k in enumerate(w["kernels"]):  # the table of chosen variants: entry base_k + v for kernel k
        v = min(choice(k), len(k["variants"][simd]) - 1)
        mem[w["select"] + 4 * i:w["select"] + 4 * i + 4] = np.frombuffer(np.uint32(base + v).tobytes(), np.uint8)
        base += len(k["variants"][simd])
    instance = wasmtime.Instance(store, wasmtime.Module(engine, (out / mod["file"]).read_bytes()), [memory])
    exports = instance.exports(store)
    exports["load"](store, 0, 1)  # the load-time kernels, once
    if wipe:  # runs that read no weight (or run a load-time kernel again) then see only zeros there
        for e in w["weights"]:
            mem[e["offset"]:e["offset"] + m["weights"]["tensors"][e["tensor"]]["bytes"]] = 0
    for _ in range(runs):
        exports["run"](store, 0, 1)
    return {t["name"]: mem[at:at + t["from"]["bytes"]].copy().view(t["deviceDtype"]).reshape(t["shape"])
            for t, at in zip(m["outputs"], w["outputs"]) if at is not None}


@pytest.mark.parametrize("simd", ["relaxed", "fixed"])
def test_the_wasm_modules_run_from_the_manifest_layout_and_match_onnxruntime(model, tmp_path, simd):
    out = bundle.build(model[0], tmp_path / "b", values=model[1])
    m = manifest(out)
    assert m["backends"] == ["webgpu", "wasm"]
    forms = {(x["simd"], x["shared"]) for x in m["wasm"]["modules"]}
    assert forms == {("relaxed", False), ("relaxed", True), ("fixed", False), ("fixed", True)}
    want = {t["name"]: np.frombuffer((out / t["file"]).read_bytes(), t["dtype"]).reshape(t["shape"])
            for t in m["reference"]["outputs"]}
    got = run_like_the_browser(out, simd, model[1])
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-4, rtol=1e-6)


@pytest.mark.parametrize("simd", ["relaxed", "fixed"])
def test_every_candidate_a_module_holds_for_tuning_matches_onnxruntime(model, tmp_path, simd):
    out = bundle.build(model[0], tmp_path / "b", values=model[1])
    m = manifest(out)
    kernels = m["wasm"]["kernels"]
    assert [k["name"] for k in kernels] == [k["name"] for k in m["kernels"]]
    assert all(len(k["variants"]["relaxed"]) == len(k["variants"]["fixed"]) >= 1 for k in kernels)
    matmuls = [k["group"] for k in kernels if k["name"].endswith("matmul")]
    assert len(set(matmuls)) < len(matmuls)  # equal layers share a group (tuned once)
    want = {t["name"]: np.frombuffer((out / t["file"]).read_bytes(), t["dtype"]).reshape(t["shape"])
            for t in m["reference"]["outputs"]}
    for v in range(max(len(k["variants"][simd]) for k in kernels)):
        got = run_like_the_browser(out, simd, model[1], choice=lambda k: v)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], atol=1e-4, rtol=1e-6, err_msg=f"candidate {v}")


def test_backends_choose_what_the_bundle_holds(model, tmp_path):
    wasm_only = manifest(bundle.build(model[0], tmp_path / "w", values=model[1], backends=["wasm"]))
    assert wasm_only["backends"] == ["wasm"] and wasm_only["kernels"] == [] and "wasm" in wasm_only
    assert not any(p.startswith("kernels/") for p in wasm_only["files"])
    webgpu_only = manifest(bundle.build(model[0], tmp_path / "g", values=model[1], backends=["webgpu"]))
    assert webgpu_only["backends"] == ["webgpu"] and webgpu_only["kernels"] and "wasm" not in webgpu_only
    assert not any(p.startswith("wasm/") for p in webgpu_only["files"])
    with pytest.raises(WebjitError, match="choose one or more of webgpu, wasm"):
        bundle.build(model[0], tmp_path / "x", values=model[1], backends=["cuda"])
    assert not (tmp_path / "x").exists()


def test_the_build_command_takes_backends(model, tmp_path):
    path, feeds = model
    np.savez(tmp_path / "in.npz", **feeds)
    r = subprocess.run([sys.executable, "-m", "webjit", "build", str(path), "--inputs", str(tmp_path / "in.npz"),
                        "--backends", "wasm", "-o", str(tmp_path / "b")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "0 kernels" in r.stdout and "(4 WebAssembly modules)" in r.stdout
    assert manifest(tmp_path / "b")["backends"] == ["wasm"]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_runtime_accepts_the_wasm_section_the_compiler_writes(model, tmp_path):
    out = bundle.build(model[0], tmp_path / "b", values=model[1])
    script = ("import {validateManifest} from './web/manifest.js';"
              "import {validateWasm} from './web/wasm/layout.js';"
              "import {readFileSync} from 'node:fs';"
              "const m = validateManifest(JSON.parse(readFileSync(process.argv[1], 'utf8')));"
              "console.log(validateWasm(m).modules.length);")
    r = subprocess.run(["node", "--input-type=module", "-e", script, str(out / "manifest.json")],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == 4


@pytest.fixture
def load_time(tmp_path):
    from native.test_load_time import load_time_model
    m, feeds = load_time_model()
    path = tmp_path / "load_time.onnx"
    onnx.save(m, str(path))
    return path, feeds


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_load_time_kernels_reach_the_manifest_and_the_module_runs_them_once_from_its_load_export(load_time, tmp_path):
    out = bundle.build(load_time[0], tmp_path / "b", values=load_time[1])
    m = manifest(out)
    load = m["load"]
    assert load >= 4 and len(m["loaded"]) == len({b["index"] for k in m["kernels"][:load] for b in k["bindings"]
                                                    if b["access"] == "read-write"})
    assert all(b["buffer"] in ("weight", "loaded") for k in m["kernels"][:load] for b in k["bindings"])
    assert not any(b["buffer"] == "weight" for k in m["kernels"][load:] for b in k["bindings"])
    assert all(len(k["variants"]["relaxed"]) == 1 for k in m["wasm"]["kernels"][:load])  # not tuned: no candidates
    want = {t["name"]: np.frombuffer((out / t["file"]).read_bytes(), t["dtype"]).reshape(t["shape"])
            for t in m["reference"]["outputs"]}
    got = run_like_the_browser(out, "fixed", load_time[1], runs=3, wipe=True)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-4, rtol=1e-4)
    script = ("import {validateManifest} from './web/manifest.js';"
              "import {validateWasm} from './web/wasm/layout.js';"
              "import {readFileSync} from 'node:fs';"
              "const m = validateManifest(JSON.parse(readFileSync(process.argv[1], 'utf8')));"
              "validateWasm(m); console.log(m.load);")
    r = subprocess.run(["node", "--input-type=module", "-e", script, str(out / "manifest.json")],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == load
