// pipeline(): a bundle built from a hub-style folder (`webjit build FOLDER`, the manifest's `pipeline` section)
// with its tokenizer and pooling around the model, in the shape of transformers.js's pipelines.
//
//   const extractor = await webjit.pipeline('feature-extraction', '/minilm-bundle/');
//   const embeddings = await extractor(['A cat sat on the mat.', 'Dogs bark.'], {pooling: 'mean', normalize: true});
//   embeddings.dims;  // [2, 384]
//
//   const generator = await webjit.pipeline('text-generation', '/gpt2-bundle/');
//   const {ids, text} = await generator('Once upon a time', {maxNewTokens: 32, onText: (t) => show(t)});

import { InferenceSession } from './session.js';
import { Tensor } from './tensor.js';
import { WordPieceTokenizer } from './tokenizer.js';
import { ModelTokenizer } from './bpe.js';
import { Detokenizer, TextStreamer } from './text.js';

const TASKS = ['feature-extraction', 'text-generation', 'text2text-generation'];
const POOLINGS = ['mean', 'cls', 'max'];

/**
 * @typedef {{task: string, tokenizer: string | null, maxLength: number, pooling?: string | null, normalize?: boolean,
 *            output?: string, special?: {eosTokenId?: number, bosTokenId?: number, padTokenId?: number}}} PipelineSection
 * @typedef {{pooling?: 'mean' | 'cls' | 'max', normalize?: boolean}} ExtractOptions
 * @typedef {import('./generate.js').GenerateOptions & {onText?: (text: string) => void, skipSpecialTokens?: boolean}} TextOptions
 */

/**
 * Load a bundle for `task` and give the function that runs it on text.
 * @param {'feature-extraction' | 'text-generation' | 'text2text-generation'} task
 * @param {string | URL} url  the bundle
 * @param {import('./session.js').SessionOptions} [options]  as for InferenceSession.create
 */
export async function pipeline(task, url, options = {}) {
  if (!TASKS.includes(task)) throw new Error(`unknown task '${task}'; webjit's pipelines: ${TASKS.join(', ')}`);
  const session = await InferenceSession.create(url, options);
  try {
    const p = /** @type {PipelineSection | undefined} */ (/** @type {any} */ (session.bundle.manifest).pipeline);
    if (!p) throw new Error('this bundle has no pipeline settings: build it from a hub-style folder (webjit build FOLDER)');
    if (p.task !== task) throw new Error(`this bundle is for '${p.task}', not '${task}'`);
    const json = p.tokenizer ? JSON.parse(new TextDecoder().decode(await session.bundle.bytes(p.tokenizer))) : null;
    return task === 'feature-extraction' ? featureExtractor(session, json, p) : textGeneration(session, p, json);
  } catch (e) {
    session.release();
    throw e;
  }
}

/**
 * Token ids from text with a bundle's tokenizer.json: WordPiece (tokenizer.js), BPE or Unigram (bpe.js); null
 * without one. For generation, `prompt` gives the ids as Python's encode does (the model's special tokens too).
 * @param {any} json
 * @returns {{prompt: (text: string) => number[]} | null}
 */
function textEncoder(json) {
  const type = json && json.model && json.model.type;
  if (type === 'WordPiece') { const t = new WordPieceTokenizer(json); return { prompt: (text) => t.tokenize(text) }; }
  if (type === 'BPE' || type === 'Unigram') { const t = new ModelTokenizer(json); return { prompt: (text) => t.encode(text) }; }
  return null;
}

/**
 * The feature extractor over a session: texts tokenized with a WordPiece tokenizer.json, run `batch` at a time
 * (the bundle's batch dim; a short last batch is padded with empty texts), each batch cut to its longest text
 * when the bundle takes any length (the runtime pads it to the nearest class), pooled under the attention mask
 * and normalised. pipeline() makes one from a bundle's settings; a page with a session of its own (the demo's
 * compiled bundles) gives them.
 * @param {any} session  an InferenceSession
 * @param {any} json  the parsed tokenizer.json
 * @param {{maxLength?: number, pooling?: string | null, normalize?: boolean, output?: string}} settings
 */
export function featureExtractor(session, json, settings = {}) {
  const tok = json && json.model && json.model.type === 'WordPiece' ? new WordPieceTokenizer(json) : null;
  if (!tok) throw new Error(`feature-extraction needs a WordPiece tokenizer.json in the bundle (this one has ${json ? json.model.type : 'none'})`);
  const m = session.bundle.manifest;
  const names = m.inputs.map((/** @type {any} */ t) => t.name);
  const idsInfo = m.inputs.find((/** @type {any} */ t) => t.name === 'input_ids');
  if (!idsInfo || idsInfo.shape.length !== 2) throw new Error('feature-extraction needs an input_ids input of shape [batch, seq]');
  const [batch, seq] = idsInfo.shape;
  const anyLength = Boolean(m.dynamic && m.dynamic.inputs[m.inputs.indexOf(idsInfo)][1] !== null);
  const maxLength = Math.min(settings.maxLength ?? seq, seq);
  const tokens = m.outputs.find((/** @type {any} */ t) => t.name === 'last_hidden_state' || t.name === 'token_embeddings')
    || (settings.output === undefined ? m.outputs[0] : undefined);
  /**
   * Embed each text: [texts, dim].
   * @param {string | string[]} texts
   * @param {ExtractOptions & {onProgress?: (done: number, total: number) => void}} [options]
   * @returns {Promise<Tensor>}
   */
  const extract = async (texts, options = {}) => {
    const list = typeof texts === 'string' ? [texts] : texts;
    if (!Array.isArray(list) || !list.every((t) => typeof t === 'string')) throw new TypeError('the extractor takes a string or a list of strings');
    const pooling = options.pooling ?? settings.pooling ?? (settings.output === 'sentence_embedding' ? null : 'mean');
    if (pooling !== null && !POOLINGS.includes(pooling)) throw new RangeError(`pooling must be one of ${POOLINGS.join(', ')}, got ${pooling}`);
    const normalize = options.normalize ?? settings.normalize ?? false;
    /** @type {Float32Array[]} */
    const rows = [];
    for (let start = 0; start < list.length; start += batch) {
      const chunk = list.slice(start, start + batch);
      const encoded = Array.from({ length: batch }, (_, i) => tok.encode(chunk[i] ?? '', maxLength));
      const n = anyLength ? Math.max(1, ...encoded.map((e) => e.attentionMask.reduce((a, b) => a + b, 0))) : seq;
      const cut = encoded.map((e) => ({ input_ids: e.inputIds.slice(0, n), attention_mask: e.attentionMask.slice(0, n),
        token_type_ids: e.tokenTypeIds.slice(0, n) }));
      /** @type {Record<string, Tensor>} */
      const feeds = {};
      for (const name of names) {
        if (!(name in cut[0])) throw new Error(`feature-extraction feeds input_ids, attention_mask and token_type_ids; this model also takes '${name}'`);
        const data = cut.flatMap((c) => /** @type {any} */ (c)[name].concat(Array(n - c.input_ids.length).fill(0)));
        feeds[name] = new Tensor('int64', BigInt64Array.from(data, (v) => BigInt(v)), [batch, n]);
      }
      const out = await session.run(feeds);
      chunk.forEach((_, b) => {
        let row;
        if (pooling === null) {
          const t = out[/** @type {string} */ (settings.output)];
          const dim = t.dims[t.dims.length - 1];
          row = Float32Array.from(/** @type {Float32Array} */ (t.data).subarray(b * dim, (b + 1) * dim));
        } else {
          if (!tokens) throw new Error(`pooling '${pooling}' needs the model's token embeddings (last_hidden_state)`);
          row = pool(out[tokens.name], b, cut[b].attention_mask, pooling);
        }
        if (normalize) {
          const norm = Math.sqrt(row.reduce((a, x) => a + x * x, 0));
          for (let i = 0; i < row.length; i++) row[i] /= Math.max(norm, 1e-12);
        }
        rows.push(row);
      });
      options.onProgress?.(rows.length, list.length);
    }
    const dim = rows.length ? rows[0].length : 0;
    const data = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => data.set(r, i * dim));
    return new Tensor('float32', data, [rows.length, dim]);
  };
  return Object.assign(extract, { session, batch, seq: maxLength, anyLength, dispose: () => session.release() });
}

/**
 * One embedding from row `b` of token embeddings [batch, n, dim] under its mask (a mean over at least 1e-9
 * tokens, as sentence-transformers clamps it).
 * @param {Tensor} t
 * @param {number} b
 * @param {number[]} mask
 * @param {string} pooling
 */
function pool(t, b, mask, pooling) {
  const [, n, dim] = t.dims;
  const x = /** @type {Float32Array} */ (t.data).subarray(b * n * dim, (b + 1) * n * dim);
  const out = new Float32Array(dim);
  if (pooling === 'cls') return out.map((_, d) => x[d]);
  if (pooling === 'max') out.fill(-Infinity);
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (!mask[i]) continue;
    count += 1;
    for (let d = 0; d < dim; d++) out[d] = pooling === 'max' ? Math.max(out[d], x[i * dim + d]) : out[d] + x[i * dim + d];
  }
  if (pooling === 'mean') for (let d = 0; d < dim; d++) out[d] /= Math.max(count, 1e-9);
  return out;
}

/**
 * @param {any} session
 * @param {PipelineSection} p
 * @param {any} json
 */
function textGeneration(session, p, json) {
  const tok = textEncoder(json);
  const detok = json ? new Detokenizer(json) : null;
  /**
   * Continue a text (or token ids); streams the text through onText.
   * @param {string | number[]} prompt
   * @param {TextOptions} [options]
   * @returns {Promise<{ids: number[], text: string | null}>}
   */
  const generate = async (prompt, options = {}) => {
    let ids;
    if (typeof prompt === 'string') {
      if (!tok) throw new Error("this bundle has no tokenizer webjit encodes with (WordPiece, BPE, Unigram); pass the prompt's token ids");
      ids = tok.prompt(prompt);
    } else {
      ids = prompt;
    }
    const skip = options.skipSpecialTokens ?? true;
    const streamer = detok && options.onText ? new TextStreamer(detok, { skipSpecialTokens: skip }) : null;
    const onToken = options.onToken;
    const out = await session.generate(ids, {
      eosTokenId: p.special?.eosTokenId,
      ...options,
      onToken: (/** @type {number} */ id, /** @type {any} */ info) => {
        if (streamer) { const t = streamer.push(id); if (t) /** @type {(t: string) => void} */ (options.onText)(t); }
        onToken?.(id, info);
      },
    });
    if (streamer) { const rest = streamer.flush(); if (rest) /** @type {(t: string) => void} */ (options.onText)(rest); }
    return { ids: out, text: detok ? detok.decode(out, { skipSpecialTokens: skip }) : null };
  };
  return Object.assign(generate, { session, dispose: () => session.release() });
}
