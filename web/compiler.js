// The compiler in the browser: webjit's Python compiler runs in Pyodide, in a module Worker (compiler_worker.js),
// and gives back a bundle held in memory that InferenceSession.create loads as it is.
//
//   const compiled = await compileInBrowser('/models/minilm/model.onnx', { shapes: { input_ids: [1, 96] } });
//   const session = await InferenceSession.create(compiled, { executionProviders: ['wasm'] });
//
// The model is a URL (its external data files are fetched from beside it) or its bytes (then pass the external
// data with `externalData`, as onnxruntime-web's option of that name). One worker, and the Pyodide in it, serves
// every call with the same pyodideURL: only the first call pays for starting Pyodide and loading the packages.
// Pyodide comes from `pyodideURL` (default /pyodide/ on this origin): `python -m webjit.pyodide_dist` writes it.

/**
 * @typedef {{path: string, data: URL | string | Uint8Array | ArrayBuffer}} ExternalData
 * @typedef {{stage: string, done?: number, total?: number, ms?: number}} CompileProgress
 *   stage: 'pyodide' (starting it), 'packages' (loadPackage('webjit')), 'fetch' (model files), a compiler stage, 'done'
 * @typedef {{
 *   shapes?: Object<string, number[]>,
 *   backends?: string[],
 *   externalData?: ExternalData[],
 *   pyodideURL?: string | URL,
 *   onProgress?: (event: CompileProgress) => void,
 * }} CompileOptions
 * @typedef {{pyodideMs: number, packagesMs: number, fetchMs: number, compileMs: number, totalMs: number,
 *            warm: boolean}} CompileTimings
 *   pyodideMs, packagesMs: 0 when the worker was already up (warm)
 */

/** The scheme of compiled bundles' URLs: they exist only in this page's memory. */
export const SCHEME = 'webjit-compiled:';

let bundles = 0;

/**
 * A bundle held in memory, in the form InferenceSession.create takes: a URL under which `fetch` serves `files`.
 * @param {Map<string, Uint8Array> | Object<string, Uint8Array>} files  bundle path -> bytes, manifest.json included
 * @returns {{url: string, fetch: typeof fetch, files: Map<string, Uint8Array>}}
 */
export function memoryBundle(files) {
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  if (!map.has('manifest.json')) throw new Error('a compiled bundle needs a manifest.json');
  const url = `${SCHEME}/${++bundles}/`;
  const fetchFn = /** @type {typeof fetch} */ (async (input) => {
    const href = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const path = href.startsWith(url) ? decodeURIComponent(href.slice(url.length)) : null;
    const bytes = path === null ? undefined : map.get(path);
    if (!bytes) return new Response(null, { status: 404, statusText: 'Not Found' });
    return new Response(/** @type {Uint8Array<ArrayBuffer>} */ (bytes), { status: 200, headers: { 'Content-Length': String(bytes.byteLength) } });
  });
  return { url, fetch: fetchFn, files: map };
}

/**
 * An external data location as the model names it: a relative path inside the model's folder.
 * @param {string} path
 */
export function checkDataPath(path) {
  if (typeof path !== 'string' || !path || path.startsWith('/') || path.includes('\\') || /^[A-Za-z]:/.test(path)
      || path.split('/').some((p) => p === '..' || p === '.' || p === '') || path.includes('\0')) {
    throw new Error(`external data location '${path}' is not a plain relative path inside the model's folder`);
  }
  return path;
}

/**
 * Bytes to send to the worker: a copy, transferred, so the caller keeps its own buffer.
 * @param {Uint8Array | ArrayBuffer} data
 */
const copyOf = (data) => (data instanceof Uint8Array ? data.slice() : new Uint8Array(data.slice(0)));

/** @type {Map<string, Compiler>} */
const compilers = new Map();

/**
 * Compile an ONNX model in this page (in a worker) into a bundle that InferenceSession.create loads.
 * @param {string | URL | ArrayBuffer | Uint8Array} model
 * @param {CompileOptions} [options]
 * @returns {Promise<{url: string, fetch: typeof fetch, files: Map<string, Uint8Array>, manifest: any,
 *                    timings: CompileTimings}>}
 */
export async function compileInBrowser(model, options = {}) {
  const base = globalThis.location ? globalThis.location.href : undefined;
  const pyodideURL = new URL(options.pyodideURL || '/pyodide/', base).href.replace(/\/?$/, '/');
  const request = {
    model: model instanceof Uint8Array || model instanceof ArrayBuffer
      ? { bytes: copyOf(model) }
      : { url: new URL(String(model), base).href },
    externalData: options.externalData && options.externalData.map(({ path, data }) => ({
      path: checkDataPath(path),
      ...(data instanceof Uint8Array || data instanceof ArrayBuffer ? { bytes: copyOf(data) }
        : { url: new URL(String(data), base).href }),
    })),
    shapes: options.shapes || null,
    backends: options.backends || ['webgpu', 'wasm'],
  };
  const transfer = /** @type {ArrayBuffer[]} */ ([request.model, ...(request.externalData || [])]
    .map((d) => ('bytes' in d && d.bytes ? d.bytes.buffer : null)).filter((b) => b));
  let compiler = compilers.get(pyodideURL);
  if (!compiler) {
    compiler = new Compiler(pyodideURL);
    compilers.set(pyodideURL, compiler);
  }
  const started = performance.now();
  const reply = await compiler.call(request, transfer, options.onProgress || (() => {}));
  const bundle = memoryBundle(new Map(reply.files));
  const manifest = JSON.parse(new TextDecoder().decode(bundle.files.get('manifest.json')));
  return { ...bundle, manifest, timings: { ...reply.timings, totalMs: performance.now() - started } };
}

/** One worker with Pyodide in it; calls are queued, one compile at a time. */
class Compiler {
  /** @param {string} pyodideURL */
  constructor(pyodideURL) {
    this.worker = new Worker(new URL('./compiler_worker.js', import.meta.url), { type: 'module', name: 'webjit compiler' });
    this.worker.postMessage({ type: 'init', pyodideURL });
    /** @type {Map<number, {resolve: (v: any) => void, reject: (e: Error) => void, progress: (e: CompileProgress) => void}>} */
    this.pending = new Map();
    this.next = 0;
    this.worker.onmessage = (/** @type {MessageEvent} */ event) => {
      const msg = event.data;
      const call = this.pending.get(msg.id);
      if (!call) return;
      if (msg.type === 'progress') {
        call.progress(msg.event);
        return;
      }
      this.pending.delete(msg.id);
      if (msg.type === 'done') call.resolve(msg);
      else call.reject(Object.assign(new Error(msg.error), { name: msg.name || 'CompileError' }));
      if (msg.fatal) this.close(); // a later call starts a new worker
    };
    this.worker.onerror = (/** @type {ErrorEvent} */ event) => {
      event.preventDefault();
      const error = new Error(`the compiler worker failed: ${event.message || 'it could not start'}`);
      for (const call of this.pending.values()) call.reject(error);
      this.pending.clear();
      this.close();
    };
  }

  close() {
    for (const [key, c] of compilers) if (c === this) compilers.delete(key);
    if (!this.pending.size) this.worker.terminate();
  }

  /**
   * @param {any} request
   * @param {ArrayBuffer[]} transfer
   * @param {(e: CompileProgress) => void} progress
   * @returns {Promise<{files: [string, Uint8Array][], timings: CompileTimings}>}
   */
  call(request, transfer, progress) {
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, progress });
      this.worker.postMessage({ type: 'compile', id, ...request }, transfer);
    });
  }
}
