// InferenceSession: load a bundle onto a WebGPU device, tune it, and run it.
//
// Everything is allocated once, in `create`: the device, one buffer per weight and per input, the pool buffers
// that hold intermediates, one mappable read-back buffer per output, one bind group per kernel. A run writes the
// inputs, records every dispatch into one compute pass of one command encoder, copies the outputs to their
// read-back buffers and submits once. Flushes: the single submit at the end of `run` (then the outputs are
// mapped); tuning submits once per timed batch of passes; loading submits the load-time kernels once. Runs are
// serialised, since they share the buffers.
//
// Load-time kernels (a plan's first `load` kernels, web/MANIFEST.md) read only weights and write buffers of their
// own (`loaded`) that no run writes: they run once, when `create` has uploaded the weights, compiled the pipelines
// and chosen the variants, and a run dispatches only the kernels after them. They are not tuned (tuner.js).
//
// A bundle with shape classes (length buckets, classes.js) holds one plan per class. The classes share the weights,
// the input buffers and the pool buffers (each as large as the largest class needs); each has its own variants,
// pipelines and bind groups, is tuned on load (the largest first, the budget shared by their work) and is cached.
// A run pads its inputs to the smallest class that holds them and crops the outputs back.

import { Bundle } from './manifest.js';
import { checkNotLost, cpuAdapter, requestGpu } from './webgpu/device.js';
import { Pipelines } from './webgpu/pipelines.js';
import { bufferSizes, deviceClass, fittingVariants, initialVariants, requiredLimits, signature, sourceGroups } from './webgpu/plan.js';
import { SLOWER, dispatchesPerPass, median, tune, tuneClasses, tuningSettings } from './tuner.js';
import { PassTimer } from './webgpu/timer.js';
import { cacheKey, makeEntry, readEntry, validWinners, writeEntry } from './cache.js';
import { Tensor } from './tensor.js';
import { loadCount, shapeClasses } from './classes.js';
import { assembleOutputs, checkFeeds, loadConsts } from './feeds.js';
import { partsInShard } from './weights.js';
import { generate } from './generate.js';

const SHARD_CONCURRENCY = 2;
const EXECUTION_PROVIDERS = ['webgpu', 'wasm'];

/**
 * A shape class with what the session keeps for it.
 * @typedef {import('./classes.js').ShapeClass & {variants: number[], pipes: GPUComputePipeline[],
 *           groups: GPUBindGroup[], consts: (Tensor | null)[]}} Klass
 * A checked run (feeds.js), run by one of this session's classes.
 * @typedef {import('./feeds.js').Call & {cls: Klass}} Call
 */

/** No adapter, or no device: the next execution provider is tried. */
class NoGpuError extends Error {}

/**
 * @typedef {{phase: string, done?: number, total?: number, kernel?: string}} ProgressEvent
 * @typedef {{
 *   executionProviders?: (string | {name: string, useCpuAdapter?: boolean})[],
 *   tuning?: false | {budgetMs?: number, repeats?: number, parallel?: number, force?: boolean},
 *   cache?: boolean,
 *   onProgress?: (event: ProgressEvent) => void,
 *   fetch?: typeof fetch,
 *   integrity?: string,
 *   wasm?: {numThreads?: number},
 * }} SessionOptions
 */

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
   * @returns {Promise<InferenceSession | import('./wasm/wasm_session.js').WasmSession>}
   */
  static async create(url, options = {}) {
    const started = performance.now();
    const listed = options.executionProviders || ['webgpu'];
    const eps = listed.map((e) => (typeof e === 'string' ? e : e.name));
    const useCpuAdapter = listed.some((e) => typeof e !== 'string' && e.name === 'webgpu' && e.useCpuAdapter);
    const unknown = eps.filter((e) => !EXECUTION_PROVIDERS.includes(e));
    if (!eps.length || unknown.length) {
      throw new Error(`unknown execution provider ${unknown.join(', ') || '(none given)'}; webjit offers ${EXECUTION_PROVIDERS.join(', ')}`);
    }
    const progress = options.onProgress || (() => {});
    progress({ phase: 'manifest' });
    const bundle = await Bundle.load(url, { fetch: options.fetch, integrity: options.integrity, keep: options.cache !== false });
    /** @type {[string, Error][]} */
    const failed = [];
    /** @type {{provider: string, over: string, reason: string} | undefined} */
    let choice;
    for (const ep of eps) {
      if (ep === 'wasm') {
        if (!(/** @type {any} */ (bundle.manifest).wasm)) {
          failed.push([ep, new Error('this bundle has no WebAssembly modules (build it with --backends webgpu,wasm)')]);
          continue;
        }
        const { WasmSession } = await import('./wasm/wasm_session.js');
        const wasm = await WasmSession.create(bundle, options, progress);
        wasm._open = InferenceSession.create; // how an encoder-decoder's session opens its encoder (seq2seq.js)
        wasm.timings.loadMs = performance.now() - started;
        if (choice) wasm.providerChoice = wasm.tuningReport.providerChoice = choice;
        if (failed.length) wasm.fallback = { from: failed[0][0], reason: failed.map(([e, err]) => `${e}: ${err.message}`).join('; ') };
        return wasm;
      }
      if (!(/** @type {any} */ (bundle.manifest).backends || ['webgpu']).includes('webgpu')) {
        failed.push([ep, new Error('this bundle has no WebGPU kernels (build it with --backends webgpu,wasm)')]);
        continue;
      }
      const next = eps.slice(eps.indexOf(ep) + 1);
      const cpu = next.includes('wasm') && /** @type {any} */ (bundle.manifest).wasm && !useCpuAdapter
        ? await cpuAdapter(deviceClass) : '';
      if (cpu) {
        choice = { provider: 'wasm', over: 'webgpu', reason: `the WebGPU adapter (${cpu}) computes on the CPU, where ` +
          "webjit's WebAssembly kernels are faster; list {name: 'webgpu', useCpuAdapter: true} to use it anyway" };
        continue;
      }
      try {
        const session = await InferenceSession._createWebgpu(bundle, options, progress, started);
        session._open = InferenceSession.create;
        // a lost device later switches to the next provider, when it is 'wasm' and the bundle has modules
        if (next.includes('wasm') && /** @type {any} */ (bundle.manifest).wasm) session._wasmOptions = options;
        return session;
      } catch (e) {
        if (!(e instanceof NoGpuError)) throw e;
        failed.push([ep, /** @type {Error} */ (e.cause)]);
      }
    }
    if (failed.length === 1) throw failed[0][1];
    throw new Error(`no execution provider could run this bundle: ${failed.map(([ep, e]) => `${ep}: ${e.message}`).join('; ')}`);
  }

  /**
   * @param {Bundle} bundle
   * @param {SessionOptions} options
   * @param {(e: ProgressEvent) => void} progress
   * @param {number} started
   */
  static async _createWebgpu(bundle, options, progress, started) {
    let gpu;
    try {
      gpu = await requestGpu(requiredLimits(bundle.manifest, shapeClasses(bundle.manifest).map((c) => c.manifest)));
    } catch (e) {
      throw new NoGpuError('no WebGPU device', { cause: e });
    }
    const session = new InferenceSession(bundle, gpu);
    session._options = options;
    try {
      await session._load(options, progress);
    } catch (e) {
      session.release();
      throw e;
    }
    session.timings.loadMs = performance.now() - started;
    progress({ phase: 'ready' });
    return session;
  }

  /**
   * @param {Bundle} bundle
   * @param {import('./webgpu/device.js').Gpu} gpu
   */
  constructor(bundle, gpu) {
    const m = bundle.manifest;
    this.bundle = bundle;
    this.gpu = gpu;
    /** How sessions open (InferenceSession.create, set by it): an encoder-decoder opens its encoder so. @type {((src: any, options: any) => Promise<any>) | undefined} */
    this._open = undefined;
    this.device = gpu.device;
    /** The provider this session runs on. */
    this.executionProvider = 'webgpu';
    /** @type {string[]} */ this.inputNames = m.inputs.map((t) => t.name);
    /** @type {string[]} */ this.outputNames = m.outputs.map((t) => t.name);
    /** @type {import('./tuner.js').TuningReport | {source: 'off'}} */ this.tuningReport = { source: 'off' };
    /** @type {{loadMs: number, tuningMs: number}} */ this.timings = { loadMs: 0, tuningMs: 0 };
    this.pipelines = new Pipelines(this.device, bundle);
    /** 'cpu' on adapters that emulate compute on CPU cores (SwiftShader, lavapipe): variants are tried in another order. */
    this.deviceClass = deviceClass(/** @type {any} */ (gpu.adapter.info || gpu.info));
    /** @type {Klass[]} */
    this._classes = shapeClasses(m).map((c) => ({
      ...c, variants: [], pipes: [], groups: [], consts: c.manifest.outputs.map(() => null),
    }));
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const sizes = bufferSizes(m, this._classes.map((c) => c.manifest));
    const make = (/** @type {string} */ label, /** @type {number} */ size) => this.device.createBuffer({ label, size, usage });
    this.buffers = {
      weight: sizes.weight.map((s, i) => make(`weight ${i}`, s)),
      input: sizes.input.map((s, i) => make(`input ${m.inputs[i].name}`, s)),
      pool: sizes.pool.map((s, i) => make(`pool ${i}`, s)),
      loaded: sizes.loaded.map((s, i) => make(`loaded ${i}`, s)),
    };
    this._readback = m.outputs.map((t, i) => {
      const bytes = Math.max(0, ...this._classes.map((c) => {
        const from = c.manifest.outputs[i].from;
        return from && from.pool !== undefined ? /** @type {number} */ (from.bytes) : 0;
      }));
      return bytes ? this.device.createBuffer({ label: `read ${t.name}`, size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }) : null;
    });
    /** @type {Promise<any>} */ this._queue = Promise.resolve();
    /** @type {SessionOptions | null} options to load the 'wasm' provider with if the device is lost */
    this._wasmOptions = null;
    /** @type {Promise<import('./wasm/wasm_session.js').WasmSession> | null} */ this._replacement = null;
    /** @type {GPUBuffer | null} generation: scratch for re-laying the cache, and the logits row's read-back */
    this._genScratch = null;
    /** @type {GPUBuffer | null} */ this._genRead = null;
    /** @type {SessionOptions | null} what the session was made with (an encoder-decoder's encoder gets them too) */
    this._options = null;
    /** @type {Promise<any> | null} an encoder-decoder model's encoder session (seq2seq.js), once made */
    this._encoder = null;
    this._released = false;
    /** @type {import('./generate.js').GenerationStats | undefined} the last generate()'s token counts and times */
    this.generationStats = undefined;
  }

  /** The variant index of every kernel of the largest class (the manifest's top level). */
  get variants() {
    return this._classes[this._classes.length - 1].variants;
  }

  /**
   * @param {SessionOptions} options
   * @param {(e: ProgressEvent) => void} progress
   */
  async _load(options, progress) {
    const m = this.bundle.manifest;
    const limits = /** @type {any} */ (this.gpu.limits);
    const parallel = Math.min(8, globalThis.navigator.hardwareConcurrency || 4);
    const tuning = tuningSettings(options.tuning, parallel);
    const key = cacheKey(this.bundle.hash, this.gpu.info);
    const useCache = options.cache !== false;
    const manifests = this._classes.map((c) => c.manifest);
    const winners = useCache && !(tuning && tuning.force)
      ? validWinners(await readEntry(key), manifests, this.bundle.hash, limits) : null;
    this._classes.forEach((c, ci) => {
      c.variants = initialVariants(c.manifest.kernels, limits, winners ? winners[ci] : {}, this.deviceClass);
      c.groups = c.manifest.kernels.map((k) => this.device.createBindGroup({
        label: k.name,
        layout: this.pipelines.layout(signature(k)),
        entries: k.bindings.map((b, binding) => ({ binding, resource: { buffer: this.buffers[b.buffer][b.index] } })),
      }));
    });
    await Promise.all([this._uploadWeights(progress), this._compile(progress), this._loadConsts()]);
    if (winners) {
      this.tuningReport = {
        source: 'cache', timer: '', budgetMs: 0, elapsedMs: 0, complete: true,
        kernels: this._classes.flatMap((c) => c.manifest.kernels.map((k, i) => ({
          kernel: k.name, dims: c.dims, sharedWith: null, candidates: fittingVariants(k, limits).length, tried: 0,
          times: {}, errors: {}, winner: k.variants[c.variants[i]].key,
        }))),
      };
    } else if (tuning) {
      const started = performance.now();
      this.tuningReport = await this._tune(tuning.budgetMs, tuning.repeats, tuning.parallel, progress);
      this.timings.tuningMs = performance.now() - started;
      const timed = this.tuningReport.kernels.some((k) => k.tried > 0);
      if (useCache && timed) { // an entry stops later loads from tuning: never store one for no tuning at all
        const won = this._classes.map((c) => Object.fromEntries(c.manifest.kernels.map((k, i) => [k.name, k.variants[c.variants[i]].key])));
        const err = await writeEntry(key, makeEntry(this.bundle.hash, this.gpu.info, won, this.tuningReport));
        if (err) /** @type {any} */ (this.tuningReport).cacheError = err;
      }
    }
    await this._runLoadKernels();
  }

  /** Run every class's load-time kernels, once: one pass and one submit per class that has them. */
  async _runLoadKernels() {
    for (const c of this._classes) {
      const load = loadCount(c.manifest);
      if (!load) continue;
      this.device.pushErrorScope('validation');
      const enc = this.device.createCommandEncoder({ label: 'webjit load' });
      const pass = enc.beginComputePass({ label: 'webjit load-time kernels' });
      this._dispatch(pass, c, 0, load);
      pass.end();
      this.device.queue.submit([enc.finish()]);
      const error = await this.device.popErrorScope();
      if (error) throw await this._diagnose(c, error);
    }
  }

  /**
   * Record the dispatches of class c's kernels from `first` up to `end` (excluded).
   * @param {GPUComputePassEncoder} pass
   * @param {Klass} c
   * @param {number} first
   * @param {number} end
   */
  _dispatch(pass, c, first, end) {
    const kernels = c.manifest.kernels;
    for (let i = first; i < end; i++) {
      pass.setPipeline(c.pipes[i]);
      pass.setBindGroup(0, c.groups[i]);
      const [x, y, z] = kernels[i].variants[c.variants[i]].dispatch;
      pass.dispatchWorkgroups(x, y, z);
    }
  }

  /** @param {(e: ProgressEvent) => void} progress */
  async _uploadWeights(progress) {
    const { shards, tensors } = this.bundle.manifest.weights;
    const total = shards.reduce((s, sh) => s + this.bundle.manifest.files[sh.file].bytes, 0);
    let loaded = 0;
    let next = 0;
    const worker = async () => {
      while (next < shards.length) {
        const index = next++;
        const bytes = await this.bundle.bytes(shards[index].file);
        tensors.forEach((w, wi) => {
          for (const part of partsInShard(w, index, bytes)) { // float16-stored weights widen to float32 here
            this.device.queue.writeBuffer(this.buffers.weight[wi], part.at, part.data());
          }
        });
        loaded += bytes.byteLength;
        progress({ phase: 'weights', done: loaded, total });
      }
    };
    await Promise.all(Array.from({ length: SHARD_CONCURRENCY }, worker));
  }

  /** @param {(e: ProgressEvent) => void} progress */
  async _compile(progress) {
    const wanted = this._classes.flatMap((c) => c.manifest.kernels.map((k, i) => this._wanted(c, i, c.variants[i])));
    const pipes = await this.pipelines.all(wanted, (done, total) => progress({ phase: 'kernels', done, total }));
    let at = 0;
    for (const c of this._classes) {
      c.pipes = pipes.slice(at, at + c.manifest.kernels.length);
      at += c.manifest.kernels.length;
    }
  }

  async _loadConsts() {
    const consts = await loadConsts(this.bundle, this._classes);
    this._classes.forEach((c, i) => { c.consts = consts[i]; });
  }

  /**
   * @param {Klass} c  shape class
   * @param {number} k  kernel index
   * @param {number} v  variant index
   */
  _wanted(c, k, v) {
    const kernel = c.manifest.kernels[k];
    return { file: kernel.variants[v].file, sig: signature(kernel), label: `${kernel.name} ${kernel.variants[v].key}` };
  }

  /**
   * Tune every shape class within the budget (tuner.js `tuneClasses` shares it between them).
   * @param {number} budgetMs
   * @param {number} repeats
   * @param {number} parallel
   * @param {(e: ProgressEvent) => void} progress
   * @returns {Promise<import('./tuner.js').TuningReport & {classes?: any[]}>}
   */
  async _tune(budgetMs, repeats, parallel, progress) {
    const limits = /** @type {any} */ (this.gpu.limits);
    const timer = new PassTimer(this.device, this.gpu.timestamps);
    try {
      return await tuneClasses(this._classes, budgetMs, (/** @type {Klass} */ c, share, always) => tune({
        kernels: c.manifest.kernels,
        groups: sourceGroups(c.manifest.kernels),
        current: c.variants,
        load: loadCount(c.manifest),
        candidates: (k) => fittingVariants(c.manifest.kernels[k], limits, this.deviceClass),
        prepare: async (k, vs) => { await this.pipelines.all(vs.map((v) => this._wanted(c, k, v))); },
        parallel,
        measure: (k, v, best) => this._measure(c, timer, k, v, repeats, best),
        choose: async (ks, v) => {
          for (const k of ks) {
            c.variants[k] = v;
            const w = this._wanted(c, k, v);
            c.pipes[k] = await this.pipelines.get(w.file, w.sig, w.label);
          }
        },
        budgetMs: share,
        now: () => performance.now(),
        timer: timer.kind,
        always,
        onProgress: progress,
      }), () => performance.now());
    } finally {
      timer.destroy();
    }
  }

  /**
   * Median milliseconds of one variant of kernel k on the session's buffers: one warm-up pass, then `repeats`
   * (none when the warm-up is over SLOWER times `best`).
   * @param {Klass} c
   * @param {PassTimer} timer
   * @param {number} k
   * @param {number} v
   * @param {number} repeats
   * @param {number} best  the best median so far (ms)
   */
  async _measure(c, timer, k, v, repeats, best) {
    const w = this._wanted(c, k, v);
    const pipe = await this.pipelines.get(w.file, w.sig, w.label);
    const [x, y, z] = c.manifest.kernels[k].variants[v].dispatch;
    const group = c.groups[k];
    const dispatch = (/** @type {GPUComputePassEncoder} */ pass) => {
      pass.setPipeline(pipe);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(x, y, z);
    };
    this.device.pushErrorScope('validation');
    const [warm] = await timer.time(dispatch, 1, 1);
    const times = warm > SLOWER * best ? [warm] : await timer.time(dispatch, repeats, dispatchesPerPass(warm));
    const error = await this.device.popErrorScope();
    if (error) throw new Error(`WebGPU validation error: ${error.message}`);
    return median(times);
  }

  /**
   * Run the model once.
   * @param {Record<string, Tensor>} feeds  one tensor per input, by name
   * @returns {Promise<Record<string, Tensor>>}
   */
  async run(feeds) {
    if (this._released) throw new Error('this session was released; create a new InferenceSession');
    if (this.gpu.lost && this._wasmOptions && !this._replacement) this._replacement = this._switchToWasm();
    if (this._replacement) return (await this._replacement).run(feeds);
    checkNotLost(this.gpu);
    const call = this._checkFeeds(feeds);
    const result = this._queue.then(() => this._run(call, feeds));
    this._queue = result.catch(() => {});
    return result;
  }

  /**
   * @param {Record<string, Tensor>} feeds
   * @returns {Call}
   */
  _checkFeeds(feeds) {
    return /** @type {Call} */ (checkFeeds(this.bundle.manifest, this._classes, feeds));
  }

  /**
   * @param {Call} call
   * @param {Record<string, Tensor>} feeds
   */
  async _run(call, feeds) {
    checkNotLost(this.gpu);
    const { data, sizes } = call;
    const c = /** @type {Klass} */ (call.cls);
    const m = c.manifest;
    const device = this.device;
    device.pushErrorScope('validation');
    data.forEach((d, i) => { if (d.length) device.queue.writeBuffer(this.buffers.input[i], 0, d); });
    const enc = device.createCommandEncoder({ label: 'webjit run' });
    this._encodeKernels(enc, c);
    /** @type {GPUBuffer[]} */
    const readbacks = [];
    m.outputs.forEach((t, i) => {
      const rb = this._readback[i];
      if (rb && t.from && t.from.pool !== undefined) {
        enc.copyBufferToBuffer(this.buffers.pool[t.from.pool], 0, rb, 0, Math.ceil(/** @type {number} */ (t.from.bytes) / 4) * 4);
        readbacks.push(rb);
      }
    });
    device.queue.submit([enc.finish()]);
    const [error, mapped] = await Promise.all([
      device.popErrorScope(),
      Promise.allSettled(readbacks.map((b) => b.mapAsync(GPUMapMode.READ))),
    ]);
    try {
      if (error) throw await this._diagnose(c, error);
      checkNotLost(this.gpu);
      const failed = mapped.find((r) => r.status === 'rejected');
      if (failed) throw new Error(`reading the outputs back failed: ${/** @type {any} */ (failed).reason}`);
      return assembleOutputs(this.bundle.manifest, call, c.consts, feeds, (i) => {
        const rb = this._readback[i];
        const from = m.outputs[i].from;
        return rb && from && from.pool !== undefined ? rb.getMappedRange().slice(0) : null;
      });
    } finally {
      mapped.forEach((r, i) => { if (r.status === 'fulfilled') readbacks[i].unmap(); });
    }
  }

  /**
   * Record the dispatches of a run of class c (all but its load-time kernels, which ran at load) into one compute
   * pass of `enc`.
   * @param {GPUCommandEncoder} enc
   * @param {Klass} c
   */
  _encodeKernels(enc, c) {
    const pass = enc.beginComputePass({ label: 'webjit kernels' });
    this._dispatch(pass, c, loadCount(c.manifest), c.manifest.kernels.length);
    pass.end();
  }

  /**
   * Generate tokens after a prompt (a bundle built with --generate; generate.js): the cache stays in the
   * session's buffers, and each step reads back one row of logits.
   * @param {number[] | Int32Array | BigInt64Array | Tensor} inputIds
   * @param {import('./generate.js').GenerateOptions} [options]
   * @returns {Promise<number[]>}  the new ids
   */
  async generate(inputIds, options) {
    if (this._released) throw new Error('this session was released; create a new InferenceSession');
    if (this.gpu.lost && this._wasmOptions && !this._replacement) this._replacement = this._switchToWasm();
    if (this._replacement) return (await this._replacement).generate(inputIds, options);
    checkNotLost(this.gpu);
    return generate(this, inputIds, options);
  }

  /**
   * One generation step (generate.js `StepFn`): upload, run class ci, do the cache copies, read `read` back. One
   * command encoder and one submit; the only bytes that come back are the logits row.
   * @param {number} ci
   * @param {import('./generate.js').Upload[]} uploads
   * @param {import('./generate.js').CacheOp[]} ops
   * @param {import('./generate.js').Read} read
   */
  async _generationStep(ci, uploads, ops, read) {
    checkNotLost(this.gpu);
    const c = this._classes[ci];
    const device = this.device;
    if (!this._genScratch) {
      const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
      const largest = Math.max(4, ...this.bundle.manifest.inputs.map((t) => /** @type {number} */ (t.bytes)));
      this._genScratch = device.createBuffer({ label: 'generation scratch', size: Math.ceil(largest / 4) * 4, usage });
      this._genRead = device.createBuffer({ label: 'read logits', size: read.bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    }
    const scratch = this._genScratch;
    const readBuffer = /** @type {GPUBuffer} */ (this._genRead);
    /** @returns {GPUBuffer} */
    const buffer = (/** @type {import('./generate.js').Region} */ r) => {
      if ('scratch' in r) return scratch;
      if ('input' in r) return this.buffers.input[r.input];
      const from = this._classes[r.cls].manifest.outputs[r.output].from;
      if (!from || from.pool === undefined) throw new Error(`output ${r.output} is not computed on the device`);
      return this.buffers.pool[from.pool];
    };
    device.pushErrorScope('validation');
    for (const u of uploads) device.queue.writeBuffer(this.buffers.input[u.input], 0, u.data);
    const enc = device.createCommandEncoder({ label: 'webjit generation step' });
    this._encodeKernels(enc, c);
    enc.copyBufferToBuffer(buffer(read), read.offset, readBuffer, 0, read.bytes);
    for (const op of ops) {
      if ('copy' in op) {
        const { from, fromOffset, to, toOffset, bytes } = op.copy;
        enc.copyBufferToBuffer(buffer(from), fromOffset, buffer(to), toOffset, bytes);
      } else {
        enc.clearBuffer(buffer(op.clear.region), op.clear.offset, op.clear.bytes);
      }
    }
    device.queue.submit([enc.finish()]);
    const [error, mapped] = await Promise.all([device.popErrorScope(), readBuffer.mapAsync(GPUMapMode.READ).then(() => true, (e) => e)]);
    if (mapped === true) {
      const row = new Float32Array(readBuffer.getMappedRange().slice(0));
      readBuffer.unmap();
      if (!error) return row;
    }
    if (error) throw await this._diagnose(c, error);
    checkNotLost(this.gpu);
    throw new Error(`reading the logits back failed: ${mapped}`);
  }

  /**
   * Find the kernel behind a validation error: encode each dispatch alone, in its own error scope.
   * @param {Klass} c
   * @param {GPUError} error
   */
  async _diagnose(c, error) {
    const m = c.manifest;
    for (let i = 0; i < m.kernels.length; i++) {
      const k = m.kernels[i];
      const v = k.variants[c.variants[i]];
      this.device.pushErrorScope('validation');
      const enc = this.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(c.pipes[i]);
      pass.setBindGroup(0, c.groups[i]);
      pass.dispatchWorkgroups(v.dispatch[0], v.dispatch[1], v.dispatch[2]);
      pass.end();
      enc.finish();
      const e = await this.device.popErrorScope();
      if (e) return new Error(`WebGPU validation error in kernel ${k.name} (node '${k.node}', variant ${v.key}): ${e.message}`);
    }
    return new Error(`WebGPU validation error while running the model: ${error.message}`);
  }

  /**
   * The WebGPU device was lost and 'wasm' came after 'webgpu' in the execution providers: load the bundle's
   * WebAssembly modules (with the session's options) and run on them from now on. `executionProvider` becomes
   * 'wasm' and `fallback` says why.
   * @returns {Promise<import('./wasm/wasm_session.js').WasmSession>}
   */
  async _switchToWasm() {
    const lost = /** @type {{reason: string, message: string}} */ (this.gpu.lost);
    const { WasmSession } = await import('./wasm/wasm_session.js');
    const options = /** @type {SessionOptions} */ (this._wasmOptions);
    const wasm = await WasmSession.create(this.bundle, options, options.onProgress || (() => {}));
    this.executionProvider = 'wasm';
    /** @type {{from: string, reason: string} | undefined} */
    this.fallback = { from: 'webgpu', reason: `the WebGPU device was lost (${lost.reason}${lost.message ? `: ${lost.message}` : ''})` };
    this.wasm = wasm.wasm;
    for (const list of Object.values(this.buffers)) list.forEach((b) => b.destroy());
    return wasm;
  }

  /** Free the device and its buffers; the session cannot run afterwards. */
  async release() {
    if (this._released) return;
    this._released = true;
    if (this._replacement) (await this._replacement.catch(() => null))?.release();
    if (this._encoder) (await this._encoder.catch(() => null))?.release();
    for (const list of Object.values(this.buffers)) list.forEach((b) => b.destroy());
    this._readback.forEach((b) => b && b.destroy());
    this._genScratch?.destroy();
    this._genRead?.destroy();
    this.device.destroy();
  }
}
