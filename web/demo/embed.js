// Sentence embeddings as sentence-transformers makes them for all-MiniLM-L6-v2: the encoder's last hidden state,
// mean-pooled over the attention mask, then L2-normalised; and ranking by cosine similarity (a dot product of
// normalised vectors). The session's input shape [batch, seq] is read from the bundle's manifest: texts are
// truncated to seq and run `batch` at a time. A bundle built with length buckets takes any length up to seq, so
// each batch is cut to its longest text (the runtime pads it to the nearest bucket); otherwise texts pad to seq.

/** @typedef {import('../tokenizer.js').WordPieceTokenizer} WordPieceTokenizer */

/**
 * Mean of the hidden states of the unmasked tokens of one row, divided by its L2 norm (with sentence-transformers'
 * clamps: a mask sum of at least 1e-9, a norm of at least 1e-12).
 * @param {Float32Array} hidden  [batch, seq, dim]
 * @param {number[]} mask  the row's attention mask, seq long
 * @param {number} row
 * @param {number} dim
 */
export function meanPoolNormalized(hidden, mask, row, dim) {
  const seq = mask.length;
  const sum = new Float64Array(dim);
  let count = 0;
  for (let t = 0; t < seq; t++) {
    if (!mask[t]) continue;
    count += mask[t];
    const base = (row * seq + t) * dim;
    for (let d = 0; d < dim; d++) sum[d] += hidden[base + d] * mask[t];
  }
  const mean = sum.map((v) => v / Math.max(count, 1e-9));
  const norm = Math.max(Math.sqrt(mean.reduce((s, v) => s + v * v, 0)), 1e-12);
  return Float32Array.from(mean, (v) => v / norm);
}

/**
 * The `k` best matches of `query` among `vectors` (all normalised), best first.
 * @param {Float32Array} query
 * @param {Float32Array[]} vectors
 * @param {number} k
 * @returns {{index: number, score: number}[]}
 */
export function rank(query, vectors, k) {
  const scored = vectors.map((v, index) => {
    let score = 0;
    for (let d = 0; d < v.length; d++) score += v[d] * query[d];
    return { index, score };
  });
  return scored.sort((a, b) => b.score - a.score || a.index - b.index).slice(0, k);
}

export class Embedder {
  /**
   * @param {any} session  an InferenceSession (`run`, `inputNames`, `bundle.manifest`)
   * @param {WordPieceTokenizer} tokenizer
   * @param {any} Tensor  the runtime's Tensor class
   */
  constructor(session, tokenizer, Tensor) {
    const ids = session.bundle.manifest.inputs.find((/** @type {any} */ t) => t.name === 'input_ids');
    if (!ids || ids.shape.length !== 2) throw new Error('the bundle has no input_ids input of shape [batch, seq]');
    /** @type {number} */ this.batch = ids.shape[0];
    /** @type {number} */ this.seq = ids.shape[1];
    const dynamic = session.bundle.manifest.dynamic;
    const at = session.bundle.manifest.inputs.indexOf(ids);
    /** Whether the bundle takes any sequence length up to seq. */
    this.anyLength = Boolean(dynamic && dynamic.inputs[at][1] !== null);
    this.session = session;
    this.tokenizer = tokenizer;
    this.Tensor = Tensor;
  }

  /**
   * Embeddings of `texts`, `batch` at a time (a short last batch is padded with empty texts).
   * @param {string[]} texts
   * @param {(done: number, total: number) => void} [onProgress]
   * @returns {Promise<Float32Array[]>}
   */
  async embed(texts, onProgress) {
    /** @type {Float32Array[]} */ const out = [];
    for (let start = 0; start < texts.length; start += this.batch) {
      const chunk = texts.slice(start, start + this.batch);
      const encoded = Array.from({ length: this.batch }, (_, i) => this.tokenizer.encode(chunk[i] ?? '', this.seq));
      const used = this.anyLength
        ? Math.max(1, ...encoded.map((r) => r.attentionMask.reduce((a, b) => a + b, 0))) : this.seq;
      const rows = encoded.map((r) => ({
        inputIds: r.inputIds.slice(0, used), attentionMask: r.attentionMask.slice(0, used), tokenTypeIds: r.tokenTypeIds.slice(0, used),
      }));
      const columns = {
        input_ids: rows.flatMap((r) => r.inputIds),
        attention_mask: rows.flatMap((r) => r.attentionMask),
        token_type_ids: rows.flatMap((r) => r.tokenTypeIds),
      };
      /** @type {Record<string, any>} */ const feeds = {};
      for (const name of this.session.inputNames) {
        feeds[name] = new this.Tensor('int64', /** @type {any} */ (columns)[name], [this.batch, used]);
      }
      const result = await this.session.run(feeds);
      const hidden = result.last_hidden_state || result[this.session.outputNames[0]];
      const dim = hidden.dims[hidden.dims.length - 1];
      chunk.forEach((_, i) => out.push(meanPoolNormalized(hidden.data, rows[i].attentionMask, i, dim)));
      if (onProgress) onProgress(out.length, texts.length);
    }
    return out;
  }
}
