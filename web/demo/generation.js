// The text generation panel: the small GPT-2 in the demo bundle's generate/ folder (python -m
// demo_models.demo_bundle builds it, with a WordPiece tokenizer.json of its vocabulary) generates after a prompt
// that the page's tokenizer.js encodes, and text.js's TextStreamer turns each id into text as it arrives. The model
// has random weights: the panel shows the speed of prefill and decode steps and the streaming, not language.
//
// The session loads on the first Generate, with the execution providers of the page's own session (demo.providers:
// the backend selection), and loads again after the backend changed. window.demo.generator holds the panel's state
// for tests: {state: 'idle' | 'loading' | 'generating' | 'done' | 'stopped' | 'error', promptIds, ids, text,
// stepMs (each decode step's time), stats (session.generationStats once a generation completes), ep, error}.

import { WordPieceTokenizer } from '../tokenizer.js';
import { drawBars } from './chart.js';

const FOLDER = 'generate/';
const COLOURS = { webgpu: '#8ab4f8', wasm: '#f6ae2d' };

/**
 * @param {{webjit: any, demo: any, bundleUrl: URL, budgetMs: number}} page
 */
export function setupGenerationPanel({ webjit, demo, bundleUrl, budgetMs }) {
  const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
  const url = new URL(FOLDER, bundleUrl);
  /** @type {{state: string, promptIds: number[], ids: number[], text: string, stepMs: number[], stats: any, ep: string,
   *            error: string}} */
  const state = { state: 'idle', promptIds: [], ids: [], text: '', stepMs: [], stats: null, ep: '', error: '' };
  demo.generator = state;
  /** @type {{session: any, tokenizer: WordPieceTokenizer, detokenizer: any, key: string} | null} */
  let loaded = null;
  /** @type {AbortController | null} */
  let stop = null;

  const set = (/** @type {string} */ s) => {
    state.state = s;
    $('gen-go').disabled = s === 'loading' || s === 'generating';
    $('gen-stop').disabled = s !== 'generating';
  };
  const status = (/** @type {string} */ text, /** @type {boolean} */ error = false) => {
    $('gen-status').textContent = text;
    $('gen-status').className = error ? 'error' : '';
  };
  const fail = (/** @type {any} */ e) => {
    state.error = String(e && e.message ? e.message : e);
    set('error');
    status(`Error: ${state.error}`, true);
  };

  /** The session and tokenizer for the page's current execution providers. */
  async function load() {
    if (!demo.providers) throw new Error('the page is still choosing its backend; try again in a moment');
    const key = JSON.stringify(demo.providers);
    if (loaded && loaded.key === key) return loaded;
    if (loaded) await loaded.session.release();
    loaded = null;
    set('loading');
    status('Loading the GPT-2 bundle…');
    const r = await fetch(new URL('tokenizer.json', url));
    if (!r.ok) {
      throw new Error(`${url.pathname}tokenizer.json: HTTP ${r.status}; build the demo bundle with ` +
        '`python -m demo_models.demo_bundle`, which puts the generation bundle in generate/');
    }
    const json = await r.json();
    const session = await webjit.InferenceSession.create(url, {
      executionProviders: demo.providers, tuning: { budgetMs },
      onProgress: (/** @type {any} */ e) => status(`Loading the GPT-2 bundle: ${e.phase}` +
        (e.total ? ` (${e.done} / ${e.total})` : '')),
    });
    if (session.device) {
      const record = (/** @type {any} */ e) => demo.gpuErrors.push(e.error.message);
      session.device.addEventListener('uncapturederror', record);
    }
    loaded = { session, tokenizer: new WordPieceTokenizer(json), detokenizer: new webjit.Detokenizer(json), key };
    showProvider(session);
    return loaded;
  }

  /** @param {any} session */
  function showProvider(session) {
    state.ep = session.executionProvider;
    const info = session.gpu && session.gpu.info;
    $('gen-ep').textContent = state.ep === 'webgpu'
      ? `WebGPU${info ? ` (${[info.vendor, info.architecture].filter(Boolean).join(' ') || 'adapter'})` : ''}`
      : 'WebAssembly';
    const why = session.providerChoice ? `chosen over WebGPU: ${session.providerChoice.reason}`
      : session.fallback ? `fell back from ${session.fallback.from}: ${session.fallback.reason}` : '';
    $('gen-ep-why').textContent = why ? ` (${why})` : '';
  }

  /** The options typed in the panel; generate() checks them and says which one is wrong. */
  function options() {
    const number = (/** @type {string} */ id) => Number($(id).value);
    return {
      maxNewTokens: number('gen-max'), temperature: number('gen-temperature'), topK: number('gen-top-k'),
      topP: number('gen-top-p'), repetitionPenalty: number('gen-penalty'), seed: number('gen-seed'),
    };
  }

  /**
   * Prefill and decode speed: from the steps seen so far while streaming, from session.generationStats at the end.
   * @param {{promptTokens: number, prefillTokensPerSecond: number, decodeTokensPerSecond: number, newTokens: number}} f
   */
  function showFigures(f) {
    $('gen-prefill').textContent = f.prefillTokensPerSecond ? f.prefillTokensPerSecond.toFixed(0) : '—';
    $('gen-decode').textContent = f.decodeTokensPerSecond ? f.decodeTokensPerSecond.toFixed(0) : '—';
    $('gen-counts').textContent = `${f.promptTokens} prompt tokens, ${f.newTokens} new`;
  }

  /** @param {number} slots */
  function drawChart(slots) {
    const ms = state.stepMs;
    if (!ms.length) {
      $('gen-chart').replaceChildren();
      return;
    }
    const sorted = [...ms].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    drawBars($('gen-chart'), ms, {
      colour: () => /** @type {any} */ (COLOURS)[state.ep] || '#999',
      tip: (i) => `token ${i + 2}: ${ms[i].toFixed(2)} ms`,
      label: `decode step ms: last ${ms[ms.length - 1].toFixed(2)}, median ${median.toFixed(2)}, ` +
        `max ${sorted[sorted.length - 1].toFixed(2)} (${ms.length} steps)`,
      slots,
    });
  }

  async function generate() {
    const { session, tokenizer, detokenizer } = await load();
    const promptText = $('gen-prompt').value;
    const promptIds = tokenizer.tokenize(promptText);
    if (!promptIds.length) throw new Error('type a prompt: it encodes to no tokens');
    const opts = options();
    Object.assign(state, { promptIds, ids: [], text: '', stepMs: [], stats: null, error: '' });
    $('gen-prompt-echo').textContent = promptText.trim();
    $('gen-text').textContent = '';
    drawChart(0);
    const streamer = new webjit.TextStreamer(detokenizer);
    let prefillMs = 0;
    const live = () => {
      const decodeMs = state.stepMs.reduce((a, b) => a + b, 0);
      return { promptTokens: promptIds.length, newTokens: state.ids.length,
        prefillTokensPerSecond: prefillMs ? (1000 * promptIds.length) / prefillMs : 0,
        decodeTokensPerSecond: decodeMs ? (1000 * state.stepMs.length) / decodeMs : 0 };
    };
    stop = new AbortController();
    set('generating');
    status(`Generating up to ${opts.maxNewTokens} tokens on ${state.ep}…`);
    /** @param {number} id @param {{phase: string, ms: number}} step */
    const onToken = (id, { phase, ms }) => {
      state.ids.push(id);
      state.text += streamer.push(id);
      $('gen-text').textContent = state.text;
      if (phase === 'prefill') prefillMs = ms;
      else state.stepMs.push(ms);
      showFigures(live());
      drawChart(opts.maxNewTokens - 1);
    };
    try {
      state.ids = await session.generate(promptIds, { ...opts, onToken, signal: stop.signal });
      state.stats = session.generationStats;
      set('done');
      status(`Generated ${state.ids.length} tokens on ${state.ep}.`);
    } catch (e) {
      if (/** @type {any} */ (e).name !== 'AbortError') throw e;
      set('stopped');
      status(`Stopped after ${state.ids.length} tokens.`);
    } finally {
      stop = null;
      state.text += streamer.flush();
      $('gen-text').textContent = state.text;
    }
    showFigures(state.stats || live());
  }

  const greedy = () => {
    for (const id of ['gen-top-k', 'gen-top-p', 'gen-seed']) $(id).disabled = Number($('gen-temperature').value) === 0;
  };
  $('gen-form').addEventListener('submit', (/** @type {Event} */ ev) => {
    ev.preventDefault();
    if (state.state !== 'loading' && state.state !== 'generating') generate().catch(fail);
  });
  $('gen-stop').addEventListener('click', () => stop && stop.abort());
  $('gen-temperature').addEventListener('input', greedy);
  greedy();
  set('idle');
}
