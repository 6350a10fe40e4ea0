// The semantic search page: load the bundle on the chosen backend, embed the built-in corpus once, then rank the
// corpus for each query; below, the text generation panel (generation.js) and the compile panel (compile.js).
// Every text from the corpus, the query, the model or the bundle reaches the page through textContent, never as
// HTML.
//
// URL parameters: ?bundle=URL (default: this server's root, as `webjit serve` gives it), ?budget=ms (tuning
// budget, default 2000), ?n=N (embed only the first N corpus sentences), ?backend=webgpu|wasm, ?pyodide=URL (the
// Pyodide that compile.js's panel runs the compiler in, default /pyodide/).
// window.demo exposes the state and `embed(texts)` for tests; body[data-state] is 'loading', 'ready' or 'error'.

import * as webjit from '../webjit.js';
import { Embedder, rank } from './embed.js';
import { setupCompilePanel } from './compile.js';
import { drawBars } from './chart.js';
import { setupGenerationPanel } from './generation.js';

const TOP_K = 8;
const CHART_POINTS = 30;
const BACKENDS = ['webgpu', 'wasm'];
const BAR_COLOURS = { webgpu: '#8ab4f8', wasm: '#f6ae2d' };

const params = new URLSearchParams(location.search);
const bundleUrl = new URL(params.get('bundle') || '/', location.href);
const budgetMs = Number(params.get('budget') || 2000);
const limit = Math.max(1, Number(params.get('n')) || Infinity); // NaN or 0: all

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
const el = (/** @type {string} */ tag, /** @type {string} */ text = '', /** @type {string} */ cls = '') => {
  const e = document.createElement(tag);
  e.textContent = text;
  if (cls) e.className = cls;
  return e;
};

const demo = {
  /** @type {'loading' | 'ready' | 'error'} */ state: 'loading',
  backend: '',
  /** @type {string[]} */ corpus: [],
  /** @type {Float32Array[]} */ vectors: [],
  /** @type {number[]} */ latencies: [],
  /** @type {string[]} */ latencyBackends: [], // the backend of each latency
  /** @type {string[]} */ gpuErrors: [], // uncaptured WebGPU errors of the page's sessions
  /** @type {any} */ session: null,
  /** @type {any[] | null} */ providers: null, // the execution providers the page's sessions are created with
  /** @type {Embedder | null} */ embedder: null,
  wasmAvailable: false,
  /** @param {string[]} texts */
  embed: async (texts) => (await /** @type {Embedder} */ (demo.embedder).embed(texts)).map((v) => Array.from(v)),
  search,
};
/** @type {any} */ (window).demo = demo;

/** @param {'loading' | 'ready' | 'error'} state */
function setState(state) {
  demo.state = state;
  document.body.dataset.state = state;
  const ready = state === 'ready';
  $('query').disabled = !ready;
  $('go').disabled = !ready;
  for (const input of document.querySelectorAll('input[name=backend]')) {
    const i = /** @type {HTMLInputElement} */ (input);
    i.disabled = state === 'loading' || (i.value === 'wasm' && !demo.wasmAvailable);
  }
}

/**
 * @param {string} text
 * @param {number} [done]
 * @param {number} [total]
 */
function status(text, done, total) {
  $('status').textContent = text;
  $('status').className = '';
  if (total) {
    $('progress').max = total;
    $('progress').value = done;
  } else {
    $('progress').removeAttribute('value'); // indeterminate
  }
}

/** @param {any} e */
function onProgress(e) {
  const label = { manifest: 'Reading the manifest', weights: 'Loading weights', kernels: 'Compiling kernels',
    tuning: 'Tuning kernels', ready: 'Session ready' }[/** @type {string} */ (e.phase)] || e.phase;
  const detail = e.phase === 'weights' ? ` (${(e.done / 2 ** 20).toFixed(0)} / ${(e.total / 2 ** 20).toFixed(0)} MiB)`
    : e.total ? ` (${e.done} / ${e.total})` : '';
  status(label + detail, e.done, e.total);
}

/**
 * Why the wasm backend cannot run here, or '' when it can. The runtime has it when a session asked for 'wasm' with a
 * bundle URL that does not exist fails for want of the bundle rather than of the execution provider; the bundle
 * has it when its manifest lists WebAssembly modules.
 */
async function wasmUnavailable() {
  try {
    const s = await webjit.InferenceSession.create(new URL('./no-such-bundle/', location.href),
      { executionProviders: ['wasm'], tuning: false, cache: false });
    await s.release();
  } catch (e) {
    if (/execution provider/i.test(String(/** @type {any} */ (e).message))) {
      return 'The WebAssembly backend is not available in this runtime yet';
    }
  }
  const manifest = await fetchJson(new URL('manifest.json', bundleUrl), 'not a webjit bundle');
  return manifest.wasm ? '' : 'This bundle has no WebAssembly modules (build it for both backends)';
}

/**
 * @param {string} backend
 * @param {boolean} [asked]  the user picked it; otherwise the runtime may pick WebAssembly on a CPU WebGPU adapter
 */
async function start(backend, asked = true) {
  setState('loading');
  $('results').replaceChildren();
  if (demo.session) await demo.session.release();
  demo.session = null;
  demo.vectors = [];
  const [tokenizerJson, corpus] = await Promise.all([
    fetchJson(new URL('tokenizer.json', bundleUrl), 'the bundle has no tokenizer.json: build it with ' +
      '`python -m demo_models.demo_bundle` (or copy the model\'s tokenizer.json into the bundle folder)'),
    fetchJson(new URL('./corpus.json', import.meta.url), 'corpus.json is missing'),
  ]);
  demo.corpus = corpus.slice(0, limit);
  // WebGPU falls back to WebAssembly where the browser has no adapter (the runtime says which one it used); unless
  // the user asked for WebGPU, a CPU adapter (SwiftShader) runs on WebAssembly, which is much faster there
  const webgpu = asked ? { name: 'webgpu', useCpuAdapter: true } : 'webgpu';
  const providers = backend === 'webgpu' && demo.wasmAvailable ? [webgpu, 'wasm'] : [backend];
  demo.providers = providers;
  const session = await webjit.InferenceSession.create(bundleUrl, {
    executionProviders: providers, tuning: { budgetMs }, onProgress,
  });
  demo.session = session;
  const gpuSession = session instanceof webjit.InferenceSession ? session : null;
  if (gpuSession && gpuSession.device) {
    gpuSession.device.addEventListener('uncapturederror', (/** @type {any} */ e) => demo.gpuErrors.push(e.error.message));
  }
  demo.backend = session.executionProvider || backend;
  const radio = /** @type {HTMLInputElement | null} */ (document.querySelector(`input[value=${demo.backend}]`));
  if (radio) radio.checked = true;
  const info = gpuSession && gpuSession.gpu && gpuSession.gpu.info;
  $('backend').textContent = demo.backend === 'webgpu'
    ? `WebGPU${info ? ` (${[info.vendor, info.architecture].filter(Boolean).join(' ') || 'adapter'})` : ''}`
    : 'WebAssembly';
  const choice = /** @type {any} */ (session).providerChoice;
  $('backend').title = choice ? `Chosen over WebGPU: ${choice.reason}` : '';
  if (choice) $('backend').textContent += ' (faster than WebGPU on this CPU adapter)';
  showTuning(session);
  demo.embedder = new Embedder(session, tokenizerJson);
  const { batch, seq, anyLength } = demo.embedder;
  const t0 = performance.now();
  demo.vectors = await demo.embedder.embed(demo.corpus,
    (done, total) => status(`Embedding the corpus (${done} / ${total})`, done, total));
  const ms = performance.now() - t0;
  status(`Ready: ${demo.corpus.length} sentences embedded in ${(ms / 1000).toFixed(1)} s ` +
    `(input [${batch}, ${anyLength ? `up to ${seq}` : seq}], load ${(session.timings.loadMs / 1000).toFixed(1)} s)`, 1, 1);
  setState('ready');
}

/**
 * @param {URL} url
 * @param {string} missing
 */
async function fetchJson(url, missing) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url.pathname}: HTTP ${r.status}; ${missing}`);
  return r.json();
}

/** @param {number} ms */
const seconds = (ms) => (ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(1)} s`);

/** @param {any} session */
function showTuning(session) {
  const r = session.tuningReport || { source: 'off' };
  const kernels = r.kernels || [];
  const tuned = kernels.filter((/** @type {any} */ k) => k.tried > 0);
  const summary = r.source === 'tuned'
    ? `tuned ${tuned.length} of ${kernels.length} kernels in ${seconds(r.elapsedMs)} ` +
      `(budget ${seconds(r.budgetMs)}, ${r.timer}${r.complete ? '' : ', cut short by the budget'})`
    : r.source === 'cache' ? `winners from the cache (IndexedDB) for ${kernels.length} kernels` : 'tuning off';
  $('tuning').textContent = summary;
  const head = document.createElement('tr');
  for (const h of ['kernel', 'tried', 'winner', 'best ms']) head.append(el('th', h));
  const rows = kernels.map((/** @type {any} */ k) => {
    const tr = document.createElement('tr');
    const best = k.times && k.winner in k.times ? Number(k.times[k.winner]).toFixed(3) : '';
    tr.append(el('td', k.kernel), el('td', `${k.tried}/${k.candidates}`, 'num'), el('td', k.winner),
      el('td', best, 'num'));
    return tr;
  });
  $('kernels').replaceChildren(head, ...rows);
}

/**
 * Embed `query`, rank the corpus, show the results and the latency.
 * @param {string} query
 */
async function search(query) {
  const t0 = performance.now();
  const [vector] = await /** @type {Embedder} */ (demo.embedder).embed([query]);
  const hits = rank(vector, demo.vectors, TOP_K);
  const ms = performance.now() - t0;
  demo.latencyBackends.push(demo.backend);
  demo.latencies.push(ms);
  $('results').replaceChildren(...hits.map(({ index, score }) => {
    const li = el('li');
    const meter = el('span', '', 'meter');
    meter.style.width = `${Math.max(0, score) * 6}em`;
    li.append(el('span', score.toFixed(3), 'score'), meter, el('span', demo.corpus[index]));
    return li;
  }));
  $('latency').textContent = `${ms.toFixed(0)} ms for this query on ${demo.backend} ` +
    `(tokenize, forward pass, ranking ${demo.vectors.length} sentences)`;
  drawChart();
  return hits.map(({ index, score }) => ({ index, score, text: demo.corpus[index] }));
}

/** Bars of the last CHART_POINTS query latencies, scaled to the largest, coloured by backend. */
function drawChart() {
  const points = demo.latencies.slice(-CHART_POINTS);
  const backends = demo.latencyBackends.slice(-CHART_POINTS);
  const top = Math.max(...points, 1);
  drawBars($('chart'), points, {
    colour: (i) => /** @type {any} */ (BAR_COLOURS)[backends[i]] || '#999',
    tip: (i) => `${points[i].toFixed(0)} ms on ${backends[i]}`,
    label: `max ${top.toFixed(0)} ms, last ${points[points.length - 1].toFixed(0)} ms (blue: WebGPU, amber: WASM)`,
    slots: CHART_POINTS,
  });
}

/** @param {unknown} e */
function fail(e) {
  setState('error');
  $('status').textContent = `Error: ${/** @type {any} */ (e).message || e}`;
  $('status').className = 'error';
  $('progress').value = 0;
}

$('search').addEventListener('submit', (/** @type {Event} */ ev) => {
  ev.preventDefault();
  const q = $('query').value.trim();
  if (q && demo.state === 'ready') search(q).catch(fail);
});
for (const input of document.querySelectorAll('input[name=backend]')) {
  input.addEventListener('change', () => start(/** @type {HTMLInputElement} */ (input).value).catch(fail));
}

async function main() {
  setState('loading');
  const why = await wasmUnavailable();
  demo.wasmAvailable = !why;
  if (why) {
    const wasmLabel = /** @type {HTMLElement} */ (document.querySelector('input[value=wasm]')?.parentElement);
    wasmLabel.className = 'off';
    wasmLabel.title = why;
  }
  const asked = params.get('backend') || 'webgpu';
  const backend = BACKENDS.includes(asked) && (asked !== 'wasm' || demo.wasmAvailable) ? asked : 'webgpu';
  /** @type {HTMLInputElement} */ (document.querySelector(`input[value=${backend}]`)).checked = true;
  await start(backend, params.has('backend'));
}

setupCompilePanel({
  webjit, demo, bundleUrl, pyodideURL: new URL(params.get('pyodide') || '/pyodide/', location.href),
  tokenizer: () => fetchJson(new URL('tokenizer.json', bundleUrl), 'no tokenizer.json'),
});
setupGenerationPanel({ webjit, demo, bundleUrl, budgetMs });
main().catch(fail);
