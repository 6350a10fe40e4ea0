// The "Compile a model in your browser" panel: webjit's Python compiler runs in Pyodide, in a worker
// (web/compiler.js), on all-MiniLM-L6-v2 at a sequence length the page's bundle does not have, or on an ONNX file
// picked from disk (with its external data files); then the compiled bundle runs once in this page.
//
// The MiniLM source is the bundle's source/model.onnx (python -m demo_models.demo_bundle puts it there); Pyodide
// comes from ?pyodide=URL (default /pyodide/, written by python -m webjit.pyodide_dist).
// window.demo.compiler holds the panel's state for tests: {state: 'idle' | 'compiling' | 'compiled' | 'running' |
// 'done' | 'error', timings, files, bytes, run: {ms, outputs, similarity?}, error}.

import { Embedder } from './embed.js';

/**
 * @param {{webjit: any, demo: any, bundleUrl: URL, pyodideURL: URL, tokenizer: () => Promise<any>}} page
 */
export function setupCompilePanel({ webjit, demo, bundleUrl, pyodideURL, tokenizer }) {
  const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
  const state = {
    state: 'idle', timings: null, files: 0, bytes: 0, run: null, error: '', summary: '', compiled: /** @type {any} */ (null),
    /** @type {'minilm' | 'file'} */ source: 'minilm', seq: 0,
  };
  demo.compiler = state;

  const set = (/** @type {string} */ s) => {
    state.state = s;
    $('compile-go').disabled = s === 'compiling' || s === 'running';
    $('compile-run').disabled = !state.compiled || s === 'compiling' || s === 'running';
  };
  const status = (/** @type {string} */ text, /** @type {number} */ done = 0, /** @type {number} */ total = 0) => {
    $('compile-status').textContent = text;
    $('compile-status').className = '';
    if (total) {
      $('compile-progress').max = total;
      $('compile-progress').value = done;
    } else {
      $('compile-progress').removeAttribute('value');
    }
  };
  const fail = (/** @type {any} */ e) => {
    state.error = String(e && e.message ? e.message : e);
    set('error');
    $('compile-status').textContent = `Error: ${state.error}`;
    $('compile-status').className = 'error';
    $('compile-progress').value = 0;
  };
  const seconds = (/** @type {number} */ ms) => `${(ms / 1000).toFixed(1)} s`;
  const STAGES = /** @type {Object<string, string>} */ ({ pyodide: 'Starting Pyodide', packages: 'Loading the webjit package',
    fetch: 'Reading the model', weights: 'Packing weights', kernels: 'Generating kernels', done: 'Compiled' });

  /** @param {any} e */
  const onProgress = (e) => {
    const label = STAGES[e.stage] || `Compiling: ${e.stage}`;
    status(e.total ? `${label} (${e.done} / ${e.total})` : `${label}…`, e.done || 0, e.total || 0);
  };

  /** Shapes typed as `name=1x128, other=1x128`. */
  const typedShapes = () => {
    const text = /** @type {string} */ ($('compile-shapes').value).trim();
    if (!text) return undefined;
    return Object.fromEntries(text.split(/[,\s]+/).filter(Boolean).map((part) => {
      const m = /^([^=]+)=(\d+(?:x\d+)*)$/.exec(part);
      if (!m) throw new Error(`'${part}': write shapes as name=1x128`);
      return [m[1], m[2].split('x').map(Number)];
    }));
  };

  async function compile() {
    set('compiling');
    state.run = null;
    state.compiled = null;
    $('compile-out').textContent = '';
    state.source = /** @type {any} */ (document.querySelector('input[name=compile-source]:checked')).value;
    /** @type {any} */
    let model;
    /** @type {any} */
    const options = { onProgress, pyodideURL };
    if (state.source === 'minilm') {
      const seq = Number($('compile-seq').value);
      if (!Number.isInteger(seq) || seq < 1 || seq > 512) throw new Error('the sequence length must be 1 to 512');
      state.seq = seq;
      model = new URL('source/model.onnx', bundleUrl);
      if (!(await fetch(model, { method: 'HEAD' })).ok) {
        throw new Error(`${model.pathname} is missing: the page's bundle needs the model beside it ` +
          '(python -m demo_models.demo_bundle puts it there)');
      }
      const names = demo.session ? demo.session.bundle.manifest.inputs.map((/** @type {any} */ t) => t.name)
        : ['input_ids', 'attention_mask', 'token_type_ids'];
      options.shapes = Object.fromEntries(names.map((/** @type {string} */ n) => [n, [1, seq]]));
    } else {
      const picked = Array.from(/** @type {FileList} */ ($('compile-files').files));
      const onnx = picked.find((f) => f.name.endsWith('.onnx'));
      if (!onnx) throw new Error('pick an .onnx file (and its external data files with it)');
      model = new Uint8Array(await onnx.arrayBuffer());
      options.externalData = await Promise.all(picked.filter((f) => f !== onnx)
        .map(async (f) => ({ path: f.name, data: new Uint8Array(await f.arrayBuffer()) })));
      options.shapes = typedShapes();
    }
    const compiled = await webjit.compileInBrowser(model, options);
    state.compiled = compiled;
    state.timings = compiled.timings;
    state.files = compiled.files.size;
    state.bytes = Array.from(compiled.files.values()).reduce((a, b) => a + b.byteLength, 0);
    const t = compiled.timings;
    const start = t.warm ? 'Pyodide already running' : `Pyodide start ${seconds(t.pyodideMs)}, packages ${seconds(t.packagesMs)}`;
    state.summary = `Compiled ${state.files} files (${(state.bytes / 2 ** 20).toFixed(1)} MiB) in ${seconds(t.compileMs)} ` +
      `(${start}, reading the model ${seconds(t.fetchMs)}; ${seconds(t.totalMs)} in all)`;
    status(state.summary, 1, 1);
    set('compiled');
  }

  /** Inputs for a model the page knows nothing about: ones for integers (valid token ids), small values for floats. */
  const madeUpFeeds = (/** @type {any} */ manifest) => Object.fromEntries(manifest.inputs.map((/** @type {any} */ t) => {
    const n = t.shape.reduce((/** @type {number} */ a, /** @type {number} */ b) => a * b, 1);
    const data = t.dtype === 'int64' ? new BigInt64Array(n).fill(1n) : t.dtype === 'float32'
      ? Float32Array.from({ length: n }, (_, i) => Math.sin(i) / 2) : t.dtype === 'bool' ? new Uint8Array(n).fill(1)
        : new Int32Array(n).fill(1);
    return [t.name, new webjit.Tensor(t.dtype, data, t.shape)];
  }));

  async function runCompiled() {
    set('running');
    const compiled = state.compiled;
    if (!compiled) throw new Error('nothing compiled yet');
    const ep = demo.backend || 'webgpu';
    status(`Loading the compiled bundle on ${ep}…`);
    const session = await webjit.InferenceSession.create(compiled, {
      executionProviders: ep === 'webgpu' ? [{ name: 'webgpu', useCpuAdapter: true }, 'wasm'] : [ep], tuning: { budgetMs: 200 },
    });
    try {
      /** @type {any} */
      const run = { ep: session.executionProvider, ms: 0, outputs: [] };
      if (state.source === 'minilm') {
        const text = $('query').value.trim() || 'A cat sleeps on the warm windowsill.';
        const embedder = new Embedder(session, await tokenizer());
        await embedder.embed([text]); // warm-up
        const t0 = performance.now();
        const [v] = await embedder.embed([text]);
        run.ms = performance.now() - t0;
        run.text = text;
        run.outputs = [{ name: 'embedding', dims: [v.length], head: Array.from(v.slice(0, 6)) }];
        if (demo.embedder) {
          const [w] = await demo.embedder.embed([text]);
          run.similarity = v.reduce((/** @type {number} */ s, /** @type {number} */ x, /** @type {number} */ i) => s + x * w[i], 0);
        }
      } else {
        const feeds = madeUpFeeds(compiled.manifest);
        await session.run(feeds); // warm-up
        const t0 = performance.now();
        const out = await session.run(feeds);
        run.ms = performance.now() - t0;
        run.outputs = Object.entries(out).map(([name, t]) => ({ name, dims: t.dims, head: Array.from(t.data.slice(0, 6), Number) }));
      }
      state.run = run;
      const lines = [`${run.ms.toFixed(1)} ms per run on ${run.ep}` +
        (run.text ? ` (seq ${state.seq}, sentence "${run.text}")` : ' (made-up inputs)')];
      for (const o of run.outputs) {
        lines.push(`${o.name} [${o.dims.join(', ')}]: ${o.head.map((/** @type {number} */ x) => x.toFixed(4)).join(', ')}, …`);
      }
      if (run.similarity !== undefined) lines.push(`cosine similarity to the page's bundle: ${run.similarity.toFixed(6)}`);
      $('compile-out').textContent = lines.join('\n');
      status(`${state.summary}. Ran it on ${run.ep}.`, 1, 1);
      set('done');
    } finally {
      await session.release();
    }
  }

  $('compile-go').addEventListener('click', () => compile().catch(fail));
  $('compile-run').addEventListener('click', () => runCompiled().catch(fail));
  $('compile-files').addEventListener('change', () => {
    /** @type {HTMLInputElement} */ (document.querySelector('input[name=compile-source][value=file]')).checked = true;
  });
  set('idle');
}
