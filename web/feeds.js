// What the session (session.js) does around any provider's kernels, the same way: check a run's feeds against the
// bundle and give them in device form padded to the class that runs them; load the outputs that are compile-time
// constants; put a run's outputs together from what the kernels wrote, the constants and the inputs passed
// through, cropped to the feeds' sizes. Pure functions of the manifest: no WebGPU, no WebAssembly.

import { TYPED_ARRAYS, fromDevice, fromRaw, toDevice } from './tensor.js';
import { actualShape, cropped, pickClass, reshapeInto } from './classes.js';

/**
 * A checked run: the class that runs it, the feeds' dim sizes, the inputs in device form padded to the class.
 * @typedef {{cls: import('./classes.js').ShapeClass, sizes: number[], data: (Float32Array | Int32Array | Uint32Array)[]}} Call
 * @typedef {import('./tensor.js').Tensor} Tensor
 */

/**
 * Check the feeds (a clear error for a missing, unknown, mistyped or misshapen one), pick the shape class that
 * runs them, and give every input in device form, padded to that class.
 * @param {import('./manifest.js').Manifest} m
 * @param {import('./classes.js').ShapeClass[]} classes
 * @param {Record<string, Tensor>} feeds
 * @returns {Call}
 */
export function checkFeeds(m, classes, feeds) {
  if (!feeds || typeof feeds !== 'object') throw new TypeError('run() takes an object of tensors by input name');
  const names = m.inputs.map((t) => t.name);
  for (const name of Object.keys(feeds)) {
    if (!names.includes(name)) throw new Error(`unknown input '${name}'; this model's inputs are: ${names.join(', ')}`);
  }
  const tensors = m.inputs.map((info) => {
    const t = feeds[info.name];
    const wanted = `${info.dtype} [${info.shape}]`;
    if (t === undefined) throw new Error(`missing input '${info.name}' (${wanted})`);
    if (!t || typeof t !== 'object' || !('type' in t) || !('data' in t) || !('dims' in t)) {
      throw new TypeError(`input '${info.name}' must be a Tensor (${wanted})`);
    }
    if (t.type !== info.dtype) throw new TypeError(`input '${info.name}' has type ${t.type}; this model takes ${info.dtype}`);
    const Typed = TYPED_ARRAYS[info.dtype];
    if (!(t.data instanceof Typed)) throw new TypeError(`input '${info.name}': ${info.dtype} data must be a ${Typed.name}`);
    return t;
  });
  const shapes = tensors.map((t) => Array.from(t.dims));
  const { cls, sizes } = pickClass(m, classes, shapes);
  const dynamic = /** @type {any} */ (m).dynamic;
  const data = tensors.map((t, i) => {
    const info = m.inputs[i];
    const count = shapes[i].reduce((a, b) => a * b, 1);
    if (t.data.length !== count) throw new RangeError(`input '${info.name}' holds ${t.data.length} values; shape [${shapes[i]}] needs ${count}`);
    return reshapeInto(toDevice(info.name, t), shapes[i], cls.manifest.inputs[i].shape, dynamic ? dynamic.pad[i] : 0);
  });
  return { cls, sizes, data };
}

/**
 * Every class's constant outputs (compile-time values stored in the bundle), by class and output index.
 * @param {import('./manifest.js').Bundle} bundle
 * @param {import('./classes.js').ShapeClass[]} classes
 * @returns {Promise<(Tensor | null)[][]>}
 */
export function loadConsts(bundle, classes) {
  return Promise.all(classes.map((c) => Promise.all(c.manifest.outputs.map(async (t) => (
    t.from && t.from.const !== undefined ? fromRaw(t.dtype, await bundle.bytes(t.from.const), t.shape) : null)))));
}

/**
 * A run's outputs by name, cropped to the feeds' sizes: what the kernels wrote (`written(i)`: the bytes of output
 * i in device form, or null for one no kernel computes), else the class's constant, else the input it passes on.
 * @param {import('./manifest.js').Manifest} m  the whole bundle's manifest (its `dynamic` axes)
 * @param {Call} call
 * @param {(Tensor | null)[]} consts  the class's constant outputs
 * @param {Record<string, Tensor>} feeds
 * @param {(i: number) => ArrayBuffer | null} written
 * @returns {Record<string, Tensor>}
 */
export function assembleOutputs(m, call, consts, feeds, written) {
  const c = call.cls.manifest;
  const axes = /** @type {any} */ (m).dynamic?.outputs;
  /** @type {Record<string, Tensor>} */
  const out = {};
  c.outputs.forEach((t, i) => {
    const shape = actualShape(t, axes && axes[i], call.sizes);
    const bytes = written(i);
    if (bytes) out[t.name] = cropped(fromDevice(t.dtype, t.deviceDtype, bytes, t.shape), shape);
    else if (consts[i]) out[t.name] = cropped(/** @type {Tensor} */ (consts[i]), shape);
    else out[t.name] = feeds[c.inputs[/** @type {number} */ (t.from && t.from.input)].name];
  });
  return out;
}
