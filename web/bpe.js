// Token ids from text for the tokenizer.json files of BPE and Unigram models (GPT-2, Qwen2, Llama, T5 and their
// kin), the steps of the Rust `tokenizers`: added tokens matched in the raw text, then the normalizer, the
// pre-tokenizer, the model, and the post-processor's special tokens. Pure: no DOM, no fetch.
//
//   const tok = new ModelTokenizer(await (await fetch('/tokenizer.json')).json());
//   const ids = tok.encode('Once upon a time');   // with the post-processor's special tokens, as Python's encode
//
// What it does not read is refused by name (a normalizer, pre-tokenizer or model type it lacks), never guessed.

import { bertNormalize, bertPreTokenize } from './tokenizer.js';

const BYTE_LEVEL_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const UNK_PENALTY = 10; // below the lowest piece score: an unknown character's score in a Unigram lattice

/** GPT-2's byte -> printable character table (the ByteLevel pre-tokenizer). */
const BYTE_CHARS = (() => {
  const keep = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const table = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(keep.includes(b) ? b : next++);
  return table;
})();

/**
 * A Rust-style regex from tokenizer.json as a global unicode JS RegExp (inline (?i:...) groups are lowered).
 * @param {string} source
 */
function regex(source) {
  // (?i:'s|'t) -> the alternatives in both cases; JS has no scoped flags
  const lowered = source.replace(/\(\?i:([^()]*)\)/g, (_, /** @type {string} */ body) => `(?:${body.split('|')
    .map((alt) => alt.replace(/[a-z]/g, (c) => `[${c}${c.toUpperCase()}]`)).join('|')})`);
  return new RegExp(lowered, 'gu');
}

/** @param {any} p  a pattern: {String} or {Regex} */
function pattern(p) {
  if (p && typeof p.String === 'string') return new RegExp(p.String.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu');
  if (p && typeof p.Regex === 'string') return regex(p.Regex);
  throw new Error(`tokenizer.json: a pattern ${JSON.stringify(p)} webjit cannot read`);
}

/** Characters Nmt (SentencePiece's normalizer) drops, and those it makes a space. */
const NMT_DROP = /[\u0001-\u0008\u000B\u000E-\u001F\u007F\u008F\u009F]/gu;
const NMT_SPACE = /[\u0009\u000A\u000C\u000D\u1680\u200B-\u200F\u2028\u2029\u2581\uFEFF\uFFFD]/gu;

/**
 * The normalizer as a function of text.
 * @param {any} n
 * @returns {(s: string) => string}
 */
function normalizer(n) {
  if (!n) return (s) => s;
  switch (n.type) {
    case 'Sequence': {
      /** @type {((s: string) => string)[]} */ const fs = n.normalizers.map(normalizer);
      return (s) => fs.reduce((x, f) => f(x), s);
    }
    case 'NFC': case 'NFD': case 'NFKC': case 'NFKD': return (s) => s.normalize(n.type);
    case 'Lowercase': return (s) => s.toLowerCase();
    case 'Prepend': return (s) => (s ? n.prepend + s : s);
    case 'Replace': { const re = pattern(n.pattern); return (s) => s.replace(re, n.content); }
    case 'Strip': return (s) => { let x = s; if (n.strip_left) x = x.replace(/^\s+/u, ''); if (n.strip_right) x = x.replace(/\s+$/u, ''); return x; };
    case 'Nmt': return (s) => s.replace(NMT_DROP, '').replace(NMT_SPACE, ' ');
    case 'BertNormalizer': {
      const lowercase = n.lowercase !== false;
      const o = { clean: n.clean_text !== false, chinese: n.handle_chinese_chars !== false, lowercase,
        stripAccents: n.strip_accents === null || n.strip_accents === undefined ? lowercase : n.strip_accents };
      return (s) => bertNormalize(s, o);
    }
    default: throw new Error(`tokenizer.json: normalizer ${n.type} is not one webjit reads`);
  }
}

/**
 * Split `s` by a global regex into the matches and the text between them (Split's Isolated behaviour).
 * @param {string} s
 * @param {RegExp} re
 * @param {boolean} [invert]
 */
function isolate(s, re, invert = false) {
  const out = [];
  let at = 0;
  for (const m of s.matchAll(re)) {
    if (m.index > at && !invert) out.push(s.slice(at, m.index));
    if (m[0]) out.push(m[0]);
    at = m.index + m[0].length;
  }
  if (at < s.length && !invert) out.push(s.slice(at));
  return out;
}

/**
 * The pre-tokenizer as a function from text to words.
 * @param {any} p
 * @returns {(s: string, first: boolean) => string[]}
 */
function preTokenizer(p) {
  if (!p) return (s) => [s];
  switch (p.type) {
    case 'Sequence': {
      /** @type {((s: string, first: boolean) => string[])[]} */ const fs = p.pretokenizers.map(preTokenizer);
      return (s, first) => fs.reduce((/** @type {string[]} */ words, f) => words.flatMap((w, i) => f(w, first && i === 0)), [s]);
    }
    case 'ByteLevel': return (s) => {
      const text = p.add_prefix_space && !s.startsWith(' ') ? ` ${s}` : s;
      const words = p.use_regex === false ? [text] : (text.match(BYTE_LEVEL_SPLIT) || []);
      const enc = new TextEncoder();
      return words.map((w) => Array.from(enc.encode(w), (b) => BYTE_CHARS[b]).join(''));
    };
    case 'Split': {
      if (p.behavior !== 'Isolated') throw new Error(`tokenizer.json: Split behaviour ${p.behavior} is not one webjit reads`);
      const re = pattern(p.pattern);
      return (s) => isolate(s, re, p.invert);
    }
    case 'Metaspace': return (s, first) => {
      let text = s.replaceAll(' ', p.replacement);
      const prepend = p.prepend_scheme ?? (p.add_prefix_space === false ? 'never' : 'always');
      if ((prepend === 'always' || (prepend === 'first' && first)) && !text.startsWith(p.replacement)) text = p.replacement + text;
      if (p.split === false) return [text];
      const words = [];
      let at = 0;
      for (let i = 1; i <= text.length; i++) {
        if (i === text.length || text.startsWith(p.replacement, i)) { if (i > at) words.push(text.slice(at, i)); at = i; }
      }
      return words;
    };
    case 'BertPreTokenizer': return (s) => bertPreTokenize(s);
    case 'WhitespaceSplit': return (s) => s.split(/\s+/u).filter(Boolean);
    case 'Whitespace': return (s) => s.match(/\w+|[^\w\s]+/gu) || [];
    default: throw new Error(`tokenizer.json: pre-tokenizer ${p.type} is not one webjit reads`);
  }
}

/**
 * BPE: each word's characters (or, with byte_fallback, the byte tokens of those outside the vocabulary) merged
 * by rank, lowest first.
 * @param {any} m
 * @returns {(word: string) => number[]}
 */
function bpe(m) {
  const vocab = new Map(Object.entries(m.vocab).map(([k, v]) => [k, /** @type {number} */ (v)]));
  /** @type {Map<string, number>} */
  const ranks = new Map();
  m.merges.forEach((/** @type {string | string[]} */ merge, /** @type {number} */ i) => {
    const [a, b] = typeof merge === 'string' ? merge.split(' ') : merge;
    ranks.set(`${a} ${b}`, i);
  });
  const unk = m.unk_token ? vocab.get(m.unk_token) : undefined;
  const prefix = m.continuing_subword_prefix || '';
  const suffix = m.end_of_word_suffix || '';
  /** @type {Map<string, number[]>} */
  const memo = new Map();
  return (word) => {
    const hit = memo.get(word);
    if (hit) return hit;
    if (m.ignore_merges && vocab.has(word)) return [/** @type {number} */ (vocab.get(word))];
    const chars = Array.from(word);
    let parts = chars.map((c, i) => (i > 0 ? prefix : '') + c + (i === chars.length - 1 ? suffix : ''));
    for (;;) {
      let best = -1;
      let rank = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < rank) { rank = r; best = i; }
      }
      if (best < 0) break;
      // the right part's continuing prefix goes: the merged token is spelled as the vocabulary spells it
      const right = prefix && parts[best + 1].startsWith(prefix) ? parts[best + 1].slice(prefix.length) : parts[best + 1];
      parts = [...parts.slice(0, best), parts[best] + right, ...parts.slice(best + 2)];
    }
    /** @type {number[]} */ const ids = [];
    let lastUnk = false;
    for (const piece of parts) {
      const id = vocab.get(piece);
      if (id !== undefined) { ids.push(id); lastUnk = false; continue; }
      if (m.byte_fallback) {
        const bytes = Array.from(new TextEncoder().encode(piece), (b) => vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
        if (bytes.every((b) => b !== undefined)) { ids.push(.../** @type {number[]} */ (bytes)); lastUnk = false; continue; }
      }
      if (unk === undefined) throw new Error(`tokenizer.json: '${piece}' is not in the vocabulary and there is no unk_token`);
      if (!(m.fuse_unk && lastUnk)) ids.push(unk);
      lastUnk = true;
    }
    memo.set(word, ids);
    return ids;
  };
}

/**
 * Unigram: the most likely segmentation of each word (Viterbi over the pieces' scores; an unknown character is
 * one piece at the lowest score minus UNK_PENALTY, and unknown runs fuse).
 * @param {any} m
 * @returns {(word: string) => number[]}
 */
function unigram(m) {
  /** @type {Map<string, [number, number]>} */
  const pieces = new Map(m.vocab.map((/** @type {[string, number]} */ [piece, score], /** @type {number} */ id) => [piece, [id, score]]));
  const longest = Math.max(...m.vocab.map((/** @type {[string, number]} */ [p]) => Array.from(p).length));
  const unkScore = Math.min(...m.vocab.map((/** @type {[string, number]} */ [, s]) => s)) - UNK_PENALTY;
  const unk = m.unk_id;
  return (word) => {
    const chars = Array.from(word);
    const n = chars.length;
    const best = new Float64Array(n + 1).fill(-Infinity);
    const from = new Int32Array(n + 1);
    const id = new Int32Array(n + 1);
    best[0] = 0;
    for (let i = 0; i < n; i++) {
      if (best[i] === -Infinity) continue;
      let single = false;
      for (let len = 1; len <= Math.min(longest, n - i); len++) {
        const hit = pieces.get(chars.slice(i, i + len).join(''));
        if (!hit) continue;
        if (len === 1) single = true;
        const score = best[i] + hit[1];
        if (score > best[i + len]) { best[i + len] = score; from[i + len] = i; id[i + len] = hit[0]; }
      }
      if (!single && best[i] + unkScore > best[i + 1]) { best[i + 1] = best[i] + unkScore; from[i + 1] = i; id[i + 1] = unk; }
    }
    /** @type {number[]} */ const out = [];
    for (let at = n; at > 0; at = from[at]) out.push(id[at]);
    out.reverse();
    return out.filter((t, i) => !(t === unk && out[i - 1] === unk));
  };
}

export class ModelTokenizer {
  /** @param {any} json  a parsed tokenizer.json with a BPE or Unigram model */
  constructor(json) {
    const type = json.model && json.model.type;
    if (type !== 'BPE' && type !== 'Unigram') throw new Error(`tokenizer.json: model ${type} is not BPE or Unigram`);
    this.model = type === 'BPE' ? bpe(json.model) : unigram(json.model);
    this.normalize = normalizer(json.normalizer);
    this.preTokenize = preTokenizer(json.pre_tokenizer);
    /** @type {Map<string, number>} */
    this.added = new Map((json.added_tokens || []).map((/** @type {any} */ t) => [t.content, t.id]));
    const escaped = [...this.added.keys()].sort((a, b) => b.length - a.length).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.addedPattern = escaped.length ? new RegExp(`(${escaped.join('|')})`, 'u') : null;
    /** @type {number[]} */ this.prefixIds = [];
    /** @type {number[]} */ this.suffixIds = [];
    const post = json.post_processor;
    if (post && post.type === 'TemplateProcessing') {
      let seen = false;
      for (const item of post.single) {
        if (item.Sequence) { seen = true; continue; }
        const ids = post.special_tokens[item.SpecialToken.id].ids;
        (seen ? this.suffixIds : this.prefixIds).push(...ids);
      }
    } else if (post && !['ByteLevel'].includes(post.type)) {
      throw new Error(`tokenizer.json: post-processor ${post.type} is not one webjit reads`);
    }
  }

  /**
   * The ids of `text` without special tokens around it.
   * @param {string} text
   */
  tokenize(text) {
    const parts = this.addedPattern ? text.split(this.addedPattern) : [text];
    /** @type {number[]} */ const ids = [];
    let first = true;
    parts.forEach((part, i) => {
      if (!part) return;
      if (i % 2 === 1) { ids.push(/** @type {number} */ (this.added.get(part))); first = false; return; }
      const normalized = this.normalize(part);
      if (!normalized) return;
      for (const word of this.preTokenize(normalized, first)) ids.push(...this.model(word));
      first = false;
    });
    return ids;
  }

  /**
   * The ids of `text` with the post-processor's special tokens, as Python's `encode(text).ids`.
   * @param {string} text
   */
  encode(text) {
    return [...this.prefixIds, ...this.tokenize(text), ...this.suffixIds];
  }
}
