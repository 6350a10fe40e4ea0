// A WordPiece (BERT) tokenizer driven by a Hugging Face tokenizer.json, the same steps as the Rust `tokenizers`:
//
//   added tokens ([CLS], [SEP], ... matched verbatim in the raw text)
//   -> BertNormalizer (clean text, spaces around CJK ideographs, strip accents, lowercase)
//   -> BertPreTokenizer (split on whitespace, punctuation as words of its own)
//   -> WordPiece (greedy longest match, `##` continuation, [UNK] for words too long or with no match)
//   -> [CLS] ... [SEP], truncated and padded to a fixed length, with attention mask and token type ids.
//
// Pure: no DOM, no fetch, so it also runs under `node --test`. pipeline.js encodes with it.
//
//   const tok = new WordPieceTokenizer(await (await fetch('/tokenizer.json')).json());
//   const {inputIds, attentionMask, tokenTypeIds} = tok.encode('A cat sat on the mat.', 32);

const WHITESPACE = /\p{White_Space}/u;
const OTHER = /\p{C}/u; // Cc, Cf, Cs, Co, Cn: what clean_text removes (but \t \n \r)
const MARK = /\p{Mn}/u;
const PUNCT = /[\p{P}!-/:-@[-`{-~]/u; // Unicode punctuation and all of ASCII punctuation ($ + < = > ^ ` | ~ too)

/** @param {number} cp */
function isChinese(cp) {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df)
    || (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b920 && cp <= 0x2ceaf)
    || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
}

/**
 * @typedef {{inputIds: number[], attentionMask: number[], tokenTypeIds: number[]}} Encoding
 */

/**
 * BertNormalizer: control characters dropped and whitespace made spaces (clean), spaces around CJK ideographs
 * (chinese), accents stripped, lowercase.
 * @param {string} text
 * @param {{clean: boolean, chinese: boolean, stripAccents: boolean, lowercase: boolean}} o
 */
export function bertNormalize(text, o) {
  let out = '';
  for (const c of text) {
    const cp = /** @type {number} */ (c.codePointAt(0));
    if (o.clean) {
      if (cp === 0 || cp === 0xfffd || (OTHER.test(c) && c !== '\t' && c !== '\n' && c !== '\r')) continue;
      if (WHITESPACE.test(c)) { out += ' '; continue; }
    }
    out += o.chinese && isChinese(cp) ? ` ${c} ` : c;
  }
  if (o.stripAccents) out = [...out.normalize('NFD')].filter((c) => !MARK.test(c)).join('');
  if (o.lowercase) out = [...out].map((c) => c.toLowerCase()).join('');
  return out;
}

/**
 * BertPreTokenizer: words split on whitespace, each punctuation character a word of its own.
 * @param {string} text
 */
export function bertPreTokenize(text) {
  /** @type {string[]} */ const words = [];
  let word = '';
  for (const c of text) {
    if (WHITESPACE.test(c) || PUNCT.test(c)) {
      if (word) words.push(word);
      word = '';
      if (!WHITESPACE.test(c)) words.push(c);
    } else {
      word += c;
    }
  }
  if (word) words.push(word);
  return words;
}

export class WordPieceTokenizer {
  /** @param {any} json  a parsed tokenizer.json with a WordPiece model */
  constructor(json) {
    const model = json.model;
    if (!model || model.type !== 'WordPiece') {
      throw new Error(`tokenizer.json: model ${model && model.type} is not WordPiece`);
    }
    /** @type {Map<string, number>} */ this.vocab = new Map(Object.entries(model.vocab));
    this.prefix = model.continuing_subword_prefix || '##';
    this.maxChars = model.max_input_chars_per_word || 100;
    this.unk = this._id(model.unk_token || '[UNK]');
    const n = json.normalizer || {};
    this.clean = n.clean_text !== false;
    this.chinese = n.handle_chinese_chars !== false;
    this.lowercase = n.lowercase !== false;
    this.stripAccents = n.strip_accents === null || n.strip_accents === undefined ? this.lowercase : n.strip_accents;
    this.cls = this._id('[CLS]');
    this.sep = this._id('[SEP]');
    const pad = json.padding || {};
    this.padId = pad.pad_id ?? 0;
    this.padTypeId = pad.pad_type_id ?? 0;
    this.maxLength = (json.truncation && json.truncation.max_length) || 512;
    /** @type {Map<string, number>} */
    this.added = new Map((json.added_tokens || []).map((/** @type {any} */ t) => [t.content, t.id]));
    const escaped = [...this.added.keys()].sort((a, b) => b.length - a.length)
      .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.addedPattern = escaped.length ? new RegExp(`(${escaped.join('|')})`, 'u') : null;
  }

  /** @param {string} token */
  _id(token) {
    const id = this.vocab.get(token);
    if (id === undefined) throw new Error(`tokenizer.json: no '${token}' in the vocabulary`);
    return id;
  }

  /**
   * BertNormalizer.
   * @param {string} text
   */
  normalize(text) {
    return bertNormalize(text, this);
  }

  /** @param {string} text */
  preTokenize(text) {
    return bertPreTokenize(text);
  }

  /**
   * WordPiece on one word: ids of its pieces, or [UNK] alone.
   * @param {string} word
   * @returns {number[]}
   */
  wordPiece(word) {
    const chars = [...word];
    if (chars.length > this.maxChars) return [this.unk];
    /** @type {number[]} */ const ids = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found = -1;
      while (start < end) {
        const piece = (start > 0 ? this.prefix : '') + chars.slice(start, end).join('');
        const id = this.vocab.get(piece);
        if (id !== undefined) { found = id; break; }
        end--;
      }
      if (found < 0) return [this.unk];
      ids.push(found);
      start = end;
    }
    return ids;
  }

  /**
   * Token ids of a text without special tokens, truncation or padding.
   * @param {string} text
   */
  tokenize(text) {
    /** @type {number[]} */ const ids = [];
    const parts = this.addedPattern ? text.split(this.addedPattern) : [text];
    parts.forEach((part, i) => {
      if (i % 2 === 1) { ids.push(/** @type {number} */ (this.added.get(part))); return; }
      for (const word of this.preTokenize(this.normalize(part))) ids.push(...this.wordPiece(word));
    });
    return ids;
  }

  /**
   * [CLS] text [SEP], truncated to `length` and padded to it.
   * @param {string} text
   * @param {number} [length]  the fixed sequence length (default: the tokenizer.json's truncation length)
   * @returns {Encoding}
   */
  encode(text, length = this.maxLength) {
    if (length < 2) throw new RangeError(`sequence length ${length} leaves no room for [CLS] and [SEP]`);
    const ids = [this.cls, ...this.tokenize(text).slice(0, length - 2), this.sep];
    const used = ids.length;
    const inputIds = ids.concat(Array(length - used).fill(this.padId));
    return {
      inputIds,
      attentionMask: inputIds.map((_, i) => (i < used ? 1 : 0)),
      tokenTypeIds: inputIds.map((_, i) => (i < used ? 0 : this.padTypeId)),
    };
  }
}
