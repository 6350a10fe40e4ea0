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
// Load-time kernels (a plan's first `load`, ../MANIFEST.md) write a region of the memory of their own that no run
// writes: the module's `load(t, nt)` runs them once, on the same threads, when the weights are written and the
// variants chosen; `run` leaves them out. They are not tuned (../tuner.js).
//
// A bundle with shape classes (length buckets, ../classes.js) has one module per class, all over the same memory:
// the weights sit at the same offsets for every class, and each class lays out its own inputs, arena and scratch
// after them. A run pads its inputs to the smallest class that holds them, runs that class's module and crops the
// outputs back.

import { loadCount, shapeClasses } from '../classes.js';
import { assembleOutputs, checkFeeds, loadConsts } from '../feeds.js';
import { simdSupport, unsignedDotSupport, validateWasm, writeWeights } from './layout.js';
import { chosenFrom, groups, tableEntries, tunerKernels, usable, wasmDevice } from './choices.js';
import { SLOWER, median, tune, tuneClasses, tuningSettings } from '../tuner.js';
import { ENTRY_VERSION, cacheKey, makeEntry, readEntry, writeEntry } from '../cache.js';
import { generate } from '../generate.js';

const DEFAULT_MAX_THREADS = 4;
const TARGET_MS = 2; // a timed call of `steps` should last at least this long
const MAX_REPS = 64;
// A candidate's first calls run code V8 compiled lazily with its baseline compiler (Liftoff), several times slower
// than what it tiers up to after a call or two: warm-up calls go on until one is no faster than SETTLED times the
// one before, WARM_CALLS at most, so that no candidate is judged by its baseline code.
const WARM_CALLS = 4;
const SETTLED = 0.8;

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

  /** @param {number} cls  the shape class whose load-time kernels run (the module's `load`) */
  load(cls) {
    return this._all(() => ({ type: 'load', cls }));
  }

  /**
   * Every thread runs kernel k of class cls `reps` times (the module's `steps`).
   * @param {number} cls
   * @param {number} k
   * @param {number} reps
   */
  steps(cls, k, reps) {
    return this._all(() => ({ type: 'steps', cls, k, reps }));
  }

  terminate() {
    this.workers.forEach((w) => w.terminate());
  }
}

/**
 * The wasm section of a plan that has one (every plan a WasmSession runs).
 * @param {import('../manifest.js').Manifest} m
 * @returns {import('./layout.js').WasmSection}
 */
function wasmOf(m) {
  if (!m.wasm) throw new Error('this bundle has no WebAssembly modules');
  return m.wasm;
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
    const unsignedDot = simd === 'relaxed' && unsignedDotSupport();
    const session = new WasmSession(bundle, memory, { simd, unsignedDot, threads, isolated, file: forms[forms.length - 1].file });
    session._options = options;
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
    try {
      await session._choose(options, progress);
      await session._runLoadKernels();
    } catch (e) {
      session.release();
      throw e;
    }
    session.timings.loadMs = performance.now() - started;
    progress({ phase: 'ready' });
    return session;
  }

  /**
   * Pick every kernel's variant: from the cache when it holds this bundle's winners for this CPU form and thread
   * count, else by tuning within the budget (then cached), else the defaults (`tuning: false`).
   * @param {import('../session.js').SessionOptions} options
   * @param {(e: import('../session.js').ProgressEvent) => void} progress
   */
  async _choose(options, progress) {
    const { simd, unsignedDot, threads } = this.wasm;
    const tuning = tuningSettings(options.tuning);
    const device = wasmDevice(simd, threads, globalThis.navigator.hardwareConcurrency || 1, unsignedDot);
    const key = cacheKey(this.bundle.hash, device);
    const useCache = options.cache !== false;
    const entry = useCache && !(tuning && tuning.force) ? await readEntry(key) : null;
    const cached = entry && entry.version === ENTRY_VERSION && entry.bundle === this.bundle.hash
      && Array.isArray(entry.winners) && entry.winners.length === this._classes.length
      ? this._classes.map((c, i) => chosenFrom(entry.winners[i], wasmOf(c.manifest).kernels, simd, unsignedDot)) : null;
    if (cached && cached.every((x) => x)) {
      this._classes.forEach((c, i) => { c.chosen = /** @type {number[]} */ (cached[i]); this._select(c); });
      this.tuningReport = this._report('cache', 0, 0, true, this._classes.flatMap((c) => this._rows(c)));
      return;
    }
    this._classes.forEach((c) => this._select(c));
    if (!tuning) return;
    const started = performance.now();
    this.tuningReport = await this._tune(tuning.budgetMs, tuning.repeats, progress);
    this.timings.tuningMs = performance.now() - started;
    if (useCache && this.tuningReport.kernels.some((/** @type {{tried: number}} */ k) => k.tried > 0)) {
      const won = this._classes.map((c) => Object.fromEntries(wasmOf(c.manifest).kernels.map((k, i) => [k.name, k.variants[simd][c.chosen[i]]])));
      const err = await writeEntry(key, makeEntry(this.bundle.hash, device, won, this.tuningReport));
      if (err) /** @type {any} */ (this.tuningReport).cacheError = err;
    }
  }

  /** Run every class's load-time kernels once (the module's `load`), with the variants chosen. */
  async _runLoadKernels() {
    for (const c of this._classes) {
      if (!loadCount(c.manifest)) continue;
      this._select(c); // the classes' layouts overlap: another class's arena may have covered c's table
      try {
        if (this._workers) await this._workers.load(c.index);
        else /** @type {any[]} */ (this._instances)[c.index].load(0, 1);
      } catch (e) {
        throw new Error(`a WebAssembly load-time kernel failed: ${/** @type {Error} */ (e).message}`);
      }
    }
  }

  /**
   * Tune every shape class within the budget (../tuner.js `tuneClasses` shares it between them, as for WebGPU).
   * Variants are timed on the session's own threads.
   * @param {number} budgetMs
   * @param {number} repeats
   * @param {(e: import('../session.js').ProgressEvent) => void} progress
   */
  async _tune(budgetMs, repeats, progress) {
    return tuneClasses(this._classes, budgetMs, (/** @type {any} */ c, share, always) => {
      const kernels = tunerKernels(c.manifest.wasm.kernels, this.wasm.simd);
      return tune({
        kernels,
        groups: groups(c.manifest.wasm.kernels),
        current: c.chosen,
        load: loadCount(c.manifest),
        candidates: (k) => usable(c.manifest.wasm.kernels[k], this.wasm.simd, this.wasm.unsignedDot),
        prepare: async () => {},
        measure: (k, v, best) => this._measure(c, k, v, best, repeats),
        choose: async (ks, v) => {
          ks.forEach((k) => { c.chosen[k] = v; });
          this._select(c);
        },
        budgetMs: share,
        now: () => performance.now(),
        timer: 'wall-clock',
        always,
        onProgress: progress,
      });
    }, () => performance.now());
  }

  /**
   * Median milliseconds of candidate v of kernel k: warm-up calls until the time settles (WARM_CALLS), then
   * `repeats` calls of enough steps to last TARGET_MS (none when the warm-up is over SLOWER times `best`). Leaves
   * candidate v chosen.
   * @param {any} c
   * @param {number} k
   * @param {number} v
   * @param {number} best
   * @param {number} repeats
   */
  async _measure(c, k, v, best, repeats) {
    c.chosen[k] = v;
    this._select(c);
    const time = async (/** @type {number} */ reps) => {
      const t = performance.now();
      if (this._workers) await this._workers.steps(c.index, k, reps);
      else /** @type {any[]} */ (this._instances)[c.index].steps(k, reps, 0, 1);
      return (performance.now() - t) / reps;
    };
    let warm = await time(1);
    for (let i = 1; i < WARM_CALLS; i++) {
      const next = await time(1);
      const settled = next > SETTLED * warm;
      warm = Math.min(warm, next);
      if (settled) break;
    }
    if (warm > SLOWER * best) return warm;
    const reps = Math.min(MAX_REPS, Math.max(1, Math.ceil(TARGET_MS / Math.max(warm, 1e-3))));
    const times = [];
    for (let r = 0; r < repeats; r++) times.push(await time(reps));
    return median(times);
  }

  /**
   * Write class c's table of chosen variants into the memory.
   * @param {any} c
   */
  _select(c) {
    const w = c.manifest.wasm;
    new Uint32Array(this.memory.buffer, w.select, w.kernels.length).set(tableEntries(w.kernels, this.wasm.simd, c.chosen));
  }

  /**
   * The report rows of class c's kernels as chosen now, untimed.
   * @param {any} c
   */
  _rows(c) {
    const simd = this.wasm.simd;
    return c.manifest.wasm.kernels.map((/** @type {any} */ k, /** @type {number} */ i) => ({
      kernel: k.name, dims: c.dims, sharedWith: null, candidates: k.variants[simd].length, tried: 0, times: {}, errors: {},
      winner: k.variants[simd][c.chosen[i]],
    }));
  }

  /**
   * @param {'tuned' | 'cache'} source
   * @param {number} budgetMs
   * @param {number} elapsedMs
   * @param {boolean} complete
   * @param {any[]} kernels
   */
  _report(source, budgetMs, elapsedMs, complete, kernels) {
    return { source, timer: 'wall-clock', budgetMs, elapsedMs, complete, kernels };
  }

  /**
   * @param {import('../manifest.js').Bundle} bundle
   * @param {WebAssembly.Memory} memory
   * @param {{simd: 'relaxed' | 'fixed', unsignedDot: boolean, threads: number, isolated: boolean, file: string}} info
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
    /** @type {any} */ this.tuningReport = { source: 'off' };
    /** Set when an earlier provider could not run: `{from, reason}`. @type {{from: string, reason: string} | undefined} */
    this.fallback = undefined;
    /** How sessions open (InferenceSession.create, set by it): an encoder-decoder opens its encoder so. @type {((src: any, options: any) => Promise<any>) | undefined} */
    this._open = undefined;
    /** Set when a provider listed before 'wasm' was passed over by choice: `{provider, over, reason}`.
     * @type {{provider: string, over: string, reason: string} | undefined} */
    this.providerChoice = undefined;
    /** @type {{loadMs: number, tuningMs: number}} */ this.timings = { loadMs: 0, tuningMs: 0 };
    this._classes = shapeClasses(m).map((c) => ({
      ...c, consts: /** @type {(import('../tensor.js').Tensor | null)[]} */ (c.manifest.outputs.map(() => null)), chosen: /** @type {any} */ (c.manifest).wasm.kernels.map(() => 0),
    }));
    /** @type {{run: (t: number, nt: number) => void}[] | null} */ this._instances = null;
    /** @type {Workers | null} */ this._workers = null;
    /** @type {Error | null} */ this._broken = null;
    /** @type {Promise<any>} */ this._queue = Promise.resolve();
    /** @type {import('../generate.js').GenerationStats | undefined} the last generate()'s token counts and times */
    this.generationStats = undefined;
    /** @type {import('../session.js').SessionOptions | null} what the session was made with */
    this._options = null;
    /** @type {Promise<any> | null} an encoder-decoder model's encoder session (../seq2seq.js), once made */
    this._encoder = null;
  }

  async _loadConsts() {
    const consts = await loadConsts(this.bundle, this._classes);
    this._classes.forEach((c, i) => { c.consts = consts[i]; });
  }

  /**
   * Run the model once.
   * @param {Record<string, import('../tensor.js').Tensor>} feeds  one tensor per input, by name
   * @returns {Promise<Record<string, import('../tensor.js').Tensor>>}
   */
  async run(feeds) {
    const call = checkFeeds(this.bundle.manifest, this._classes, feeds);
    const result = this._queue.then(() => this._run(call, feeds));
    this._queue = result.catch(() => {});
    return result;
  }

  /**
   * @param {import('../feeds.js').Call} call  the class to run, the feeds' dim sizes, inputs in device form
   * @param {Record<string, import('../tensor.js').Tensor>} feeds
   */
  async _run(call, feeds) {
    const c = /** @type {any} */ (call.cls);
    const m = c.manifest;
    const w = /** @type {import('./layout.js').WasmSection} */ (m.wasm);
    call.data.forEach((d, i) => this._write(w.inputs[i], d));
    await this._runClass(c);
    return assembleOutputs(this.bundle.manifest, call, c.consts, feeds, (i) => {
      const offset = w.outputs[i];
      return offset === null ? null : new Uint8Array(this.memory.buffer, offset, /** @type {number} */ (m.outputs[i].from?.bytes)).slice().buffer;
    });
  }

  /**
   * Copy a typed array's bytes into the memory at `offset`.
   * @param {number} offset
   * @param {ArrayBufferView} d
   */
  _write(offset, d) {
    new Uint8Array(this.memory.buffer, offset, d.byteLength).set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }

  /**
   * Run class c's module on the session's threads.
   * @param {any} c
   */
  async _runClass(c) {
    if (this._broken) throw new Error(`this session failed earlier (${this._broken.message}); create a new InferenceSession`);
    if (!this._instances && !this._workers) throw new Error('this session was released; create a new InferenceSession');
    this._select(c); // the classes' layouts overlap: another class's arena may have covered c's table since
    try {
      if (this._workers) await this._workers.run(c.index);
      else /** @type {{run: (t: number, nt: number) => void}[]} */ (this._instances)[c.index].run(0, 1);
    } catch (e) {
      // A thread that trapped leaves the others waiting at the barrier: this session cannot run again.
      this._broken = /** @type {Error} */ (e);
      this.release();
      throw new Error(`a WebAssembly kernel failed: ${/** @type {Error} */ (e).message}`);
    }
  }

  /**
   * Generate tokens after a prompt (a bundle built with --generate; ../generate.js): the cache stays in the
   * memory, in the past inputs of the class that runs next.
   * @param {number[] | Int32Array | BigInt64Array | import('../tensor.js').Tensor} inputIds
   * @param {import('../generate.js').GenerateOptions} [options]
   * @returns {Promise<number[]>}  the new ids
   */
  generate(inputIds, options) {
    return generate(this, inputIds, options);
  }

  /**
   * One generation step (../generate.js `StepFn`). The classes' layouts overlap in the memory (a class's inputs may
   * lie in another's arena), so the logits row and every source region are read before anything is written.
   * @param {number} ci
   * @param {import('../generate.js').Upload[]} uploads
   * @param {import('../generate.js').CacheOp[]} ops
   * @param {import('../generate.js').Read} read
   */
  async _generationStep(ci, uploads, ops, read) {
    const c = this._classes[ci];
    const w = wasmOf(c.manifest);
    for (const u of uploads) this._write(w.inputs[u.input], u.data);
    await this._runClass(c);
    const at = (/** @type {{cls: number, input: number} | {cls: number, output: number}} */ r) => {
      const cw = wasmOf(this._classes[r.cls].manifest);
      const offset = 'input' in r ? cw.inputs[r.input] : cw.outputs[r.output];
      if (offset === null) throw new Error(`output ${/** @type {any} */ (r).output} is not computed in the memory`);
      return offset;
    };
    const mem = this.memory.buffer;
    const row = new Float32Array(mem.slice(at(read) + read.offset, at(read) + read.offset + read.bytes));
    const sources = ops.map((op) => ('copy' in op && !('scratch' in op.copy.from)
      ? new Uint8Array(mem.slice(at(op.copy.from) + op.copy.fromOffset, at(op.copy.from) + op.copy.fromOffset + op.copy.bytes)) : null));
    /** @type {Uint8Array} */
    let scratch = new Uint8Array(0);
    ops.forEach((op, i) => {
      if ('clear' in op) {
        const r = /** @type {any} */ (op.clear.region);
        new Uint8Array(mem, at(r) + op.clear.offset, op.clear.bytes).fill(0);
        return;
      }
      const { from, fromOffset, to, toOffset, bytes } = op.copy;
      const data = 'scratch' in from ? scratch.subarray(fromOffset, fromOffset + bytes) : /** @type {Uint8Array} */ (sources[i]);
      if ('scratch' in to) {
        if (scratch.length < toOffset + bytes) { const grown = new Uint8Array(toOffset + bytes); grown.set(scratch); scratch = grown; }
        scratch.set(data, toOffset);
      } else {
        new Uint8Array(mem, at(to) + toOffset, bytes).set(data);
      }
    });
    return row;
  }

  /** Stop the workers and drop the module; the session cannot run afterwards. */
  async release() {
    if (this._encoder) (await this._encoder.catch(() => null))?.release();
    this._encoder = null;
    if (this._workers) this._workers.terminate();
    this._workers = null;
    this._instances = null;
  }
}
