// The WebGPU adapter and device: the adapter's own limits where the plan needs more than the defaults, the
// timestamp-query feature when there is one, and a record of a lost device.

/**
 * @typedef {import('../cache.js').AdapterInfo} AdapterInfo
 * @typedef {{adapter: GPUAdapter, device: GPUDevice, info: AdapterInfo, limits: GPUSupportedLimits,
 *            timestamps: boolean, lost: null | {reason: string, message: string}}} Gpu
 */

/**
 * Request an adapter and a device able to run a plan.
 * @param {Record<string, number>} needed  limits the plan needs (see plan.requiredLimits)
 * @param {{powerPreference?: GPUPowerPreference}} [options]
 * @returns {Promise<Gpu>}
 */
export async function requestGpu(needed, options = {}) {
  const gpu = globalThis.navigator && globalThis.navigator.gpu;
  if (!gpu) {
    throw new Error('WebGPU is not available here (navigator.gpu is undefined). It needs a secure context ' +
      '(https or http://127.0.0.1) and a browser with WebGPU enabled.');
  }
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference || 'high-performance' });
  if (!adapter) throw new Error('WebGPU is available but no adapter was found (requestAdapter returned null).');
  /** @type {Record<string, number>} */
  const requiredLimits = {};
  for (const [name, value] of Object.entries(needed)) {
    const most = /** @type {any} */ (adapter.limits)[name];
    if (value > most) {
      throw new Error(`this plan needs ${name} = ${value}, but the adapter allows at most ${most}`);
    }
  }
  // Ask for what the adapter allows of the limits that decide which variants fit: the bundle prunes with
  // WebGPU's defaults, a device may take bigger workgroups.
  for (const name of ['maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupStorageSize',
    'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', ...Object.keys(needed)]) {
    requiredLimits[name] = /** @type {any} */ (adapter.limits)[name];
  }
  const timestamps = adapter.features.has('timestamp-query');
  const device = await adapter.requestDevice({
    requiredFeatures: timestamps ? ['timestamp-query'] : [],
    requiredLimits,
  });
  const a = /** @type {Partial<GPUAdapterInfo>} */ (adapter.info || {});
  /** @type {Gpu} */
  const result = {
    adapter,
    device,
    info: { vendor: a.vendor || '', architecture: a.architecture || '', device: a.device || '', description: a.description || '' },
    limits: device.limits,
    timestamps,
    lost: null,
  };
  device.lost.then((info) => {
    result.lost = { reason: info.reason || 'unknown', message: info.message || '' };
  });
  return result;
}

/**
 * The adapter this browser would give, when it runs compute shaders on the CPU (SwiftShader, lavapipe, WARP, a
 * fallback adapter): its vendor and architecture as one line. '' for a GPU, or where there is no adapter at all
 * (requestGpu then says why). Requests no device.
 * @param {(info: any) => 'cpu' | 'gpu'} classify  plan.deviceClass
 * @param {{powerPreference?: GPUPowerPreference}} [options]
 * @returns {Promise<string>}
 */
export async function cpuAdapter(classify, options = {}) {
  const gpu = globalThis.navigator && globalThis.navigator.gpu;
  if (!gpu) return '';
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference || 'high-performance' });
    const info = adapter && /** @type {any} */ (adapter.info || {});
    if (!adapter || classify({ ...info, isFallbackAdapter: info.isFallbackAdapter || /** @type {any} */ (adapter).isFallbackAdapter }) !== 'cpu') return '';
    return [info.vendor, info.architecture, info.device].filter(Boolean).join(' ') || 'a fallback adapter';
  } catch {
    return '';
  }
}

/**
 * Throw a clear error if the device was lost (a GPU reset, a driver update, or `destroy()`).
 * @param {Gpu} gpu
 */
export function checkNotLost(gpu) {
  if (gpu.lost) {
    const why = gpu.lost.message ? `: ${gpu.lost.message}` : '';
    throw new Error(`the WebGPU device was lost (${gpu.lost.reason}${why}); create a new InferenceSession`);
  }
}
