// Text generation on a bundle built with `webjit build MODEL --generate CONTEXT` (the manifest's `generate`
// section, web/MANIFEST.md): the prompt runs in a prefill class, then one token per step in the decode class
// whose past bucket holds the cache, and the cache never leaves the device.
//
// The cache lives in the past inputs themselves, laid out as the next step's class reads them ([1, heads, bucket,
// head_dim]). After each step the provider copies the new rows of every present output into them, at the real
// past length; when the next step moves to a larger bucket it first re-lays the rows already there. Rows between
// the real past and the bucket are zero and masked. Only the last real row of the logits is read back; the next
// token is picked on the host (sampling.js). What is provider-neutral lives here: the classes, the feeds, the
// copies; each provider executes one step (`generationStep`, provider.js) on its own buffers or memory.

import { checkSampling, nextToken, seeded } from './sampling.js';
import { seq2seqOf, seq2seqSteps } from './seq2seq.js';

/**
 * Where a step's copies read and write: an input or output of a class (the class's own layout of it), or the
 * provider's scratch space, as large as the largest past input.
 * @typedef {{cls: number, input: number} | {cls: number, output: number} | {scratch: true}} Region
 * @typedef {{copy: {from: Region, fromOffset: number, to: Region, toOffset: number, bytes: number}}
 *           | {clear: {region: Region, offset: number, bytes: number}}} CacheOp
 * An upload: input `input` of the class that runs gets `data` (device form) at offset 0.
 * @typedef {{input: number, data: Int32Array | Float32Array | Uint32Array}} Upload
 * @typedef {{cls: number, output: number, offset: number, bytes: number}} Read
 * A provider's step: upload, run class `cls`, do `ops` in order, and give back the bytes of `read` as floats.
 * @typedef {(cls: number, uploads: Upload[], ops: CacheOp[], read: Read) => Promise<Float32Array>} StepFn
 */

/**
 * @typedef {import('./sampling.js').SamplingOptions & {
 *   maxNewTokens?: number,
 *   eosTokenId?: number | number[],
 *   onToken?: (id: number, info: {index: number, phase: 'prefill' | 'decode', ms: number}) => void,
 *   signal?: AbortSignal,
 * }} GenerateOptions
 * @typedef {{promptTokens: number, newTokens: number, prefillMs: number, decodeMs: number,
 *            prefillTokensPerSecond: number, decodeTokensPerSecond: number}} GenerationStats
 */

/**
 * The generation geometry of a bundle, from its manifest: names resolved to input and output indices.
 * @param {import('./manifest.js').Manifest} m
 */
export function generationOf(m) {
  const g = /** @type {any} */ (m).generate;
  if (!g) throw new Error('this bundle was not built for generation (webjit build MODEL --generate CONTEXT)');
  const input = (/** @type {string} */ name) => m.inputs.findIndex((t) => t.name === name);
  const output = (/** @type {string} */ name) => m.outputs.findIndex((t) => t.name === name);
  const classes = /** @type {{seq: number, past: number}[]} */ (g.classes);
  const prefill = classes.filter((c) => c.seq > 1); // first (manifest.js checks the order)
  return {
    context: /** @type {number} */ (g.context),
    vocab: /** @type {number} */ (g.vocab),
    ids: input(g.ids),
    mask: input(g.mask),
    positions: g.positions === null ? -1 : input(g.positions),
    logits: output(g.logits),
    cache: g.cache.map((/** @type {any} */ c) => ({
      past: input(c.past), present: output(c.present), heads: c.shape[1], dim: c.shape[3],
      itemBytes: /** @type {number} */ (m.inputs[input(c.past)].bytes) / m.inputs[input(c.past)].shape.reduce((a, b) => a * b, 1),
    })),
    classes,
    prompts: prefill.length,
  };
}

/** @typedef {ReturnType<typeof generationOf>} Generation */

/**
 * The class that runs `seq` tokens over `past` cached rows: a prefill class for the prompt, else the decode class
 * with the smallest past bucket that holds the past.
 * @param {Generation} g
 * @param {number} seq
 * @param {number} past
 */
export function pickStep(g, seq, past) {
  const from = past === 0 ? 0 : g.prompts;
  const to = past === 0 ? g.prompts : g.classes.length;
  for (let i = from; i < to; i++) {
    const c = g.classes[i];
    if (past === 0 ? c.seq >= seq : c.past >= past && c.seq === 1) return i;
  }
  throw new RangeError(past === 0
    ? `a prompt of ${seq} tokens is longer than this bundle's largest prompt bucket (${g.classes[g.prompts - 1].seq})`
    : `the context of ${g.context} positions is full`);
}

/**
 * The device-form feeds of one step: ids padded with 0 to the class's length, the mask with ones at the real past
 * and at the new tokens, the positions counting on from the real past. The prefill classes' one-row past is
 * zeroed (and masked), so that nothing left in it by other work can reach the scores.
 * @param {Generation} g
 * @param {number} ci  the class
 * @param {number[]} tokens
 * @param {number} past
 * @returns {Upload[]}
 */
export function stepUploads(g, ci, tokens, past) {
  const { seq, past: bucket } = g.classes[ci];
  const ids = new Int32Array(seq);
  ids.set(tokens);
  const mask = new Int32Array(bucket + seq);
  mask.fill(1, 0, past);
  mask.fill(1, bucket, bucket + tokens.length);
  /** @type {Upload[]} */
  const up = [{ input: g.ids, data: ids }, { input: g.mask, data: mask }];
  if (g.positions >= 0) up.push({ input: g.positions, data: Int32Array.from({ length: seq }, (_, i) => past + i) });
  if (past === 0) for (const c of g.cache) up.push({ input: c.past, data: new Float32Array(c.heads * bucket * c.dim) });
  return up;
}

/**
 * The copies after a step of class `ran` that took `n` tokens over `past` rows, so that class `next` finds the
 * cache of past + n rows in its past inputs: per cache, when the bucket changes, the old rows go through scratch,
 * the new layout is cleared and the old rows land in it; then every head's new rows land at row `past`.
 * @param {Generation} g
 * @param {number} ran
 * @param {number} next
 * @param {number} past
 * @param {number} n
 * @returns {CacheOp[]}
 */
export function cacheOps(g, ran, next, past, n) {
  const { seq: S, past: B } = g.classes[ran];
  const B2 = g.classes[next].past;
  /** @type {CacheOp[]} */
  const ops = [];
  /** @type {Region} */
  const scratch = { scratch: true };
  for (const c of g.cache) {
    const row = c.dim * c.itemBytes;
    const to = { cls: next, input: c.past };
    if (B !== B2) {
      if (past > 0) ops.push({ copy: { from: { cls: ran, input: c.past }, fromOffset: 0, to: scratch, toOffset: 0, bytes: c.heads * B * row } });
      ops.push({ clear: { region: to, offset: 0, bytes: c.heads * B2 * row } });
      if (past > 0) {
        for (let h = 0; h < c.heads; h++) {
          ops.push({ copy: { from: scratch, fromOffset: h * B * row, to, toOffset: h * B2 * row, bytes: past * row } });
        }
      }
    }
    for (let h = 0; h < c.heads; h++) {
      ops.push({ copy: { from: { cls: ran, output: c.present }, fromOffset: h * S * row, to, toOffset: (h * B2 + past) * row, bytes: n * row } });
    }
  }
  return ops;
}

/**
 * The prompt's ids as numbers.
 * @param {number[] | Int32Array | BigInt64Array | import('./tensor.js').Tensor} ids
 * @returns {number[]}
 */
function promptIds(ids) {
  const data = ids && typeof ids === 'object' && 'data' in ids && 'dims' in ids ? ids.data : ids;
  if (!data || typeof data !== 'object' || typeof (/** @type {any} */ (data).length) !== 'number') {
    throw new TypeError('generate() takes the prompt as token ids: an array, an Int32Array, a BigInt64Array or an int64 Tensor');
  }
  const out = Array.from(/** @type {ArrayLike<number | bigint>} */ (data), Number);
  if (!out.length) throw new RangeError('generate() needs a prompt of at least one token');
  return out;
}

/**
 * The steps of a decoder-only generation: the prompt in a prefill class, then one token at a time, the cache
 * copied along after every step but the last.
 * @param {Generation} g
 * @param {number[]} prompt
 * @param {number} maxNewTokens
 * @returns {Stepper}
 */
function decoderSteps(g, prompt, maxNewTokens) {
  let tokens = prompt;
  let past = 0;
  let done = 0;
  let ci = pickStep(g, tokens.length, 0);
  let next = -1;
  return {
    step() {
      const last = done + 1 === maxNewTokens;
      next = last ? -1 : pickStep(g, 1, past + tokens.length);
      return {
        cls: ci,
        uploads: stepUploads(g, ci, tokens, past),
        ops: last ? [] : cacheOps(g, ci, next, past, tokens.length),
        read: { cls: ci, output: g.logits, offset: (tokens.length - 1) * g.vocab * 4, bytes: g.vocab * 4 },
      };
    },
    advance(id) {
      done += 1;
      past += tokens.length;
      tokens = [id];
      ci = next;
    },
  };
}

/**
 * Check the prompt and the options against the bundle before anything runs.
 * @param {{context: number, vocab: number}} g
 * @param {number[]} prompt
 * @param {GenerateOptions} options
 * @param {number} room  the most new tokens this prompt leaves room for
 */
function checkRequest(g, prompt, options, room) {
  const { maxNewTokens = 32 } = options;
  checkSampling(options);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new RangeError(`maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  if (maxNewTokens > room) {
    throw new RangeError(`a prompt of ${prompt.length} tokens and ${maxNewTokens} new ones do not fit this bundle's context of ${g.context} positions`);
  }
  for (const id of prompt) {
    if (!Number.isInteger(id) || id < 0 || id >= g.vocab) throw new RangeError(`token id ${id} is outside this model's vocabulary of ${g.vocab}`);
  }
}

/**
 * What a generation does per step: the class to run with its uploads, cache copies and the logits row to read
 * (`step`), and what follows from the token picked (`advance`).
 * @typedef {{step: () => {cls: number, uploads: Upload[], ops: CacheOp[], read: Read}, advance: (id: number) => void}} Stepper
 */

/**
 * Generate tokens after the prompt on a session whose bundle was built for generation: a decoder-only model, or
 * an encoder-decoder one (seq2seq.js: the encoder runs once, first).
 * @param {{bundle: import('./manifest.js').Bundle, _queue: Promise<any>, _generationStep: StepFn,
 *          generationStats?: GenerationStats, _encoder?: any, _options?: any}} session
 * @param {number[] | Int32Array | BigInt64Array | import('./tensor.js').Tensor} inputIds
 * @param {GenerateOptions} [options]
 * @returns {Promise<number[]>}  the new ids (an end-of-sequence id included, when one stopped the generation)
 */
export function generate(session, inputIds, options = {}) {
  const m = session.bundle.manifest;
  const seq2seq = /** @type {any} */ (m).generate?.kind === 'seq2seq';
  const prompt = promptIds(inputIds);
  const { maxNewTokens = 32, signal, onToken } = options;
  /** @type {() => Promise<Stepper>} */
  let steps;
  // what the repetition penalty counts, as in transformers: the decoder's ids (the prompt's, for a decoder only)
  let seen = [...prompt];
  if (seq2seq) {
    const s = seq2seqOf(m);
    if (prompt.length > s.encoderLength) {
      throw new RangeError(`a prompt of ${prompt.length} tokens is longer than this bundle's encoder takes (${s.encoderLength})`);
    }
    checkRequest(s, prompt, options, s.context);
    steps = () => seq2seqSteps(session, s, prompt);
    seen = [s.start];
  } else {
    const g = generationOf(m);
    checkRequest(g, prompt, options, g.context - prompt.length);
    pickStep(g, prompt.length, 0); // a clear error now for a prompt longer than the largest prompt bucket
    steps = async () => decoderSteps(g, prompt, maxNewTokens);
  }
  const eos = new Set([options.eosTokenId ?? []].flat());
  const random = seeded(options.seed ?? 0);
  const run = async () => {
    const out = [];
    const stats = { promptTokens: prompt.length, newTokens: 0, prefillMs: 0, decodeMs: 0, prefillTokensPerSecond: 0, decodeTokensPerSecond: 0 };
    let started = performance.now();
    const stepper = await steps();
    while (out.length < maxNewTokens) {
      signal?.throwIfAborted();
      const { cls, uploads, ops, read } = stepper.step();
      const logits = await session._generationStep(cls, uploads, ops, read);
      const id = nextToken(logits, seen, options, random);
      const ms = performance.now() - started;
      const phase = out.length ? 'decode' : 'prefill';
      if (phase === 'prefill') stats.prefillMs = ms;
      else stats.decodeMs += ms;
      out.push(id);
      seen.push(id);
      stats.newTokens = out.length;
      onToken?.(id, { index: out.length - 1, phase, ms });
      if (eos.has(id)) break;
      stepper.advance(id);
      started = performance.now();
    }
    stats.prefillTokensPerSecond = stats.prefillMs ? (1000 * prompt.length) / stats.prefillMs : 0;
    stats.decodeTokensPerSecond = stats.decodeMs ? (1000 * (out.length - 1)) / stats.decodeMs : 0;
    session.generationStats = stats;
    return out;
  };
  const result = session._queue.then(run);
  session._queue = result.catch(() => {});
  return result;
}
