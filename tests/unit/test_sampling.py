"""The runtime's sampling (web/sampling.js, under Node) against Hugging Face `transformers`' own logits processors:
for seeded random logits and option sets, the distribution a token is drawn from equals the softmax of the scores
after RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper and TopPLogitsWarper, and greedy
picks numpy's argmax of the penalised scores."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

# Per case {logits, seen, options}: the probabilities and the greedy pick.
NODE_SCRIPT = """
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [, samplingJs, file] = process.argv;
const { argmax, probabilities, scores } = await import(pathToFileURL(samplingJs).href);
const cases = JSON.parse(readFileSync(file, 'utf8'));
process.stdout.write(JSON.stringify(cases.map(({logits, seen, options}) => {
  const s = scores(Float32Array.from(logits), seen, options);
  return {p: Array.from(probabilities(s, options)), greedy: argmax(scores(Float32Array.from(logits), seen, {...options, temperature: 0}))};
})));
"""

OPTIONS = [
    {"temperature": 1.0},
    {"temperature": 0.7, "topK": 5},
    {"temperature": 1.3, "topP": 0.8},
    {"temperature": 0.9, "topK": 40, "topP": 0.95, "repetitionPenalty": 1.2},
    {"temperature": 0.5, "topK": 1},
    {"temperature": 2.0, "topP": 0.3, "repetitionPenalty": 0.8},
]


def test_sampling_distributions_equal_the_transformers_warpers(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    from transformers.generation.logits_process import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)
    rng = np.random.default_rng(0)
    cases = []
    for i in range(24):
        o = OPTIONS[i % len(OPTIONS)]
        logits = (rng.standard_normal(300) * (1 + i % 4)).astype(np.float32)
        cases.append({"logits": logits.tolist(), "seen": [int(t) for t in rng.integers(0, 300, 12)], "options": o})
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    r = subprocess.run(["node", "--input-type=module", "-e", NODE_SCRIPT, "--", str(ROOT / "web" / "sampling.js"),
                        str(tmp_path / "cases.json")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for case, got in zip(cases, json.loads(r.stdout)):
        o = case["options"]
        seen = torch.tensor([case["seen"]])
        s = torch.tensor([case["logits"]], dtype=torch.float64)
        if o.get("repetitionPenalty", 1) != 1:
            s = RepetitionPenaltyLogitsProcessor(o["repetitionPenalty"])(seen, s)
        greedy = int(np.argmax(s[0].numpy()))
        s = TemperatureLogitsWarper(o["temperature"])(seen, s)
        if o.get("topK"):
            s = TopKLogitsWarper(o["topK"])(seen, s)
        if o.get("topP", 1) < 1:
            s = TopPLogitsWarper(o["topP"])(seen, s)
        want = torch.softmax(s, -1)[0].numpy()
        np.testing.assert_allclose(got["p"], want, atol=1e-9, err_msg=json.dumps(o))
        assert got["greedy"] == greedy
