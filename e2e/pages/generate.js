// One text-generation measurement, started by the page load and driven by the query string:
//
//   /bench/generate.html?engine=webjit|ort&ep=webgpu|wasm&threads=N&budgetMs=B
//
// It reads /data/generate.json: the ONNX file and its external data, the input dtypes, the decoder's roles (ids,
// mask, positions, logits, vocabulary, and per cache pair its past input, present output, heads and head size),
// the generations to run in order ({name, prompt, newTokens}) and maxMs. It loads the engine, then runs each
// generation greedily and records every token's id and time: the first token's time is the prefill (the prompt in
// one step), the others are decode steps of one token. Once maxMs have passed since the engine was ready, the
// generation under way stops after its current token and the ones after it are skipped.
//
// webjit: session.generate() on the bundle at / (built with --generate), the cache kept by the runtime.
// onnxruntime-web: a loop over the ONNX file at /model/: the prompt over an empty past ([1, heads, 0, head_dim]),
// then one token a step with the present outputs fed back as the past. On its webgpu EP the present outputs stay on
// the GPU (preferredOutputLocation 'gpu-buffer', IO binding) and only the logits are read back.
// A step's time runs from building its feeds to the next id picked from the logits (argmax, first maximum) in
// both engines. The figures end up in `window.benchResult`, a promise that never rejects: a failure gives {error}.

const params = new URLSearchParams(location.search);
const engineName = params.get('engine') || 'webjit';
const ep = params.get('ep') || 'wasm';
const threads = Number(params.get('threads') || 1);
const budgetMs = Number(params.get('budgetMs') || 2000);

/** @param {string} url */
async function bytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.arrayBuffer();
}

/** The index of the largest of `n` values of `data` from `offset` (the first one on ties). */
function argmax(data, offset, n) {
  let best = 0;
  for (let i = 1; i < n; i++) if (data[offset + i] > data[offset + best]) best = i;
  return best;
}

/** Say how far a generation is, for the benchmark's progress on stderr. */
function report(name, done, total) {
  if (done === 1 || done === total || done % 32 === 0) console.info(`progress: ${name} ${done}/${total}`);
}

/** webjit on `ep`; the bundle is served at /. */
async function webjitEngine() {
  const webjit = await import('/web/webjit.js');
  const options = ep === 'wasm'
    ? { executionProviders: ['wasm'], wasm: { numThreads: threads } }
    : { executionProviders: ['webgpu'], tuning: { budgetMs } };
  const session = await webjit.InferenceSession.create('/', options);
  const generate = async (run, deadline) => {
    const ids = [];
    const ms = [];
    const stop = new AbortController();
    const onToken = (id, info) => {
      ids.push(id);
      ms.push(info.ms);
      report(run.name, ids.length, run.newTokens);
      if (performance.now() > deadline) stop.abort();
    };
    try {
      await session.generate(run.prompt, { maxNewTokens: run.newTokens, temperature: 0, signal: stop.signal, onToken });
    } catch (e) {
      if (!stop.signal.aborted) throw e;
    }
    return { ids, ms };
  };
  const info = () => ({ executionProvider: session.executionProvider, loadMs: session.timings.loadMs,
                        tuningMs: session.timings.tuningMs, wasm: session.wasm || null,
                        generationStats: session.generationStats || null });
  return { generate, info, release: () => session.release() };
}

/** onnxruntime-web on `ep`, a greedy loop over the ONNX file (and its external data) at /model/. */
async function ortEngine(spec) {
  const ort = await import(ep === 'webgpu' ? '/ort/ort.webgpu.min.mjs' : '/ort/ort.wasm.min.mjs');
  ort.env.wasm.wasmPaths = new URL('/ort/', location.href).href;
  ort.env.wasm.numThreads = threads;
  const files = [spec.model.file, ...spec.model.externalData];
  const [model, ...data] = await Promise.all(files.map((f) => bytes(`/model/${f}`)));
  const r = spec.roles;
  const started = performance.now();
  /** @type {any} */
  const options = {
    executionProviders: [ep],
    graphOptimizationLevel: 'all',
    externalData: spec.model.externalData.map((path, i) => ({ path, data: new Uint8Array(data[i]) })),
  };
  if (ep === 'webgpu') {
    options.preferredOutputLocation = Object.fromEntries(r.cache.map((c) => [c.present, 'gpu-buffer']));
  }
  const session = await ort.InferenceSession.create(new Uint8Array(model), options);
  const loadMs = performance.now() - started;
  const ints = (name, values, dims) => (spec.dtypes[name] === 'int64'
    ? new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims)
    : new ort.Tensor('int32', Int32Array.from(values), dims));
  const emptyPast = () => Object.fromEntries(r.cache.map((c) => [
    c.past, new ort.Tensor('float32', new Float32Array(0), [1, c.heads, 0, c.dim])]));
  const dispose = (past) => { for (const t of Object.values(past)) if (t.location === 'gpu-buffer') t.dispose(); };
  let presentLocation = null; // where the present outputs came back: 'gpu-buffer' on webgpu, 'cpu' on wasm
  const generate = async (run, deadline) => {
    const ids = [];
    const ms = [];
    let past = emptyPast();
    let tokens = run.prompt;
    let length = 0;
    try {
      while (ids.length < run.newTokens && !(ids.length && performance.now() > deadline)) {
        const t = performance.now();
        const n = tokens.length;
        const feeds = { ...past, [r.ids]: ints(r.ids, tokens, [1, n]),
                        [r.mask]: ints(r.mask, new Array(length + n).fill(1), [1, length + n]) };
        if (r.positions) {
          feeds[r.positions] = ints(r.positions, Array.from({ length: n }, (_, i) => length + i), [1, n]);
        }
        const out = await session.run(feeds);
        const id = argmax(out[r.logits].data, (n - 1) * r.vocab, r.vocab);
        dispose(past);
        past = Object.fromEntries(r.cache.map((c) => [c.past, out[c.present]]));
        presentLocation = out[r.cache[0].present].location;
        ms.push(performance.now() - t);
        ids.push(id);
        report(run.name, ids.length, run.newTokens);
        length += n;
        tokens = [id];
      }
    } finally {
      dispose(past);
    }
    return { ids, ms };
  };
  const info = () => ({ executionProvider: ep, loadMs, numThreads: ort.env.wasm.numThreads, presentLocation,
                        version: ort.env.versions });
  return { generate, info, release: () => session.release() };
}

async function main() {
  const spec = await (await fetch('/data/generate.json')).json();
  const engine = engineName === 'ort' ? await ortEngine(spec) : await webjitEngine();
  const loadedMs = performance.now();
  const deadline = loadedMs + spec.maxMs;
  const runs = [];
  for (const run of spec.runs) {
    if (performance.now() > deadline) {
      runs.push({ name: run.name, ids: [], ms: [], skipped: true });
      continue;
    }
    runs.push({ name: run.name, ...(await engine.generate(run, deadline)) });
  }
  const result = { loadedMs, runs, crossOriginIsolated: self.crossOriginIsolated, engine: engine.info() };
  await engine.release();
  return result;
}

window.benchResult = main()
  .catch((e) => ({ error: String((e && e.message) || e), stack: String((e && e.stack) || '') }));
