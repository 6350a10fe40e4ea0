"""The cached all-MiniLM-L6-v2 ONNX export matches the sentence-transformers model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.models
torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
sentence_transformers = pytest.importorskip("sentence_transformers")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # make demo_models importable
import demo_models  # noqa: E402


@pytest.fixture(scope="module")
def reference_model() -> torch.nn.Module:
    """The BertModel inside the SentenceTransformer loaded from the bundled files."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    st = sentence_transformers.SentenceTransformer(str(demo_models.minilm_dir()), device="cpu")
    return st[0].auto_model.eval()


def test_minilm_export_exists() -> None:
    path = demo_models.get("minilm")
    assert path.is_file()
    assert path.name == "model.onnx"


@pytest.mark.parametrize(("seq", "batch"), [(None, 1), (37, 2)])
def test_minilm_matches_sentence_transformers(
    reference_model: torch.nn.Module, seq: int | None, batch: int
) -> None:
    feeds = demo_models.sample_inputs("minilm", seq=seq, batch=batch)
    assert set(feeds) == {"input_ids", "attention_mask", "token_type_ids"}

    path = demo_models.get("minilm")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actual,) = session.run(["last_hidden_state"], feeds)

    with torch.no_grad():
        expected = reference_model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    expected = expected.last_hidden_state.numpy()

    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= 1e-4
