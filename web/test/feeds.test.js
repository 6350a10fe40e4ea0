// feeds.js: the checks every provider runs on a run's feeds, and the outputs put back together, on the fixture.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { validateManifest } from '../manifest.js';
import { shapeClasses } from '../classes.js';
import { Tensor } from '../tensor.js';
import { assembleOutputs, checkFeeds } from '../feeds.js';

const manifest = () => validateManifest(JSON.parse(readFileSync(new URL('./manifest.fixture.json', import.meta.url), 'utf8')));

/** @param {any} m */
const feedsFor = (m) => Object.fromEntries(m.inputs.map((t) => {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const data = t.dtype === 'int64' ? new BigInt64Array(n).fill(1n) : t.dtype === 'float32' ? new Float32Array(n) : new Int32Array(n);
  return [t.name, new Tensor(t.dtype, data, t.shape)];
}));

test('valid feeds come back in device form, one per input, for the one class', () => {
  const m = manifest();
  const call = checkFeeds(m, shapeClasses(m), feedsFor(m));
  assert.equal(call.data.length, m.inputs.length);
  call.data.forEach((d, i) => assert.equal(d.length, m.inputs[i].shape.reduce((a, b) => a * b, 1)));
  if (m.inputs[0].dtype === 'int64') assert.ok(call.data[0] instanceof Int32Array);
});

test('unknown, missing, mistyped and misshapen feeds are refused, naming the input', () => {
  const m = manifest();
  const classes = shapeClasses(m);
  const name = m.inputs[0].name;
  assert.throws(() => checkFeeds(m, classes, { ...feedsFor(m), nope: feedsFor(m)[name] }), /unknown input 'nope'/);
  const missing = feedsFor(m);
  delete missing[name];
  assert.throws(() => checkFeeds(m, classes, missing), new RegExp(`missing input '${name}'`));
  assert.throws(() => checkFeeds(m, classes, { ...feedsFor(m), [name]: new Tensor('float32', new Float32Array(1), [1]) }),
    new RegExp(`input '${name}' has type float32`));
  assert.throws(() => checkFeeds(m, classes, { ...feedsFor(m), [name]: { type: m.inputs[0].dtype } }), /must be a Tensor/);
  assert.throws(() => checkFeeds(m, classes, null), /run\(\) takes an object/);
});

test('outputs come from what the kernels wrote, else the constants, else the inputs they pass on', () => {
  const m = manifest();
  const feeds = feedsFor(m);
  const call = checkFeeds(m, shapeClasses(m), feeds);
  const out = assembleOutputs(m, call, m.outputs.map(() => null), feeds, (i) => {
    const t = m.outputs[i];
    return t.from && t.from.pool !== undefined ? new Float32Array(t.shape.reduce((a, b) => a * b, 1)).fill(i + 0.5).buffer : null;
  });
  m.outputs.forEach((t, i) => {
    assert.deepEqual(Array.from(out[t.name].dims), t.shape);
    if (t.from && t.from.pool !== undefined && t.dtype === 'float32') assert.equal(out[t.name].data[0], i + 0.5);
  });
});
