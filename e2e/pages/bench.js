// One benchmark measurement, started by the page load and driven by the query string:
//
//   /bench/bench.html?engine=webjit|ort|tjs&ep=webgpu|wasm&threads=N&runs=R&maxMs=M&budgetMs=B
//
// It reads /data/feeds.json (the inputs, the onnxruntime outputs to compare with, the model files), loads the
// engine, runs the model once (the first result: its time is counted from the navigation start, so page load,
// module import, fetches, compiles and webjit's tuning are all in it), then up to R warm runs, stopping early
// once M milliseconds of warm runs have passed (at least one warm run when R > 0). The figures end up in
// `window.benchResult`, a promise that never rejects: a failure gives `{error}`.
//
// webjit comes from /web/ with the bundle at /; onnxruntime-web from /ort/ with the ONNX model at /model/;
// transformers.js from /tjs/, with the onnxruntime-web files it loads at /tjs-ort/ and the same ONNX file in a
// hub repository's layout at /tjs-model/.

const params = new URLSearchParams(location.search);
const engineName = params.get('engine') || 'none';  // 'none': load nothing (a blank page on the origin)
const ep = params.get('ep') || 'wasm';
const threads = Number(params.get('threads') || 1);
const runs = Number(params.get('runs') || 0);
const maxMs = Number(params.get('maxMs') || Infinity);
const budgetMs = Number(params.get('budgetMs') || 2000);

const ARRAYS = { int64: BigInt64Array, int32: Int32Array, float32: Float32Array, uint8: Uint8Array, bool: Uint8Array };

/** Live and peak bytes of every GPUBuffer the page creates (both engines allocate through device.createBuffer). */
function trackGpuBuffers() {
  const t = { live: 0, peak: 0, count: 0 };
  if (typeof GPUDevice === 'undefined') return t;
  const create = GPUDevice.prototype.createBuffer;
  const destroy = GPUBuffer.prototype.destroy;
  const sizes = new WeakMap();
  GPUDevice.prototype.createBuffer = function (descriptor) {
    const buffer = create.call(this, descriptor);
    sizes.set(buffer, buffer.size);
    t.live += buffer.size;
    t.count += 1;
    t.peak = Math.max(t.peak, t.live);
    return buffer;
  };
  GPUBuffer.prototype.destroy = function () {
    const size = sizes.get(this);
    if (size !== undefined) { t.live -= size; sizes.delete(this); }
    return destroy.call(this);
  };
  return t;
}

/** @param {string} url */
async function bytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.arrayBuffer();
}

/** @param {{dtype: string, file: string}} t */
async function typed(t) {
  const Array = ARRAYS[t.dtype];
  if (!Array) throw new Error(`unsupported dtype ${t.dtype}`);
  return new Array(await bytes(`/data/${t.file}`));
}

/** webjit on `ep`; the bundle is served at /. */
async function webjitEngine(spec, inputs) {
  const webjit = await import('/web/webjit.js');
  const feeds = Object.fromEntries(spec.inputs.map((t, i) => [t.name, new webjit.Tensor(t.dtype, inputs[i], t.shape)]));
  const options = ep === 'wasm'
    ? { executionProviders: ['wasm'], wasm: { numThreads: threads } }
    : { executionProviders: ['webgpu'], tuning: { budgetMs } };
  const session = await webjit.InferenceSession.create('/', options);
  const info = () => {
    const r = session.tuningReport || {};
    const out = { executionProvider: session.executionProvider, loadMs: session.timings.loadMs,
                  tuningMs: session.timings.tuningMs, tuning: r.source || null, wasm: session.wasm || null };
    if (session.buffers) {
      out.sessionBufferBytes = Object.values(session.buffers).flat().reduce((n, b) => n + b.size, 0);
      out.variantsTimed = r.kernels ? r.kernels.reduce((n, k) => n + k.tried, 0) : 0;
    }
    return out;
  };
  const run = async () => {
    const out = await session.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([name, t]) => [name, t.data]));
  };
  return { run, info, release: () => session.release() };
}

/** onnxruntime-web on `ep`, from the same ONNX file (and its external data) at /model/. */
async function ortEngine(spec, inputs) {
  const ort = await import(ep === 'webgpu' ? '/ort/ort.webgpu.min.mjs' : '/ort/ort.wasm.min.mjs');
  ort.env.wasm.wasmPaths = new URL('/ort/', location.href).href;
  ort.env.wasm.numThreads = threads;
  const files = [spec.model.file, ...spec.model.externalData];
  const [model, ...data] = await Promise.all(files.map((f) => bytes(`/model/${f}`)));
  const started = performance.now();
  const session = await ort.InferenceSession.create(new Uint8Array(model), {
    executionProviders: [ep],
    graphOptimizationLevel: 'all',
    externalData: spec.model.externalData.map((path, i) => ({ path, data: new Uint8Array(data[i]) })),
  });
  const loadMs = performance.now() - started;
  const feeds = Object.fromEntries(spec.inputs.map((t, i) => [t.name, new ort.Tensor(t.dtype, inputs[i], t.shape)]));
  const run = async () => {
    const out = await session.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([name, t]) => [name, t.data]));
  };
  const info = () => ({ executionProvider: ep, loadMs, numThreads: ort.env.wasm.numThreads, version: ort.env.versions });
  return { run, info, release: () => session.release() };
}

/** transformers.js, set to read only from this origin: the model from /tjs-model/, its onnxruntime-web files from
 * /tjs-ort/, with `threads` threads. */
async function importTjs() {
  const tjs = await import('/tjs/transformers.js');
  Object.assign(tjs.env, { allowRemoteModels: false, allowLocalModels: true, localModelPath: '/', useBrowserCache: false });
  const wasm = tjs.env.backends.onnx.wasm;
  wasm.wasmPaths = new URL('/tjs-ort/', location.href).href;
  wasm.numThreads = threads;
  return { tjs, wasm };
}

/** transformers.js on `ep`: its model class for the file (AutoModel, from the hub layout's config.json), called
 * with the same feeds, so its figures are the model's, as for the other engines. Nothing is fetched from outside
 * the page's origin. */
async function tjsEngine(spec, inputs) {
  const { tjs, wasm } = await importTjs();
  const started = performance.now();
  const model = await tjs.AutoModel.from_pretrained('tjs-model', {
    dtype: spec.model.dtype,
    device: ep,
    model_file_name: spec.model.file.replace(/(_fp16|_quantized|_q4)?\.onnx$/, ''),
    // its files are read from the repository: the external data beside the model, in onnx/
    session_options: { externalData: spec.model.externalData.map((path) => ({ path, data: `onnx/${path}` })) },
  });
  const loadMs = performance.now() - started;
  const feeds = Object.fromEntries(spec.inputs.map((t, i) => [t.name, new tjs.Tensor(t.dtype, inputs[i], t.shape)]));
  const run = async () => {
    const out = await model(feeds);
    return Object.fromEntries(Object.entries(out).map(([name, t]) => [name, t.data]));
  };
  const info = () => ({ executionProvider: ep, loadMs, numThreads: wasm.numThreads, version: tjs.env.version });
  return { run, info, release: () => model.dispose() };
}

/** The text engines (e2e.bench --text): each one's feature-extraction pipeline on `spec.texts`, tokenization,
 * mean pooling and normalisation included; webjit from the bundle built from the hub repository at /tjs-model/,
 * which transformers.js reads. */
const POOL = { pooling: 'mean', normalize: true };

async function webjitText(spec) {
  const webjit = await import('/web/webjit.js');
  const options = ep === 'wasm'
    ? { executionProviders: ['wasm'], wasm: { numThreads: threads } }
    : { executionProviders: ['webgpu'], tuning: { budgetMs } };
  const started = performance.now();
  const extractor = await webjit.pipeline('feature-extraction', '/', options);
  const loadMs = performance.now() - started;
  const run = async () => ({ embeddings: (await extractor(spec.texts, POOL)).data });
  const info = () => ({ executionProvider: extractor.session.executionProvider, loadMs,
                        tuning: (extractor.session.tuningReport || {}).source || null });
  return { run, info, release: () => extractor.dispose() };
}

async function tjsText(spec) {
  const { tjs, wasm } = await importTjs();
  const started = performance.now();
  const extractor = await tjs.pipeline('feature-extraction', 'tjs-model', { dtype: spec.model.dtype, device: ep });
  const loadMs = performance.now() - started;
  const run = async () => ({ embeddings: (await extractor(spec.texts, POOL)).data });
  const info = () => ({ executionProvider: ep, loadMs, numThreads: wasm.numThreads, version: tjs.env.version });
  return { run, info, release: () => extractor.dispose() };
}

/** Largest |got - want| over all outputs; null when an output is missing or holds NaN or infinity. */
async function maxAbsError(spec, outputs) {
  let err = 0;
  for (const t of spec.outputs) {
    const got = outputs[t.name];
    const want = await typed(t);
    if (!got || got.length !== want.length) return null;
    for (let i = 0; i < got.length; i++) {
      const d = Math.abs(Number(got[i]) - Number(want[i]));
      if (!Number.isFinite(d)) return null;
      if (d > err) err = d;
    }
  }
  return err;
}

async function main() {
  const gpu = trackGpuBuffers();
  const spec = await (await fetch('/data/feeds.json')).json();
  const inputs = await Promise.all(spec.inputs.map(typed));
  const engines = spec.texts ? { webjit: webjitText, tjs: tjsText } : { webjit: webjitEngine, ort: ortEngine, tjs: tjsEngine };
  if (!engines[engineName]) throw new Error(`unknown engine '${engineName}'`);
  const engine = await engines[engineName](spec, inputs);
  const loadedMs = performance.now();
  let outputs = await engine.run();
  const firstResultMs = performance.now();
  const runsMs = [];
  const warmStart = performance.now();
  while (runsMs.length < runs && (runsMs.length === 0 || performance.now() - warmStart < maxMs)) {
    const t = performance.now();
    outputs = await engine.run();
    runsMs.push(performance.now() - t);
  }
  const memory = /** @type {any} */ (performance).memory;
  const result = {
    firstResultMs, loadedMs, firstRunMs: firstResultMs - loadedMs, runsMs,
    stoppedEarly: runsMs.length < runs, maxAbsError: await maxAbsError(spec, outputs),
    gpuBufferBytes: gpu.count ? gpu.live : null, gpuBufferPeakBytes: gpu.count ? gpu.peak : null,
    usedJSHeapSize: memory ? memory.usedJSHeapSize : null, crossOriginIsolated: self.crossOriginIsolated,
    engine: engine.info(),
  };
  return result;
}

window.benchResult = engineName === 'none' ? Promise.resolve(null)
  : main().catch((e) => ({ error: String((e && e.message) || e), stack: String((e && e.stack) || '') }));
