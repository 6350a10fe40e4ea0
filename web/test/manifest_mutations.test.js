// Mutated manifests: each of thousands of seeded edits of the fixture (a field deleted, nulled, made negative,
// huge, fractional, of another type, or a list element duplicated) is either still valid or refused with one
// ManifestError. Anything else (a TypeError, a RangeError) is a crash a hostile bundle could cause.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ManifestError, validateManifest } from '../manifest.js';
import { withLoadKernel } from './load_fixture.js';

const FIXTURE = readFileSync(new URL('./manifest.fixture.json', import.meta.url), 'utf8');
const MUTANTS = 4000;

/** A small seeded generator (mulberry32), so a failing mutant is reproducible from its seed. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every [container, key] in the tree, depth first. */
function slots(node, out = []) {
  if (node && typeof node === 'object') {
    for (const key of Object.keys(node)) {
      out.push([node, key]);
      slots(node[key], out);
    }
  }
  return out;
}

const REPLACEMENTS = [null, -1, 0, 1.5, 2 ** 53, 1e308, '', 'x', '../../etc/passwd', [], {}, true, [[]], { length: 1e9 }];

/**
 * @param {number} seed
 * @param {(m: any) => any} [base]  what to mutate: the fixture as it is, or made over
 */
function mutant(seed, base = (m) => m) {
  const rnd = random(seed);
  const m = base(JSON.parse(FIXTURE));
  const all = slots(m);
  for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) {
    const [parent, key] = all[Math.floor(rnd() * all.length)];
    const what = rnd();
    if (what < 0.2) { if (Array.isArray(parent)) parent.splice(Number(key), 1); else delete parent[key]; }
    else if (what < 0.3 && Array.isArray(parent[key]) && parent[key].length) parent[key].push(structuredClone(parent[key][0]));
    else parent[key] = structuredClone(REPLACEMENTS[Math.floor(rnd() * REPLACEMENTS.length)]);
  }
  return JSON.parse(JSON.stringify(m)); // what a manifest can be: JSON, no holes, no shared objects
}

for (const [what, base] of /** @type {[string, any][]} */ ([['manifest', undefined], ['manifest with a load-time kernel', withLoadKernel]])) {
  test(`every mutated ${what} is valid or refused with a ManifestError`, () => {
    const seen = { valid: 0, refused: 0 };
    for (let seed = 0; seed < MUTANTS; seed++) {
      try {
        validateManifest(mutant(seed, base));
        seen.valid++;
      } catch (e) {
        if (!(e instanceof ManifestError)) assert.fail(`mutant ${seed}: ${e && e.constructor.name}: ${e && e.message}`);
        assert.ok(!e.message.includes('\n'), `mutant ${seed}: a one-line message`);
        seen.refused++;
      }
    }
    assert.ok(seen.refused > MUTANTS / 2 && seen.valid > 0, JSON.stringify(seen));
  });
}

test('a manifest with two inputs or outputs of one name is refused', () => {
  for (const [path, where] of [[['inputs'], /inputs\[1\]\.name: 'ids' is there twice/],
    [['outputs'], /outputs\[1\]\.name: 'y' is there twice/]]) {
    const m = JSON.parse(FIXTURE);
    const items = path.reduce((o, k) => o[k], m);
    items.push(structuredClone(items[0]));
    assert.throws(() => validateManifest(m), (e) => e instanceof ManifestError && where.test(e.message), where.source);
  }
});
