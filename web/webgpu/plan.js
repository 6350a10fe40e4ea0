// Walking the WGSL plan a manifest holds (the WebGPU provider's): which variants fit a device, which kernels share
// source, what the device must allow, which cached winners still fit. Pure functions of the manifest, with no WebGPU
// calls in them.

import { cachedTables } from '../cache.js';

/** @typedef {import('../manifest.js').Manifest} Manifest */
/** @typedef {import('../manifest.js').Kernel} Kernel */
/** @typedef {import('../manifest.js').Variant} Variant */

/**
 * Whether a variant fits a device's limits (the bundle was pruned with WebGPU's defaults; a device may allow less
 * or more).
 * @param {Variant} v
 * @param {Record<string, number>} limits  GPUSupportedLimits or a plain object with the same names
 */
export function fits(v, limits) {
  return v.threads <= limits.maxComputeInvocationsPerWorkgroup
    && v.smemBytes <= limits.maxComputeWorkgroupStorageSize
    && Math.max(...v.dispatch) <= limits.maxComputeWorkgroupsPerDimension;
}

/**
 * Indices of a kernel's variants that fit, in the order to try them: the manifest's order (the compiler's
 * preference, for GPUs) or, on a CPU adapter, cpuOrder's. The first is the kernel's starting variant.
 * @param {Kernel} kernel
 * @param {Record<string, number>} limits
 * @param {DeviceClass} [cls]
 */
export function fittingVariants(kernel, limits, cls = 'gpu') {
  /** @type {number[]} */
  const out = [];
  kernel.variants.forEach((v, i) => { if (fits(v, limits)) out.push(i); });
  if (out.length === 0) {
    throw new Error(`kernel ${kernel.name} (node '${kernel.node}'): no variant fits this device's limits`);
  }
  return cls === 'cpu' ? cpuOrder(kernel, out) : out;
}

/**
 * @typedef {'gpu' | 'cpu'} DeviceClass
 */

/**
 * 'cpu' for adapters that run compute shaders on the CPU (SwiftShader, llvmpipe/lavapipe, WARP, or any fallback
 * adapter), else 'gpu'.
 * @param {{vendor?: string, architecture?: string, device?: string, description?: string, isFallbackAdapter?: boolean}} info
 * @returns {DeviceClass}
 */
export function deviceClass(info) {
  const text = [info.vendor, info.architecture, info.device, info.description].join(' ');
  return info.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|softpipe|\bwarp\b|software/i.test(text) ? 'cpu' : 'gpu';
}

/**
 * A variant's tunables from its key: 'BM64_BN64_S0_TK4_TM4_TN4_V1' -> {BM: 64, ..., V: 1}, 'per4_wg128' ->
 * {per: 4, wg: 128}.
 * @param {string} key
 * @returns {Record<string, number>}
 */
export function tunables(key) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const part of key.split('_')) {
    const m = /^([A-Za-z]+)(\d+)$/.exec(part);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

// What runs well where compute shaders are emulated on CPU cores, as lexicographic sort keys (smaller first):
// workgroup memory and its barriers are expensive there, while 4x4 outputs per invocation with vector loads keep
// the emulated lanes busy (measured on SwiftShader with every variant of all-MiniLM-L6-v2's kernels timed).
/** @type {Record<string, (t: Record<string, number>, v: import('../manifest.js').Variant) => number[]>} */
const CPU_KEYS = {
  matmul: (t, v) => [v.smemBytes > 0 ? 1 : 0, t.V ? 0 : 1, Math.abs((t.TM || 1) * (t.TN || 1) - 16),
    Math.abs((t.BM || 64) - 64) + Math.abs((t.BN || 64) - 64)],
  attention: (t) => [-(t.BQ || 0), t.BK || 0],
  norm: (_, v) => [v.threads],
  softmax: (_, v) => [v.threads],
  reduce: (_, v) => [v.threads],
};
const CPU_DEFAULT_KEY = (/** @type {Record<string, number>} */ t, /** @type {import('../manifest.js').Variant} */ v) => [-(t.per || 1), v.threads];

/**
 * Variant indices in the order to try them on a CPU adapter (a stable sort by CPU_KEYS).
 * @param {Kernel} kernel
 * @param {number[]} indices
 */
export function cpuOrder(kernel, indices) {
  const keyOf = CPU_KEYS[kernel.kind] || CPU_DEFAULT_KEY;
  const keys = new Map(indices.map((i) => [i, keyOf(tunables(kernel.variants[i].key), kernel.variants[i])]));
  const cmp = (/** @type {number[]} */ a, /** @type {number[]} */ b) => {
    for (let j = 0; j < Math.max(a.length, b.length); j++) if ((a[j] ?? 0) !== (b[j] ?? 0)) return (a[j] ?? 0) - (b[j] ?? 0);
    return 0;
  };
  return [...indices].sort((a, b) => cmp(/** @type {number[]} */ (keys.get(a)), /** @type {number[]} */ (keys.get(b))) || a - b);
}

/**
 * Kernels with equal source (the same variant files in the same order), as lists of kernel indices in order of
 * first appearance. Identical layers of a model form one group and are tuned once.
 * @param {Kernel[]} kernels
 * @returns {number[][]}
 */
export function sourceGroups(kernels) {
  /** @type {Map<string, number[]>} */
  const groups = new Map();
  kernels.forEach((k, i) => {
    const key = k.variants.map((v) => v.file).join('|');
    if (!groups.has(key)) groups.set(key, []);
    /** @type {number[]} */ (groups.get(key)).push(i);
  });
  return [...groups.values()];
}

/**
 * The binding signature of a kernel, e.g. 'rrw': one letter per binding, read-only or read-write. Kernels with
 * equal signatures share one bind group layout.
 * @param {Kernel} kernel
 */
export function signature(kernel) {
  return kernel.bindings.map((b) => (b.access === 'read-only' ? 'r' : 'w')).join('');
}

/**
 * Byte size of every buffer the plan allocates: weights, inputs, the pool and what the load-time kernels write.
 * WebGPU storage bindings need a non-zero multiple of 4 bytes. With shape classes (`classes`, the class views of
 * classes.js), the inputs and pool buffers are shared by the classes, each as large as the largest class needs;
 * the loaded buffers are every class's own.
 * @param {Manifest} m
 * @param {Manifest[]} [classes]
 */
export function bufferSizes(m, classes = [m]) {
  const round = (/** @type {number} */ n) => Math.max(4, Math.ceil(n / 4) * 4);
  const largest = (/** @type {(c: Manifest) => number[]} */ of) => {
    /** @type {number[]} */
    const out = [];
    for (const c of classes) of(c).forEach((n, i) => { out[i] = Math.max(out[i] || 0, round(n)); });
    return out;
  };
  return {
    weight: m.weights.tensors.map((w) => round(w.bytes)),
    input: largest((c) => c.inputs.map((t) => /** @type {number} */ (t.bytes))),
    pool: largest((c) => c.pool),
    loaded: (m.loaded || []).map(round),
  };
}

/**
 * The limits a device must be created with to hold this plan (beyond WebGPU's defaults where needed).
 * @param {Manifest} m
 * @param {Manifest[]} [classes]
 */
export function requiredLimits(m, classes = [m]) {
  const sizes = bufferSizes(m, classes);
  const largest = Math.max(4, ...sizes.weight, ...sizes.input, ...sizes.pool, ...sizes.loaded);
  return {
    maxStorageBufferBindingSize: largest,
    maxBufferSize: largest,
    maxStorageBuffersPerShaderStage: Math.max(1, ...classes.flatMap((c) => c.kernels.map((k) => k.bindings.length))),
  };
}

/**
 * The starting variant of every kernel: a cached winner when there is one, else the first to try on this class of
 * device.
 * @param {Kernel[]} kernels
 * @param {Record<string, number>} limits
 * @param {Record<string, string>} [winners]  kernel name -> variant key
 * @param {DeviceClass} [cls]
 * @returns {number[]}  variant index per kernel
 */
export function initialVariants(kernels, limits, winners = {}, cls = 'gpu') {
  return kernels.map((k) => {
    const fitting = fittingVariants(k, limits, cls);
    const cached = fitting.find((i) => k.variants[i].key === winners[k.name]);
    return cached === undefined ? fitting[0] : cached;
  });
}

/**
 * The variant index of every kernel for a cached winner table (kernel name -> variant key), or null when a kernel
 * has no winner there or its winner is not a variant that fits this device.
 * @param {Record<string, string>} table
 * @param {Kernel[]} kernels
 * @param {Record<string, number>} limits
 * @returns {number[] | null}
 */
export function winnerIndices(table, kernels, limits) {
  const out = [];
  for (const k of kernels) {
    const key = table[k.name];
    const v = typeof key === 'string' ? k.variants.findIndex((x) => x.key === key) : -1;
    if (v < 0 || !fittingVariants(k, limits).includes(v)) return null;
    out.push(v);
  }
  return out;
}

/**
 * The winners of a cache entry if it is valid for this bundle and device, else null: one table per shape class
 * (cache.js `cachedTables`), every kernel of each has a winner, and every winner is a variant of its kernel that
 * fits the device.
 * @param {any} entry
 * @param {Manifest[]} classes  the class views, smallest first (shapeClasses(m).map((c) => c.manifest))
 * @param {string} bundleHash
 * @param {Record<string, number>} limits
 * @returns {Record<string, string>[] | null}
 */
export function validWinners(entry, classes, bundleHash, limits) {
  const tables = cachedTables(entry, bundleHash, classes.length);
  return tables && classes.every((c, i) => winnerIndices(tables[i], c.kernels, limits)) ? tables : null;
}
