"""The demo models through the WebAssembly backend: `webjit validate --backend wasm` against onnxruntime, every
variant of every llama kernel, a multi-threaded run over shared memory, and `webjit bench --native --backend wasm`."""
import subprocess
import sys

import numpy as np
import pytest

import demo_models
from webjit.validate import validate


def model(name: str):
    if not (demo_models.cache_dir() / name / "model.onnx").is_file():
        pytest.importorskip("torch")  # exporting a demo model needs the export extra
    return demo_models.get(name)


def test_every_variant_of_every_llama_kernel_matches_on_wasm():
    report, _ = validate(model("llama"), demo_models.sample_inputs("llama"), variants="all", backend="wasm")
    assert report.errors and report.ok, (report.errors, [k for k in report.kernels if k["worst"] > k["tol"]])
    assert all(k["checked"] == k["variants"] > 0 for k in report.kernels)
    assert sum(k["variants"] for k in report.kernels if k["kind"] == "matmul") > 20 * len(
        [k for k in report.kernels if k["kind"] == "matmul"])


def test_minilm_with_padded_mask_passes_the_cli_on_wasm(tmp_path):
    feeds = demo_models.sample_inputs("minilm")
    assert feeds["input_ids"].shape == (1, 128) and feeds["attention_mask"][0, -20:].sum() == 0
    np.savez(tmp_path / "in.npz", **feeds)
    r = subprocess.run([sys.executable, "-m", "webjit", "validate", str(model("minilm")), "--backend", "wasm",
                        "--inputs", str(tmp_path / "in.npz"), "--save-outputs", str(tmp_path / "out.npz")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout and "WebAssembly SIMD" in r.stdout
    with np.load(tmp_path / "out.npz") as out:
        assert out["last_hidden_state"].shape == (1, 128, 384)


def test_threads_share_one_memory_and_agree_with_one_thread():
    """Three Python threads, each with its own wasmtime store and instance over one shared memory, split every
    kernel by (thread, threads) and meet at the module's atomic barrier: the result is the single-threaded one."""
    import webjit
    from webjit.native.wasm_runner import WasmRunner
    feeds = demo_models.sample_inputs("minilm", seq=33)
    plan = webjit.compile(model("minilm"), values=feeds)
    one = WasmRunner(plan).run(feeds)
    three = WasmRunner(plan, threads=3)
    for _ in range(3):  # several passes: the barrier's generation counter wraps through states
        got = three.run(feeds)
        np.testing.assert_array_equal(got["last_hidden_state"], one["last_hidden_state"])


def test_bench_runs_on_wasm(tmp_path):
    r = subprocess.run([sys.executable, "-m", "webjit", "bench", "--native", "--backend", "wasm", str(model("llama")),
                        "--shape", "input_ids=1x17", "--budget", "2", "--repeats", "2",
                        "--json", str(tmp_path / "b.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "webjit (native WebAssembly SIMD)" in r.stdout and "onnxruntime CPU" in r.stdout


@pytest.mark.parametrize("name", ["bert_base", "gpt2"])
def test_demo_model_matches_onnxruntime_on_wasm(name):
    report, _ = validate(model(name), demo_models.sample_inputs(name), backend="wasm")
    assert report.errors and report.ok, report.errors
