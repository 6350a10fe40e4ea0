// The 'webgpu' execution provider (../provider.js): a bundle's WGSL kernels on a WebGPU device.
//
// Everything is allocated once, in `open`: the device, one buffer per weight and per input, the pool buffers that
// hold intermediates, one mappable read-back buffer per output, one bind group per kernel. A run writes the inputs,
// records every dispatch into one compute pass of one command encoder, copies the outputs to their read-back
// buffers and submits once. Flushes: the single submit at the end of a run (then the outputs are mapped); tuning
// submits once per timed batch of passes; loading submits the load-time kernels once. The session (../session.js)
// serialises runs, since they share the buffers.
//
// Load-time kernels (a plan's first `load` kernels, ../MANIFEST.md) read only weights and write buffers of their
// own (`loaded`) that no run writes: they run once, when the weights are uploaded, the pipelines compiled and the
// variants chosen, and a run dispatches only the kernels after them. They are not tuned (../tuner.js).
//
// A bundle with shape classes (length buckets, ../classes.js) holds one plan per class. The classes share the
// weights, the input buffers and the pool buffers (each as large as the largest class needs); each has its own
// variants, pipelines and bind groups.

import { checkNotLost, cpuAdapter, requestGpu } from './device.js';
import { Pipelines } from './pipelines.js';
import { bufferSizes, deviceClass, fittingVariants, initialVariants, requiredLimits, signature, sourceGroups, winnerIndices } from './plan.js';
import { PassTimer } from './timer.js';
import { SLOWER, dispatchesPerPass, median } from '../tuner.js';
import { loadCount, shapeClasses } from '../classes.js';
import { partsInShard } from '../weights.js';
import { ProviderUnavailable } from '../provider.js';

const SHARD_CONCURRENCY = 2;

/**
 * A shape class with what the provider keeps for it.
 * @typedef {import('../classes.js').ShapeClass & {variants: number[], pipes: GPUComputePipeline[],
 *           groups: GPUBindGroup[]}} Klass
 * @typedef {import('../provider.js').ProgressEvent} ProgressEvent
 * @typedef {import('../provider.js').Provider} Provider
 */

/**
 * Make the device and the buffers a bundle needs (../provider.js `open`).
 * @param {import('../manifest.js').Bundle} bundle
 * @param {import('../provider.js').SessionOptions} _options
 * @param {(e: ProgressEvent) => void} _progress
 * @returns {Promise<WebgpuProvider>}
 */
export async function open(bundle, _options, _progress) {
  let gpu;
  try {
    gpu = await requestGpu(requiredLimits(bundle.manifest, shapeClasses(bundle.manifest).map((c) => c.manifest)));
  } catch (e) {
    throw new ProviderUnavailable('no WebGPU device', { cause: e });
  }
  return new WebgpuProvider(bundle, gpu);
}

/**
 * The adapter this browser would give, when it computes on the CPU (SwiftShader, lavapipe, ...): its name, else ''.
 * Requests no device.
 */
export function cpuAdapterName() {
  return cpuAdapter(deviceClass);
}

/** @implements {Provider} */
export class WebgpuProvider {
  /**
   * @param {import('../manifest.js').Bundle} bundle
   * @param {import('./device.js').Gpu} gpu
   */
  constructor(bundle, gpu) {
    const m = bundle.manifest;
    this.bundle = bundle;
    /** @type {'webgpu'} */ this.name = 'webgpu';
    this.gpu = gpu;
    this.device = gpu.device;
    this.cacheDevice = gpu.info;
    /** Pipelines compiled at once while tuning. */
    this.parallel = Math.min(8, globalThis.navigator.hardwareConcurrency || 4);
    this.pipelines = new Pipelines(this.device, bundle);
    /** 'cpu' on adapters that emulate compute on CPU cores (SwiftShader, lavapipe): variants are tried in another order. */
    this.deviceClass = deviceClass(/** @type {any} */ (gpu.adapter.info || gpu.info));
    this._limits = /** @type {any} */ (gpu.limits);
    /** @type {Klass[]} */
    this._classes = shapeClasses(m).map((c) => ({ ...c, variants: [], pipes: [], groups: [] }));
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const sizes = bufferSizes(m, this._classes.map((c) => c.manifest));
    const make = (/** @type {string} */ label, /** @type {number} */ size) => this.device.createBuffer({ label, size, usage });
    /** @type {Record<'weight' | 'input' | 'pool' | 'loaded', GPUBuffer[]>} */
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
    /** @type {GPUBuffer | null} generation: scratch for re-laying the cache, and the logits row's read-back */
    this._genScratch = null;
    /** @type {GPUBuffer | null} */ this._genRead = null;
    /** @type {import('../provider.js').Exposed} */
    this.exposed = { gpu, device: this.device, buffers: this.buffers };
  }

  /** The variant index of every kernel of the largest class (the manifest's top level). */
  get variants() {
    return this._classes[this._classes.length - 1].variants;
  }

  /**
   * Choose the starting variants (the cached winners when they all fit this device, else the first to try on it),
   * make the bind groups, upload the weights and compile the pipelines of the variants chosen.
   * @param {Record<string, string>[] | null} tables
   * @param {(e: ProgressEvent) => void} progress
   */
  async load(tables, progress) {
    const chosen = tables && this._classes.map((c, ci) => winnerIndices(tables[ci], c.manifest.kernels, this._limits));
    const cached = Boolean(chosen && chosen.every(Boolean));
    this._classes.forEach((c, ci) => {
      c.variants = cached ? /** @type {number[][]} */ (chosen)[ci] : initialVariants(c.manifest.kernels, this._limits, {}, this.deviceClass);
      c.groups = c.manifest.kernels.map((k) => this.device.createBindGroup({
        label: k.name,
        layout: this.pipelines.layout(signature(k)),
        entries: k.bindings.map((b, binding) => ({ binding, resource: { buffer: this.buffers[b.buffer][b.index] } })),
      }));
    });
    await Promise.all([this._uploadWeights(progress), this._compile(progress)]);
    return cached;
  }

  /** @returns {import('../provider.js').Chosen[][]} */
  choice() {
    return this._classes.map((c) => c.manifest.kernels.map((k, i) => ({
      kernel: k.name, candidates: fittingVariants(k, this._limits).length, winner: k.variants[c.variants[i]].key,
    })));
  }

  /**
   * The tuner's device side: variants compiled `prepare`d chunks at a time, timed on the session's buffers.
   * @param {number} repeats
   * @returns {import('../provider.js').Tuning}
   */
  startTuning(repeats) {
    const timer = new PassTimer(this.device, this.gpu.timestamps);
    return {
      timer: timer.kind,
      end: () => timer.destroy(),
      forClass: (ci) => {
        const c = this._classes[ci];
        return {
          kernels: c.manifest.kernels,
          groups: sourceGroups(c.manifest.kernels),
          current: c.variants,
          load: loadCount(c.manifest),
          candidates: (k) => fittingVariants(c.manifest.kernels[k], this._limits, this.deviceClass),
          prepare: async (k, vs) => { await this.pipelines.all(vs.map((v) => this._wanted(c, k, v))); },
          measure: (k, v, best) => this._measure(c, timer, k, v, repeats, best),
          choose: async (ks, v) => {
            for (const k of ks) {
              c.variants[k] = v;
              const w = this._wanted(c, k, v);
              c.pipes[k] = await this.pipelines.get(w.file, w.sig, w.label);
            }
          },
        };
      },
    };
  }

  /** Run every class's load-time kernels, once: one pass and one submit per class that has them. */
  async runLoadKernels() {
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

  /** @returns {string} */
  lost() {
    const lost = this.gpu.lost;
    return lost ? `the WebGPU device was lost (${lost.reason}${lost.message ? `: ${lost.message}` : ''})` : '';
  }

  /**
   * Run class ci once: write its inputs, dispatch its kernels, read back what they wrote, in one submit.
   * @param {number} ci
   * @param {ArrayBufferView[]} data  every input in device form, padded to the class
   * @returns {Promise<(ArrayBuffer | null)[]>}
   */
  async runClass(ci, data) {
    checkNotLost(this.gpu);
    const c = this._classes[ci];
    const m = c.manifest;
    const device = this.device;
    device.pushErrorScope('validation');
    data.forEach((d, i) => { if (d.byteLength) device.queue.writeBuffer(this.buffers.input[i], 0, d); });
    const enc = device.createCommandEncoder({ label: 'webjit run' });
    this._encodeKernels(enc, c);
    /** @type {(GPUBuffer | null)[]} */
    const readbacks = m.outputs.map((t, i) => {
      const rb = this._readback[i];
      if (!rb || !t.from || t.from.pool === undefined) return null;
      enc.copyBufferToBuffer(this.buffers.pool[t.from.pool], 0, rb, 0, Math.ceil(/** @type {number} */ (t.from.bytes) / 4) * 4);
      return rb;
    });
    const read = /** @type {GPUBuffer[]} */ (readbacks.filter(Boolean));
    device.queue.submit([enc.finish()]);
    const [error, mapped] = await Promise.all([
      device.popErrorScope(),
      Promise.allSettled(read.map((b) => b.mapAsync(GPUMapMode.READ))),
    ]);
    try {
      if (error) throw await this._diagnose(c, error);
      checkNotLost(this.gpu);
      const failed = mapped.find((r) => r.status === 'rejected');
      if (failed) throw new Error(`reading the outputs back failed: ${/** @type {any} */ (failed).reason}`);
      return readbacks.map((rb) => (rb ? rb.getMappedRange().slice(0) : null));
    } finally {
      mapped.forEach((r, i) => { if (r.status === 'fulfilled') read[i].unmap(); });
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
   * One generation step (../generate.js `StepFn`): upload, run class ci, do the cache copies, read `read` back. One
   * command encoder and one submit; the only bytes that come back are the logits row.
   * @param {number} ci
   * @param {import('../generate.js').Upload[]} uploads
   * @param {import('../generate.js').CacheOp[]} ops
   * @param {import('../generate.js').Read} read
   */
  async generationStep(ci, uploads, ops, read) {
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
    const buffer = (/** @type {import('../generate.js').Region} */ r) => {
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

  /** Free the buffers and the device. */
  release() {
    for (const list of Object.values(this.buffers)) list.forEach((b) => b.destroy());
    this._readback.forEach((b) => b && b.destroy());
    this._genScratch?.destroy();
    this._genRead?.destroy();
    this.device.destroy();
  }
}
