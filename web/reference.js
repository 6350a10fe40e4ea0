// The sample inputs a bundle was built with and onnxruntime's outputs for them (the manifest's `reference`
// section), as tensors: for demos and for checking a device against onnxruntime.

import { Bundle } from './manifest.js';
import { fromRaw } from './tensor.js';

/**
 * @param {string | URL | Bundle} bundle  a bundle URL, or a loaded Bundle (`session.bundle`)
 * @returns {Promise<{source: string, inputs: Record<string, import('./tensor.js').Tensor>,
 *                    outputs: Record<string, import('./tensor.js').Tensor>}>}
 */
export async function loadReference(bundle) {
  const b = bundle instanceof Bundle ? bundle : await Bundle.load(bundle);
  const ref = b.manifest.reference;
  if (!ref) throw new Error('this bundle has no reference data (it was built without sample inputs or onnxruntime)');
  const read = async (/** @type {{name: string, dtype: import('./manifest.js').TensorType, shape: number[], file: string}[]} */ list) =>
    Object.fromEntries(await Promise.all(list.map(async (t) => [t.name, fromRaw(t.dtype, await b.bytes(t.file), t.shape)])));
  return { source: ref.source, inputs: await read(ref.inputs), outputs: await read(ref.outputs) };
}
