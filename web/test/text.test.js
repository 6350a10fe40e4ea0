// The Detokenizer's and TextStreamer's API; their text is checked against Hugging Face `tokenizers` by
// tests/unit/test_text_decode.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Detokenizer, TextStreamer } from '../text.js';

const bytes = ['<0xE2>', '<0x82>', '<0xAC>']; // the UTF-8 of one character, as byte_fallback tokens
const llamaLike = {
  model: { type: 'BPE', vocab: Object.fromEntries(['<unk>', '<s>', '▁a', ...bytes].map((t, i) => [t, i])) },
  added_tokens: [{ id: 1, content: '<s>', special: true }],
  decoder: {
    type: 'Sequence',
    decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
      { type: 'Strip', content: ' ', start: 1, stop: 0 }],
  },
};

test('a decoder the module does not know is refused by name', () => {
  assert.throws(() => new Detokenizer({ model: { vocab: {} }, decoder: { type: 'CTC' } }), /decoder CTC/);
  const regex = { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' };
  assert.throws(() => new Detokenizer({ model: { vocab: {} }, decoder: regex }), /Regex/);
});

test('a streamer holds back the bytes of a character until the run of byte tokens ends', () => {
  const stream = new TextStreamer(llamaLike);
  const pieces = [1, 2, 3, 4, 5].map((id) => stream.push(id));
  assert.deepEqual(pieces.slice(2), ['', '', ''], 'nothing of the byte run shows before it ends');
  assert.equal(pieces.join('') + stream.flush(), new Detokenizer(llamaLike).decode([1, 2, 3, 4, 5]));
});

test('after a flush the streamer starts a new sequence, whose first token is treated as first again', () => {
  const detok = new Detokenizer(llamaLike);
  const stream = new TextStreamer(detok);
  const once = stream.push(2) + stream.flush();
  assert.equal(stream.push(2) + stream.flush(), once);
  assert.equal(once, detok.decode([2]));
});

test('special tokens are skipped by default and kept on request, in decode and in a stream', () => {
  const detok = new Detokenizer(llamaLike);
  assert.notEqual(detok.decode([1, 2]), detok.decode([1, 2], { skipSpecialTokens: false }));
  const keep = new TextStreamer(detok, { skipSpecialTokens: false });
  assert.equal(keep.push(1) + keep.push(2) + keep.flush(), detok.decode([1, 2], { skipSpecialTokens: false }));
});

test('ids outside the vocabulary are dropped, and no ids decode to the empty string', () => {
  const detok = new Detokenizer(llamaLike);
  assert.equal(detok.decode([2, 99]), detok.decode([2]));
  assert.equal(detok.decode([]), '');
  assert.equal(new TextStreamer(detok).push(99), '');
});
