// Which variant each WebAssembly kernel runs. A bundle's modules hold a few candidates per kernel (the manifest's
// `wasm.kernels`, web/MANIFEST.md), all in one function table; the 32-bit word at `wasm.select + 4 k` of the
// memory names the table entry kernel k runs. Pure functions of the manifest, so the tuner (../tuner.js) and the
// cache (../cache.js) can work with them as with WebGPU kernels.

/**
 * @typedef {{name: string, group: number, flops: number, variants: {relaxed: string[], fixed: string[]},
 *            unsignedDot?: number[]}} WasmKernel
 */

/**
 * The candidates of kernel k this engine computes exactly: all of them, but for the relaxed candidates listed in
 * `unsignedDot` where the engine's relaxed dot does not read unsigned bytes (layout.js `unsignedDotSupport`).
 * @param {WasmKernel} k
 * @param {'relaxed' | 'fixed'} simd
 * @param {boolean} unsignedDot
 * @returns {number[]}
 */
export function usable(k, simd, unsignedDot) {
  const needs = new Set(simd === 'relaxed' && !unsignedDot ? k.unsignedDot || [] : []);
  return k.variants[simd].map((_, i) => i).filter((i) => !needs.has(i));
}

/**
 * The kernels of one class in the shape ../tuner.js works on: `variants` are the candidates of the SIMD form in
 * use (`{key}` each), `bytes` 0.
 * @param {WasmKernel[]} kernels
 * @param {'relaxed' | 'fixed'} simd
 */
export function tunerKernels(kernels, simd) {
  return kernels.map((k) => ({ name: k.name, kind: 'wasm', node: '', bindings: [], flops: k.flops, bytes: 0,
    variants: k.variants[simd].map((key) => ({ key, file: '', dispatch: [1, 1, 1], threads: 1, smemBytes: 0, registers: 0 })) }));
}

/**
 * Kernels of the same group (equal work and candidates: identical layers), as lists of kernel indices in order of
 * first appearance; the first of each is tuned for all.
 * @param {WasmKernel[]} kernels
 * @returns {number[][]}
 */
export function groups(kernels) {
  /** @type {Map<number, number[]>} */
  const out = new Map();
  kernels.forEach((k, i) => {
    if (!out.has(k.group)) out.set(k.group, []);
    /** @type {number[]} */ (out.get(k.group)).push(i);
  });
  return [...out.values()];
}

/**
 * The function-table entry of every kernel's chosen candidate: kernel k's candidate v is entry base_k + v.
 * @param {WasmKernel[]} kernels
 * @param {'relaxed' | 'fixed'} simd
 * @param {number[]} chosen  candidate index per kernel
 * @returns {Uint32Array}
 */
export function tableEntries(kernels, simd, chosen) {
  const out = new Uint32Array(kernels.length);
  let base = 0;
  kernels.forEach((k, i) => {
    const n = k.variants[simd].length;
    if (!(chosen[i] >= 0 && chosen[i] < n)) throw new RangeError(`kernel ${k.name}: no candidate ${chosen[i]}`);
    out[i] = base + chosen[i];
    base += n;
  });
  return out;
}

/**
 * The candidate index of every kernel for cached winners (kernel name -> key), or null when the winners do not fit
 * these kernels (another bundle, a missing kernel, a key that is not a candidate this engine computes exactly).
 * @param {any} winners
 * @param {WasmKernel[]} kernels
 * @param {'relaxed' | 'fixed'} simd
 * @param {boolean} [unsignedDot]
 * @returns {number[] | null}
 */
export function chosenFrom(winners, kernels, simd, unsignedDot = false) {
  if (!winners || typeof winners !== 'object') return null;
  const out = [];
  for (const k of kernels) {
    const v = k.variants[simd].indexOf(winners[k.name]);
    if (typeof winners[k.name] !== 'string' || !usable(k, simd, unsignedDot).includes(v)) return null;
    out.push(v);
  }
  return out;
}

/**
 * What stands for the device in the cache key on the CPU: WebAssembly has no adapter to name, so the SIMD form,
 * whether its relaxed dot reads unsigned bytes, the thread count and the core count do.
 * @param {'relaxed' | 'fixed'} simd
 * @param {number} threads
 * @param {number} cores
 * @param {boolean} [unsignedDot]
 * @returns {import('../cache.js').AdapterInfo}
 */
export function wasmDevice(simd, threads, cores, unsignedDot = false) {
  return { vendor: 'wasm', architecture: `${simd}-simd${unsignedDot ? '+unsigned-dot' : ''}`,
    device: `${threads} threads of ${cores} cores`, description: '' };
}
