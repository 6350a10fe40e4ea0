// The 'wasm' execution provider: run a bundle's WebAssembly module (`webjit build`, the `wasm` manifest section)
// on the CPU, with the same API as the WebGPU session.
//
// One linear memory holds everything (weights, inputs, the arena of intermediates, per-thread scratch), laid out by
// the compiler; `create` writes the weights once. The module is the relaxed-SIMD form where the browser validates
// relaxed SIMD, else the fixed-SIMD form. Threads: when the page is cross-origin isolated and more than one thread
// is asked for (default min(hardwareConcurrency, 4), or `wasm: {numThreads}`), the memory is shared and N Web
// Workers (worker.js) each call `run(t, N)`; their kernels meet at the module's atomic barrier. The main thread
// only posts 'run' and awaits N 'done' messages: it never blocks. Otherwise one thread runs the unshared form on
// the main thread. Runs are serialised, since they share the memory.

import { InferenceSession } from '../session.js';
import { fromDevice, fromRaw } from '../tensor.js';
import { simdSupport, validateWasm, writeWeights } from './layout.js';

const DEFAULT_MAX_THREADS = 4;

/** Web Workers that each call the module's run(t, nt) over one shared memory. */
class Workers {
  /**
   * @param {WebAssembly.Module} module
   * @param {WebAssembly.Memory} memory
   * @param {number} n
   */
  static async start(module, memory, n) {
    const url = new URL('./worker.js', import.meta.url);
    const pool = new Workers(Array.from({ length: n }, (_, t) => new Worker(url, { type: 'module', name: `webjit wasm ${t}` })));
    try {
      await pool._all((t) => ({ type: 'init', module, memory, t, nt: n }));
    } catch (e) {
      pool.terminate();
      throw e;
    }
    return pool;
  }

  /** @param {Worker[]} workers */
  constructor(workers) {
    this.workers = workers;
  }

  /**
   * Post a message to every worker and wait for each to answer (an error answer rejects).
   * @param {(t: number) => any} message
   */
  _all(message) {
    return Promise.all(this.workers.map((w, t) => new Promise((ok, fail) => {
      w.onmessage = (e) => (e.data.type === 'error' ? fail(new Error(`a WebAssembly worker failed: ${e.data.error}`)) : ok(e.data));
      w.onerror = (e) => { e.preventDefault(); fail(new Error(`a WebAssembly worker failed: ${e.message || 'could not start it'}`)); };
      w.postMessage(message(t));
    })));
  }

  run() {
    return this._all(() => ({ type: 'run' }));
  }

  terminate() {
    this.workers.forEach((w) => w.terminate());
  }
}

export class WasmSession {
  /**
   * @param {import('../manifest.js').Bundle} bundle
   * @param {import('../session.js').SessionOptions & {wasm?: {numThreads?: number}}} options
   * @param {(e: import('../session.js').ProgressEvent) => void} progress
   * @returns {Promise<WasmSession>}
   */
  static async create(bundle, options, progress) {
    const started = performance.now();
    const w = validateWasm(bundle.manifest);
    const simd = simdSupport();
    if (!simd) throw new Error('this browser has no WebAssembly SIMD, which the wasm execution provider needs');
    const asked = options.wasm && options.wasm.numThreads;
    if (asked !== undefined && (!Number.isInteger(asked) || asked < 1)) {
      throw new RangeError(`wasm.numThreads must be a positive integer, got ${asked}`);
    }
    const isolated = globalThis.crossOriginIsolated === true;
    const threads = isolated
      ? Math.min(asked ?? Math.min(globalThis.navigator.hardwareConcurrency || 1, DEFAULT_MAX_THREADS), w.maxThreads) : 1;
    const shared = threads > 1;
    const form = w.modules.find((mod) => mod.simd === simd && mod.shared === shared);
    if (!form) throw new Error(`this bundle has no ${simd}-SIMD ${shared ? 'shared' : 'unshared'}-memory module`);
    const memory = new WebAssembly.Memory({ initial: w.pages, maximum: w.pages, ...(shared ? { shared: true } : {}) });
    const session = new WasmSession(bundle, memory, { simd, threads, isolated, file: form.file });
    progress({ phase: 'kernels', done: 0, total: 1 });
    const compile = bundle.bytes(form.file).then(async (bytes) => {
      try {
        return await WebAssembly.compile(bytes);
      } catch (e) {
        throw new Error(`${form.file} does not compile: ${/** @type {Error} */ (e).message}`);
      }
    });
    const [module] = await Promise.all([compile, writeWeights(bundle, memory, progress), session._loadConsts()]);
    if (shared) {
      session._workers = await Workers.start(module, memory, threads);
    } else {
      const instance = await WebAssembly.instantiate(module, { env: { memory } });
      session._instance = /** @type {{run: (t: number, nt: number) => void}} */ (/** @type {any} */ (instance.exports));
    }
    progress({ phase: 'kernels', done: 1, total: 1 });
    session.timings.loadMs = performance.now() - started;
    progress({ phase: 'ready' });
    return session;
  }

  /**
   * @param {import('../manifest.js').Bundle} bundle
   * @param {WebAssembly.Memory} memory
   * @param {{simd: 'relaxed' | 'fixed', threads: number, isolated: boolean, file: string}} info
   */
  constructor(bundle, memory, info) {
    const m = bundle.manifest;
    this.bundle = bundle;
    this.memory = memory;
    /** The provider this session runs on (onnxruntime-web has no such field; webjit says which one it took). */
    this.executionProvider = 'wasm';
    /** Which module runs and on how many threads. */
    this.wasm = info;
    /** @type {string[]} */ this.inputNames = m.inputs.map((t) => t.name);
    /** @type {string[]} */ this.outputNames = m.outputs.map((t) => t.name);
    /** @type {{source: 'off'}} */ this.tuningReport = { source: 'off' };
    /** @type {{loadMs: number, tuningMs: number}} */ this.timings = { loadMs: 0, tuningMs: 0 };
    /** @type {(import('../tensor.js').Tensor | null)[]} */ this._consts = m.outputs.map(() => null);
    /** @type {{run: (t: number, nt: number) => void} | null} */ this._instance = null;
    /** @type {Workers | null} */ this._workers = null;
    /** @type {Error | null} */ this._broken = null;
    /** @type {Promise<any>} */ this._queue = Promise.resolve();
  }

  async _loadConsts() {
    await Promise.all(this.bundle.manifest.outputs.map(async (t, i) => {
      if (t.from && t.from.const !== undefined) this._consts[i] = fromRaw(t.dtype, await this.bundle.bytes(t.from.const), t.shape);
    }));
  }

  /**
   * Run the model once.
   * @param {Record<string, import('../tensor.js').Tensor>} feeds  one tensor per input, by name
   * @returns {Promise<Record<string, import('../tensor.js').Tensor>>}
   */
  async run(feeds) {
    const data = InferenceSession.prototype._checkFeeds.call(/** @type {any} */ (this), feeds);
    const result = this._queue.then(() => this._run(data, feeds));
    this._queue = result.catch(() => {});
    return result;
  }

  /**
   * @param {(Float32Array | Int32Array | Uint32Array)[]} data  inputs in device form
   * @param {Record<string, import('../tensor.js').Tensor>} feeds
   */
  async _run(data, feeds) {
    if (this._broken) throw new Error(`this session failed earlier (${this._broken.message}); create a new InferenceSession`);
    if (!this._instance && !this._workers) throw new Error('this session was released');
    const m = this.bundle.manifest;
    const w = /** @type {import('./layout.js').WasmSection} */ (/** @type {any} */ (m).wasm);
    data.forEach((d, i) => {
      new Uint8Array(this.memory.buffer, w.inputs[i], d.byteLength).set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    });
    try {
      if (this._workers) await this._workers.run();
      else /** @type {{run: (t: number, nt: number) => void}} */ (this._instance).run(0, 1);
    } catch (e) {
      // A thread that trapped leaves the others waiting at the barrier: this session cannot run again.
      this._broken = /** @type {Error} */ (e);
      this.release();
      throw new Error(`a WebAssembly kernel failed: ${/** @type {Error} */ (e).message}`);
    }
    /** @type {Record<string, import('../tensor.js').Tensor>} */
    const out = {};
    m.outputs.forEach((t, i) => {
      const offset = w.outputs[i];
      if (offset !== null) {
        const bytes = new Uint8Array(this.memory.buffer, offset, /** @type {number} */ (t.from && t.from.bytes)).slice().buffer;
        out[t.name] = fromDevice(t.dtype, t.deviceDtype, bytes, t.shape);
      } else if (this._consts[i]) {
        out[t.name] = /** @type {import('../tensor.js').Tensor} */ (this._consts[i]);
      } else {
        out[t.name] = feeds[m.inputs[/** @type {number} */ (t.from && t.from.input)].name];
      }
    });
    return out;
  }

  /** Stop the workers and drop the module; the session cannot run afterwards. */
  async release() {
    if (this._workers) this._workers.terminate();
    this._workers = null;
    this._instance = null;
  }
}
