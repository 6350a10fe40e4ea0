import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { bufferSizes, fits, fittingVariants, initialVariants, requiredLimits, signature, sourceGroups } from '../plan.js';

const fixture = () => JSON.parse(readFileSync(new URL('./manifest.fixture.json', import.meta.url), 'utf8'));
const DEFAULTS = { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupStorageSize: 32768, maxComputeWorkgroupsPerDimension: 65535 };

test('a variant fits when its threads, workgroup memory and dispatch are within the limits', () => {
  const v = { key: 'x', file: 'kernels/a.wgsl', dispatch: [70000, 1, 1], threads: 256, smemBytes: 32768, registers: 0 };
  assert.equal(fits(v, DEFAULTS), false);
  assert.equal(fits({ ...v, dispatch: [65535, 1, 1] }, DEFAULTS), true);
  assert.equal(fits({ ...v, dispatch: [1, 1, 1], threads: 257 }, DEFAULTS), false);
  assert.equal(fits({ ...v, dispatch: [1, 1, 1], smemBytes: 32769 }, DEFAULTS), false);
});

test('fitting variants keep the manifest order, and a device with bigger limits fits more', () => {
  const [gather, matmul] = fixture().kernels;
  assert.deepEqual(fittingVariants(gather, DEFAULTS), [0]);
  assert.deepEqual(fittingVariants(matmul, DEFAULTS), [0]);
  const big = { ...DEFAULTS, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupStorageSize: 65536 };
  assert.deepEqual(fittingVariants(gather, big), [0, 1]);
  assert.deepEqual(fittingVariants(matmul, big), [0, 1]);
});

test('a kernel with no fitting variant is an error that names it and its node', () => {
  const [gather] = fixture().kernels;
  assert.throws(() => fittingVariants(gather, { ...DEFAULTS, maxComputeInvocationsPerWorkgroup: 32 }),
    /kernel k00_gather \(node 'embed'\): no variant fits this device's limits/);
});

test('kernels with the same variant files form one source group, in order of first appearance', () => {
  const m = fixture();
  const [a, b] = m.kernels;
  const kernels = [a, b, { ...a, name: 'k02_gather' }, { ...b, name: 'k03_matmul' }, { ...a, name: 'k04_gather' }];
  assert.deepEqual(sourceGroups(kernels), [[0, 2, 4], [1, 3]]);
});

test('a binding signature has one letter per binding: r for read-only, w for read-write', () => {
  assert.equal(signature(fixture().kernels[0]), 'rrw');
});

test('buffer sizes are whole words and never zero', () => {
  const m = fixture();
  m.inputs[0].bytes = 0;
  m.weights.tensors[0].bytes = 6;
  assert.deepEqual(bufferSizes(m), { weight: [8], input: [4], pool: [256, 256] });
});

test('the required limits cover the largest buffer and the most bindings of one kernel', () => {
  const m = fixture();
  m.pool = [256, 1 << 28];
  assert.deepEqual(requiredLimits(m), {
    maxStorageBufferBindingSize: 1 << 28, maxBufferSize: 1 << 28, maxStorageBuffersPerShaderStage: 3,
  });
});

test('each kernel starts on its cached winner when it fits, else on its first fitting variant', () => {
  const m = fixture();
  const big = { ...DEFAULTS, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupStorageSize: 65536 };
  assert.deepEqual(initialVariants(m.kernels, big), [0, 0]);
  assert.deepEqual(initialVariants(m.kernels, big, { k00_gather: 'wg512', k01_matmul: 'BM64' }), [1, 1]);
  assert.deepEqual(initialVariants(m.kernels, DEFAULTS, { k00_gather: 'wg512', k01_matmul: 'nope' }), [0, 0]);
});
