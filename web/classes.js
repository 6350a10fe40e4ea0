// Shape classes (the manifest's `dynamic` section, web/MANIFEST.md): a bundle built with length buckets holds the
// plan at a few sizes of its symbolic dims (say seq = 16, 32, 64, 128). A run takes the smallest class the inputs
// fit, pads every input along its bucketed axes with the input's pad value, and crops the outputs back. Pure
// functions of the manifest and the feeds, with no WebGPU in them.

import { Tensor } from './tensor.js';

/** @typedef {import('./manifest.js').Manifest} Manifest */
/** @typedef {import('./manifest.js').TensorInfo} TensorInfo */

/**
 * @typedef {{dims: {name: string, max: number, buckets: number[]}[], inputs: (number | null)[][],
 *            outputs: (number | null)[][], pad: number[], classes: any[]}} Dynamic
 * @typedef {{index: number, dims: number[], manifest: Manifest, flops: number}} ShapeClass
 */

/**
 * The manifest's shape classes, smallest first; the last is the manifest's top level (every dim at its maximum).
 * Each class's `manifest` is a view of the whole manifest with that class's inputs, outputs, pool, kernels (with its
 * count of load-time kernels, `load`) and WebAssembly offsets in place of the top level's. A bundle without `dynamic` has one class.
 * @param {Manifest} m
 * @returns {ShapeClass[]}
 */
export function shapeClasses(m) {
  const d = /** @type {Dynamic | undefined} */ (/** @type {any} */ (m).dynamic);
  const flops = (/** @type {Manifest} */ v) => v.kernels.reduce((s, k) => s + k.flops, 0);
  if (!d) return [{ index: 0, dims: [], manifest: m, flops: flops(m) }];
  const top = /** @type {any} */ (m).wasm;
  const views = d.classes.map((c) => /** @type {Manifest} */ (/** @type {any} */ ({
    ...m,
    inputs: c.inputs,
    outputs: c.outputs,
    pool: c.pool,
    load: c.load || 0,
    kernels: c.kernels,
    ...(top ? { wasm: { ...top, ...c.wasm } } : {}),
  })));
  const all = [...views, m];
  const dims = [...d.classes.map((c) => c.dims), d.dims.map((x) => x.max)];
  return all.map((v, index) => ({ index, dims: dims[index], manifest: v, flops: flops(v) }));
}

/**
 * Check the feeds' shapes against the bundle and pick the class to run: the smallest whose dims hold the feeds'.
 * Bucketed axes may take any size from 1 to the dim's maximum (all inputs agreeing); other axes must match.
 * @param {Manifest} m
 * @param {ShapeClass[]} classes
 * @param {number[][]} shapes  the feeds' dims, in the manifest's input order
 * @returns {{cls: ShapeClass, sizes: number[]}}  the class and the feeds' size of every dim
 */
export function pickClass(m, classes, shapes) {
  const d = /** @type {Dynamic | undefined} */ (/** @type {any} */ (m).dynamic);
  const inputs = m.inputs;
  const sizes = d ? d.dims.map(() => 0) : [];
  const what = d ? 'this bundle takes' : 'this bundle was compiled for';
  const wanted = (/** @type {number} */ i) => `[${inputs[i].shape.map((n, a) => {
    const dim = d ? d.inputs[i][a] : null;
    return dim === null || dim === undefined || !d ? n : `${d.dims[dim].name}<=${d.dims[dim].max}`;
  }).join(',')}]`;
  shapes.forEach((dims, i) => {
    const info = inputs[i];
    const bad = () => new RangeError(`input '${info.name}' has shape [${dims}]; ${what} ${wanted(i)}` +
      (d ? ' (compileInBrowser compiles the model for larger shapes in this page)'
        : ' (build another bundle for other shapes, one with --buckets for other lengths, or compile one in this page'
          + ' with compileInBrowser)'));
    if (dims.length !== info.shape.length) throw bad();
    dims.forEach((n, a) => {
      const dim = d ? d.inputs[i][a] : null;
      if (dim === null || dim === undefined || !d) {
        if (n !== info.shape[a]) throw bad();
        return;
      }
      if (!Number.isInteger(n) || n < 1 || n > d.dims[dim].max) throw bad();
      if (sizes[dim] && sizes[dim] !== n) {
        throw new RangeError(`input '${info.name}': dim ${d.dims[dim].name} is ${n} here but ${sizes[dim]} in another input`);
      }
      sizes[dim] = n;
    });
  });
  if (!d) return { cls: classes[classes.length - 1], sizes };
  const cls = classes.find((c) => c.dims.every((n, j) => n >= (sizes[j] || 1)));
  return { cls: /** @type {ShapeClass} */ (cls), sizes };
}

/**
 * The shape of input or output `i` for the feeds' dim sizes (its bucketed axes at the feeds' size).
 * @param {TensorInfo} info  the tensor in the class that runs
 * @param {(number | null)[] | undefined} axes  per axis, the dim it follows
 * @param {number[]} sizes
 */
export function actualShape(info, axes, sizes) {
  return info.shape.map((n, a) => {
    const dim = axes ? axes[a] : null;
    return dim === null || dim === undefined ? n : sizes[dim];
  });
}

/**
 * Copy an N-d array of shape `from` into a new one of shape `to` (each dim of `to` at least `from`'s), filling the
 * rest with `pad`; or, with `to` smaller, crop it. Works on any typed array, row by row.
 * @template {Float32Array | Int32Array | Uint32Array | BigInt64Array | Uint8Array} T
 * @param {T} src
 * @param {number[]} from
 * @param {number[]} to
 * @param {number | bigint} [pad]
 * @returns {T}
 */
export function reshapeInto(src, from, to, pad = 0) {
  if (from.length === to.length && from.every((n, a) => n === to[a])) return src;
  const Ctor = /** @type {any} */ (src.constructor);
  const out = new Ctor(to.reduce((a, b) => a * b, 1));
  if (pad) out.fill(pad);
  const rank = from.length;
  if (rank === 0) { out.set(src); return out; }
  const row = Math.min(from[rank - 1], to[rank - 1]);
  const lead = from.slice(0, -1).map((n, a) => Math.min(n, to[a]));
  const rows = lead.reduce((a, b) => a * b, 1);
  const index = lead.map(() => 0);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    let t = 0;
    for (let a = 0; a < rank - 1; a++) {
      s = s * from[a] + index[a];
      t = t * to[a] + index[a];
    }
    out.set(src.subarray(s * from[rank - 1], s * from[rank - 1] + row), t * to[rank - 1]);
    for (let a = rank - 2; a >= 0; a--) {
      if (++index[a] < lead[a]) break;
      index[a] = 0;
    }
  }
  return out;
}

/**
 * A tensor cropped to `dims` (the feeds' own sizes of a padded class's output); itself when nothing is cropped.
 * @param {Tensor} t
 * @param {number[]} dims
 */
export function cropped(t, dims) {
  if (dims.every((n, a) => n === t.dims[a])) return t;
  return new Tensor(t.type, reshapeInto(/** @type {any} */ (t.data), Array.from(t.dims), dims), dims);
}

/**
 * How many of a plan's kernels, the first ones, run once at load rather than on every run (web/MANIFEST.md `load`).
 * @param {Manifest} m  the manifest or a class view of it
 */
export function loadCount(m) {
  return m.load || 0;
}
