import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Embedder, rank } from '../demo/embed.js';

test('ranking puts the highest dot product first and keeps k results', () => {
  const vectors = [[1, 0], [0, 1], [Math.SQRT1_2, Math.SQRT1_2]].map((v) => Float32Array.from(v));
  const hits = rank(Float32Array.from([0, 1]), vectors, 2);
  assert.deepEqual(hits.map((h) => h.index), [1, 2]);
});

test('the embedder pads a short last batch, feeds only the session inputs and mean-pools under the mask', async () => {
  const fed = [];
  const vocab = { '[PAD]': 0, '[UNK]': 1, '[CLS]': 2, '[SEP]': 3, abc: 4, de: 5, f: 6 };
  const tokenizerJson = { model: { type: 'WordPiece', vocab, unk_token: '[UNK]' }, normalizer: { type: 'BertNormalizer' } };
  const session = {
    bundle: { manifest: { inputs: [{ name: 'input_ids', shape: [2, 4] }, { name: 'attention_mask', shape: [2, 4] }],
      outputs: [{ name: 'last_hidden_state', shape: [2, 4, 2] }] } },
    run: async (feeds) => {
      fed.push(feeds);
      // token embeddings (id, 1) per position: the mean over [CLS] word [SEP] is ((2 + w + 3) / 3, 1)
      const ids = Array.from(feeds.input_ids.data, Number);
      return { last_hidden_state: { dims: [2, 4, 2], data: Float32Array.from(ids.flatMap((id) => [id, 1])) } };
    },
  };
  const out = await new Embedder(session, tokenizerJson).embed(['abc', 'de', 'f']);
  assert.equal(out.length, 3);
  assert.equal(fed.length, 2);
  assert.deepEqual(Object.keys(fed[1]), ['input_ids', 'attention_mask']);
  assert.deepEqual(Array.from(fed[1].input_ids.data, Number), [2, 6, 3, 0, 2, 3, 0, 0]); // then an empty text pads
  assert.deepEqual(fed[1].input_ids.dims, [2, 4]);
  const mean = (w) => [(2 + w + 3) / 3, 1];
  out.forEach((v, i) => {
    const [x, y] = mean([4, 5, 6][i]);
    const norm = Math.hypot(x, y);
    assert.ok(Math.abs(v[0] - x / norm) < 1e-6 && Math.abs(v[1] - y / norm) < 1e-6, `text ${i}: ${Array.from(v)}`);
  });
});
