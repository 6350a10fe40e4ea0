"""The differential fuzzer in the normal suite: its saved regression cases, a fixed-seed budget of random graphs,
and a check that it finds and shrinks a bug when there is one. `python -m tests.fuzz --seconds N` runs it longer."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

from .check import failure, shrink
from .graphs import generate

pytestmark = pytest.mark.native
CASES = sorted((Path(__file__).parent / "cases").glob("*.onnx"))
GRAPHS, CHUNK = 300, 50  # seeds 0..299, in chunks that pytest-xdist can spread


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_saved_case_matches_onnxruntime(path):
    """A graph the fuzzer once found failing (what failed is in NAME.txt), shrunk; now it must pass."""
    why, _ = failure(onnx.load(str(path)), dict(np.load(path.with_suffix(".npz"))))
    assert why is None, f"{path.stem}: {why} (first found: {path.with_suffix('.txt').read_text().strip()})"


@pytest.mark.parametrize("first", range(0, GRAPHS, CHUNK))
def test_random_graphs_match_onnxruntime(first):
    bad = []
    for seed in range(first, first + CHUNK):
        model, feeds, _ = generate(seed)
        why, _ = failure(model, feeds)
        if why:
            bad.append(f"seed {seed}: {why}")
    assert not bad, "\n".join(bad) + "\n(reproduce and shrink with: python -m tests.fuzz --seed SEED --seconds 1)"


def test_the_fuzzer_finds_and_shrinks_a_wrong_kernel(monkeypatch):
    """With Tanh rendered as the identity on WebAssembly, some early graph fails, and shrinking cuts it down to a
    graph of at most three nodes that still holds a Tanh."""
    from webjit import wasm_code
    monkeypatch.setitem(wasm_code.FLOAT, "Tanh", "{0}")
    for seed in range(200):
        model, feeds, used = generate(seed)
        if not used.get("Tanh"):
            continue
        why, _ = failure(model, feeds, backends=("wasm",))
        if why:
            break
    else:
        pytest.fail("no graph among 200 seeds failed with a wrong Tanh")
    small, small_feeds = shrink(model, feeds, backends=("wasm",))
    assert failure(small, small_feeds, backends=("wasm",))[0] is not None
    assert len(small.graph.node) <= 3 and "Tanh" in {n.op_type for n in small.graph.node}, \
        [n.op_type for n in small.graph.node]
