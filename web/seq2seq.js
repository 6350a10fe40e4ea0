// Generation with an encoder-decoder model (T5, BART: a `generate` section of kind 'seq2seq', web/MANIFEST.md).
// The encoder's bundle sits in the decoder's (`encoder/`), its manifest one of the decoder bundle's checked files,
// so the manifest the page pinned covers both. The encoder runs once over the prompt; then each step runs the
// decoder over the tokens so far, padded to the smallest decoder class that holds them, with the encoder's states
// and mask, and reads back the logits row of the last real token.

import { IntegrityError } from './manifest.js';
import { Tensor } from './tensor.js';

/**
 * The seq2seq geometry of a bundle: names resolved to input and output indices, the decoder classes' lengths.
 * @param {import('./manifest.js').Manifest} m
 */
export function seq2seqOf(m) {
  const g = /** @type {any} */ (m).generate;
  const input = (/** @type {string} */ name) => m.inputs.findIndex((t) => t.name === name);
  const d = /** @type {any} */ (m).dynamic;
  const ids = input(g.ids);
  const lengths = d ? [...d.classes.map((/** @type {any} */ c) => c.dims[0]), d.dims[0].max] : [m.inputs[ids].shape[1]];
  const states = m.inputs[input(g.states)];
  return {
    context: /** @type {number} */ (g.context),
    vocab: /** @type {number} */ (g.vocab),
    start: /** @type {number} */ (g.start),
    ids,
    states: input(g.states),
    width: states.shape[2],
    mask: g.mask === null ? -1 : input(g.mask),
    logits: m.outputs.findIndex((t) => t.name === g.logits),
    encoder: /** @type {{folder: string, ids: string, mask: string | null, output: string, length: number}} */ (g.encoder),
    encoderLength: /** @type {number} */ (g.encoder.length),
    lengths: /** @type {number[]} */ (lengths),
  };
}

/** @typedef {ReturnType<typeof seq2seqOf>} Seq2Seq */

/**
 * The encoder's session, made once per decoder session on the same provider: its manifest is fetched through
 * the decoder bundle (so its SHA-256 is checked), then everything else through the encoder's own manifest.
 * @param {any} session  the decoder's InferenceSession
 * @param {Seq2Seq} s
 */
function encoderSession(session, s) {
  if (!session._encoder) {
    session._encoder = (async () => {
      const bundle = session.bundle;
      const path = `${s.encoder.folder}manifest.json`;
      const verified = await bundle.bytes(path);
      const manifestUrl = new URL(path, bundle.url).href;
      /** @type {typeof fetch} */
      const fetchFn = (url, init) => (new URL(/** @type {any} */ (url), bundle.url).href === manifestUrl
        ? Promise.resolve(new Response(verified.slice(0)))
        : bundle._fetch(url, init));
      const options = session._options || {};
      const provider = session.executionProvider === 'wasm' ? 'wasm' : { name: 'webgpu', useCpuAdapter: true };
      // the encoder opens as the decoder did: InferenceSession.create, which every session carries as `_open`
      const encoder = await session._open({ url: new URL(s.encoder.folder, bundle.url), fetch: fetchFn },
        { ...options, executionProviders: [provider], onProgress: undefined, fetch: undefined, integrity: undefined,
          ...(session.wasm ? { wasm: { numThreads: session.wasm.threads } } : {}) });
      const want = bundle.manifest.files[path].sha256;
      if (encoder.bundle.hash !== want) {
        encoder.release();
        throw new IntegrityError(`${path}: the encoder's manifest is not the one the bundle lists`);
      }
      return encoder;
    })();
    session._encoder.catch(() => { session._encoder = null; }); // a later generate() tries again
  }
  return session._encoder;
}

/**
 * Run the encoder over the prompt and give the decoder steps.
 * @param {any} session
 * @param {Seq2Seq} s
 * @param {number[]} prompt
 * @returns {Promise<import('./generate.js').Stepper>}
 */
export async function seq2seqSteps(session, s, prompt) {
  const encoder = await encoderSession(session, s);
  const n = prompt.length;
  const em = encoder.bundle.manifest;
  // a bucketed encoder pads the prompt itself; one of a single length takes it padded to that length, masked
  const length = em.dynamic ? n : s.encoderLength;
  const ids = new BigInt64Array(length);
  prompt.forEach((id, i) => { ids[i] = BigInt(id); });
  const mask = new BigInt64Array(length);
  mask.fill(1n, 0, n);
  /** @type {Record<string, Tensor>} */
  const feeds = { [s.encoder.ids]: new Tensor('int64', ids, [1, length]) };
  if (s.encoder.mask) feeds[s.encoder.mask] = new Tensor('int64', mask, [1, length]);
  const out = (await encoder.run(feeds))[s.encoder.output];
  const states = new Float32Array(s.encoderLength * s.width);
  states.set(/** @type {Float32Array} */ (out.data).subarray(0, n * s.width));
  const encMask = new Int32Array(s.encoderLength);
  encMask.fill(1, 0, n);
  const tokens = [s.start];
  return {
    step() {
      const t = tokens.length;
      const cls = s.lengths.findIndex((L) => L >= t);
      const decIds = new Int32Array(s.lengths[cls]);
      decIds.set(tokens);
      const uploads = [{ input: s.ids, data: decIds }, { input: s.states, data: states }];
      if (s.mask >= 0) uploads.push({ input: s.mask, data: encMask });
      return { cls, uploads, ops: [], read: { cls, output: s.logits, offset: (t - 1) * s.vocab * 4, bytes: s.vocab * 4 } };
    },
    advance(id) {
      tokens.push(id);
    },
  };
}
