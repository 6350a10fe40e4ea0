// What an execution provider is to the session (session.js): the interface every provider implements
// (webgpu/webgpu_session.js, wasm/wasm_session.js), and the session options and progress events they are given.
// The session does everything that is the same for every provider: choosing the provider, the tuning cache, the
// tuning budget and report, feed checks and padding, output assembly, queueing, a lost device's fallback. A provider
// holds the kernels, the weights and the buffers or memory they run on.
//
// A provider module exports `open(bundle, options, progress)`, which makes the device or memory and allocates what
// the bundle needs, and resolves to a Provider; it throws ProviderUnavailable when the provider cannot run here at
// all (no adapter, no device), so that the session tries the next one listed. Then the session calls, in order:
//   load(tables, progress)   weights in, kernels compiled, every class's variants chosen: the cached winners when
//                            every one is a candidate here (resolves true), else the defaults (false)
//   startTuning(repeats)     when it tunes: tune()'s device side, per shape class (tuner.js)
//   choice()                 what runs now, per class and kernel: to cache it and to report it
//   runLoadKernels()         the load-time kernels, once, with the variants chosen
// and afterwards runClass (a run) and generationStep (a generate() step), until release.

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

/**
 * Which module runs and on how many threads ('wasm').
 * @typedef {{simd: 'relaxed' | 'fixed', unsignedDot: boolean, threads: number, isolated: boolean, file: string}} WasmInfo
 */

/**
 * A provider's own objects that the session shows (for pages that inspect them, and for tests): the WebGPU
 * adapter and device record, the device and the buffers on 'webgpu'; the linear memory and which module runs on
 * 'wasm'.
 * @typedef {{gpu?: import('./webgpu/device.js').Gpu, device?: GPUDevice, buffers?: Record<string, GPUBuffer[]>,
 *            memory?: WebAssembly.Memory, wasm?: WasmInfo}} Exposed
 */

/**
 * The device side of tune() for one shape class (tuner.js: everything but the budget, the clock and progress).
 * @typedef {{
 *   kernels: import('./manifest.js').Kernel[],
 *   groups: number[][],
 *   current: number[],
 *   load: number,
 *   candidates: (kernel: number) => number[],
 *   prepare: (kernel: number, variants: number[]) => Promise<void>,
 *   measure: (kernel: number, variant: number, best: number) => Promise<number>,
 *   choose: (kernels: number[], variant: number) => Promise<void>,
 * }} ClassTuning
 * A tuning run: its clock's name for the report, each class's tune() parts, and `end` when it is over.
 * @typedef {{timer: string, forClass: (cls: number) => ClassTuning, end: () => void}} Tuning
 */

/**
 * One kernel as chosen now: its name, how many candidates it has here, the winner's variant key.
 * @typedef {{kernel: string, candidates: number, winner: string}} Chosen
 */

/**
 * @typedef {{
 *   name: 'webgpu' | 'wasm',
 *   cacheDevice: import('./cache.js').AdapterInfo,
 *   parallel: number,
 *   exposed: Exposed,
 *   load: (tables: Record<string, string>[] | null, progress: (e: ProgressEvent) => void) => Promise<boolean>,
 *   startTuning: (repeats: number) => Tuning,
 *   choice: () => Chosen[][],
 *   runLoadKernels: () => Promise<void>,
 *   runClass: (cls: number, data: ArrayBufferView[]) => Promise<(ArrayBuffer | null)[]>,
 *   generationStep: import('./generate.js').StepFn,
 *   lost: () => string,
 *   release: () => void,
 * }} Provider
 * - cacheDevice: what names the device in the tuning cache's key
 * - parallel: candidates compiled at once while tuning, unless `tuning.parallel` says otherwise
 * - runClass: write the inputs (device form, padded to class `cls`), run the class, and give the bytes every
 *   output's kernels wrote (device form), null for an output no kernel computes
 * - generationStep: generate.js's StepFn, on the provider's buffers or memory
 * - lost: '' while the provider can run; else why it cannot any more (a lost device), for the next provider
 * - release: free everything; the provider cannot run afterwards
 */

/**
 * @typedef {{open: (bundle: import('./manifest.js').Bundle, options: SessionOptions,
 *                   progress: (e: ProgressEvent) => void) => Promise<Provider>}} ProviderModule
 */

/** The provider cannot run here (no adapter, no device): the session tries the next one. `cause` says why. */
export class ProviderUnavailable extends Error {}
