import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { bufferSizes, fits, fittingVariants, initialVariants, requiredLimits, signature, sourceGroups } from '../webgpu/plan.js';

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
  assert.deepEqual(bufferSizes(m), { weight: [8], input: [4], pool: [256, 256], loaded: [] });
  m.loaded = [0, 10];
  assert.deepEqual(bufferSizes(m).loaded, [4, 12]);
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

test('CPU adapters are told apart from GPUs by their adapter info', async () => {
  const { deviceClass } = await import('../webgpu/plan.js');
  assert.equal(deviceClass({ vendor: 'google', architecture: 'swiftshader', device: '', description: '' }), 'cpu');
  assert.equal(deviceClass({ vendor: 'mesa', architecture: '', device: '', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }), 'cpu');
  assert.equal(deviceClass({ vendor: 'nvidia', architecture: 'hopper', device: '', description: '', isFallbackAdapter: true }), 'cpu');
  assert.equal(deviceClass({ vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H100' }), 'gpu');
});

test('variant keys give their tunables', async () => {
  const { tunables } = await import('../webgpu/plan.js');
  assert.deepEqual(tunables('BM64_BN128_S0_TK4_TM4_TN8_V1'), { BM: 64, BN: 128, S: 0, TK: 4, TM: 4, TN: 8, V: 1 });
  assert.deepEqual(tunables('per4_wg128'), { per: 4, wg: 128 });
});

test('on a CPU adapter, matmul variants without workgroup memory and with vector loads come first', async () => {
  const { cpuOrder, fittingVariants } = await import('../webgpu/plan.js');
  const keys = ['BM128_BN128_S1_TK8_TM8_TN8', 'BM32_BN32_S0_TK1_TM2_TN2', 'BM64_BN64_S0_TK4_TM4_TN4_V1', 'BM32_BN32_S0_TK4_TM2_TN4_V1'];
  const kernel = { name: 'k', kind: 'matmul', node: 'n', bindings: [], flops: 1, bytes: 1,
    variants: keys.map((key) => ({ key, file: 'f', dispatch: [1, 1, 1], threads: 256, smemBytes: key.includes('_S1_') ? 8192 : 0, registers: 0 })) };
  const order = cpuOrder(kernel, [0, 1, 2, 3]).map((i) => kernel.variants[i]);
  const rank = (/** @type {any} */ v) => [v.smemBytes > 0 ? 1 : 0, v.key.endsWith('_V1') ? 0 : 1];
  for (let i = 1; i < order.length; i++) assert.ok(String(rank(order[i - 1])) <= String(rank(order[i])), `${order[i - 1].key} before ${order[i].key}`);
  assert.equal(order[order.length - 1].smemBytes > 0, true);
  const limits = { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupStorageSize: 16384, maxComputeWorkgroupsPerDimension: 65535 };
  assert.deepEqual(fittingVariants(kernel, limits), [0, 1, 2, 3]); // a GPU keeps the compiler's order
  assert.deepEqual(new Set(fittingVariants(kernel, limits, 'cpu')), new Set([0, 1, 2, 3]));
});

test('on a CPU adapter, row kernels try small workgroups first and elementwise ones more outputs per thread', async () => {
  const { cpuOrder } = await import('../webgpu/plan.js');
  const make = (/** @type {string} */ kind, /** @type {[string, number][]} */ vs) => ({ name: 'k', kind, node: 'n', bindings: [], flops: 1, bytes: 1,
    variants: vs.map(([key, threads]) => ({ key, file: 'f', dispatch: [1, 1, 1], threads, smemBytes: 0, registers: 0 })) });
  const norm = make('norm', [['wg64', 64], ['wg32', 32], ['wg128', 128]]);
  assert.deepEqual(cpuOrder(norm, [0, 1, 2]).map((i) => norm.variants[i].threads), [32, 64, 128]);
  const gather = make('gather', [['per1_wg64', 64], ['per4_wg256', 256], ['per4_wg64', 64]]);
  assert.deepEqual(cpuOrder(gather, [0, 1, 2]).map((i) => gather.variants[i].key), ['per4_wg64', 'per4_wg256', 'per1_wg64']);
});
