"""The demo models compile, run natively and match onnxruntime (max abs error <= 1e-4)."""
import subprocess
import sys

import numpy as np
import pytest

import demo_models
from webjit.validate import validate

pytestmark = [pytest.mark.native, pytest.mark.models]
pytest.importorskip("torch")


@pytest.mark.parametrize("name", ["bert_base", "gpt2", "llama"])
def test_demo_model_matches_onnxruntime(name):
    feeds = demo_models.sample_inputs(name)
    report, _ = validate(demo_models.get(name), feeds)
    assert report.errors and report.ok, report.errors


def test_minilm_with_padded_mask_passes_the_cli(tmp_path):
    feeds = demo_models.sample_inputs("minilm", seq=128)
    assert feeds["attention_mask"][0, -20:].sum() == 0 and feeds["attention_mask"][0, :-20].all()
    np.savez(tmp_path / "in.npz", **feeds)
    r = subprocess.run([sys.executable, "-m", "webjit", "validate", str(demo_models.get("minilm")),
                        "--inputs", str(tmp_path / "in.npz"), "--save-outputs", str(tmp_path / "out.npz")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout
    with np.load(tmp_path / "out.npz") as out:
        assert out["last_hidden_state"].shape == (1, 128, 384)


def test_minilm_at_another_length_and_batch():
    feeds = demo_models.sample_inputs("minilm", seq=33, batch=2)
    report, _ = validate(demo_models.get("minilm"), feeds)
    assert report.ok, report.errors


def test_every_variant_of_every_llama_kernel_matches(tmp_path):
    feeds = demo_models.sample_inputs("llama", seq=17)
    report, _ = validate(demo_models.get("llama"), feeds, variants="all")
    assert all(k["checked"] == k["variants"] for k in report.kernels)
    assert report.ok, [k for k in report.kernels if k["worst"] > k["tol"]]


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_minilm_exported_without_token_type_ids_matches_onnxruntime(backend):
    """A user's export with only input_ids and attention_mask: the token type ids are constants in the graph (a
    GatherElements of constants that must fold)."""
    import onnx
    path = demo_models.get("minilm_2in")
    assert [i.name for i in onnx.load(str(path), load_external_data=False).graph.input] == ["input_ids", "attention_mask"]
    feeds = demo_models.sample_inputs("minilm_2in", seq=23)
    report, _ = validate(path, feeds, backend=backend)
    assert report.errors and report.ok, report.errors
