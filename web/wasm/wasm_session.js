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
//
// A bundle with shape classes (length buckets, ../classes.js) has one module per class, all over the same memory:
// the weights sit at the same offsets for every class, and each class lays out its own inputs, arena and scratch
// after them. A run pads its inputs to the smallest class that holds them, runs that class's module and crops the
// outputs back.

import { InferenceSession, cropped } from '../session.js';
import { fromDevice, fromRaw } from '../tensor.js';
import { actualShape, shapeClasses } from '../classes.js';
import { simdSupport, validateWasm, writeWeights } from './layout.js';

const DEFAULT_MAX_THREADS = 4;

/** Web Workers that each call the module's run(t, nt) over one shared memory. */
class Workers {
  /**
   * @param {WebAssembly.Module[]} modules  one per shape class
   * @param {WebAssembly.Memory} memory
   * @param {number} n
   */
  static async start(modules, memory, n) {
    const url = new URL('./worker.js', import.meta.url);
    const pool = new Workers(Array.from({ length: n }, (_, t) => new Worker(url, { type: 'module', name: `webjit wasm ${t}` })));
    try {
      await pool._all((t) => ({ type: 'init', modules, memory, t, nt: n }));
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

  /** @param {number} cls  the shape class whose module runs */
  run(cls) {
    return this._all(() => ({ type: 'run', cls }));
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
    const classes = shapeClasses(bundle.manifest);
    classes.forEach((c) => validateWasm(c.manifest));
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
    const forms = classes.map((c) => {
      const form = /** @type {any} */ (c.manifest).wasm.modules.find((/** @type {any} */ mod) => mod.simd === simd && mod.shared === shared);
      if (!form) throw new Error(`this bundle has no ${simd}-SIMD ${shared ? 'shared' : 'unshared'}-memory module`);
      return form;
    });
    const memory = new WebAssembly.Memory({ initial: w.pages, maximum: w.pages, ...(shared ? { shared: true } : {}) });
    const session = new WasmSession(bundle, memory, { simd, threads, isolated, file: forms[forms.length - 1].file });
    let compiled = 0;
    progress({ phase: 'kernels', done: 0, total: forms.length });
    const compile = Promise.all(forms.map((form) => bundle.bytes(form.file).then(async (bytes) => {
      try {
        return await WebAssembly.compile(bytes);
      } catch (e) {
        throw new Error(`${form.file} does not compile: ${/** @type {Error} */ (e).message}`);
      } finally {
        progress({ phase: 'kernels', done: ++compiled, total: forms.length });
      }
    })));
    const [modules] = await Promise.all([compile, writeWeights(bundle, memory, progress), session._loadConsts()]);
    if (shared) {
      session._workers = await Workers.start(modules, memory, threads);
    } else {
      const instances = await Promise.all(modules.map((module) => WebAssembly.instantiate(module, { env: { memory } })));
      session._instances = instances.map((i) => /** @type {{run: (t: number, nt: number) => void}} */ (/** @type {any} */ (i.exports)));
    }
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
    this._classes = shapeClasses(m).map((c) => ({ ...c, consts: c.manifest.outputs.map(() => null) }));
    /** @type {{run: (t: number, nt: number) => void}[] | null} */ this._instances = null;
    /** @type {Workers | null} */ this._workers = null;
    /** @type {Error | null} */ this._broken = null;
    /** @type {Promise<any>} */ this._queue = Promise.resolve();
  }

  async _loadConsts() {
    await Promise.all(this._classes.flatMap((c) => c.manifest.outputs.map(async (t, i) => {
      if (t.from && t.from.const !== undefined) /** @type {any[]} */ (c.consts)[i] = fromRaw(t.dtype, await this.bundle.bytes(t.from.const), t.shape);
    })));
  }

  /**
   * Run the model once.
   * @param {Record<string, import('../tensor.js').Tensor>} feeds  one tensor per input, by name
   * @returns {Promise<Record<string, import('../tensor.js').Tensor>>}
   */
  async run(feeds) {
    const call = InferenceSession.prototype._checkFeeds.call(/** @type {any} */ (this), feeds);
    const result = this._queue.then(() => this._run(call, feeds));
    this._queue = result.catch(() => {});
    return result;
  }

  /**
   * @param {import('../session.js').Call} call  the class to run, the feeds' dim sizes, inputs in device form
   * @param {Record<string, import('../tensor.js').Tensor>} feeds
   */
  async _run(call, feeds) {
    if (this._broken) throw new Error(`this session failed earlier (${this._broken.message}); create a new InferenceSession`);
    if (!this._instances && !this._workers) throw new Error('this session was released');
    const c = /** @type {any} */ (call.cls);
    const m = c.manifest;
    const w = /** @type {import('./layout.js').WasmSection} */ (m.wasm);
    call.data.forEach((d, i) => {
      new Uint8Array(this.memory.buffer, w.inputs[i], d.byteLength).set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    });
    try {
      if (this._workers) await this._workers.run(c.index);
      else /** @type {{run: (t: number, nt: number) => void}[]} */ (this._instances)[c.index].run(0, 1);
    } catch (e) {
      // A thread that trapped leaves the others waiting at the barrier: this session cannot run again.
      this._broken = /** @type {Error} */ (e);
      this.release();
      throw new Error(`a WebAssembly kernel failed: ${/** @type {Error} */ (e).message}`);
    }
    const axes = /** @type {any} */ (this.bundle.manifest).dynamic?.outputs;
    /** @type {Record<string, import('../tensor.js').Tensor>} */
    const out = {};
    m.outputs.forEach((/** @type {import('../manifest.js').TensorInfo} */ t, /** @type {number} */ i) => {
      const shape = actualShape(t, axes && axes[i], call.sizes);
      const offset = w.outputs[i];
      if (offset !== null) {
        const bytes = new Uint8Array(this.memory.buffer, offset, /** @type {number} */ (t.from && t.from.bytes)).slice().buffer;
        out[t.name] = cropped(fromDevice(t.dtype, t.deviceDtype, bytes, t.shape), shape);
      } else if (c.consts[i]) {
        out[t.name] = cropped(c.consts[i], shape);
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
    this._instances = null;
  }
}
