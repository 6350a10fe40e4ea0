// Picking the next token from a row of logits, as Hugging Face `generate()` does: the repetition penalty, then the
// temperature, top-k and top-p warpers, then either the most likely token (greedy) or a draw from the softmax with
// a seeded generator, so that a seed gives the same text on every run and every backend. Pure functions of the
// logits: no WebGPU, no DOM, so they run under `node --test` too.

/**
 * @typedef {{
 *   temperature?: number,
 *   topK?: number,
 *   topP?: number,
 *   repetitionPenalty?: number,
 *   seed?: number,
 * }} SamplingOptions  temperature 0 (the default) is greedy; topK and topP apply only when sampling
 */

/**
 * Check the options once, before a generation starts, with a message that names the option.
 * @param {SamplingOptions} o
 */
export function checkSampling(o) {
  const { temperature = 0, topK = 0, topP = 1, repetitionPenalty = 1 } = o;
  if (!(Number.isFinite(temperature) && temperature >= 0)) throw new RangeError(`temperature must be a number >= 0, got ${temperature}`);
  if (!(Number.isInteger(topK) && topK >= 0)) throw new RangeError(`topK must be an integer >= 0 (0: all tokens), got ${topK}`);
  if (!(Number.isFinite(topP) && topP > 0 && topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${topP}`);
  if (!(Number.isFinite(repetitionPenalty) && repetitionPenalty > 0)) {
    throw new RangeError(`repetitionPenalty must be a number > 0 (1: none), got ${repetitionPenalty}`);
  }
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw new RangeError(`seed must be an integer, got ${o.seed}`);
}

/**
 * The scores after the repetition penalty (CTRL's: a seen token's positive logit is divided by it, a negative
 * one multiplied) and the temperature. A new array; `logits` is left as it is.
 * @param {Float32Array} logits
 * @param {Iterable<number>} seen  the ids so far, prompt included
 * @param {SamplingOptions} o
 */
export function scores(logits, seen, o) {
  const out = Float64Array.from(logits);
  const penalty = o.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    for (const id of new Set(seen)) {
      if (id >= 0 && id < out.length) out[id] = out[id] > 0 ? out[id] / penalty : out[id] * penalty;
    }
  }
  const t = o.temperature ?? 0;
  if (t > 0 && t !== 1) for (let i = 0; i < out.length; i++) out[i] /= t;
  return out;
}

/**
 * The distribution a sampled token is drawn from: softmax of the scores over the tokens top-k and top-p keep
 * (top-p keeps the smallest set of the most likely tokens whose probability reaches topP, at least one token),
 * zero elsewhere. Ties keep the lower id first.
 * @param {Float64Array} s  from `scores`
 * @param {SamplingOptions} o
 * @returns {Float64Array}
 */
export function probabilities(s, o) {
  const order = Array.from(s.keys()).sort((a, b) => s[b] - s[a] || a - b);
  const k = o.topK && o.topK < s.length ? o.topK : s.length;
  let kept = order.slice(0, k);
  const max = s[kept[0]];
  let sum = 0;
  for (const i of kept) sum += Math.exp(s[i] - max);
  const topP = o.topP ?? 1;
  if (topP < 1) {
    let mass = 0;
    let n = 0;
    while (n < kept.length && (n === 0 || mass < topP)) mass += Math.exp(s[kept[n++]] - max) / sum;
    kept = kept.slice(0, n);
    sum = 0;
    for (const i of kept) sum += Math.exp(s[i] - max);
  }
  const p = new Float64Array(s.length);
  for (const i of kept) p[i] = Math.exp(s[i] - max) / sum;
  return p;
}

/**
 * The lowest id of the largest value.
 * @param {ArrayLike<number>} s
 */
export function argmax(s) {
  let best = 0;
  for (let i = 1; i < s.length; i++) if (s[i] > s[best]) best = i;
  return best;
}

/**
 * A seeded uniform generator on [0, 1): mulberry32, 32 bits of state, the same sequence everywhere.
 * @param {number} seed
 * @returns {() => number}
 */
export function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The next token: greedy when temperature is 0, else drawn from `probabilities` with `random`.
 * @param {Float32Array} logits
 * @param {number[]} seen
 * @param {SamplingOptions} o
 * @param {() => number} random
 */
export function nextToken(logits, seen, o, random) {
  const s = scores(logits, seen, o);
  if (!(o.temperature ?? 0)) return argmax(s);
  const p = probabilities(s, o);
  let u = random();
  let last = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    last = i;
    u -= p[i];
    if (u < 0) return i;
  }
  return last; // rounding left a sliver of u: the last kept token
}
