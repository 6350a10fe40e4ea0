import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ManifestError, validateManifest } from '../manifest.js';
import { simdSupport, unsignedDotSupport, validateWasm } from '../wasm/layout.js';

/** The manifest fixture with a `wasm` section (one page; weight, input and output regions inside it). */
const fixture = () => {
  const m = JSON.parse(readFileSync(new URL('./manifest.fixture.json', import.meta.url), 'utf8'));
  m.files['wasm/a.wasm'] = { bytes: 8, sha256: 'a'.repeat(64) };
  m.wasm = {
    pages: 1, maxThreads: 16, registers: 16,
    modules: [{ simd: 'relaxed', shared: false, file: 'wasm/a.wasm' }, { simd: 'fixed', shared: false, file: 'wasm/a.wasm' }],
    weights: [{ tensor: 0, offset: 64 }], inputs: [192], outputs: [256], select: 1024,
    kernels: m.kernels.map((/** @type {any} */ k, /** @type {number} */ i) => ({ name: k.name, group: i, flops: k.flops, variants: { relaxed: ['a', 'b'], fixed: ['c', 'd'] } })),
  };
  return m;
};

/**
 * @param {(m: any) => void} edit
 * @param {RegExp} where
 */
function rejects(edit, where) {
  const m = fixture();
  edit(m);
  assert.throws(() => validateWasm(validateManifest(m)), (e) => e instanceof ManifestError && where.test(e.message), where.source);
}

test('a well-formed wasm section passes, and the manifest schema accepts wasm/ files', () => {
  const m = fixture();
  assert.equal(validateWasm(validateManifest(m)), m.wasm);
});

test('a bundle without a wasm section says how to build one', () => {
  rejects((m) => { delete m.wasm; }, /no WebAssembly modules \(build it with --backends wasm\)/);
});

test('regions outside the memory, or over the barrier header, are refused', () => {
  rejects((m) => { m.wasm.weights[0].offset = 65536 - 40; }, /wasm.weights\[0\].offset: 80 bytes at 65496 do not fit the memory/);
  rejects((m) => { m.wasm.inputs[0] = 0; }, /wasm.inputs\[0\]: expected an integer >= 64/);
  rejects((m) => { m.wasm.outputs[0] = 65536; }, /wasm.outputs\[0\]: 32 bytes at 65536 do not fit/);
  rejects((m) => { m.wasm.weights[0].tensor = 5; }, /wasm.weights\[0\].tensor: no weight 5/);
  rejects((m) => { m.wasm.inputs = []; }, /wasm.inputs: expected 1 offsets/);
});

test('a module file must be a listed wasm/ file of the bundle', () => {
  rejects((m) => { m.wasm.modules[0].file = 'kernels/a.wgsl'; }, /wasm.modules\[0\].file: 'kernels\/a.wgsl' is not a wasm file/);
  rejects((m) => { m.wasm.modules[0].file = 'wasm/b.wasm'; }, /wasm.modules\[0\].file/);
  rejects((m) => { m.wasm.modules[0].simd = 'avx'; }, /wasm.modules\[0\]: expected simd and shared/);
});

test('SIMD support is detected by validating a tiny module', () => {
  assert.ok(['relaxed', 'fixed'].includes(/** @type {string} */ (simdSupport())));
});

test('the unsigned-dot probe runs a tiny module and answers a boolean', () => {
  assert.equal(typeof unsignedDotSupport(), 'boolean');  // Node's V8 may lack relaxed SIMD: then false
});

test('candidates that need the unsigned dot are relaxed ones after the first', () => {
  const ok = fixture();
  ok.wasm.kernels[0].unsignedDot = [1];
  assert.equal(validateWasm(validateManifest(ok)), ok.wasm);
  rejects((m) => { m.wasm.kernels[0].unsignedDot = [0]; }, /wasm.kernels\[0\].unsignedDot: expected indices of relaxed candidates after the first/);
  rejects((m) => { m.wasm.kernels[0].unsignedDot = [2]; }, /wasm.kernels\[0\].unsignedDot/);
  rejects((m) => { m.wasm.kernels[0].unsignedDot = '1'; }, /wasm.kernels\[0\].unsignedDot/);
});

test('kernel candidates must come in both SIMD forms, as many in each, and the choice table must fit', () => {
  rejects((m) => { m.wasm.kernels[0].variants.fixed = ['c']; }, /wasm.kernels\[0\]: expected .* as many candidates in each form/);
  rejects((m) => { m.wasm.kernels[0].variants.relaxed = []; m.wasm.kernels[0].variants.fixed = []; }, /wasm.kernels\[0\]/);
  rejects((m) => { m.wasm.select = 65536 - 4; }, /wasm.select: \d+ bytes at 65532 do not fit the memory/);
});
