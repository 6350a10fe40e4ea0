// The manifest's `wasm` section (web/MANIFEST.md): check it, pick a module, and place the weights into the
// linear memory from the bundle's weight shards.

import { ManifestError } from '../manifest.js';
import { partsInShard } from '../weights.js';

export const PAGE = 65536;

// (module (func (param v128) (result v128) (f32x4.relaxed_madd (local.get 0) (local.get 0) (local.get 0))))
const RELAXED_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 123, 1, 123, 3, 2, 1, 0, 10, 13,
  1, 11, 0, 32, 0, 32, 0, 32, 0, 253, 133, 2, 11]);
// the same with f32x4.add: plain SIMD
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 123, 1, 123, 3, 2, 1, 0, 10, 11, 1,
  9, 0, 32, 0, 32, 0, 253, 228, 1, 11]);

// (module (func (export "probe") (result i32) (i32x4.extract_lane 0 (i32x4.relaxed_dot_i8x16_i7x16_add_s
//   (v128.const i8x16 -128 x 16) (v128.const i8x16 255 x 16) (v128.const i32x4 0 0 0 0)))))
// -130560 where the second operand is read as unsigned bytes without saturating (V8 with AVX-VNNI); webjit's
// `dot2` matmul candidates are exact only there (webjit/native/wasm_runner.py has the same probe).
const UNSIGNED_DOT_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 127, 3, 2, 1, 0, 7, 9, 1, 5,
  112, 114, 111, 98, 101, 0, 0, 10, 64, 1, 62, 0, 253, 12, ...new Array(16).fill(128), 253, 12, ...new Array(16).fill(255),
  253, 12, ...new Array(16).fill(0), 253, 147, 2, 253, 27, 0, 11]);

/** @returns {boolean} whether this engine's relaxed dot product reads its second operand as unsigned bytes, exactly */
export function unsignedDotSupport() {
  try {
    const probe = new WebAssembly.Instance(new WebAssembly.Module(UNSIGNED_DOT_PROBE));
    return /** @type {() => number} */ (probe.exports.probe)() === -130560;
  } catch {
    return false;
  }
}

/** @returns {'relaxed' | 'fixed' | null} the SIMD form this browser runs: relaxed SIMD, fixed SIMD, or none */
export function simdSupport() {
  if (typeof WebAssembly !== 'object') return null;
  if (WebAssembly.validate(RELAXED_PROBE)) return 'relaxed';
  return WebAssembly.validate(SIMD_PROBE) ? 'fixed' : null;
}

/**
 * @typedef {{simd: 'relaxed' | 'fixed', shared: boolean, file: string}} WasmModule
 * @typedef {{pages: number, maxThreads: number, registers: number, modules: WasmModule[],
 *            select: number, kernels: import('./choices.js').WasmKernel[],
 *            weights: {tensor: number, offset: number}[], inputs: number[], outputs: (number | null)[]}} WasmSection
 */

/**
 * Check the `wasm` section against the rest of the manifest: every region lies inside the memory.
 * @param {import('../manifest.js').Manifest & {wasm?: any}} m
 * @returns {WasmSection}
 */
export function validateWasm(m) {
  const w = m.wasm;
  const fail = (/** @type {string} */ where, /** @type {string} */ what) => {
    throw new ManifestError(`manifest.json: wasm.${where}: ${what}`);
  };
  const int = (/** @type {any} */ v, /** @type {string} */ where, min = 0) => {
    if (!Number.isSafeInteger(v) || v < min) fail(where, `expected an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  if (!w || typeof w !== 'object') throw new ManifestError('this bundle has no WebAssembly modules (build it with --backends wasm)');
  const size = int(w.pages, 'pages', 1) * PAGE;
  int(w.maxThreads, 'maxThreads', 1);
  const inside = (/** @type {number} */ offset, /** @type {number} */ bytes, /** @type {string} */ where) => {
    if (int(offset, where, 64) % 4 || offset + bytes > size) fail(where, `${bytes} bytes at ${offset} do not fit the memory`);
  };
  if (!Array.isArray(w.modules) || !w.modules.length) fail('modules', 'expected a list of modules');
  w.modules.forEach((/** @type {any} */ mod, /** @type {number} */ i) => {
    if (!['relaxed', 'fixed'].includes(mod.simd) || typeof mod.shared !== 'boolean') fail(`modules[${i}]`, 'expected simd and shared');
    if (!Object.hasOwn(m.files, mod.file) || !mod.file.startsWith('wasm/')) fail(`modules[${i}].file`, `'${mod.file}' is not a wasm file of this bundle`);
  });
  if (!Array.isArray(w.kernels) || !w.kernels.length) fail('kernels', 'expected a list of kernels');
  w.kernels.forEach((/** @type {any} */ k, /** @type {number} */ i) => {
    const v = k && k.variants;
    if (typeof k.name !== 'string' || !Number.isSafeInteger(k.group) || !v || !Array.isArray(v.relaxed) || !Array.isArray(v.fixed)
        || !v.relaxed.length || v.relaxed.length !== v.fixed.length || ![...v.relaxed, ...v.fixed].every((x) => typeof x === 'string')) {
      fail(`kernels[${i}]`, 'expected {name, group, flops, variants: {relaxed, fixed}} with as many candidates in each form');
    }
    const u = k.unsignedDot;
    if (u !== undefined && (!Array.isArray(u) || !u.every((x) => Number.isSafeInteger(x) && x >= 1 && x < v.relaxed.length))) {
      fail(`kernels[${i}].unsignedDot`, `expected indices of relaxed candidates after the first, got ${JSON.stringify(u)}`);
    }
  });
  const load = /** @type {any} */ (m).load || 0; // the first `load` kernels run at load (the module's `load` export)
  if (load > w.kernels.length) fail('kernels', `${w.kernels.length} kernels, but the plan runs ${load} at load`);
  inside(w.select, 4 * w.kernels.length, 'select');
  if (!Array.isArray(w.weights) || !Array.isArray(w.inputs) || !Array.isArray(w.outputs)) fail('weights', 'expected weights, inputs, outputs lists');
  w.weights.forEach((/** @type {any} */ e, /** @type {number} */ i) => {
    const t = m.weights.tensors[int(e.tensor, `weights[${i}].tensor`)];
    if (!t) fail(`weights[${i}].tensor`, `no weight ${e.tensor}`);
    inside(e.offset, t.bytes, `weights[${i}].offset`);
  });
  if (w.inputs.length !== m.inputs.length) fail('inputs', `expected ${m.inputs.length} offsets`);
  w.inputs.forEach((/** @type {number} */ o, /** @type {number} */ i) => inside(o, /** @type {number} */ (m.inputs[i].bytes), `inputs[${i}]`));
  if (w.outputs.length !== m.outputs.length) fail('outputs', `expected ${m.outputs.length} offsets`);
  w.outputs.forEach((/** @type {number | null} */ o, /** @type {number} */ i) => {
    const from = m.outputs[i].from || {};
    if (from.pool === undefined) {
      if (o !== null) fail(`outputs[${i}]`, 'expected null for an output that is not computed');
    } else {
      inside(/** @type {number} */ (o), /** @type {number} */ (from.bytes), `outputs[${i}]`);
    }
  });
  return /** @type {WasmSection} */ (w);
}

/**
 * Fetch the weight shards (each checked against its SHA-256) and copy every weight the modules read to its offset,
 * widening float16-stored weights to float32.
 * @param {import('../manifest.js').Bundle} bundle
 * @param {WebAssembly.Memory} memory
 * @param {(e: {phase: string, done?: number, total?: number}) => void} progress
 */
export async function writeWeights(bundle, memory, progress) {
  const m = bundle.manifest;
  const w = /** @type {WasmSection} */ (/** @type {any} */ (m).wasm);
  const { shards, tensors } = m.weights;
  const total = shards.reduce((s, sh) => s + m.files[sh.file].bytes, 0);
  let loaded = 0;
  let next = 0;
  const fetcher = async () => {
    while (next < shards.length) {
      const index = next++;
      const bytes = await bundle.bytes(shards[index].file);
      for (const { tensor, offset } of w.weights) {
        for (const part of partsInShard(tensors[tensor], index, bytes)) { // float16-stored: widened into the memory
          part.copyTo(new Uint8Array(memory.buffer, offset + part.at, part.deviceBytes));
        }
      }
      loaded += bytes.byteLength;
      progress({ phase: 'weights', done: loaded, total });
    }
  };
  await Promise.all([fetcher(), fetcher()]);
}
