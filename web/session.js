// InferenceSession: load a bundle onto a WebGPU device, tune it, and run it.
//
// Everything is allocated once, in `create`: the device, one buffer per weight and per input, the pool buffers
// that hold intermediates, one mappable read-back buffer per output, one bind group per kernel. A run writes the
// inputs, records every dispatch into one compute pass of one command encoder, copies the outputs to their
// read-back buffers and submits once. Flushes: the single submit at the end of `run` (then the outputs are
// mapped); tuning submits once per timed batch of passes. Runs are serialised, since they share the buffers.

import { Bundle } from './manifest.js';
import { checkNotLost, requestGpu } from './device.js';
import { Pipelines } from './pipelines.js';
import { bufferSizes, fittingVariants, initialVariants, requiredLimits, signature, sourceGroups } from './plan.js';
import { DEFAULT_REPEATS, PassTimer, SLOWER, dispatchesPerPass, median, tune } from './tuner.js';
import { cacheKey, makeEntry, readEntry, validWinners, writeEntry } from './cache.js';
import { Tensor, TYPED_ARRAYS, fromDevice, fromRaw, toDevice } from './tensor.js';

const SHARD_CONCURRENCY = 2;
const EXECUTION_PROVIDERS = ['webgpu', 'wasm'];

/** No adapter, or no device: the next execution provider is tried. */
class NoGpuError extends Error {}

/**
 * @typedef {{phase: string, done?: number, total?: number, kernel?: string}} ProgressEvent
 * @typedef {{
 *   executionProviders?: (string | {name: string})[],
 *   tuning?: false | {budgetMs?: number, repeats?: number, parallel?: number, force?: boolean},
 *   cache?: boolean,
 *   onProgress?: (event: ProgressEvent) => void,
 *   fetch?: typeof fetch,
 *   wasm?: {numThreads?: number},
 * }} SessionOptions
 */

export class InferenceSession {
  /**
   * Load a bundle (its folder URL or its manifest.json) and make it ready to run.
   * Execution providers are tried in order, as onnxruntime-web does: 'webgpu' is passed over when there is no
   * adapter or no device (or the bundle has no WGSL kernels), 'wasm' (web/wasm/) when the bundle has no WebAssembly
   * modules. `session.executionProvider` says which one runs.
   * @param {string | URL} url
   * @param {SessionOptions} [options]
   * @returns {Promise<InferenceSession | import('./wasm/wasm_session.js').WasmSession>}
   */
  static async create(url, options = {}) {
    const started = performance.now();
    const eps = (options.executionProviders || ['webgpu']).map((e) => (typeof e === 'string' ? e : e.name));
    const unknown = eps.filter((e) => !EXECUTION_PROVIDERS.includes(e));
    if (!eps.length || unknown.length) {
      throw new Error(`unknown execution provider ${unknown.join(', ') || '(none given)'}; webjit offers ${EXECUTION_PROVIDERS.join(', ')}`);
    }
    const progress = options.onProgress || (() => {});
    progress({ phase: 'manifest' });
    const bundle = await Bundle.load(url, { fetch: options.fetch });
    /** @type {[string, Error][]} */
    const failed = [];
    for (const ep of eps) {
      if (ep === 'wasm') {
        if (!(/** @type {any} */ (bundle.manifest).wasm)) {
          failed.push([ep, new Error('this bundle has no WebAssembly modules (build it with --backends webgpu,wasm)')]);
          continue;
        }
        const { WasmSession } = await import('./wasm/wasm_session.js');
        const wasm = await WasmSession.create(bundle, options, progress);
        wasm.timings.loadMs = performance.now() - started;
        return wasm;
      }
      if (!(/** @type {any} */ (bundle.manifest).backends || ['webgpu']).includes('webgpu')) {
        failed.push([ep, new Error('this bundle has no WebGPU kernels (build it with --backends webgpu,wasm)')]);
        continue;
      }
      try {
        return await InferenceSession._createWebgpu(bundle, options, progress, started);
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
      gpu = await requestGpu(requiredLimits(bundle.manifest));
    } catch (e) {
      throw new NoGpuError('no WebGPU device', { cause: e });
    }
    const session = new InferenceSession(bundle, gpu);
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
   * @param {import('./device.js').Gpu} gpu
   */
  constructor(bundle, gpu) {
    const m = bundle.manifest;
    this.bundle = bundle;
    this.gpu = gpu;
    this.device = gpu.device;
    /** The provider this session runs on. */
    this.executionProvider = 'webgpu';
    /** @type {string[]} */ this.inputNames = m.inputs.map((t) => t.name);
    /** @type {string[]} */ this.outputNames = m.outputs.map((t) => t.name);
    /** @type {import('./tuner.js').TuningReport | {source: 'off'}} */ this.tuningReport = { source: 'off' };
    /** @type {{loadMs: number, tuningMs: number}} */ this.timings = { loadMs: 0, tuningMs: 0 };
    this.pipelines = new Pipelines(this.device, bundle);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const sizes = bufferSizes(m);
    const make = (/** @type {string} */ label, /** @type {number} */ size) => this.device.createBuffer({ label, size, usage });
    this.buffers = {
      weight: sizes.weight.map((s, i) => make(`weight ${i}`, s)),
      input: sizes.input.map((s, i) => make(`input ${m.inputs[i].name}`, s)),
      pool: sizes.pool.map((s, i) => make(`pool ${i}`, s)),
    };
    this._readback = m.outputs.map((t) => (t.from && t.from.pool !== undefined
      ? this.device.createBuffer({ label: `read ${t.name}`, size: Math.ceil(/** @type {number} */ (t.from.bytes) / 4) * 4 || 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
      : null));
    /** @type {(Tensor | null)[]} */ this._consts = m.outputs.map(() => null);
    /** @type {number[]} */ this.variants = [];
    /** @type {GPUComputePipeline[]} */ this._pipes = [];
    /** @type {GPUBindGroup[]} */ this._groups = [];
    /** @type {Promise<any>} */ this._queue = Promise.resolve();
  }

  /**
   * @param {SessionOptions} options
   * @param {(e: ProgressEvent) => void} progress
   */
  async _load(options, progress) {
    const m = this.bundle.manifest;
    const limits = /** @type {any} */ (this.gpu.limits);
    const parallel = Math.min(8, globalThis.navigator.hardwareConcurrency || 4);
    const tuning = options.tuning === false ? null
      : { budgetMs: 2000, repeats: DEFAULT_REPEATS, parallel, force: false, ...options.tuning };
    const key = cacheKey(this.bundle.hash, this.gpu.info);
    const useCache = options.cache !== false;
    const winners = useCache && !(tuning && tuning.force)
      ? validWinners(await readEntry(key), m, this.bundle.hash, limits) : null;
    this.variants = initialVariants(m.kernels, limits, winners || {});
    this._groups = m.kernels.map((k) => this.device.createBindGroup({
      label: k.name,
      layout: this.pipelines.layout(signature(k)),
      entries: k.bindings.map((b, binding) => ({ binding, resource: { buffer: this.buffers[b.buffer][b.index] } })),
    }));
    await Promise.all([this._uploadWeights(progress), this._compile(progress), this._loadConsts()]);
    if (winners) {
      this.tuningReport = {
        source: 'cache', timer: '', budgetMs: 0, elapsedMs: 0, complete: true,
        kernels: m.kernels.map((k, i) => ({
          kernel: k.name, sharedWith: null, candidates: fittingVariants(k, limits).length, tried: 0, times: {},
          errors: {}, winner: k.variants[this.variants[i]].key,
        })),
      };
    } else if (tuning) {
      const started = performance.now();
      this.tuningReport = await this._tune(tuning.budgetMs, tuning.repeats, tuning.parallel, progress);
      this.timings.tuningMs = performance.now() - started;
      const timed = this.tuningReport.kernels.some((k) => k.tried > 0);
      if (useCache && timed) { // an entry stops later loads from tuning: never store one for no tuning at all
        const won = Object.fromEntries(m.kernels.map((k, i) => [k.name, k.variants[this.variants[i]].key]));
        const err = await writeEntry(key, makeEntry(this.bundle.hash, this.gpu.info, won, this.tuningReport));
        if (err) /** @type {any} */ (this.tuningReport).cacheError = err;
      }
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
          let dst = 0;
          for (const part of w.parts) {
            if (part.shard === index && part.bytes > 0) {
              this.device.queue.writeBuffer(this.buffers.weight[wi], dst, bytes, part.offset, part.bytes);
            }
            dst += part.bytes;
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
    const kernels = this.bundle.manifest.kernels;
    this._pipes = await this.pipelines.all(kernels.map((k, i) => this._wanted(i, this.variants[i])),
      (done, total) => progress({ phase: 'kernels', done, total }));
  }

  async _loadConsts() {
    await Promise.all(this.bundle.manifest.outputs.map(async (t, i) => {
      if (t.from && t.from.const !== undefined) {
        this._consts[i] = fromRaw(t.dtype, await this.bundle.bytes(t.from.const), t.shape);
      }
    }));
  }

  /**
   * @param {number} k  kernel index
   * @param {number} v  variant index
   */
  _wanted(k, v) {
    const kernel = this.bundle.manifest.kernels[k];
    return { file: kernel.variants[v].file, sig: signature(kernel), label: `${kernel.name} ${kernel.variants[v].key}` };
  }

  /**
   * @param {number} budgetMs
   * @param {number} repeats
   * @param {number} parallel
   * @param {(e: ProgressEvent) => void} progress
   */
  async _tune(budgetMs, repeats, parallel, progress) {
    const m = this.bundle.manifest;
    const limits = /** @type {any} */ (this.gpu.limits);
    const timer = new PassTimer(this.device, this.gpu.timestamps);
    try {
      return await tune({
        kernels: m.kernels,
        groups: sourceGroups(m.kernels),
        current: this.variants,
        candidates: (k) => fittingVariants(m.kernels[k], limits),
        prepare: async (k, vs) => { await this.pipelines.all(vs.map((v) => this._wanted(k, v))); },
        parallel,
        measure: (k, v, best) => this._measure(timer, k, v, repeats, best),
        choose: async (ks, v) => {
          for (const k of ks) {
            this.variants[k] = v;
            const w = this._wanted(k, v);
            this._pipes[k] = await this.pipelines.get(w.file, w.sig, w.label);
          }
        },
        budgetMs,
        now: () => performance.now(),
        timer: timer.kind,
        onProgress: progress,
      });
    } finally {
      timer.destroy();
    }
  }

  /**
   * Median milliseconds of one variant of kernel k on the session's buffers: one warm-up pass, then `repeats`
   * (none when the warm-up is over SLOWER times `best`).
   * @param {PassTimer} timer
   * @param {number} k
   * @param {number} v
   * @param {number} repeats
   * @param {number} best  the best median so far (ms)
   */
  async _measure(timer, k, v, repeats, best) {
    const w = this._wanted(k, v);
    const pipe = await this.pipelines.get(w.file, w.sig, w.label);
    const [x, y, z] = this.bundle.manifest.kernels[k].variants[v].dispatch;
    const group = this._groups[k];
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
    checkNotLost(this.gpu);
    const data = this._checkFeeds(feeds);
    const result = this._queue.then(() => this._run(data, feeds));
    this._queue = result.catch(() => {});
    return result;
  }

  /**
   * Device-form data of every input, or a clear error for a missing, unknown or mistyped one.
   * @param {Record<string, Tensor>} feeds
   */
  _checkFeeds(feeds) {
    const m = this.bundle.manifest;
    if (!feeds || typeof feeds !== 'object') throw new TypeError('run() takes an object of tensors by input name');
    for (const name of Object.keys(feeds)) {
      if (!this.inputNames.includes(name)) {
        throw new Error(`unknown input '${name}'; this model's inputs are: ${this.inputNames.join(', ')}`);
      }
    }
    return m.inputs.map((info) => {
      const t = feeds[info.name];
      const wanted = `${info.dtype} [${info.shape}]`;
      if (t === undefined) throw new Error(`missing input '${info.name}' (${wanted})`);
      if (!t || typeof t !== 'object' || !('type' in t) || !('data' in t) || !('dims' in t)) {
        throw new TypeError(`input '${info.name}' must be a Tensor (${wanted})`);
      }
      if (t.type !== info.dtype) {
        throw new TypeError(`input '${info.name}' has type ${t.type}; this model takes ${info.dtype}`);
      }
      const Typed = TYPED_ARRAYS[info.dtype];
      if (!(t.data instanceof Typed)) throw new TypeError(`input '${info.name}': ${info.dtype} data must be a ${Typed.name}`);
      const dims = Array.from(t.dims);
      if (dims.length !== info.shape.length || dims.some((d, i) => d !== info.shape[i])) {
        throw new RangeError(`input '${info.name}' has shape [${dims}]; this bundle was compiled for [${info.shape}] ` +
          '(build another bundle for other shapes)');
      }
      if (t.data.length !== info.shape.reduce((a, b) => a * b, 1)) {
        throw new RangeError(`input '${info.name}' holds ${t.data.length} values; shape [${info.shape}] needs ${info.shape.reduce((a, b) => a * b, 1)}`);
      }
      return toDevice(info.name, /** @type {Tensor} */ (t));
    });
  }

  /**
   * @param {(Float32Array | Int32Array | Uint32Array)[]} data
   * @param {Record<string, Tensor>} feeds
   */
  async _run(data, feeds) {
    checkNotLost(this.gpu);
    const m = this.bundle.manifest;
    const device = this.device;
    device.pushErrorScope('validation');
    data.forEach((d, i) => { if (d.length) device.queue.writeBuffer(this.buffers.input[i], 0, d); });
    const enc = device.createCommandEncoder({ label: 'webjit run' });
    const pass = enc.beginComputePass({ label: 'webjit kernels' });
    m.kernels.forEach((k, i) => {
      pass.setPipeline(this._pipes[i]);
      pass.setBindGroup(0, this._groups[i]);
      const [x, y, z] = k.variants[this.variants[i]].dispatch;
      pass.dispatchWorkgroups(x, y, z);
    });
    pass.end();
    m.outputs.forEach((t, i) => {
      const rb = this._readback[i];
      if (rb && t.from) enc.copyBufferToBuffer(this.buffers.pool[/** @type {number} */ (t.from.pool)], 0, rb, 0, rb.size);
    });
    device.queue.submit([enc.finish()]);
    const readbacks = /** @type {GPUBuffer[]} */ (this._readback.filter((b) => b));
    const [error, mapped] = await Promise.all([
      device.popErrorScope(),
      Promise.allSettled(readbacks.map((b) => b.mapAsync(GPUMapMode.READ))),
    ]);
    try {
      if (error) throw await this._diagnose(error);
      checkNotLost(this.gpu);
      const failed = mapped.find((r) => r.status === 'rejected');
      if (failed) throw new Error(`reading the outputs back failed: ${/** @type {any} */ (failed).reason}`);
      /** @type {Record<string, Tensor>} */
      const out = {};
      m.outputs.forEach((t, i) => {
        const rb = this._readback[i];
        if (rb) {
          out[t.name] = fromDevice(t.dtype, t.deviceDtype, rb.getMappedRange().slice(0), t.shape);
        } else if (this._consts[i]) {
          out[t.name] = /** @type {Tensor} */ (this._consts[i]);
        } else {
          const input = m.inputs[/** @type {number} */ (t.from && t.from.input)].name;
          out[t.name] = feeds[input];
        }
      });
      return out;
    } finally {
      mapped.forEach((r, i) => { if (r.status === 'fulfilled') readbacks[i].unmap(); });
    }
  }

  /**
   * Find the kernel behind a validation error: encode each dispatch alone, in its own error scope.
   * @param {GPUError} error
   */
  async _diagnose(error) {
    const m = this.bundle.manifest;
    for (let i = 0; i < m.kernels.length; i++) {
      const k = m.kernels[i];
      const v = k.variants[this.variants[i]];
      this.device.pushErrorScope('validation');
      const enc = this.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(this._pipes[i]);
      pass.setBindGroup(0, this._groups[i]);
      pass.dispatchWorkgroups(v.dispatch[0], v.dispatch[1], v.dispatch[2]);
      pass.end();
      enc.finish();
      const e = await this.device.popErrorScope();
      if (e) return new Error(`WebGPU validation error in kernel ${k.name} (node '${k.node}', variant ${v.key}): ${e.message}`);
    }
    return new Error(`WebGPU validation error while running the model: ${error.message}`);
  }

  /** Free the device and its buffers; the session cannot run afterwards. */
  async release() {
    for (const list of Object.values(this.buffers)) list.forEach((b) => b.destroy());
    this._readback.forEach((b) => b && b.destroy());
    this.device.destroy();
  }
}
