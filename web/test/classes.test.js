import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { actualShape, pickClass, reshapeInto, shapeClasses } from '../classes.js';

const fixture = () => JSON.parse(readFileSync(new URL('./manifest.fixture.json', import.meta.url), 'utf8'));

/** The fixture with seq bucketed: its top level is seq 8, and classes at seq 2 and 4 (input [1, seq]). */
function bucketed() {
  const m = fixture();
  const top = m.inputs[0].shape;
  const at = (/** @type {number} */ seq) => ({
    dims: [seq],
    inputs: m.inputs.map((/** @type {any} */ t) => ({ ...t, shape: [1, seq], bytes: 4 * seq })),
    outputs: m.outputs,
    pool: m.pool.map((/** @type {number} */ b) => b / 2),
    kernels: m.kernels.map((/** @type {any} */ k) => ({ ...k, flops: k.flops * seq })),
  });
  m.inputs = m.inputs.map((/** @type {any} */ t) => ({ ...t, shape: [1, 8], bytes: 32 }));
  m.dynamic = {
    dims: [{ name: 'seq', max: 8, buckets: [2, 4, 8] }],
    inputs: m.inputs.map(() => [null, 0]),
    outputs: m.outputs.map((/** @type {any} */ t) => t.shape.map(() => null)),
    pad: m.inputs.map(() => 0),
    classes: [at(2), at(4)],
  };
  return { m, top };
}

test('a bundle without shape classes has one class: the manifest itself', () => {
  const m = fixture();
  const classes = shapeClasses(m);
  assert.equal(classes.length, 1);
  assert.equal(classes[0].manifest, m);
  assert.deepEqual(pickClass(m, classes, [m.inputs[0].shape]).cls, classes[0]);
});

test('classes come smallest first, the top level last, each a view with its own inputs and kernels', () => {
  const { m } = bucketed();
  const classes = shapeClasses(m);
  assert.deepEqual(classes.map((c) => c.dims), [[2], [4], [8]]);
  assert.deepEqual(classes.map((c) => c.manifest.inputs[0].shape), [[1, 2], [1, 4], [1, 8]]);
  assert.equal(classes[2].manifest, m);
  assert.equal(classes[0].manifest.weights, m.weights); // weights are shared
});

test('each class view counts its own load-time kernels; the loaded buffers are listed once, for all', () => {
  const { m } = bucketed();
  m.loaded = [256, 256];
  m.load = 1;
  m.dynamic.classes[1].load = 2;
  const classes = shapeClasses(m);
  assert.deepEqual(classes.map((c) => c.manifest.load), [0, 2, 1]);
  assert.equal(classes[0].manifest.loaded, m.loaded);
});

test('the smallest class that holds the input runs it', () => {
  const { m } = bucketed();
  const classes = shapeClasses(m);
  for (const [seq, want] of [[1, 2], [2, 2], [3, 4], [4, 4], [5, 8], [8, 8]]) {
    const { cls, sizes } = pickClass(m, classes, [[1, seq]]);
    assert.deepEqual([cls.dims[0], sizes[0]], [want, seq], `seq ${seq}`);
  }
});

test('lengths over the maximum, zero, and fixed dims that differ are refused naming the input', () => {
  const { m } = bucketed();
  const classes = shapeClasses(m);
  const name = m.inputs[0].name;
  assert.throws(() => pickClass(m, classes, [[1, 9]]), new RegExp(`input '${name}' has shape \\[1,9\\]; this bundle takes \\[1,seq<=8\\]`));
  assert.throws(() => pickClass(m, classes, [[1, 0]]), RangeError);
  assert.throws(() => pickClass(m, classes, [[2, 4]]), RangeError);
  assert.throws(() => pickClass(m, classes, [[4]]), RangeError);
});

test('without shape classes another shape says how to build for other lengths', () => {
  const m = fixture();
  assert.throws(() => pickClass(m, shapeClasses(m), [[1, 999]]), /compiled for .*--buckets/);
});

test('padding and cropping move every row and fill the rest with the pad value', () => {
  // a 2x3 array padded to 3x5 and cropped back, checked against an index-by-index copy
  const src = Int32Array.from([1, 2, 3, 4, 5, 6]);
  const padded = reshapeInto(src, [2, 3], [3, 5], -1);
  const want = new Int32Array(15).fill(-1);
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) want[i * 5 + j] = src[i * 3 + j];
  assert.deepEqual(padded, want);
  assert.deepEqual(reshapeInto(padded, [3, 5], [2, 3]), src);
  const big = new Float32Array(2 * 4 * 3).map((_, i) => i);
  const cropped = reshapeInto(big, [2, 4, 3], [2, 2, 3]);
  const expect = [];
  for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) for (let c = 0; c < 3; c++) expect.push(big[(a * 4 + b) * 3 + c]);
  assert.deepEqual(Array.from(cropped), expect);
  assert.equal(reshapeInto(src, [2, 3], [2, 3]), src);
});

test('an output shape follows the feeds along its bucketed axes', () => {
  assert.deepEqual(actualShape({ name: 'o', dtype: 'float32', deviceDtype: 'float32', shape: [1, 16, 384] }, [null, 0, null], [12]), [1, 12, 384]);
  assert.deepEqual(actualShape({ name: 'o', dtype: 'float32', deviceDtype: 'float32', shape: [1, 16, 384] }, undefined, []), [1, 16, 384]);
});
