// The bundle: fetch manifest.json, check it against the schema (web/MANIFEST.md), and fetch every other file
// with its size and SHA-256 checked against the manifest's `files` table before anything uses it.

import { VerifiedFiles } from './store.js';

export const FORMAT = 'webjit-bundle';
export const SUPPORTED_VERSIONS = [1];

const TYPES = ['float32', 'int64', 'int32', 'bool'];
const DEVICE_TYPES = ['float32', 'int32', 'uint32'];
const WEIGHT_TYPES = ['float32', 'int32', 'uint32'];
const WEIGHT_FORMATS = ['fp32', 'fp16'];
// Bundle files are generated names in known folders: nothing can point outside the bundle.
const SAFE_PATH = /^((kernels|weights|reference|consts|wasm)\/[A-Za-z0-9_-][A-Za-z0-9._-]*|encoder\/manifest\.json|text\/tokenizer\.json)$/;
const SHA256 = /^[0-9a-f]{64}$/;

/** A manifest that does not follow the schema. */
export class ManifestError extends Error {
  name = 'ManifestError';
}

/** A bundle file whose size or SHA-256 differs from the manifest: corrupt, truncated or tampered with. */
export class IntegrityError extends Error {
  name = 'IntegrityError';
}

/**
 * @typedef {{buffer: 'weight' | 'input' | 'pool' | 'loaded', index: number, access: 'read-only' | 'read-write'}} Binding
 * @typedef {{key: string, file: string, dispatch: number[], threads: number, smemBytes: number,
 *            registers: number}} Variant
 * @typedef {{name: string, kind: string, node: string, bindings: Binding[], flops: number, bytes: number,
 *            variants: Variant[]}} Kernel
 * @typedef {'float32' | 'int64' | 'int32' | 'bool'} TensorType
 * @typedef {{name: string, dtype: TensorType, deviceDtype: 'float32' | 'int32' | 'uint32', shape: number[], bytes?: number,
 *            from?: {pool?: number, bytes?: number, input?: number, const?: string}}} TensorInfo
 * @typedef {{name: string, dtype: string, shape: number[], bytes: number, stored?: 'float16',
 *            parts: {shard: number, offset: number, bytes: number}[]}} WeightInfo
 * @typedef {{format: string, version: number, generator: string, limits: Object<string, number>,
 *            inputs: TensorInfo[], outputs: TensorInfo[], pool: number[],
 *            weights: {format: string, shards: {file: string}[], tensors: WeightInfo[]},
 *            loaded?: number[], load?: number,
 *            kernels: Kernel[], files: Object<string, {bytes: number, sha256: string}>,
 *            backends?: ('webgpu' | 'wasm')[], wasm?: import('./wasm/layout.js').WasmSection,
 *            reference?: {source: string, inputs: {name: string, dtype: TensorType, shape: number[], file: string}[],
 *                         outputs: {name: string, dtype: TensorType, shape: number[], file: string}[]}}} Manifest
 */

/**
 * Check a parsed manifest against the schema; throws a ManifestError that names the offending field.
 * @param {any} m
 * @returns {Manifest}
 */
export function validateManifest(m) {
  const fail = (/** @type {string} */ where, /** @type {string} */ what) => {
    throw new ManifestError(`manifest.json: ${where}: ${what}`);
  };
  const isObject = (/** @type {any} */ v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const obj = (/** @type {any} */ v, /** @type {string} */ where) => {
    if (!isObject(v)) fail(where, 'expected an object');
    return v;
  };
  const int = (/** @type {any} */ v, /** @type {string} */ where, min = 0) => {
    if (!Number.isSafeInteger(v) || v < min) fail(where, `expected an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const str = (/** @type {any} */ v, /** @type {string} */ where) => {
    if (typeof v !== 'string') fail(where, `expected a string, got ${JSON.stringify(v)}`);
    return v;
  };
  const list = (/** @type {any} */ v, /** @type {string} */ where) => {
    if (!Array.isArray(v)) fail(where, 'expected a list');
    return /** @type {any[]} */ (v);
  };
  const oneOf = (/** @type {any} */ v, /** @type {string[]} */ options, /** @type {string} */ where) => {
    if (!options.includes(v)) fail(where, `expected one of ${options.join(', ')}, got ${JSON.stringify(v)}`);
    return v;
  };
  const file = (/** @type {any} */ v, /** @type {string} */ where) => {
    str(v, where);
    if (!SAFE_PATH.test(v) || v.includes('..')) fail(where, `'${v}' is not a bundle file name`);
    if (!Object.hasOwn(m.files, v)) fail(where, `'${v}' is not listed in files`);
    return v;
  };
  const unique = (/** @type {any[]} */ items, /** @type {string} */ where) => {
    const seen = new Set();
    items.forEach((x, i) => {
      if (seen.has(x.name)) fail(`${where}[${i}].name`, `'${x.name}' is there twice`);
      seen.add(x.name);
    });
  };
  const shape = (/** @type {any} */ v, /** @type {string} */ where) => list(v, where).forEach((d, i) => int(d, `${where}[${i}]`));

  if (!isObject(m)) fail('top level', 'expected an object');
  if (m.format !== FORMAT) fail('format', `expected '${FORMAT}', got ${JSON.stringify(m.format)}`);
  if (!SUPPORTED_VERSIONS.includes(m.version)) {
    fail('version', `schema version ${JSON.stringify(m.version)}; this runtime reads ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  if (!isObject(m.files)) fail('files', 'expected an object');
  for (const [path, rec] of Object.entries(m.files)) {
    if (!SAFE_PATH.test(path) || path.includes('..')) fail(`files`, `'${path}' is not a bundle file name`);
    if (!isObject(rec)) fail(`files['${path}']`, 'expected an object');
    int(rec.bytes, `files['${path}'].bytes`);
    if (typeof rec.sha256 !== 'string' || !SHA256.test(rec.sha256)) fail(`files['${path}'].sha256`, 'expected 64 hex digits');
  }
  if (!isObject(m.weights)) fail('weights', 'expected an object');
  const shards = list(m.weights.shards, 'weights.shards').map((s, i) => file(s && s.file, `weights.shards[${i}].file`));
  const format = oneOf(m.weights.format, WEIGHT_FORMATS, 'weights.format');
  const weights = list(m.weights.tensors, 'weights.tensors');
  weights.forEach((w, i) => {
    const at = `weights.tensors[${i}]`;
    if (!isObject(w)) fail(at, 'expected an object');
    str(w.name, `${at}.name`);
    oneOf(w.dtype, WEIGHT_TYPES, `${at}.dtype`);
    shape(w.shape, `${at}.shape`);
    // float16-stored (fp16 bundles only, float32 weights only): the parts hold 2 bytes per 4-byte device element
    const half = w.stored !== undefined;
    if (half) {
      oneOf(w.stored, ['float16'], `${at}.stored`);
      if (format !== 'fp16' || w.dtype !== 'float32') fail(`${at}.stored`, 'only float32 weights of an fp16 bundle are stored as float16');
    }
    const unit = half ? 2 : 4;
    let total = 0;
    list(w.parts, `${at}.parts`).forEach((p, j) => {
      const pat = `${at}.parts[${j}]`;
      obj(p, pat);
      if (int(p.shard, `${pat}.shard`) >= shards.length) fail(`${pat}.shard`, `no shard ${p.shard}`);
      int(p.offset, `${pat}.offset`);
      int(p.bytes, `${pat}.bytes`);
      if (p.offset % 4 || p.bytes % unit) fail(pat, `offset must be a multiple of 4 and size a multiple of ${unit}`);
      if (p.offset + p.bytes > m.files[shards[p.shard]].bytes) fail(pat, 'runs past the end of its shard');
      total += p.bytes;
    });
    const device = half ? 2 * total : total;
    if (int(w.bytes, `${at}.bytes`) !== device) {
      fail(`${at}.bytes`, `${w.bytes}, but its parts hold ${half ? `${total} bytes of float16, ${device} as float32` : total}`);
    }
    const elements = w.shape.reduce((/** @type {number} */ a, /** @type {number} */ b) => a * b, 1);
    if (w.bytes !== 4 * elements) fail(`${at}.bytes`, `${w.bytes}, but shape [${w.shape}] takes ${4 * elements}`);
  });
  // buffers the load-time kernels write (every class's), absent in bundles without load-time kernels
  const loaded = m.loaded === undefined ? [] : list(m.loaded, 'loaded');
  loaded.forEach((b, i) => int(b, `loaded[${i}]`, 4));
  /**
   * One shape class: the top level (at = '') or an entry of dynamic.classes.
   * @param {any} c
   * @param {string} at
   */
  const checkClass = (c, at) => {
    const pool = list(c.pool, `${at}pool`);
    pool.forEach((b, i) => int(b, `${at}pool[${i}]`, 4));
    const tensors = (/** @type {any} */ v, /** @type {string} */ where) => list(v, where).map((t, i) => {
      const at = `${where}[${i}]`;
      if (!isObject(t)) fail(at, 'expected an object');
      str(t.name, `${at}.name`);
      oneOf(t.dtype, TYPES, `${at}.dtype`);
      oneOf(t.deviceDtype, DEVICE_TYPES, `${at}.deviceDtype`);
      shape(t.shape, `${at}.shape`);
      return t;
    });
    const inputs = tensors(c.inputs, `${at}inputs`);
    unique(inputs, `${at}inputs`);
    inputs.forEach((t, i) => int(t.bytes, `${at}inputs[${i}].bytes`, 4));
    const outputs = tensors(c.outputs, `${at}outputs`);
    unique(outputs, `${at}outputs`);
    outputs.forEach((t, i) => {
      const fromAt = `${at}outputs[${i}].from`;
      const from = t.from;
      if (!isObject(from)) fail(fromAt, 'expected an object');
      if ('pool' in from) {
        if (int(from.pool, `${fromAt}.pool`) >= pool.length) fail(`${fromAt}.pool`, `no pool buffer ${from.pool}`);
        if (int(from.bytes, `${fromAt}.bytes`) > pool[from.pool]) fail(`${fromAt}.bytes`, 'larger than its pool buffer');
      } else if ('input' in from) {
        if (int(from.input, `${fromAt}.input`) >= inputs.length) fail(`${fromAt}.input`, `no input ${from.input}`);
      } else if ('const' in from) {
        file(from.const, `${fromAt}.const`);
      } else {
        fail(fromAt, 'expected pool, input or const');
      }
    });
    const counts = { weight: weights.length, input: inputs.length, pool: pool.length, loaded: loaded.length };
    const kernels = list(c.kernels, `${at}kernels`);
    // the first `load` kernels run once, at load: they read weights and loaded buffers and write loaded buffers,
    // which the other kernels only read (a bundle without WebGPU kernels counts them in wasm.kernels)
    const load = c.load === undefined ? 0 : int(c.load, `${at}load`);
    if (kernels.length && load > kernels.length) fail(`${at}load`, `${load}, but there are ${kernels.length} kernels`);
    /** @type {Set<number>} */
    const written = new Set();
    kernels.forEach((k, i) => {
      const kat = `${at}kernels[${i}]`;
      if (!isObject(k)) fail(kat, 'expected an object');
      str(k.name, `${kat}.name`);
      str(k.kind, `${kat}.kind`);
      list(k.bindings, `${kat}.bindings`).forEach((b, j) => {
        const bat = `${kat}.bindings[${j}]`;
        oneOf(b && b.buffer, Object.keys(counts), `${bat}.buffer`);
        if (int(b.index, `${bat}.index`) >= counts[/** @type {'weight'} */ (b.buffer)]) fail(`${bat}.index`, `no ${b.buffer} ${b.index}`);
        oneOf(b.access, ['read-only', 'read-write'], `${bat}.access`);
        const writes = b.access === 'read-write';
        if (i < load && !(writes ? ['loaded'] : ['weight', 'loaded']).includes(b.buffer)) {
          fail(`${bat}.buffer`, `kernel ${i} runs at load (load is ${load}): it reads only weight and loaded buffers and writes only loaded ones`);
        }
        if (i >= load && b.buffer === 'loaded' && writes) fail(`${bat}.access`, `kernel ${i} runs on every run (load is ${load}): only load-time kernels write loaded buffers`);
        if (b.buffer === 'loaded' && !writes && !written.has(b.index)) {
          fail(`${bat}.index`, `loaded ${b.index} is written by no earlier load-time kernel of this plan`);
        }
        if (i < load && writes) written.add(b.index);
      });
      if (list(k.variants, `${kat}.variants`).length === 0) fail(`${kat}.variants`, 'a kernel needs at least one variant');
      k.variants.forEach((/** @type {any} */ v, /** @type {number} */ j) => {
        const vat = `${kat}.variants[${j}]`;
        obj(v, vat);
        str(v.key, `${vat}.key`);
        file(v.file, `${vat}.file`);
        if (list(v.dispatch, `${vat}.dispatch`).length !== 3) fail(`${vat}.dispatch`, 'expected [x, y, z]');
        v.dispatch.forEach((/** @type {any} */ d, /** @type {number} */ n) => int(d, `${vat}.dispatch[${n}]`, 1));
        int(v.threads, `${vat}.threads`, 1);
        int(v.smemBytes, `${vat}.smemBytes`);
      });
    });
    return inputs;
  };
  const inputs = checkClass(m, '');
  if (m.dynamic !== undefined) checkDynamic(m, inputs, checkClass, fail);
  if (m.generate !== undefined) checkGenerate(m, fail);
  if (m.pipeline !== undefined) checkPipeline(m, fail);
  if (m.reference !== undefined) {
    obj(m.reference, 'reference');
    for (const side of ['inputs', 'outputs']) {
      list(m.reference[side], `reference.${side}`).forEach((t, i) => {
        const at = `reference.${side}[${i}]`;
        obj(t, at);
        str(t.name, `${at}.name`);
        oneOf(t.dtype, TYPES, `${at}.dtype`);
        shape(t.shape, `${at}.shape`);
        file(t.file, `${at}.file`);
      });
    }
  }
  return /** @type {Manifest} */ (m);
}

/**
 * Check the `generate` section (a decoder built for text generation): its names are the bundle's inputs and
 * outputs, every cache is a float past input [1, heads, past, head_dim] whose present output holds a class's new
 * rows, and its classes are the prefill ones (seq > 1 over a one-row past) then the decode ones (one token, the
 * past growing), one per shape class with that class's dims.
 * @param {any} m
 * @param {(where: string, what: string) => never} fail
 */
function checkGenerate(m, fail) {
  const g = m.generate;
  const isInt = (/** @type {any} */ v, min = 1) => Number.isSafeInteger(v) && v >= min;
  if (!g || typeof g !== 'object') fail('generate', 'expected an object');
  if (g.kind !== undefined) {
    if (g.kind !== 'seq2seq') fail('generate.kind', `expected 'seq2seq' or no kind, got ${JSON.stringify(g.kind)}`);
    checkSeq2Seq(m, fail);
    return;
  }
  if (!isInt(g.context, 3)) fail('generate.context', 'expected an integer of at least 3');
  const input = (/** @type {any} */ name, /** @type {string} */ at) => {
    const i = m.inputs.findIndex((/** @type {any} */ t) => t.name === name);
    if (i < 0) fail(at, `expected the name of an input, got ${JSON.stringify(name)}`);
    return m.inputs[i];
  };
  const output = (/** @type {any} */ name, /** @type {string} */ at) => {
    const i = m.outputs.findIndex((/** @type {any} */ t) => t.name === name);
    if (i < 0) fail(at, `expected the name of an output, got ${JSON.stringify(name)}`);
    return m.outputs[i];
  };
  for (const [key, t] of [['ids', input(g.ids, 'generate.ids')], ['mask', input(g.mask, 'generate.mask')],
    ...(g.positions === null ? [] : [['positions', input(g.positions, 'generate.positions')]])]) {
    if (t.deviceDtype !== 'int32') fail(`generate.${key}`, `expected an input the kernels read as int32, not ${t.deviceDtype}`);
  }
  const logits = output(g.logits, 'generate.logits');
  if (logits.deviceDtype !== 'float32' || !logits.from || logits.from.pool === undefined) {
    fail('generate.logits', 'expected a float32 output the kernels compute');
  }
  if (!isInt(g.vocab) || logits.shape[logits.shape.length - 1] !== g.vocab) fail('generate.vocab', "expected the logits' last dim");
  if (!Array.isArray(g.cache) || !g.cache.length) fail('generate.cache', 'expected a list of past inputs and present outputs');
  g.cache.forEach((/** @type {any} */ c, /** @type {number} */ i) => {
    const at = `generate.cache[${i}]`;
    if (!c || typeof c !== 'object') fail(at, 'expected an object');
    const past = input(c.past, `${at}.past`);
    const present = output(c.present, `${at}.present`);
    if (c.axis !== 2 || !Array.isArray(c.shape) || c.shape.length !== 4 || !c.shape.every((/** @type {any} */ n) => isInt(n))
        || c.shape[2] !== g.context) {
      fail(at, 'expected axis 2 and the shape [1, heads, context, head_dim]');
    }
    for (const [t, what] of [[past, 'past'], [present, 'present']]) {
      if (t.deviceDtype !== 'float32' || t.shape.length !== 4 || t.shape[1] !== c.shape[1] || t.shape[3] !== c.shape[3]) {
        fail(`${at}.${what}`, `expected float32 [1, ${c.shape[1]}, rows, ${c.shape[3]}], got ${t.deviceDtype} [${t.shape}]`);
      }
    }
    if (!present.from || present.from.pool === undefined) fail(`${at}.present`, 'expected an output the kernels compute');
  });
  // the top level is the largest decode class: its past is the past dim's maximum, its length the ids' at the top
  const ids = input(g.ids, 'generate.ids');
  const classes = m.dynamic && m.dynamic.dims.length === 2
    ? [...m.dynamic.classes.map((/** @type {any} */ c) => c.dims), [ids.shape[ids.shape.length - 1], m.dynamic.dims[1].max]] : [];
  if (!Array.isArray(g.classes) || classes.length < 2 || g.classes.length !== classes.length) {
    fail('generate.classes', 'expected one {seq, past} per shape class of `dynamic` (dims: sequence, past)');
  }
  let decoding = false;
  let lastPast = 0;
  for (let i = 0; i < g.classes.length; i++) { // (a list with holes has them checked too)
    const c = g.classes[i];
    const at = `generate.classes[${i}]`;
    if (!c || !isInt(c.seq) || !isInt(c.past) || classes[i][0] !== c.seq || classes[i][1] !== c.past) {
      fail(at, `expected {seq, past} equal to the shape class's dims [${classes[i]}]`);
    }
    if (c.seq === 1) decoding = true;
    if (decoding ? c.seq !== 1 || c.past <= lastPast : c.past !== 1) {
      fail(at, 'expected the prefill classes (seq > 1, past 1) first, then the decode classes (seq 1) by growing past');
    }
    if (decoding) lastPast = c.past;
  }
  if (g.classes[0].seq === 1 || !decoding) fail('generate.classes', 'expected at least one prefill class and one decode class');
}

/**
 * Check the `pipeline` section (a bundle built from a hub-style folder): the task, the tokenizer among the files,
 * the longest input, and for feature extraction the pooling and the output.
 * @param {any} m
 * @param {(where: string, what: string) => never} fail
 */
function checkPipeline(m, fail) {
  const p = m.pipeline;
  if (!p || typeof p !== 'object') fail('pipeline', 'expected an object');
  if (!['feature-extraction', 'text-generation', 'text2text-generation'].includes(p.task)) fail('pipeline.task', 'expected a task webjit runs');
  if (p.tokenizer !== null && (p.tokenizer !== 'text/tokenizer.json' || !m.files[p.tokenizer])) {
    fail('pipeline.tokenizer', 'expected null or text/tokenizer.json, one of the files');
  }
  if (!Number.isSafeInteger(p.maxLength) || p.maxLength < 2) fail('pipeline.maxLength', 'expected an integer of at least 2');
  if (p.task === 'feature-extraction') {
    if (!(p.pooling === null || ['mean', 'cls', 'max'].includes(p.pooling))) fail('pipeline.pooling', 'expected null, mean, cls or max');
    if (typeof p.normalize !== 'boolean') fail('pipeline.normalize', 'expected true or false');
    if (!m.outputs.some((/** @type {any} */ t) => t.name === p.output)) fail('pipeline.output', 'expected the name of an output');
  }
  if (p.special !== undefined && (typeof p.special !== 'object' || p.special === null
      || !Object.values(p.special).every((v) => Number.isSafeInteger(v) && /** @type {number} */ (v) >= 0))) {
    fail('pipeline.special', 'expected token ids by name');
  }
}

/**
 * Check an encoder-decoder model's `generate` section: the decoder's ids, encoder states, encoder mask and
 * logits, the encoder's manifest among the bundle's files, and the decoder classes bucketing only the ids' length.
 * @param {any} m
 * @param {(where: string, what: string) => never} fail
 */
function checkSeq2Seq(m, fail) {
  const g = m.generate;
  const isInt = (/** @type {any} */ v, min = 1) => Number.isSafeInteger(v) && v >= min;
  const input = (/** @type {any} */ name, /** @type {string} */ at) => {
    const t = m.inputs.find((/** @type {any} */ x) => x.name === name);
    if (!t) fail(at, `expected the name of an input, got ${JSON.stringify(name)}`);
    return t;
  };
  if (!isInt(g.context, 2)) fail('generate.context', 'expected an integer of at least 2');
  if (!isInt(g.start, 0)) fail('generate.start', 'expected the decoder start token id');
  const ids = input(g.ids, 'generate.ids');
  if (ids.deviceDtype !== 'int32' || ids.shape.length !== 2 || ids.shape[1] !== g.context) {
    fail('generate.ids', `expected int32 ids [1, ${g.context}] at the top level`);
  }
  const e = g.encoder;
  if (!e || typeof e !== 'object' || e.folder !== 'encoder/' || !m.files['encoder/manifest.json']) {
    fail('generate.encoder', "expected {folder: 'encoder/', ...} with encoder/manifest.json among the files");
  }
  if (!isInt(e.length) || typeof e.ids !== 'string' || typeof e.output !== 'string' || !(e.mask === null || typeof e.mask === 'string')) {
    fail('generate.encoder', 'expected {folder, ids, mask, output, length}');
  }
  const states = input(g.states, 'generate.states');
  if (states.deviceDtype !== 'float32' || states.shape.length !== 3 || states.shape[1] !== e.length || !isInt(states.shape[2])) {
    fail('generate.states', `expected float32 states [1, ${e.length}, width]`);
  }
  if (g.mask !== null) {
    const mask = input(g.mask, 'generate.mask');
    if (mask.deviceDtype !== 'int32' || mask.shape.length !== 2 || mask.shape[1] !== e.length) fail('generate.mask', `expected an int32 mask [1, ${e.length}]`);
  }
  const logits = m.outputs.find((/** @type {any} */ t) => t.name === g.logits);
  if (!logits || logits.deviceDtype !== 'float32' || !logits.from || logits.from.pool === undefined || logits.shape.length !== 3
      || logits.shape[1] !== g.context || logits.shape[2] !== g.vocab || !isInt(g.vocab)) {
    fail('generate.logits', `expected a computed float32 output [1, ${g.context}, vocab]`);
  }
  const d = m.dynamic;
  if (d !== undefined && (d.dims.length !== 1 || d.dims[0].max !== g.context)) {
    fail('dynamic.dims', "expected one dim, the decoder's length, up to the context");
  }
}

/**
 * Check the `dynamic` section (shape classes): the dims, which input and output axes follow them, the pad values,
 * and every class like the top level, with the same inputs and outputs (names, types, rank) at its own sizes.
 * @param {any} m
 * @param {any[]} inputs  the top level's inputs
 * @param {(c: any, at: string) => any[]} checkClass
 * @param {(where: string, what: string) => never} fail
 */
function checkDynamic(m, inputs, checkClass, fail) {
  const d = m.dynamic;
  const isInt = (/** @type {any} */ v, min = 1) => Number.isSafeInteger(v) && v >= min;
  if (!d || typeof d !== 'object' || !Array.isArray(d.dims) || !d.dims.length) fail('dynamic.dims', 'expected a list of dims');
  d.dims.forEach((/** @type {any} */ x, /** @type {number} */ i) => {
    if (!x || typeof x.name !== 'string' || !isInt(x.max) || !Array.isArray(x.buckets) || !x.buckets.every((/** @type {any} */ b) => isInt(b) && b <= x.max)) {
      fail(`dynamic.dims[${i}]`, 'expected {name, max, buckets} with buckets from 1 to max');
    }
  });
  const axes = (/** @type {any} */ list, /** @type {any[]} */ tensors, /** @type {string} */ where) => {
    if (!Array.isArray(list) || list.length !== tensors.length) fail(where, `expected one list of axes per tensor (${tensors.length})`);
    list.forEach((/** @type {any} */ a, /** @type {number} */ i) => {
      if (!Array.isArray(a) || a.length !== tensors[i].shape.length
          || !a.every((/** @type {any} */ x) => x === null || (isInt(x, 0) && x < d.dims.length))) {
        fail(`${where}[${i}]`, 'expected, per axis, null or the index of a dim');
      }
      a.forEach((/** @type {number | null} */ x, /** @type {number} */ j) => {
        if (x !== null && tensors[i].shape[j] !== d.dims[x].max) fail(`${where}[${i}][${j}]`, `the top level's size is not ${d.dims[x].name}'s maximum`);
      });
    });
  };
  axes(d.inputs, inputs, 'dynamic.inputs');
  axes(d.outputs, m.outputs, 'dynamic.outputs');
  if (!Array.isArray(d.pad) || d.pad.length !== inputs.length || !d.pad.every((/** @type {any} */ v) => typeof v === 'number')) {
    fail('dynamic.pad', 'expected one number per input');
  }
  if (!Array.isArray(d.classes)) fail('dynamic.classes', 'expected a list');
  d.classes.forEach((/** @type {any} */ c, /** @type {number} */ i) => {
    const at = `dynamic.classes[${i}].`;
    if (!c || typeof c !== 'object') fail(`dynamic.classes[${i}]`, 'expected an object');
    if (!Array.isArray(c.dims) || c.dims.length !== d.dims.length || !c.dims.every((/** @type {any} */ n, /** @type {number} */ j) => isInt(n) && n <= d.dims[j].max)) {
      fail(`${at}dims`, 'expected one size per dim, within its maximum');
    }
    checkClass(c, at);
    for (const side of /** @type {const} */ (['inputs', 'outputs'])) {
      if (c[side].length !== m[side].length) fail(`${at}${side}`, `expected ${m[side].length}, as the top level`);
      c[side].forEach((/** @type {any} */ t, /** @type {number} */ j) => {
        const top = m[side][j];
        if (t.name !== top.name || t.dtype !== top.dtype || t.shape.length !== top.shape.length) {
          fail(`${at}${side}[${j}]`, `differs from the top level's '${top.name}' in more than its size`);
        }
      });
    }
  });
}

/**
 * Lower-case hex SHA-256 of some bytes.
 * @param {BufferSource} bytes
 */
export async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

const SRI = /^(sha256|sha384|sha512)-([A-Za-z0-9+/]+={0,2})$/;
const SRI_DIGESTS = { sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };

/**
 * Throw an IntegrityError unless the manifest's bytes match one of the Subresource Integrity hashes the page gave.
 * @param {URL} url
 * @param {ArrayBuffer} bytes
 * @param {string} integrity
 */
export async function checkIntegrity(url, bytes, integrity) {
  const tokens = typeof integrity === 'string' ? integrity.trim().split(/\s+/).filter(Boolean) : [];
  if (!tokens.length || !tokens.every((t) => SRI.test(t))) {
    throw new TypeError(`integrity must be 'sha256-' and the base64 of the manifest's SHA-256 (as webjit build prints it), got ${JSON.stringify(integrity)}`);
  }
  const got = [];
  for (const token of tokens) {
    const [, alg, want] = /** @type {RegExpExecArray} */ (SRI.exec(token));
    const digest = new Uint8Array(await crypto.subtle.digest(SRI_DIGESTS[/** @type {'sha256'} */ (alg)], bytes));
    const have = btoa(String.fromCharCode(...digest));
    if (have === want) return;
    got.push(`${alg}-${have}`);
  }
  throw new IntegrityError(`${url}: the manifest is ${got.join(' ')}, not the pinned ${tokens.join(' ')}: it was changed or is another bundle`);
}

/**
 * Throw an IntegrityError unless `bytes` are what the manifest lists for `path`.
 * @param {string} path
 * @param {ArrayBuffer} bytes
 * @param {{bytes: number, sha256: string}} record
 */
export async function checkFile(path, bytes, record) {
  const got = await sha256Hex(bytes);
  if (got !== record.sha256) {
    const size = bytes.byteLength === record.bytes ? '' : ` (${bytes.byteLength} bytes, expected ${record.bytes}: truncated?)`;
    throw new IntegrityError(`${path}: SHA-256 hash mismatch${size}: expected ${record.sha256}, got ${got}. ` +
      'The file is corrupt or was tampered with; refusing to load it.');
  }
}

/** A fetched, validated manifest and a way to fetch the files it lists. */
export class Bundle {
  /**
   * @param {string | URL | BundleSource} url  the bundle folder or its manifest.json, or a bundle held elsewhere
   *   (compileInBrowser's result): its `url` and the `fetch` that serves its files
   * @param {{fetch?: typeof fetch, integrity?: string, keep?: boolean}} [options]  keep: take large files from, and
   *   keep them in, Cache Storage by their SHA-256 (store.js); integrity: the manifest's hash as the page
   *   pins it, in Subresource Integrity form ('sha256-BASE64', or several separated by spaces); the manifest must
   *   match one, and its own file hashes then cover the rest of the bundle
   * @returns {Promise<Bundle>}
   */
  static async load(url, options = {}) {
    const source = isBundleSource(url) ? url : null;
    const fetchFn = options.fetch || (source && source.fetch) || globalThis.fetch.bind(globalThis);
    const manifestUrl = manifestUrlOf(source ? source.url : /** @type {string | URL} */ (url));
    const response = await fetchFn(manifestUrl);
    if (!response.ok) throw new ManifestError(`${manifestUrl}: HTTP ${response.status} ${response.statusText}`);
    const bytes = await response.arrayBuffer();
    if (options.integrity != null) await checkIntegrity(manifestUrl, bytes, options.integrity);
    let json;
    try {
      json = JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      throw new ManifestError(`${manifestUrl}: not JSON (${/** @type {Error} */ (e).message})`);
    }
    const bundle = new Bundle(manifestUrl, validateManifest(json), await sha256Hex(bytes), fetchFn);
    if (options.keep) bundle.store = VerifiedFiles.open();
    return bundle;
  }

  /**
   * @param {URL} manifestUrl
   * @param {Manifest} manifest
   * @param {string} hash  SHA-256 of manifest.json: identifies the bundle (it holds the hash of every file)
   * @param {typeof fetch} fetchFn
   */
  constructor(manifestUrl, manifest, hash, fetchFn) {
    this.url = manifestUrl;
    this.manifest = manifest;
    this.hash = hash;
    this._fetch = fetchFn;
    /** @type {Map<string, Promise<string>>} */
    this._texts = new Map();
    /** @type {import('./store.js').VerifiedFiles | null} verified large files kept for the next visit */
    this.store = null;
  }

  /**
   * The bytes of a bundle file, checked against its size and SHA-256.
   * @param {string} path
   * @returns {Promise<ArrayBuffer>}
   */
  async bytes(path) {
    const record = this.manifest.files[path];
    if (!record) throw new ManifestError(`${path} is not a file of this bundle`);
    const kept = this.store ? await this.store.get(record.sha256, record.bytes) : null;
    if (kept) return kept; // verified when it was stored
    const response = await this._fetch(new URL(path, this.url));
    if (!response.ok) throw new IntegrityError(`${path}: HTTP ${response.status} ${response.statusText}`);
    const bytes = await response.arrayBuffer();
    await checkFile(path, bytes, record);
    if (this.store) this.store.put(record.sha256, bytes);
    return bytes;
  }

  /**
   * A text file (a kernel), fetched and checked once however often it is asked for.
   * @param {string} path
   * @returns {Promise<string>}
   */
  text(path) {
    let text = this._texts.get(path);
    if (!text) {
      text = this.bytes(path).then((b) => new TextDecoder().decode(b));
      this._texts.set(path, text);
    }
    return text;
  }
}

/**
 * A bundle that is not on a server: its base URL (any scheme) and a fetch that answers for every file under it.
 * @typedef {{url: string | URL, fetch: typeof fetch}} BundleSource
 */

/**
 * @param {any} v
 * @returns {v is BundleSource}
 */
export function isBundleSource(v) {
  return v !== null && typeof v === 'object' && !(v instanceof URL) && typeof v.fetch === 'function'
    && (typeof v.url === 'string' || v.url instanceof URL);
}

/** @param {string | URL} url */
export function manifestUrlOf(url) {
  const base = new URL(url, globalThis.location ? globalThis.location.href : undefined);
  if (base.pathname.endsWith('.json')) return base;
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return new URL('manifest.json', base);
}
