// InferenceSession: load a bundle, make it ready on an execution provider, and run it; the same session whichever
// provider runs the kernels.
//
// What is the same for every provider is done here, once: the provider is chosen in the order given, with the
// next one tried when one cannot run (and 'wasm' taken over WebGPU on an adapter that computes on the CPU); the
// variants come from the tuning cache when its entry is for this bundle and device, else from tuning within the
// budget (then cached), else they are the defaults; a run's feeds are checked and padded to the smallest shape class
// that holds them (feeds.js), and its outputs put together and cropped back; runs and generations are queued, one
// at a time, since they share the provider's buffers or memory; a lost WebGPU device hands the session to 'wasm'
// when it was listed next. What runs the kernels is a provider (provider.js): webgpu/webgpu_session.js on a WebGPU
// device, wasm/wasm_session.js on WebAssembly SIMD, each loaded when it is first needed.

import { Bundle } from './manifest.js';
import { tune, tuneClasses, tuningSettings } from './tuner.js';
import { cacheKey, cachedTables, makeEntry, readEntry, writeEntry } from './cache.js';
import { shapeClasses } from './classes.js';
import { assembleOutputs, checkFeeds, loadConsts } from './feeds.js';
import { generate } from './generate.js';
import { ProviderUnavailable } from './provider.js';

/**
 * @typedef {import('./provider.js').ProgressEvent} ProgressEvent
 * @typedef {import('./provider.js').SessionOptions} SessionOptions
 * @typedef {import('./provider.js').Provider} Provider
 * @typedef {{provider: string, over: string, reason: string}} ProviderChoice
 * @typedef {(import('./tuner.js').TuningReport & {classes?: any[], cacheError?: string} | {source: 'off'})
 *           & {providerChoice?: ProviderChoice}} Report
 */

/**
 * The execution providers, in no order: what a bundle needs for each, and its module.
 * @type {Record<string, {missing: (m: any) => string, module: () => Promise<import('./provider.js').ProviderModule>}>}
 */
const PROVIDERS = {
  webgpu: {
    missing: (m) => ((m.backends || ['webgpu']).includes('webgpu') ? '' : 'this bundle has no WebGPU kernels (build it with --backends webgpu,wasm)'),
    module: () => import('./webgpu/webgpu_session.js'),
  },
  wasm: {
    missing: (m) => (m.wasm ? '' : 'this bundle has no WebAssembly modules (build it with --backends webgpu,wasm)'),
    module: () => import('./wasm/wasm_session.js'),
  },
};

export class InferenceSession {
  /**
   * Load a bundle (its folder URL or its manifest.json) and make it ready to run.
   * Execution providers are tried in order, as onnxruntime-web does: 'webgpu' is passed over when there is no
   * adapter or no device (or the bundle has no WGSL kernels), 'wasm' (web/wasm/) when the bundle has no WebAssembly
   * modules. `session.executionProvider` says which one runs.
   * On an adapter that computes on the CPU (SwiftShader, lavapipe), where webjit's WebAssembly kernels are many times
   * faster than its WGSL ones, ['webgpu', 'wasm'] runs on 'wasm' and `session.providerChoice` says why; list
   * `{name: 'webgpu', useCpuAdapter: true}` (or 'webgpu' alone) to run WebGPU there anyway.
   * @param {string | URL | import('./manifest.js').BundleSource} url  or a bundle in memory: compileInBrowser's result
   * @param {SessionOptions} [options]
   * @returns {Promise<InferenceSession>}
   */
  static async create(url, options = {}) {
    const started = performance.now();
    const listed = options.executionProviders || ['webgpu'];
    const eps = listed.map((e) => (typeof e === 'string' ? e : e.name));
    const useCpuAdapter = listed.some((e) => typeof e !== 'string' && e.name === 'webgpu' && e.useCpuAdapter);
    const unknown = eps.filter((e) => !Object.hasOwn(PROVIDERS, e));
    if (!eps.length || unknown.length) {
      throw new Error(`unknown execution provider ${unknown.join(', ') || '(none given)'}; webjit offers ${Object.keys(PROVIDERS).join(', ')}`);
    }
    const progress = options.onProgress || (() => {});
    progress({ phase: 'manifest' });
    const bundle = await Bundle.load(url, { fetch: options.fetch, integrity: options.integrity, keep: options.cache !== false });
    const m = bundle.manifest;
    /** @type {[string, Error][]} */
    const failed = [];
    /** @type {ProviderChoice | undefined} */
    let choice;
    for (const [at, ep] of eps.entries()) {
      const missing = PROVIDERS[ep].missing(m);
      if (missing) {
        failed.push([ep, new Error(missing)]);
        continue;
      }
      const next = eps.slice(at + 1).filter((e) => !PROVIDERS[e].missing(m));
      const module = await PROVIDERS[ep].module();
      if (ep === 'webgpu' && next.includes('wasm') && !useCpuAdapter) {
        const cpu = await /** @type {typeof import('./webgpu/webgpu_session.js')} */ (module).cpuAdapterName();
        if (cpu) {
          choice = { provider: 'wasm', over: 'webgpu', reason: `the WebGPU adapter (${cpu}) computes on the CPU, where ` +
            "webjit's WebAssembly kernels are faster; list {name: 'webgpu', useCpuAdapter: true} to use it anyway" };
          continue;
        }
      }
      let provider;
      try {
        provider = await module.open(bundle, options, progress);
      } catch (e) {
        if (!(e instanceof ProviderUnavailable)) throw e;
        failed.push([ep, /** @type {Error} */ (e.cause || e)]);
        continue;
      }
      const session = new InferenceSession(bundle, options, provider);
      await session._start(provider, options, progress);
      session.timings.loadMs = performance.now() - started;
      // a lost device later hands the session to the next provider: 'wasm', when it is listed and the bundle has it
      if (ep === 'webgpu' && next.includes('wasm')) session._successor = 'wasm';
      if (choice) session.providerChoice = session.tuningReport.providerChoice = choice;
      if (failed.length) session.fallback = { from: failed[0][0], reason: failed.map(([e, err]) => `${e}: ${err.message}`).join('; ') };
      progress({ phase: 'ready' });
      return session;
    }
    if (failed.length === 1) throw failed[0][1];
    throw new Error(`no execution provider could run this bundle: ${failed.map(([ep, e]) => `${ep}: ${e.message}`).join('; ')}`);
  }

  /**
   * @param {Bundle} bundle
   * @param {SessionOptions} options
   * @param {Provider} provider
   */
  constructor(bundle, options, provider) {
    const m = bundle.manifest;
    this.bundle = bundle;
    /** @type {Provider} the provider that runs the kernels */
    this._provider = provider;
    /** The provider this session runs on: 'webgpu' or 'wasm'. */
    this.executionProvider = provider.name;
    /** @type {string[]} */ this.inputNames = m.inputs.map((t) => t.name);
    /** @type {string[]} */ this.outputNames = m.outputs.map((t) => t.name);
    /** @type {Report} */ this.tuningReport = { source: 'off' };
    /** @type {{loadMs: number, tuningMs: number}} */ this.timings = { loadMs: 0, tuningMs: 0 };
    /** Set when an earlier provider could not run, or the device was lost: `{from, reason}`. @type {{from: string, reason: string} | undefined} */
    this.fallback = undefined;
    /** Set when a provider listed before this one was passed over by choice: `{provider, over, reason}`. @type {ProviderChoice | undefined} */
    this.providerChoice = undefined;
    /** @type {import('./generate.js').GenerationStats | undefined} the last generate()'s token counts and times */
    this.generationStats = undefined;
    /** How sessions open: an encoder-decoder opens its encoder so (seq2seq.js). @type {(src: any, options: any) => Promise<any>} */
    this._open = InferenceSession.create;
    /** @type {SessionOptions} what the session was made with (an encoder-decoder's encoder gets them too) */
    this._options = options;
    /** @type {Promise<any> | null} an encoder-decoder model's encoder session (seq2seq.js), once made */
    this._encoder = null;
    this._classes = shapeClasses(m);
    /** @type {(import('./tensor.js').Tensor | null)[][]} every class's constant outputs */
    this._consts = [];
    /** @type {Promise<any>} runs and generations, one at a time */
    this._queue = Promise.resolve();
    /** @type {string | null} the provider a lost device hands the session to */
    this._successor = null;
    /** @type {Promise<Provider> | null} that provider, while it loads */
    this._switch = null;
    this._released = false;
  }

  /** WebGPU: the adapter and device record (webgpu/device.js `Gpu`); undefined on 'wasm'. */
  get gpu() { return this._provider.exposed.gpu; }

  /** WebGPU: the device; undefined on 'wasm'. */
  get device() { return this._provider.exposed.device; }

  /** WebGPU: the buffers, by role (weight, input, pool, loaded); undefined on 'wasm'. */
  get buffers() { return this._provider.exposed.buffers; }

  /** wasm: the linear memory; undefined on 'webgpu'. */
  get memory() { return this._provider.exposed.memory; }

  /** wasm: which module runs and on how many threads, `{simd, unsignedDot, threads, isolated, file}`; undefined on 'webgpu'. */
  get wasm() { return this._provider.exposed.wasm; }

  /**
   * Make a provider ready: read the tuning cache, load with its winners, else tune (and cache the winners), then
   * run the load-time kernels. The provider is released if any of it fails.
   * @param {Provider} p
   * @param {SessionOptions} options
   * @param {(e: ProgressEvent) => void} progress
   */
  async _start(p, options, progress) {
    const bundle = this.bundle;
    try {
      const tuning = tuningSettings(options.tuning, p.parallel);
      const key = cacheKey(bundle.hash, p.cacheDevice);
      const useCache = options.cache !== false;
      const tables = useCache && !(tuning && tuning.force) ? cachedTables(await readEntry(key), bundle.hash, this._classes.length) : null;
      const [cached, consts] = await Promise.all([p.load(tables, progress), loadConsts(bundle, this._classes)]);
      this._consts = consts;
      if (cached) {
        this.tuningReport = {
          source: 'cache', timer: '', budgetMs: 0, elapsedMs: 0, complete: true,
          kernels: p.choice().flatMap((rows, ci) => rows.map((r) => ({
            kernel: r.kernel, dims: this._classes[ci].dims, sharedWith: null, candidates: r.candidates, tried: 0,
            times: {}, errors: {}, winner: r.winner,
          }))),
        };
      } else if (tuning) {
        const started = performance.now();
        const report = await this._tune(p, tuning, progress);
        this.tuningReport = report;
        this.timings.tuningMs = performance.now() - started;
        if (useCache && report.kernels.some((k) => k.tried > 0)) { // an entry stops later loads from tuning: never store one for no tuning at all
          const won = p.choice().map((rows) => Object.fromEntries(rows.map((r) => [r.kernel, r.winner])));
          const err = await writeEntry(key, makeEntry(bundle.hash, p.cacheDevice, won, report));
          if (err) /** @type {any} */ (report).cacheError = err;
        }
      }
      await p.runLoadKernels();
    } catch (e) {
      p.release();
      throw e;
    }
  }

  /**
   * Tune every shape class within the budget (tuner.js `tuneClasses` shares it between them) on the provider's
   * device side of the tuner.
   * @param {Provider} p
   * @param {{budgetMs: number, repeats: number, parallel: number}} tuning
   * @param {(e: ProgressEvent) => void} progress
   */
  async _tune(p, tuning, progress) {
    const now = () => performance.now();
    const t = p.startTuning(tuning.repeats);
    try {
      return await tuneClasses(this._classes, tuning.budgetMs, (/** @type {import('./classes.js').ShapeClass} */ c, share, always) => tune({
        ...t.forClass(c.index), parallel: tuning.parallel, budgetMs: share, now, timer: t.timer, always, onProgress: progress,
      }), now);
    } finally {
      t.end();
    }
  }

  /**
   * The provider to run on now: refuses a released session at once; on a lost device, starts handing the session
   * to the successor when there is one (the promise resolves when it is ready), else says the session cannot run.
   * @returns {Promise<Provider>}
   */
  _current() {
    if (this._released) throw new Error('this session was released; create a new InferenceSession');
    const lost = this._provider.lost();
    if (lost && !this._switch) {
      if (!this._successor) throw new Error(`${lost}; create a new InferenceSession`);
      this._switch = this._handOver(this._successor, lost);
      this._switch.catch(() => {}); // each run that waits for it rejects with its error
    }
    return this._switch || Promise.resolve(this._provider);
  }

  /**
   * The device was lost and `name` came after it in the execution providers: load that provider (with the
   * session's options) and run on it from now on. `executionProvider` becomes `name` and `fallback` says why.
   * @param {string} name
   * @param {string} why
   * @returns {Promise<Provider>}
   */
  async _handOver(name, why) {
    const options = this._options;
    const progress = options.onProgress || (() => {});
    const p = await (await PROVIDERS[name].module()).open(this.bundle, options, progress);
    await this._start(p, options, progress);
    const old = this._provider;
    this._provider = p;
    this._switch = null;
    this._successor = null;
    this.executionProvider = p.name;
    this.fallback = { from: old.name, reason: why };
    old.release();
    if (this._encoder) (await this._encoder.catch(() => null))?.release(); // made on the lost provider
    this._encoder = null;
    return p;
  }

  /**
   * Run the model once.
   * @param {Record<string, import('./tensor.js').Tensor>} feeds  one tensor per input, by name
   * @returns {Promise<Record<string, import('./tensor.js').Tensor>>}
   */
  async run(feeds) {
    const ready = this._current();
    const call = checkFeeds(this.bundle.manifest, this._classes, feeds);
    const result = this._queue.then(async () => {
      const p = await ready;
      const ci = call.cls.index;
      const written = await p.runClass(ci, call.data);
      return assembleOutputs(this.bundle.manifest, call, this._consts[ci], feeds, (i) => written[i]);
    });
    this._queue = result.catch(() => {});
    return result;
  }

  /**
   * Generate tokens after a prompt (a bundle built with --generate; generate.js): the cache stays in the
   * provider's buffers or memory, and each step reads back one row of logits.
   * @param {number[] | Int32Array | BigInt64Array | import('./tensor.js').Tensor} inputIds
   * @param {import('./generate.js').GenerateOptions} [options]
   * @returns {Promise<number[]>}  the new ids
   */
  async generate(inputIds, options) {
    this._current();
    return generate(this, inputIds, options);
  }

  /**
   * One generation step (generate.js `StepFn`), on the provider.
   * @param {number} ci
   * @param {import('./generate.js').Upload[]} uploads
   * @param {import('./generate.js').CacheOp[]} ops
   * @param {import('./generate.js').Read} read
   */
  async _generationStep(ci, uploads, ops, read) {
    return (await this._current()).generationStep(ci, uploads, ops, read);
  }

  /** Free the device or the memory; the session cannot run afterwards. */
  async release() {
    if (this._released) return;
    this._released = true;
    if (this._switch) await this._switch.catch(() => null);
    if (this._encoder) (await this._encoder.catch(() => null))?.release();
    this._provider.release();
  }
}
