// Walking the plan a manifest holds: which variants fit a device, which kernels share source, what the device
// must allow. Pure functions of the manifest, with no WebGPU in them.

/** @typedef {import('./manifest.js').Manifest} Manifest */
/** @typedef {import('./manifest.js').Kernel} Kernel */
/** @typedef {import('./manifest.js').Variant} Variant */

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
 * Indices of a kernel's variants that fit, in the manifest's order (the first is the kernel's default).
 * @param {Kernel} kernel
 * @param {Record<string, number>} limits
 */
export function fittingVariants(kernel, limits) {
  /** @type {number[]} */
  const out = [];
  kernel.variants.forEach((v, i) => { if (fits(v, limits)) out.push(i); });
  if (out.length === 0) {
    throw new Error(`kernel ${kernel.name} (node '${kernel.node}'): no variant fits this device's limits`);
  }
  return out;
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
 * Byte size of every buffer the plan allocates: weights, inputs and the pool. WebGPU storage bindings need a
 * non-zero multiple of 4 bytes. With shape classes (`classes`, the class views of classes.js), the inputs and pool
 * buffers are shared by the classes, each as large as the largest class needs.
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
  };
}

/**
 * The limits a device must be created with to hold this plan (beyond WebGPU's defaults where needed).
 * @param {Manifest} m
 * @param {Manifest[]} [classes]
 */
export function requiredLimits(m, classes = [m]) {
  const sizes = bufferSizes(m, classes);
  const largest = Math.max(4, ...sizes.weight, ...sizes.input, ...sizes.pool);
  return {
    maxStorageBufferBindingSize: largest,
    maxBufferSize: largest,
    maxStorageBuffersPerShaderStage: Math.max(1, ...classes.flatMap((c) => c.kernels.map((k) => k.bindings.length))),
  };
}

/**
 * The starting variant of every kernel: a cached winner when there is one, else the first that fits.
 * @param {Kernel[]} kernels
 * @param {Record<string, number>} limits
 * @param {Record<string, string>} [winners]  kernel name -> variant key
 * @returns {number[]}  variant index per kernel
 */
export function initialVariants(kernels, limits, winners = {}) {
  return kernels.map((k) => {
    const fitting = fittingVariants(k, limits);
    const cached = fitting.find((i) => k.variants[i].key === winners[k.name]);
    return cached === undefined ? fitting[0] : cached;
  });
}
