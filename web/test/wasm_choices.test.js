import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chosenFrom, groups, tableEntries, tunerKernels, usable, wasmDevice } from '../wasm/choices.js';

const KERNELS = [
  { name: 'k00_matmul', group: 0, flops: 10, variants: { relaxed: ['A1', 'B1', 'C1'], fixed: ['A0', 'B0', 'C0'] } },
  { name: 'k01_norm', group: 1, flops: 1, variants: { relaxed: ['N'], fixed: ['N'] } },
  { name: 'k02_matmul', group: 0, flops: 10, variants: { relaxed: ['A1', 'B1', 'C1'], fixed: ['A0', 'B0', 'C0'] } },
];

test('table entries count each kernel\'s candidates before it', () => {
  // kernel k's candidate v is entry (sum of the candidate counts of kernels 0..k-1) + v
  const chosen = [2, 0, 1];
  const want = chosen.map((v, k) => KERNELS.slice(0, k).reduce((s, x) => s + x.variants.relaxed.length, 0) + v);
  assert.deepEqual(Array.from(tableEntries(KERNELS, 'relaxed', chosen)), want);
  assert.throws(() => tableEntries(KERNELS, 'fixed', [3, 0, 0]), /kernel k00_matmul: no candidate 3/);
});

test('kernels of one group are tuned together, in order of first appearance', () => {
  assert.deepEqual(groups(KERNELS), [[0, 2], [1]]);
});

test('cached winners map back to candidate indices of the SIMD form in use, or are refused', () => {
  assert.deepEqual(chosenFrom({ k00_matmul: 'C0', k01_norm: 'N', k02_matmul: 'A0' }, KERNELS, 'fixed'), [2, 0, 0]);
  assert.equal(chosenFrom({ k00_matmul: 'C1', k01_norm: 'N', k02_matmul: 'A1' }, KERNELS, 'fixed'), null);
  assert.equal(chosenFrom({ k00_matmul: 'C0', k01_norm: 'N' }, KERNELS, 'fixed'), null);
  assert.equal(chosenFrom(null, KERNELS, 'fixed'), null);
});

test('the tuner sees each kernel with the candidates of one SIMD form as its variants', () => {
  const t = tunerKernels(KERNELS, 'relaxed');
  assert.deepEqual(t.map((k) => k.variants.map((v) => v.key)), KERNELS.map((k) => k.variants.relaxed));
  assert.deepEqual(t.map((k) => k.flops), [10, 1, 10]);
});

test('candidates that need the unsigned relaxed dot are left out where the engine lacks it, and cached winners too', () => {
  const k = { name: 'k00_matmul', group: 0, flops: 10, variants: { relaxed: ['S', 'U', 'S2', 'U2'], fixed: ['F', 'G', 'H', 'I'] }, unsignedDot: [1, 3] };
  assert.deepEqual(usable(k, 'relaxed', true), [0, 1, 2, 3]);
  assert.deepEqual(usable(k, 'relaxed', false), [0, 2]);
  assert.deepEqual(usable(k, 'fixed', false), [0, 1, 2, 3]);  // the list names relaxed candidates only
  assert.deepEqual(chosenFrom({ k00_matmul: 'U2' }, [k], 'relaxed', true), [3]);
  assert.equal(chosenFrom({ k00_matmul: 'U2' }, [k], 'relaxed', false), null);
  assert.notEqual(wasmDevice('relaxed', 1, 2, true).architecture, wasmDevice('relaxed', 1, 2, false).architecture);
});
