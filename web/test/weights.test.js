import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { halfToFloat, partsInShard } from '../weights.js';
import { ManifestError, validateManifest } from '../manifest.js';

/**
 * float16 bits -> number, from the definition, in float64 arithmetic: a decoder written independently of
 * halfToFloat's bit manipulation.
 * @param {number} h
 */
function referenceHalf(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * 2 ** -14 * (m / 1024);
  return sign * 2 ** (e - 15) * (1 + m / 1024);
}

const allHalves = () => Uint16Array.from({ length: 65536 }, (_, i) => i);

test('every one of the 65536 float16 bit patterns widens to the float32 the definition gives', () => {
  const bits = halfToFloat(allHalves(), new Uint32Array(65536));
  const got = new Float32Array(bits.buffer);
  for (let h = 0; h < 65536; h++) {
    const want = referenceHalf(h);
    if (Number.isNaN(want)) {
      assert.ok(Number.isNaN(got[h]), `0x${h.toString(16)}: expected NaN, got ${got[h]}`);
      assert.equal(bits[h] >>> 31, h >>> 15, `0x${h.toString(16)}: NaN keeps its sign`);
      assert.equal((bits[h] >>> 13) & 0x3ff, h & 0x3ff, `0x${h.toString(16)}: NaN keeps its payload`);
    } else {
      assert.ok(Object.is(got[h], want), `0x${h.toString(16)}: expected ${want}, got ${got[h]}`);
    }
  }
});

test('widening float16 to float32 and rounding back with Math.fround is the identity on non-NaN values', () => {
  const got = new Float32Array(halfToFloat(allHalves(), new Uint32Array(65536)).buffer);
  for (let h = 0; h < 65536; h++) if (!Number.isNaN(got[h])) assert.equal(Math.fround(got[h]), got[h]);
});

/**
 * A shard holding float16 bit patterns at byte `offset`.
 * @param {number[]} halves
 * @param {number} offset
 */
function halfShard(halves, offset) {
  const buf = new ArrayBuffer(offset + 2 * halves.length);
  new Uint16Array(buf, offset, halves.length).set(halves);
  return buf;
}

test('a float16-stored weight split over two shards widens into its device form, part by part', () => {
  const halves = Array.from({ length: 12 }, (_, i) => (i * 2897) & 0x7bff); // finite, mixed signs and exponents
  const shards = [halfShard(halves.slice(0, 8), 256), halfShard(halves.slice(8), 0)];
  const w = { dtype: 'float32', bytes: 48, stored: /** @type {'float16'} */ ('float16'),
              parts: [{ shard: 0, offset: 256, bytes: 16 }, { shard: 1, offset: 0, bytes: 8 }] };
  const device = new Uint8Array(48);
  shards.forEach((s, i) => { for (const p of partsInShard(w, i, s)) device.set(p.data(), p.at); });
  const intoMemory = new Uint8Array(64 + 48);
  shards.forEach((s, i) => {
    for (const p of partsInShard(w, i, s)) p.copyTo(new Uint8Array(intoMemory.buffer, 64 + p.at, p.deviceBytes));
  });
  const want = halves.map(referenceHalf);
  assert.deepEqual(Array.from(new Float32Array(device.buffer)), want);
  assert.deepEqual(Array.from(new Float32Array(intoMemory.buffer, 64, 12)), want);
});

test('a weight in device form is copied from its shard unchanged', () => {
  const shard = new ArrayBuffer(256 + 12);
  new Int32Array(shard, 256, 3).set([7, -1, 123456]);
  const w = { dtype: 'int32', bytes: 12, parts: [{ shard: 0, offset: 256, bytes: 12 }] };
  const [p] = partsInShard(w, 0, shard);
  assert.equal(p.at, 0);
  assert.deepEqual(Array.from(new Int32Array(p.data().slice().buffer)), [7, -1, 123456]);
  assert.deepEqual(partsInShard(w, 1, shard), []);
});

const fixture = () => JSON.parse(readFileSync(new URL('./manifest.fixture.json', import.meta.url), 'utf8'));

/** The fixture as an fp16 bundle: its float32 table (80 bytes on the device) in two parts of float16. */
function fp16Fixture() {
  const m = fixture();
  m.weights.format = 'fp16';
  const parts = [{ shard: 0, offset: 0, bytes: 24 }, { shard: 1, offset: 0, bytes: 16 }];
  Object.assign(m.weights.tensors[0], { stored: 'float16', parts });
  return m;
}

function rejects(/** @type {any} */ m, /** @type {RegExp} */ where) {
  assert.throws(() => validateManifest(m), (e) => e instanceof ManifestError && where.test(e.message), where.source);
}

test('an fp16 bundle whose float16 parts hold half the device bytes passes validation', () => {
  const m = fp16Fixture();
  assert.equal(validateManifest(m), m);
});

test('float16 parts must add up to half the device bytes', () => {
  const m = fp16Fixture();
  m.weights.tensors[0].parts[1].bytes = 18;
  rejects(m, /weights.tensors\[0\].bytes: 80, but its parts hold 42 bytes of float16, 84 as float32/);
  const odd = fp16Fixture();
  odd.weights.tensors[0].parts[1].bytes = 15;
  rejects(odd, /parts\[1\]: offset must be a multiple of 4 and size a multiple of 2/);
});

test('only float32 weights of an fp16 bundle may be stored as float16, and the format is fp32 or fp16', () => {
  const fp32 = fp16Fixture();
  fp32.weights.format = 'fp32';
  rejects(fp32, /weights.tensors\[0\].stored: only float32 weights of an fp16 bundle/);
  const ints = fp16Fixture();
  ints.weights.tensors[0].dtype = 'int32';
  rejects(ints, /weights.tensors\[0\].stored: only float32 weights/);
  const other = fp16Fixture();
  other.weights.tensors[0].stored = 'bfloat16';
  rejects(other, /weights.tensors\[0\].stored: expected one of float16/);
  const format = fixture();
  format.weights.format = 'int8';
  rejects(format, /weights.format: expected one of fp32, fp16/);
});

test('a weight\'s device bytes must match its shape', () => {
  const m = fixture();
  m.weights.tensors[0].shape = [10, 3];
  rejects(m, /weights.tensors\[0\].bytes: 80, but shape \[10,3\] takes 120/);
});
