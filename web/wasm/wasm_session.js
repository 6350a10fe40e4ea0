// The 'wasm' execution provider (../provider.js): a bundle's WebAssembly module (`webjit build`, the `wasm`
// manifest section) on the CPU.
//
// One linear memory holds everything (weights, inputs, the arena of intermediates, per-thread scratch), laid out by
// the compiler; `load` writes the weights once. The module is the relaxed-SIMD form where the browser validates
// relaxed SIMD, else the fixed-SIMD form. Threads: when the page is cross-origin isolated and more than one thread
// is asked for (default min(hardwareConcurrency, 4), or `wasm: {numThreads}`), the memory is shared and N Web
// Workers (worker.js) each call `run(t, N)`; their kernels meet at the module's atomic barrier. The main thread
// only posts 'run' and awaits N 'done' messages: it never blocks. Otherwise one thread runs the unshared form on
// the main thread. The session (../session.js) serialises runs, since they share the memory.
//
// Load-time kernels (a plan's first `load`, ../MANIFEST.md) write a region of the memory of their own that no run
// writes: the module's `load(t, nt)` runs them once, on the same threads, when the weights are written and the
// variants chosen; a run leaves them out. They are not tuned (../tuner.js).
//
// A bundle with shape classes (length buckets, ../classes.js) has one module per class, all over the same memory:
// the weights sit at the same offsets for every class, and each class lays out its own inputs, arena and scratch
// after them.
//
// The tuner times each kernel's candidates (choices.js) on the session's own threads with the module's `steps`
// export, on the wall clock.

import { loadCount, shapeClasses } from '../classes.js';
import { simdSupport, unsignedDotSupport, validateWasm, writeWeights } from './layout.js';
import { chosenFrom, groups, tableEntries, tunerKernels, usable, wasmDevice } from './choices.js';
import { SLOWER, median } from '../tuner.js';

const DEFAULT_MAX_THREADS = 4;
const TARGET_MS = 2; // a timed call of `steps` should last at least this long
const MAX_REPS = 64;
// A candidate's first calls run code V8 compiled lazily with its baseline compiler (Liftoff), several times slower
// than what it tiers up to after a call or two: warm-up calls go on until one is no faster than SETTLED times the
// one before, WARM_CALLS at most, so that no candidate is judged by its baseline code.
const WARM_CALLS = 4;
const SETTLED = 0.8;

/**
 * @typedef {import('../provider.js').ProgressEvent} ProgressEvent
 * @typedef {import('../provider.js').Provider} Provider
 * @typedef {import('../provider.js').WasmInfo} WasmInfo
 * A shape class with the candidate each of its kernels runs.
 * @typedef {import('../classes.js').ShapeClass & {chosen: number[]}} Klass
 */

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
 * The wasm section of a plan that has one (every plan the wasm provider runs).
 * @param {import('../manifest.js').Manifest} m
 * @returns {import('./layout.js').WasmSection}
 */
function wasmOf(m) {
  if (!m.wasm) throw new Error('this bundle has no WebAssembly modules');
  return m.wasm;
}

/**
 * Check the module forms this browser can run and make the memory (../provider.js `open`).
 * @param {import('../manifest.js').Bundle} bundle
 * @param {import('../provider.js').SessionOptions} options
 * @param {(e: ProgressEvent) => void} _progress
 * @returns {Promise<WasmProvider>}
 */
export async function open(bundle, options, _progress) {
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
    const form = wasmOf(c.manifest).modules.find((mod) => mod.simd === simd && mod.shared === shared);
    if (!form) throw new Error(`this bundle has no ${simd}-SIMD ${shared ? 'shared' : 'unshared'}-memory module`);
    return form;
  });
  const memory = new WebAssembly.Memory({ initial: w.pages, maximum: w.pages, ...(shared ? { shared: true } : {}) });
  const unsignedDot = simd === 'relaxed' && unsignedDotSupport();
  return new WasmProvider(bundle, memory, { simd, unsignedDot, threads, isolated, file: forms[forms.length - 1].file },
    forms.map((f) => f.file));
}

/** @implements {Provider} */
export class WasmProvider {
  /**
   * @param {import('../manifest.js').Bundle} bundle
   * @param {WebAssembly.Memory} memory
   * @param {WasmInfo} info
   * @param {string[]} files  every class's module
   */
  constructor(bundle, memory, info, files) {
    this.bundle = bundle;
    /** @type {'wasm'} */ this.name = 'wasm';
    this.memory = memory;
    /** Which module runs and on how many threads. */
    this.wasm = info;
    this.cacheDevice = wasmDevice(info.simd, info.threads, globalThis.navigator.hardwareConcurrency || 1, info.unsignedDot);
    /** Candidates timed per budget check while tuning (nothing compiles: they are all in the module). */
    this.parallel = 1;
    /** @type {import('../provider.js').Exposed} */
    this.exposed = { memory, wasm: info };
    this._files = files;
    /** @type {Klass[]} */
    this._classes = shapeClasses(bundle.manifest).map((c) => ({ ...c, chosen: wasmOf(c.manifest).kernels.map(() => 0) }));
    /** @type {{run: (t: number, nt: number) => void}[] | null} */ this._instances = null;
    /** @type {Workers | null} */ this._workers = null;
    /** @type {Error | null} */ this._broken = null;
  }

  /**
   * Compile every class's module and write the weights, at once; start the threads; then choose every kernel's
   * candidate: the cached winners when every one is a candidate this engine computes exactly, else the first.
   * @param {Record<string, string>[] | null} tables
   * @param {(e: ProgressEvent) => void} progress
   */
  async load(tables, progress) {
    const bundle = this.bundle;
    const memory = this.memory;
    let compiled = 0;
    const total = this._files.length;
    progress({ phase: 'kernels', done: 0, total });
    const compile = Promise.all(this._files.map((file) => bundle.bytes(file).then(async (bytes) => {
      try {
        return await WebAssembly.compile(bytes);
      } catch (e) {
        throw new Error(`${file} does not compile: ${/** @type {Error} */ (e).message}`);
      } finally {
        progress({ phase: 'kernels', done: ++compiled, total });
      }
    })));
    const [modules] = await Promise.all([compile, writeWeights(bundle, memory, progress)]);
    if (this.wasm.threads > 1) { // the shared-memory form, on workers
      this._workers = await Workers.start(modules, memory, this.wasm.threads);
    } else {
      const instances = await Promise.all(modules.map((module) => WebAssembly.instantiate(module, { env: { memory } })));
      this._instances = instances.map((i) => /** @type {{run: (t: number, nt: number) => void}} */ (/** @type {any} */ (i.exports)));
    }
    const { simd, unsignedDot } = this.wasm;
    const cached = tables && this._classes.map((c, i) => chosenFrom(tables[i], wasmOf(c.manifest).kernels, simd, unsignedDot));
    const taken = Boolean(cached && cached.every(Boolean));
    this._classes.forEach((c, i) => {
      if (taken) c.chosen = /** @type {number[][]} */ (cached)[i];
      this._select(c);
    });
    return taken;
  }

  /** @returns {import('../provider.js').Chosen[][]} */
  choice() {
    const simd = this.wasm.simd;
    return this._classes.map((c) => wasmOf(c.manifest).kernels.map((k, i) => ({
      kernel: k.name, candidates: k.variants[simd].length, winner: k.variants[simd][c.chosen[i]],
    })));
  }

  /**
   * The tuner's device side: candidates are timed on the session's own threads, on the wall clock.
   * @param {number} repeats
   * @returns {import('../provider.js').Tuning}
   */
  startTuning(repeats) {
    const { simd, unsignedDot } = this.wasm;
    return {
      timer: 'wall-clock',
      end: () => {},
      forClass: (ci) => {
        const c = this._classes[ci];
        const kernels = wasmOf(c.manifest).kernels;
        return {
          kernels: /** @type {any} */ (tunerKernels(kernels, simd)),
          groups: groups(kernels),
          current: c.chosen,
          load: loadCount(c.manifest),
          candidates: (k) => usable(kernels[k], simd, unsignedDot),
          prepare: async () => {},
          measure: (k, v, best) => this._measure(c, k, v, best, repeats),
          choose: async (ks, v) => {
            ks.forEach((k) => { c.chosen[k] = v; });
            this._select(c);
          },
        };
      },
    };
  }

  /** Run every class's load-time kernels once (the module's `load`), with the variants chosen. */
  async runLoadKernels() {
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
   * Median milliseconds of candidate v of kernel k: warm-up calls until the time settles (WARM_CALLS), then
   * `repeats` calls of enough steps to last TARGET_MS (none when the warm-up is over SLOWER times `best`). Leaves
   * candidate v chosen.
   * @param {Klass} c
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
   * @param {Klass} c
   */
  _select(c) {
    const w = wasmOf(c.manifest);
    new Uint32Array(this.memory.buffer, w.select, w.kernels.length).set(tableEntries(w.kernels, this.wasm.simd, c.chosen));
  }

  /** A CPU is never lost. */
  lost() {
    return '';
  }

  /**
   * Run class ci once: write its inputs, run its module, give the bytes of every output it computes.
   * @param {number} ci
   * @param {ArrayBufferView[]} data  every input in device form, padded to the class
   * @returns {Promise<(ArrayBuffer | null)[]>}
   */
  async runClass(ci, data) {
    const c = this._classes[ci];
    const m = c.manifest;
    const w = wasmOf(m);
    data.forEach((d, i) => this._write(w.inputs[i], d));
    await this._run(c);
    return w.outputs.map((offset, i) => (offset === null ? null
      : new Uint8Array(this.memory.buffer, offset, /** @type {number} */ (m.outputs[i].from?.bytes)).slice().buffer));
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
   * @param {Klass} c
   */
  async _run(c) {
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
   * One generation step (../generate.js `StepFn`). The classes' layouts overlap in the memory (a class's inputs may
   * lie in another's arena), so the logits row and every source region are read before anything is written.
   * @param {number} ci
   * @param {import('../generate.js').Upload[]} uploads
   * @param {import('../generate.js').CacheOp[]} ops
   * @param {import('../generate.js').Read} read
   */
  async generationStep(ci, uploads, ops, read) {
    const c = this._classes[ci];
    const w = wasmOf(c.manifest);
    for (const u of uploads) this._write(w.inputs[u.input], u.data);
    await this._run(c);
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

  /** Stop the workers and drop the module. */
  release() {
    if (this._workers) this._workers.terminate();
    this._workers = null;
    this._instances = null;
  }
}
