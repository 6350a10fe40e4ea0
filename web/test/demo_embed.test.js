import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Embedder, meanPoolNormalized, rank } from '../demo/embed.js';

test('mean pooling averages the unmasked tokens of a row and normalises the result', () => {
  // [batch 2, seq 3, dim 2]; row 1 has tokens (3, 4), (1, 0) and a masked (100, 100)
  const hidden = Float32Array.from([9, 9, 9, 9, 9, 9, 3, 4, 1, 0, 100, 100]);
  const v = meanPoolNormalized(hidden, [1, 1, 0], 1, 2);
  const norm = Math.hypot(2, 2);
  assert.deepEqual(Array.from(v), [2 / norm, 2 / norm].map(Math.fround));
});

test('ranking puts the highest dot product first and keeps k results', () => {
  const vectors = [[1, 0], [0, 1], [Math.SQRT1_2, Math.SQRT1_2]].map((v) => Float32Array.from(v));
  const hits = rank(Float32Array.from([0, 1]), vectors, 2);
  assert.deepEqual(hits.map((h) => h.index), [1, 2]);
});

test('the embedder pads a short last batch and feeds only the session inputs', async () => {
  const fed = [];
  const session = {
    bundle: { manifest: { inputs: [{ name: 'input_ids', shape: [2, 4] }, { name: 'attention_mask', shape: [2, 4] }] } },
    inputNames: ['input_ids', 'attention_mask'],
    outputNames: ['last_hidden_state'],
    run: async (feeds) => {
      fed.push(feeds);
      return { last_hidden_state: { dims: [2, 4, 1], data: Float32Array.from([1, 1, 1, 1, 1, 1, 1, 1]) } };
    },
  };
  const tokenizer = {
    encode: (text, n) => ({
      inputIds: Array(n).fill(text.length), attentionMask: [1, 1, 0, 0], tokenTypeIds: Array(n).fill(0),
    }),
  };
  class Tensor { constructor(type, data, dims) { Object.assign(this, { type, data, dims }); } }
  const out = await new Embedder(session, tokenizer, Tensor).embed(['abc', 'de', 'f']);
  assert.equal(out.length, 3);
  assert.equal(fed.length, 2);
  assert.deepEqual(Object.keys(fed[1]), ['input_ids', 'attention_mask']);
  assert.deepEqual(fed[1].input_ids.data.slice(0, 4), [1, 1, 1, 1]);
  assert.deepEqual(fed[1].input_ids.data.slice(4), [0, 0, 0, 0]); // the padding row is an empty text
  assert.deepEqual(fed[1].input_ids.dims, [2, 4]);
});
