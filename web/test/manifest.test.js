import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { Bundle, IntegrityError, ManifestError, checkFile, manifestUrlOf, sha256Hex, validateManifest } from '../manifest.js';
import { withLoadKernel } from './load_fixture.js';

const fixture = () => JSON.parse(readFileSync(new URL('./manifest.fixture.json', import.meta.url), 'utf8'));
const hex = (/** @type {Uint8Array} */ b) => createHash('sha256').update(b).digest('hex');

/**
 * Expect validateManifest to reject the fixture after `edit`, with a message containing `where`.
 * @param {(m: any) => void} edit
 * @param {RegExp} where
 */
function rejects(edit, where) {
  const m = fixture();
  edit(m);
  assert.throws(() => validateManifest(m), (e) => e instanceof ManifestError && where.test(e.message), where.source);
}

test('a well-formed manifest passes validation unchanged', () => {
  const m = fixture();
  assert.equal(validateManifest(m), m);
});

test('a manifest of another format or a newer schema version is refused', () => {
  rejects((m) => { m.format = 'onnx'; }, /format: expected 'webjit-bundle'/);
  rejects((m) => { m.version = 2; }, /version: schema version 2; this runtime reads 1/);
});

test('file names that could leave the bundle are refused', () => {
  rejects((m) => { m.files['../secret.bin'] = m.files['kernels/a.wgsl']; }, /'..\/secret.bin' is not a bundle file name/);
  rejects((m) => { m.kernels[0].variants[0].file = 'https://example.com/x.wgsl'; }, /kernels\[0\].variants\[0\].file/);
  rejects((m) => { m.kernels[0].variants[0].file = 'kernels/../../x.wgsl'; }, /not a bundle file name/);
});

test('a referenced file missing from the files table is refused', () => {
  rejects((m) => { delete m.files['kernels/c.wgsl']; }, /kernels\[1\].variants\[0\].file: 'kernels\/c.wgsl' is not listed in files/);
  rejects((m) => { delete m.files['reference/input-000.bin']; }, /reference.inputs\[0\].file/);
});

test('a file record needs a size and a 64-digit SHA-256', () => {
  rejects((m) => { m.files['kernels/a.wgsl'].sha256 = 'abc'; }, /files\['kernels\/a.wgsl'\].sha256: expected 64 hex digits/);
  rejects((m) => { m.files['kernels/a.wgsl'].bytes = -1; }, /files\['kernels\/a.wgsl'\].bytes/);
});

test('bindings must name an existing buffer with a known access', () => {
  rejects((m) => { m.kernels[0].bindings[0].index = 5; }, /kernels\[0\].bindings\[0\].index: no weight 5/);
  rejects((m) => { m.kernels[0].bindings[2].buffer = 'arena'; }, /kernels\[0\].bindings\[2\].buffer/);
  rejects((m) => { m.kernels[0].bindings[2].access = 'write'; }, /kernels\[0\].bindings\[2\].access/);
});

test('variants need a three-dimensional dispatch of positive counts and a thread count', () => {
  rejects((m) => { m.kernels[1].variants[1].dispatch = [1, 1]; }, /kernels\[1\].variants\[1\].dispatch: expected \[x, y, z\]/);
  rejects((m) => { m.kernels[1].variants[1].dispatch = [0, 1, 1]; }, /dispatch\[0\]: expected an integer >= 1/);
  rejects((m) => { delete m.kernels[1].variants[1].threads; }, /kernels\[1\].variants\[1\].threads/);
  rejects((m) => { m.kernels[1].variants = []; }, /kernels\[1\].variants: a kernel needs at least one variant/);
});

test('weight parts must lie inside their shard and add up to the weight', () => {
  rejects((m) => { m.weights.tensors[0].parts[1].bytes = 36; }, /parts\[1\]: runs past the end of its shard/);
  rejects((m) => { m.weights.tensors[0].bytes = 84; }, /weights.tensors\[0\].bytes: 84, but its parts hold 80/);
  rejects((m) => { m.weights.tensors[0].parts[0].shard = 2; }, /parts\[0\].shard: no shard 2/);
  rejects((m) => { m.weights.tensors[0].dtype = 'int64'; }, /weights.tensors\[0\].dtype/);
});

test('inputs and outputs need known types, shapes and a source for each output', () => {
  rejects((m) => { m.inputs[0].dtype = 'float16'; }, /inputs\[0\].dtype: expected one of float32, int64, int32, bool/);
  rejects((m) => { m.inputs[0].shape = [1, -4]; }, /inputs\[0\].shape\[1\]/);
  rejects((m) => { m.outputs[0].from = { pool: 7, bytes: 32 }; }, /outputs\[0\].from.pool: no pool buffer 7/);
  rejects((m) => { m.outputs[0].from = { pool: 1, bytes: 1024 }; }, /outputs\[0\].from.bytes: larger than its pool buffer/);
  rejects((m) => { m.outputs[0].from = {}; }, /outputs\[0\].from: expected pool, input or const/);
});

test('load-time kernels come first, read weights and loaded buffers, and alone write loaded buffers', () => {
  const load = (/** @type {(m: any) => void} */ edit, /** @type {RegExp} */ where) => rejects((m) => edit(withLoadKernel(m)), where);
  assert.doesNotThrow(() => validateManifest(withLoadKernel(fixture())));
  load((m) => { m.load = 4; }, /^manifest.json: load: 4, but there are 3 kernels$/);
  load((m) => { m.load = -1; }, /load: expected an integer >= 0/);
  load((m) => { m.loaded = [2]; }, /loaded\[0\]: expected an integer >= 4/);
  load((m) => { m.kernels[0].bindings[1].index = 1; }, /kernels\[0\].bindings\[1\].index: no loaded 1/);
  load((m) => { m.kernels[0].bindings[0] = { buffer: 'input', index: 0, access: 'read-only' }; },
    /kernels\[0\].bindings\[0\].buffer: kernel 0 runs at load \(load is 1\): it reads only weight and loaded buffers/);
  load((m) => { m.kernels[0].bindings[1].buffer = 'pool'; }, /kernels\[0\].bindings\[1\].buffer: kernel 0 runs at load/);
  load((m) => { m.kernels[2].bindings[2] = { buffer: 'loaded', index: 0, access: 'read-write' }; },
    /kernels\[2\].bindings\[2\].access: kernel 2 runs on every run \(load is 1\): only load-time kernels write loaded buffers/);
  load((m) => { m.load = 0; }, /kernels\[0\].bindings\[1\].access: kernel 0 runs on every run \(load is 0\)/);
  load((m) => { m.loaded.push(256); m.kernels[2].bindings[1].index = 1; },
    /kernels\[2\].bindings\[1\].index: loaded 1 is written by no earlier load-time kernel of this plan/);
});

test('a manifest without load-time kernels needs neither load nor loaded', () => {
  const m = fixture();
  m.loaded = [];
  m.load = 0;
  assert.doesNotThrow(() => validateManifest(m));
  rejects((x) => { x.kernels[1].bindings[1] = { buffer: 'loaded', index: 0, access: 'read-only' }; }, /kernels\[1\].bindings\[1\].index: no loaded 0/);
});

test('model names are data: any string is a valid tensor or node name', () => {
  const m = fixture();
  m.inputs[0].name = '</script><script>alert(1)</script>`${x}`';
  m.kernels[0].node = '"; drop table; --';
  assert.doesNotThrow(() => validateManifest(m));
});

test('sha256Hex matches node:crypto', async () => {
  const bytes = new TextEncoder().encode('webjit');
  assert.equal(await sha256Hex(bytes), hex(bytes));
});

test('checkFile refuses tampered and truncated files with a hash error naming the file', async () => {
  const good = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const record = { bytes: 8, sha256: hex(good) };
  await checkFile('weights/shard-000.bin', good.buffer, record);
  const tampered = good.slice();
  tampered[3] ^= 1;
  await assert.rejects(checkFile('weights/shard-000.bin', tampered.buffer, record),
    (e) => e instanceof IntegrityError && /^weights\/shard-000.bin: SHA-256 hash mismatch: expected/.test(e.message));
  await assert.rejects(checkFile('weights/shard-000.bin', good.slice(0, 5).buffer, record),
    (e) => e instanceof IntegrityError && /weights\/shard-000.bin: SHA-256 hash mismatch \(5 bytes, expected 8: truncated\?\)/.test(e.message));
});

test('a bundle URL may name the folder or its manifest', () => {
  assert.equal(manifestUrlOf('http://127.0.0.1:8000/b').href, 'http://127.0.0.1:8000/b/manifest.json');
  assert.equal(manifestUrlOf('http://127.0.0.1:8000/b/').href, 'http://127.0.0.1:8000/b/manifest.json');
  assert.equal(manifestUrlOf('http://127.0.0.1:8000/b/other.json').href, 'http://127.0.0.1:8000/b/other.json');
});

/** A fake fetch over an in-memory bundle. @param {Record<string, Uint8Array>} files */
function fakeFetch(files) {
  return async (/** @type {URL} */ url) => {
    const path = new URL(url).pathname.replace(/^\/b\//, '');
    const body = files[path];
    return body ? new Response(body) : new Response('missing', { status: 404, statusText: 'Not Found' });
  };
}

test('a loaded bundle is identified by the hash of its manifest and checks every file it serves', async () => {
  const m = fixture();
  const kernel = new TextEncoder().encode('@compute @workgroup_size(1) fn main() {}');
  m.files['kernels/a.wgsl'] = { bytes: kernel.length, sha256: hex(kernel) };
  const manifest = new TextEncoder().encode(JSON.stringify(m));
  const files = { 'manifest.json': manifest, 'kernels/a.wgsl': kernel, 'kernels/b.wgsl': new Uint8Array([1]) };
  const bundle = await Bundle.load('http://127.0.0.1/b/', { fetch: /** @type {any} */ (fakeFetch(files)) });
  assert.equal(bundle.hash, hex(manifest));
  assert.equal(await bundle.text('kernels/a.wgsl'), '@compute @workgroup_size(1) fn main() {}');
  await assert.rejects(bundle.bytes('kernels/b.wgsl'), /kernels\/b.wgsl: SHA-256 hash mismatch/);
  await assert.rejects(bundle.bytes('kernels/c.wgsl'), /kernels\/c.wgsl: HTTP 404 Not Found/);
  await assert.rejects(bundle.bytes('weights/nope.bin'), /weights\/nope.bin is not a file of this bundle/);
});

test('a manifest that is not JSON or not there gives an error naming its URL', async () => {
  const bad = { 'manifest.json': new TextEncoder().encode('{"format": ') };
  await assert.rejects(Bundle.load('http://127.0.0.1/b/', { fetch: /** @type {any} */ (fakeFetch(bad)) }),
    /http:\/\/127.0.0.1\/b\/manifest.json: not JSON/);
  await assert.rejects(Bundle.load('http://127.0.0.1/b/', { fetch: /** @type {any} */ (fakeFetch({})) }),
    /manifest.json: HTTP 404 Not Found/);
});
