import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { SCHEME, checkDataPath, memoryBundle } from '../compiler.js';
import { Bundle, IntegrityError, isBundleSource } from '../manifest.js';

const hex = (/** @type {Uint8Array} */ b) => createHash('sha256').update(b).digest('hex');

/** The manifest fixture with every file it lists made up (of its listed size), as compileInBrowser returns them. */
function compiledFiles() {
  const m = JSON.parse(readFileSync(new URL('./manifest.fixture.json', import.meta.url), 'utf8'));
  /** @type {Map<string, Uint8Array>} */
  const files = new Map();
  for (const [path, record] of Object.entries(m.files)) {
    const bytes = new Uint8Array(/** @type {any} */ (record).bytes).map((_, i) => (i * 7 + path.length) & 255);
    files.set(path, bytes);
    /** @type {any} */ (record).sha256 = hex(bytes);
  }
  files.set('manifest.json', new TextEncoder().encode(JSON.stringify(m)));
  return files;
}

test('a compiled bundle is served from memory under its own URL, and nothing else is', async () => {
  const files = compiledFiles();
  const b = memoryBundle(files);
  assert.ok(b.url.startsWith(`${SCHEME}/`) && b.url.endsWith('/'));
  assert.notEqual(memoryBundle(files).url, b.url, 'each compiled bundle has a URL of its own');
  const path = [...files.keys()].find((p) => p !== 'manifest.json');
  const r = await b.fetch(new URL(/** @type {string} */ (path), b.url));
  assert.equal(r.status, 200);
  assert.deepEqual(new Uint8Array(await r.arrayBuffer()), files.get(/** @type {string} */ (path)));
  assert.equal((await b.fetch(`${b.url}kernels/missing.wgsl`)).status, 404);
  assert.equal((await b.fetch(`https://example.com/${path}`)).status, 404);
  assert.throws(() => memoryBundle(new Map()), /manifest\.json/);
});

test('Bundle.load takes a compiled bundle in place of a URL and checks its files', async () => {
  const files = compiledFiles();
  const compiled = memoryBundle(files);
  assert.ok(isBundleSource(compiled) && !isBundleSource('/bundle/') && !isBundleSource(new URL('http://x/')));
  const bundle = await Bundle.load(compiled);
  const path = /** @type {string} */ ([...files.keys()].find((p) => p.startsWith('weights/')));
  assert.deepEqual(new Uint8Array(await bundle.bytes(path)), files.get(path));
  /** @type {Uint8Array} */ (files.get(path))[0] ^= 1;
  await assert.rejects(bundle.bytes(path), IntegrityError);
});

test('external data locations must stay inside the model folder', () => {
  for (const ok of ['model.onnx.data', 'data/weights.bin']) assert.equal(checkDataPath(ok), ok);
  for (const bad of ['../secret', 'a/../../b', '/etc/passwd', 'C:/x', 'a\\b', '', './x', 'a//b']) {
    assert.throws(() => checkDataPath(bad), /not a plain relative path/, bad);
  }
});
