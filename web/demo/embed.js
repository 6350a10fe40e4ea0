// Sentence embeddings as sentence-transformers makes them for all-MiniLM-L6-v2 (the runtime's feature extractor:
// mean pooling over the attention mask, then L2 normalisation), and ranking by cosine similarity (a dot product
// of normalised vectors).

import { featureExtractor } from '../pipeline.js';

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
   * @param {any} session  an InferenceSession of a sentence encoder with input_ids [batch, seq]
   * @param {any} tokenizerJson  its parsed tokenizer.json (WordPiece)
   */
  constructor(session, tokenizerJson) {
    this.extract = featureExtractor(session, tokenizerJson, { pooling: 'mean', normalize: true });
    /** @type {number} */ this.batch = this.extract.batch;
    /** @type {number} */ this.seq = this.extract.seq;
    /** Whether the bundle takes any sequence length up to seq. */
    this.anyLength = this.extract.anyLength;
  }

  /**
   * Embeddings of `texts`, `batch` at a time.
   * @param {string[]} texts
   * @param {(done: number, total: number) => void} [onProgress]
   * @returns {Promise<Float32Array[]>}
   */
  async embed(texts, onProgress) {
    const t = await this.extract(texts, { onProgress });
    const dim = t.dims[1];
    const data = /** @type {Float32Array} */ (t.data);
    return Array.from({ length: t.dims[0] }, (_, i) => data.slice(i * dim, (i + 1) * dim));
  }
}
