"""The runtime's manifest check (web/manifest.js, under Node) on a bundle built with --generate: the built manifest
passes, and every seeded mutation of its `generate` section is either still valid or refused with one
ManifestError naming a field of `generate`, never another error that a hostile bundle could cause."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.models

# Validates the manifest, then MUTANTS seeded edits of its generate section; prints what each gave.
NODE_SCRIPT = """
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [, manifestJs, file, count] = process.argv;
const { ManifestError, validateManifest } = await import(pathToFileURL(manifestJs).href);
const text = readFileSync(file, 'utf8');
validateManifest(JSON.parse(text));
let a = 1;
const rnd = () => { a = (a * 1103515245 + 12345) % 2147483648; return a / 2147483648; };
const REPLACEMENTS = [null, -1, 0, 1, 2, 1.5, 1e308, '', 'logits', 'input_ids', 'present.0.key', [], {}, true, [1, 1]];
const out = {valid: 0, refused: 0, crashed: [], where: []};
for (let i = 0; i < Number(count); i++) {
  const m = JSON.parse(text);
  const slots = [];
  const walk = (node) => { if (node && typeof node === 'object') for (const k of Object.keys(node)) { slots.push([node, k]); walk(node[k]); } };
  walk(m.generate);
  const [node, key] = slots[Math.floor(rnd() * slots.length)];
  const r = rnd();
  if (r < 0.2) delete node[key];
  else if (r < 0.3 && Array.isArray(node[key]) && node[key].length) node[key].push(node[key][0]);
  else node[key] = REPLACEMENTS[Math.floor(rnd() * REPLACEMENTS.length)];
  try { validateManifest(m); out.valid++; }
  catch (e) {
    if (e instanceof ManifestError) { out.refused++; out.where.push(e.message); }
    else out.crashed.push(`${key}: ${e && e.stack}`);
  }
}
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    hub = pytest.importorskip("demo_models.hub")
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    from webjit.bundle import build
    from webjit.generation import Spec
    out = build(hub.get("gpt2") / "onnx/model.onnx", tmp_path_factory.mktemp("gen") / "b",
                generate=Spec.of(12, [4], [4]), backends=("webgpu",))
    return out / "manifest.json"


def test_generation_manifests_pass_and_mutations_of_generate_are_refused_cleanly(manifest):
    r = subprocess.run(["node", "--input-type=module", "-e", NODE_SCRIPT, "--", str(ROOT / "web" / "manifest.js"),
                       str(manifest), "600"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert not got["crashed"], got["crashed"][:3]
    assert got["refused"] > 400  # most edits break it; the rest (an equal value, say) may stay valid
    assert all("generate" in w for w in got["where"]), [w for w in got["where"] if "generate" not in w][:3]


def test_the_prompt_buckets_hold_two_tokens_at_least():
    from webjit.errors import WebjitError
    from webjit.generation import Spec
    with pytest.raises(WebjitError, match="prompt buckets \\[1, 8\\]: sizes must lie between 2 and 15"):
        Spec.of(16, [1, 8])
    assert Spec.of(16, None, [1]).past_buckets == (1, 15)
