"""`webjit build`: the web bundle's files, their hashes, the weight shards, atomic replacement, and what may
reach the bundle from the model (no GPU needed; the reference outputs come from onnxruntime)."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest

import webjit
import webjit.bundle as bundle
from helpers import make_model, node, reference
from webjit.errors import WebjitError
from webjit.render_wgsl import render
from webjit.space import DEFAULT_LIMITS, prune

# Text a model could carry in its names to break out of generated code, if names ever reached it unescaped.
EVIL = '*/ } fn evil() { /* </script><script>alert(1)</script> "quoted" `${x}` \\'
ROOT = Path(__file__).resolve().parents[2]


def tiny_model():
    """Token ids -> embedding (named with EVIL) + x -> three identical MatMul+ReLU layers -> Where with a bool
    constant. It has float32, int64 and bool weights, and two kernels with equal source."""
    rng = np.random.default_rng(0)
    feeds = {"ids": np.array([[1, 2, 3, 4]], np.int64), "x": rng.standard_normal((1, 4, 8)).astype(np.float32)}
    inits = {f"table {EVIL}": rng.standard_normal((50, 8)).astype(np.float32),
             "shift": np.array([[1, 0, 2, 1]], np.int64), "cond": rng.standard_normal((1, 4, 8)) > 0}
    inits.update({f"w{i}": rng.standard_normal((8, 8)).astype(np.float32) for i in range(3)})
    nodes = [node("Add", ["ids", "shift"], ["ids2"], name=EVIL), node("Gather", [f"table {EVIL}", "ids2"], ["e"]),
             node("Add", ["e", "x"], ["h0"])]
    for i in range(3):
        nodes += [node("MatMul", [f"h{i}", f"w{i}"], [f"m{i}"]), node("Relu", [f"m{i}"], [f"h{i + 1}"])]
    nodes.append(node("Where", ["cond", "h3", "h0"], ["y"]))
    return make_model(nodes, feeds, {"y": np.float32}, inits), feeds


@pytest.fixture
def model(tmp_path):
    m, feeds = tiny_model()
    path = tmp_path / "model.onnx"
    onnx.save(m, str(path))
    return path, feeds


def build(model, out):
    path, feeds = model
    return bundle.build(path, out, values=feeds)


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_every_file_of_a_bundle_is_listed_with_its_size_and_sha256(model, tmp_path):
    out = build(model, tmp_path / "b")
    m = manifest(out)
    assert m["format"] == "webjit-bundle" and m["version"] == bundle.SCHEMA_VERSION
    assert files_under(out) == set(m["files"]) | {"manifest.json", "snippet.html"}
    for path, rec in m["files"].items():
        data = (out / path).read_bytes()
        assert rec == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}, path


def test_the_snippet_pins_the_manifest_by_its_sha256(model, tmp_path):
    import base64
    out = build(model, tmp_path / "b")
    pin = "sha256-" + base64.b64encode(hashlib.sha256((out / "manifest.json").read_bytes()).digest()).decode()
    assert f"integrity: '{pin}'" in (out / "snippet.html").read_text()


def test_kernel_files_are_named_by_their_content_and_shared_by_equal_kernels(model, tmp_path):
    out = build(model, tmp_path / "b")
    m = manifest(out)
    plan = webjit.compile(model[0], values=model[1])
    sources = {render(k, v, plan.dtypes) for k in plan.kernels for v in prune(k.space, DEFAULT_LIMITS)}
    kernel_files = [p for p in m["files"] if p.startswith("kernels/")]
    assert len(kernel_files) == len(sources)
    for p in kernel_files:
        assert p == f"kernels/{hashlib.sha256((out / p).read_bytes()).hexdigest()}.wgsl"
    by_files = [tuple(v["file"] for v in k["variants"]) for k in m["kernels"]]
    assert len(set(by_files)) < len(by_files), "the identical MatMul+ReLU layers should share their kernel files"


def test_variants_carry_what_a_device_needs_to_prune_them(model, tmp_path):
    m = manifest(build(model, tmp_path / "b"))
    plan = webjit.compile(model[0], values=model[1])
    for k, spec in zip(m["kernels"], plan.kernels):
        space = prune(spec.space, DEFAULT_LIMITS)
        assert [v["key"] for v in k["variants"]] == [v.key for v in space]
        assert [(tuple(v["dispatch"]), v["threads"], v["smemBytes"]) for v in k["variants"]] == \
            [(v.dispatch, v.threads, v.smem_bytes) for v in space]


def test_weights_are_stored_in_device_form_at_256_byte_aligned_offsets(model, tmp_path):
    out = build(model, tmp_path / "b")
    m = manifest(out)
    plan = webjit.compile(model[0], values=model[1])
    shards = [(out / s["file"]).read_bytes() for s in m["weights"]["shards"]]
    dtypes = {w["name"]: w["dtype"] for w in m["weights"]["tensors"]}
    assert dtypes["shift"] == "int32" and dtypes["cond"] == "uint32" and dtypes[f"table {EVIL}"] == "float32"
    for w in m["weights"]["tensors"]:
        assert w["parts"][0]["offset"] % 256 == 0
        data = b"".join(shards[p["shard"]][p["offset"]:p["offset"] + p["bytes"]] for p in w["parts"])
        assert data == plan.weights[w["name"]].tobytes(), w["name"]


def test_a_weight_bigger_than_a_shard_is_split_over_whole_shards(model, tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "SHARD_BYTES", 1024)
    out = build(model, tmp_path / "b")
    m = manifest(out)
    table = next(w for w in m["weights"]["tensors"] if w["name"] == f"table {EVIL}")
    assert table["bytes"] == 50 * 8 * 4 and len(table["parts"]) == 2
    assert [p["offset"] for p in table["parts"]] == [0, 0]
    assert all(m["files"][s["file"]]["bytes"] <= 1024 for s in m["weights"]["shards"])


def shard_bytes_of(out: Path, w: dict) -> bytes:
    shards = [(out / s["file"]).read_bytes() for s in manifest(out)["weights"]["shards"]]
    return b"".join(shards[p["shard"]][p["offset"]:p["offset"] + p["bytes"]] for p in w["parts"])


@pytest.mark.parametrize("shard_bytes", [bundle.SHARD_BYTES, 512])
def test_fp16_bundles_store_float32_weights_as_float16_and_the_other_weights_as_they_are(model, tmp_path,
                                                                                         monkeypatch, shard_bytes):
    monkeypatch.setattr(bundle, "SHARD_BYTES", shard_bytes)  # 512: the table (800 bytes as float16) is split
    out = bundle.build(model[0], tmp_path / "b", values=model[1], weights="fp16")
    m = manifest(out)
    plan = webjit.compile(model[0], values=model[1])
    assert m["weights"]["format"] == "fp16"
    for w in m["weights"]["tensors"]:
        want = np.asarray(plan.weights[w["name"]])
        data = shard_bytes_of(out, w)
        assert w["bytes"] == want.nbytes, w["name"]  # `bytes` stays the device size
        if want.dtype == np.float32:
            assert w["stored"] == "float16" and len(data) == want.nbytes // 2, w["name"]
            got = np.frombuffer(data, "<f2").astype(np.float32).reshape(want.shape)
            np.testing.assert_array_equal(got, want.astype(np.float16).astype(np.float32), err_msg=w["name"])
        else:
            assert "stored" not in w and data == want.tobytes(), w["name"]
    table = next(w for w in m["weights"]["tensors"] if w["name"] == f"table {EVIL}")
    assert len(table["parts"]) == (2 if shard_bytes == 512 else 1)
    fp32 = manifest(bundle.build(model[0], tmp_path / "b32", values=model[1]))
    assert sum(m["files"][s["file"]]["bytes"] for s in m["weights"]["shards"]) < \
        sum(fp32["files"][s["file"]]["bytes"] for s in fp32["weights"]["shards"])


def with_w1(tmp_path, edit):
    """The tiny model with weight w1 edited in place: its path and feeds."""
    m, feeds = tiny_model()
    init = next(i for i in m.graph.initializer if i.name == "w1")
    values = onnx.numpy_helper.to_array(init).copy()
    edit(values)
    init.CopyFrom(onnx.numpy_helper.from_array(values, "w1"))
    onnx.save(m, str(tmp_path / "model.onnx"))
    return tmp_path / "model.onnx", feeds, values


@pytest.mark.parametrize("big", [65520.0, -1e6, np.finfo(np.float32).min])
def test_fp16_keeps_a_float32_weight_beyond_float16s_range_as_float32_and_says_so(tmp_path, big):
    def edit(v):
        v[3, 5] = big
    path, feeds, values = with_w1(tmp_path, edit)
    np.savez(tmp_path / "in.npz", **feeds)
    r = subprocess.run([sys.executable, "-m", "webjit", "build", str(path), "--inputs", str(tmp_path / "in.npz"),
                        "-o", str(tmp_path / "b"), "--weights", "fp16"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "kept as float32, beyond float16's range: 'w1'" in r.stdout
    tensors = manifest(tmp_path / "b")["weights"]["tensors"]
    w1 = next(w for w in tensors if w["name"] == "w1")
    assert "stored" not in w1 and shard_bytes_of(tmp_path / "b", w1) == values.tobytes()
    assert all(w.get("stored") == "float16" for w in tensors if w["dtype"] == "float32" and w["name"] != "w1")


def test_fp16_stores_the_largest_float16_infinities_and_nan_as_float16(tmp_path):
    def edit(v):
        v[0, :4] = [65504.0, -65504.0, np.inf, np.nan]
    path, feeds, values = with_w1(tmp_path, edit)
    out = bundle.build(path, tmp_path / "b", values=feeds, weights="fp16", reference=False)
    w = next(w for w in manifest(out)["weights"]["tensors"] if w["name"] == "w1")
    assert w["stored"] == "float16"
    got = np.frombuffer(shard_bytes_of(out, w), "<f2").astype(np.float32).reshape(values.shape)
    np.testing.assert_array_equal(got, values.astype(np.float16).astype(np.float32))


def test_an_unknown_weight_format_is_refused(model, tmp_path):
    with pytest.raises(WebjitError, match="weights 'int8' is not supported; choose from fp32, fp16"):
        bundle.build(model[0], tmp_path / "b", values=model[1], weights="int8")


def test_shards_hold_at_most_32_MB():
    assert bundle.SHARD_BYTES <= 32_000_000 and bundle.SHARD_BYTES % 256 == 0


def test_the_reference_holds_the_sample_inputs_and_onnxruntime_outputs(model, tmp_path):
    out = build(model, tmp_path / "b")
    ref = manifest(out)["reference"]
    assert ref["source"].startswith("onnxruntime")
    for t in ref["inputs"]:
        got = np.frombuffer((out / t["file"]).read_bytes(), dtype=t["dtype"]).reshape(t["shape"])
        np.testing.assert_array_equal(got, model[1][t["name"]])
    want = reference(onnx.load(str(model[0])), model[1])
    for t in ref["outputs"]:
        got = np.frombuffer((out / t["file"]).read_bytes(), dtype=t["dtype"]).reshape(t["shape"])
        np.testing.assert_array_equal(got, want[t["name"]])


def test_names_from_the_model_reach_the_bundle_only_as_json_strings(model, tmp_path):
    out = build(model, tmp_path / "b")
    for path in files_under(out):
        if path != "manifest.json":
            data = (out / path).read_bytes()
            assert b"evil" not in data, path
            assert b"script" not in data or path == "snippet.html", path  # the snippet's own tag, no name in it
    text = (out / "manifest.json").read_text()
    assert "<" not in text and ">" not in text and "&" not in text  # escaped, inert even inside HTML
    names = {w["name"] for w in manifest(out)["weights"]["tensors"]} | {k["node"] for k in manifest(out)["kernels"]}
    assert f"table {EVIL}" in names and EVIL in names


def test_a_failed_build_leaves_nothing_behind_and_keeps_the_previous_bundle(model, tmp_path, monkeypatch):
    out = build(model, tmp_path / "b")
    before = {p: (out / p).read_bytes() for p in files_under(out)}

    def broken(*args):
        raise RuntimeError("disk full")
    monkeypatch.setattr(bundle, "_write_weights", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        build(model, out)
    assert {p: (out / p).read_bytes() for p in files_under(out)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "model.onnx"]


def test_an_interrupted_first_build_leaves_no_folder(model, tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(bundle, "_write_reference", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build(model, tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_a_rebuild_replaces_the_previous_bundle(model, tmp_path):
    out = build(model, tmp_path / "b")
    (out / "kernels" / "stale.wgsl").write_text("old")
    build(model, out)
    assert not (out / "kernels" / "stale.wgsl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "model.onnx"]


def test_a_folder_that_is_not_a_bundle_is_never_replaced(model, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("keep me")
    with pytest.raises(WebjitError, match="not a webjit bundle; refusing to replace it"):
        build(model, tmp_path / "docs")
    assert (tmp_path / "docs" / "notes.txt").read_text() == "keep me"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
@pytest.mark.parametrize("weights", bundle.WEIGHT_FORMATS)
def test_the_runtime_accepts_the_manifest_the_compiler_writes(model, tmp_path, weights):
    out = bundle.build(model[0], tmp_path / "b", values=model[1], weights=weights)
    script = ("import {validateManifest} from './web/manifest.js';"
              "import {readFileSync} from 'node:fs';"
              "const m = validateManifest(JSON.parse(readFileSync(process.argv[1], 'utf8')));"
              "console.log(m.kernels.length);")
    r = subprocess.run(["node", "--input-type=module", "-e", script, str(out / "manifest.json")],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == len(manifest(out)["kernels"])


def test_the_build_command_writes_a_bundle_and_says_what_it_holds(model, tmp_path):
    path, feeds = model
    np.savez(tmp_path / "in.npz", **feeds)
    r = subprocess.run([sys.executable, "-m", "webjit", "build", str(path), "--inputs", str(tmp_path / "in.npz"),
                        "-o", str(tmp_path / "b")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    m = manifest(tmp_path / "b")
    assert r.stdout.startswith(f"{tmp_path / 'b'}: {len(m['kernels'])} kernels, {len(m['files'])} files, ")
    assert "saved" not in r.stdout


def test_the_build_command_with_fp16_weights_says_how_much_it_saved(model, tmp_path):
    path, feeds = model
    np.savez(tmp_path / "in.npz", **feeds)
    r = subprocess.run([sys.executable, "-m", "webjit", "build", str(path), "--inputs", str(tmp_path / "in.npz"),
                        "-o", str(tmp_path / "b"), "--weights", "fp16"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert manifest(tmp_path / "b")["weights"]["format"] == "fp16"
    saved = r"^weights: [0-9.]+ MiB as fp16, [0-9.]+ MiB saved \([0-9.]+ MiB in device form\)$"
    assert re.search(saved, r.stdout, re.M)


def test_the_build_command_on_a_bad_model_exits_2_and_writes_nothing(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    r = subprocess.run([sys.executable, "-m", "webjit", "build", str(tmp_path / "bad.onnx"), "--shape", "x=1x4",
                        "-o", str(tmp_path / "b")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.startswith("webjit: error:") and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]
