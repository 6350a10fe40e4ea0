// Text from token ids, as Hugging Face `tokenizers` decodes them (`Tokenizer.decode`), whole or one id at a time.
//
//   const detok = new Detokenizer(await (await fetch('tokenizer.json')).json());
//   detok.decode(ids);                          // the same string as Python's tokenizer.decode(ids)
//   const stream = new TextStreamer(detok);
//   for (const id of generated) out.textContent += stream.push(id);   // the text each id completes
//   out.textContent += stream.flush();                                 // whatever was held back
//
// The pushes and the flush add up to decode() of all the ids. A push holds back what a later id can still change:
// bytes of a character not yet complete (byte-level BPE, and byte_fallback's <0x..> tokens, whose whole run turns
// into one U+FFFD per byte if it is not valid UTF-8), a last token with a BPEDecoder word end (a space, unless the
// sequence ends there), and trailing characters a final Strip could remove.
//
// Decoders: ByteLevel, ByteFallback, Fuse, Strip, Replace (string patterns), Metaspace, WordPiece, BPEDecoder and
// Sequences of them; with none, tokens are joined by spaces. Pure: no DOM, no fetch, so it also runs under node.

/**
 * Where a run of pieces sits in the whole token sequence: whether it starts it (Metaspace and WordPiece treat the
 * first token apart, a Strip after a merge cuts only the text's start) and ends it (BPEDecoder's last suffix, a
 * Strip's end cut); `merged`: an earlier step joined the tokens, so a piece is no longer a whole token.
 * @typedef {{first: boolean, last: boolean, merged: boolean}} Place
 * @typedef {(pieces: string[], place: Place) => string[]} Step
 */

const REPLACEMENT = '\ufffd';
const BYTE_TOKEN = /^<0x(\+[0-9a-fA-F]|[0-9a-fA-F]{2})>$/; // what Rust's u8::from_str_radix(.., 16) accepts
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true }); // lossy, like String::from_utf8_lossy
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** GPT-2's byte -> printable character table, inverted: the byte each character of a byte-level token stands for. */
const BYTE_OF_CHAR = (() => {
  /** @type {Map<string, number>} */ const map = new Map();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.set(String.fromCodePoint(printable ? b : 256 + extra++), b);
  }
  return map;
})();

/**
 * A byte-level token's bytes: each character's byte, or the token's own UTF-8 when a character is not in the table
 * (an added token such as ' hello').
 * @param {string} token
 * @returns {number[]}
 */
function byteLevelBytes(token) {
  /** @type {number[]} */ const bytes = [];
  for (const c of token) {
    const b = BYTE_OF_CHAR.get(c);
    if (b === undefined) return [...encoder.encode(token)];
    bytes.push(b);
  }
  return bytes;
}

/**
 * Whether UTF-8 decoding of `bytes` ends between characters, not inside one that a later byte could complete.
 * @param {number[]} bytes
 */
function endsOnCharacter(bytes) {
  let need = 0, lo = 0x80, hi = 0xbf;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (need > 0) {
      if (b >= lo && b <= hi) { need--; lo = 0x80; hi = 0xbf; continue; }
      need = 0; lo = 0x80; hi = 0xbf; // ill-formed: U+FFFD, then b starts afresh
    }
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) { need = 2; if (b === 0xe0) lo = 0xa0; if (b === 0xed) hi = 0x9f; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 3; if (b === 0xf0) lo = 0x90; if (b === 0xf4) hi = 0x8f; }
  }
  return need === 0;
}

/** @param {string[]} pieces @param {Place} place @param {number} i */
const isFirst = (pieces, place, i) => i === 0 && place.first;
/** @param {string[]} pieces @param {Place} place @param {number} i */
const isLast = (pieces, place, i) => i === pieces.length - 1 && place.last;

/**
 * The decoder steps, by tokenizer.json type, each as the Rust crate's `decode_chain`.
 * @type {Record<string, (config: any) => Step>}
 */
const STEPS = {
  ByteLevel: () => (pieces) => [utf8.decode(new Uint8Array(pieces.flatMap(byteLevelBytes)))],
  ByteFallback: () => (pieces) => {
    /** @type {string[]} */ const out = [];
    /** @type {number[]} */ let run = [];
    const close = () => {
      if (!run.length) return;
      try { out.push(utf8Strict.decode(new Uint8Array(run))); } catch { out.push(...run.map(() => REPLACEMENT)); }
      run = [];
    };
    for (const p of pieces) {
      const m = BYTE_TOKEN.exec(p);
      if (m) { run.push(parseInt(m[1], 16)); continue; }
      close();
      out.push(p);
    }
    close();
    return out;
  },
  Fuse: () => (pieces) => [pieces.join('')],
  Strip: ({ content, start = 0, stop = 0 }) => (pieces, place) => pieces.map((p, i) => {
    const chars = [...p];
    let from = 0, to = chars.length;
    const cutStart = !place.merged || isFirst(pieces, place, i);
    const cutEnd = !place.merged || isLast(pieces, place, i);
    while (cutStart && from < start && chars[from] === content) from++;
    while (cutEnd && chars.length - to < stop && to > from && chars[to - 1] === content) to--;
    return chars.slice(from, to).join('');
  }),
  Replace: ({ pattern, content }) => {
    if (typeof pattern?.String !== 'string') {
      throw new Error('tokenizer.json: Replace decoders with a Regex are not supported');
    }
    return (pieces) => pieces.map((p) => p.replaceAll(pattern.String, content));
  },
  Metaspace: ({ replacement = '\u2581', prepend_scheme, add_prefix_space }) => {
    const prepends = (prepend_scheme ?? (add_prefix_space === false ? 'never' : 'always')) !== 'never';
    return (pieces, place) => pieces.map((p, i) =>
      p.replaceAll(replacement, prepends && isFirst(pieces, place, i) ? '' : ' '));
  },
  WordPiece: ({ prefix = '##', cleanup = true }) => (pieces, place) => pieces.map((p, i) => {
    if (!isFirst(pieces, place, i)) p = p.startsWith(prefix) ? p.slice(prefix.length) : ` ${p}`;
    return cleanup ? cleanUp(p) : p;
  }),
  BPEDecoder: ({ suffix = '</w>' }) => (pieces, place) =>
    pieces.map((p, i) => p.replaceAll(suffix, isLast(pieces, place, i) ? '' : ' ')),
};

/** WordPiece's cleanup of spaces before punctuation and contractions. @param {string} s */
function cleanUp(s) {
  return s.replaceAll(' .', '.').replaceAll(' ?', '?').replaceAll(' !', '!').replaceAll(' ,', ',')
    .replaceAll(" ' ", "'").replaceAll(" n't", "n't").replaceAll(" 'm", "'m").replaceAll(' do not', " don't")
    .replaceAll(" 's", "'s").replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}

/** @type {Step} no decoder: tokens joined by spaces */
const joinWithSpaces = (pieces, place) => pieces.map((p, i) => (isFirst(pieces, place, i) ? p : ` ${p}`));

/**
 * @param {any} config  a tokenizer.json decoder
 * @returns {{type: string, config: any}[]}  the steps of a Sequence, flattened
 */
function flatten(config) {
  return config.type === 'Sequence' ? config.decoders.flatMap(flatten) : [{ type: config.type, config }];
}

export class Detokenizer {
  /** @param {any} json  a parsed tokenizer.json */
  constructor(json) {
    const model = json.model || {};
    /** @type {Map<number, string>} id -> token */
    this.tokens = new Map(Array.isArray(model.vocab)
      ? model.vocab.map((/** @type {[string, number]} */ [piece], /** @type {number} */ id) => [id, piece])
      : Object.entries(model.vocab || {}).map(([token, id]) => [id, token]));
    /** @type {Set<number>} ids of the special added tokens, which decoding can skip */
    this.specialIds = new Set();
    for (const t of json.added_tokens || []) {
      this.tokens.set(t.id, t.content);
      if (t.special) this.specialIds.add(t.id);
    }
    const steps = json.decoder ? flatten(json.decoder) : [];
    for (const { type } of steps) {
      if (!(type in STEPS)) throw new Error(`tokenizer.json: decoder ${type} is not supported`);
    }
    /** @type {{step: Step, merged: boolean}[]} each step, and whether an earlier one joined the tokens */
    this.steps = json.decoder
      ? steps.map(({ type, config }, i) => ({
        step: STEPS[type](config),
        merged: steps.slice(0, i).some((s) => s.type === 'Fuse' || s.type === 'ByteLevel'),
      }))
      : [{ step: joinWithSpaces, merged: false }];
    const types = new Set(steps.map((s) => s.type));
    /** What a stream must hold back; see TextStreamer. */
    this.holds = {
      byteRuns: types.has('ByteFallback'),
      partialChars: types.has('ByteLevel'),
      /** @type {string | null} the last token's text differs when it holds this: BPEDecoder's word end */
      suffix: steps.filter((s) => s.type === 'BPEDecoder').map((s) => s.config.suffix ?? '</w>')[0] ?? null,
      /** @type {{content: string, stop: number}[]} */
      trailing: steps.filter((s, i) => s.type === 'Strip' && s.config.stop > 0 && this.steps[i].merged)
        .map((s) => s.config),
    };
  }

  /**
   * The tokens of ids, as `decode` sees them: unknown ids dropped, special tokens too when asked.
   * @param {Iterable<number>} ids
   * @param {boolean} skipSpecialTokens
   */
  tokensOf(ids, skipSpecialTokens) {
    /** @type {string[]} */ const out = [];
    for (const id of ids) {
      const token = this.tokens.get(Number(id));
      if (token !== undefined && !(skipSpecialTokens && this.specialIds.has(Number(id)))) out.push(token);
    }
    return out;
  }

  /**
   * Text of tokens that sit at `first`/`last` of the whole sequence or not.
   * @param {string[]} tokens
   * @param {boolean} first
   * @param {boolean} last
   */
  textOf(tokens, first, last) {
    let pieces = tokens;
    for (const { step, merged } of this.steps) pieces = step(pieces, { first, last, merged });
    return pieces.join('');
  }

  /**
   * @param {Iterable<number>} ids
   * @param {{skipSpecialTokens?: boolean}} [options]  skipSpecialTokens: default true, like Python's decode
   */
  decode(ids, { skipSpecialTokens = true } = {}) {
    return this.textOf(this.tokensOf(ids, skipSpecialTokens), true, true);
  }
}

export class TextStreamer {
  /**
   * @param {Detokenizer | any} detokenizer  a Detokenizer, or a parsed tokenizer.json to make one from
   * @param {{skipSpecialTokens?: boolean}} [options]  skipSpecialTokens: default true, like Python's decode
   */
  constructor(detokenizer, { skipSpecialTokens = true } = {}) {
    this.detokenizer = detokenizer instanceof Detokenizer ? detokenizer : new Detokenizer(detokenizer);
    this.skipSpecialTokens = skipSpecialTokens;
    /** @type {string[]} the tokens since the last point where the text splits cleanly */
    this.window = [];
    /** whether the window starts the sequence */
    this.first = true;
    /** the window's text given out so far */
    this.sent = '';
  }

  /** Forgets the sequence: the next push starts a new one. */
  reset() {
    this.window = [];
    this.first = true;
    this.sent = '';
  }

  /**
   * The text that `id` completes (often '', while a character or a word is still open).
   * @param {number} id
   */
  push(id) {
    const [token] = this.detokenizer.tokensOf([id], this.skipSpecialTokens);
    if (token === undefined) return '';
    this.window.push(token);
    const settled = this.settled();
    const text = this.detokenizer.textOf(this.window.slice(0, settled), this.first, false);
    const out = this.heldBack(text);
    const fresh = out.slice(this.sent.length);
    this.sent = out;
    // Split the window where what came before can no longer change, once the sequence's start (a first token's
    // dropped ▁, a Strip's cut) is behind: the window stays small, and each push costs a few tokens' decode.
    if (settled > 0 && out === text && (!this.first || text !== '')) {
      this.window = this.window.slice(settled);
      this.first = false;
      this.sent = '';
    }
    return fresh;
  }

  /** The rest of the text, as if the sequence ended here; then a new sequence starts. */
  flush() {
    const rest = this.detokenizer.textOf(this.window, this.first, true).slice(this.sent.length);
    this.reset();
    return rest;
  }

  /** How many of the window's tokens have text no later token can change. */
  settled() {
    const { holds } = this.detokenizer;
    let n = this.window.length;
    if (holds.suffix !== null && n > 0 && this.window[n - 1].includes(holds.suffix)) n--;
    if (holds.byteRuns) while (n > 0 && BYTE_TOKEN.test(this.window[n - 1])) n--;
    if (holds.partialChars) {
      while (n > 0 && !endsOnCharacter(this.window.slice(0, n).flatMap(byteLevelBytes))) n--;
    }
    return Math.max(n, 0);
  }

  /**
   * text without the trailing characters that a Strip at the end of the sequence would remove.
   * @param {string} text
   */
  heldBack(text) {
    const chars = [...text];
    let end = chars.length;
    for (const { content, stop } of this.detokenizer.holds.trailing) {
      for (let n = 0; n < stop && end > 0 && chars[end - 1] === content; n++) end--;
    }
    return chars.slice(0, end).join('');
  }
}
