// Load-time tuning: time each fitting variant of each distinct kernel on the device and keep the fastest.
//
// The procedure is the native one (webjit/tune.py): kernels with equal source are tuned once, for the first of
// them; each variant runs once to warm up (the first dispatch after compiling pays for lazy work), then the
// median of `repeats` timed runs counts; a variant whose warm-up run already takes over SLOWER times the best
// median so far gets no repeats (its warm-up time is reported). The most expensive groups go first. Variants are compiled `parallel` at a
// time (createComputePipelineAsync, all at once), then timed one by one, never while compiles run. Compiling is
// not interruptible (on a CPU adapter one matmul variant takes seconds), so a chunk starts only when a chunk as long
// as the last one still fits the budget: a group cut short keeps the fastest variant timed so far, an untried
// group its starting variant.
// Each provider brings its clock: on WebGPU (webgpu/timer.js) timestamp queries when the device has them, else the
// wall clock around onSubmittedWorkDone, each pass running enough dispatches to last about a millisecond, above the
// browser's timestamp quantisation; on wasm the wall clock around the module's `steps`.
// Load-time kernels (the plan's first `load`, web/MANIFEST.md) are not tuned: they run once, when the session
// loads, so their time is not worth the budget. Each keeps its starting variant.

/** @typedef {import('./manifest.js').Kernel} Kernel */

export const DEFAULT_REPEATS = 3;
export const DEFAULT_BUDGET_MS = 2000;

/**
 * A session's tuning settings from its options: null for `tuning: false`, else the defaults under what was given.
 * @param {false | {budgetMs?: number, repeats?: number, parallel?: number, force?: boolean} | undefined} given
 * @param {number} parallel  candidates compiled at once unless `given` says otherwise (the provider's own number)
 */
export function tuningSettings(given, parallel = 1) {
  if (given === false) return null;
  return { budgetMs: DEFAULT_BUDGET_MS, repeats: DEFAULT_REPEATS, parallel, force: false, ...given };
}
const TARGET_PASS_MS = 1; // a timed pass should last at least this long
const MAX_PER_PASS = 64;
export const SLOWER = 2; // a warm-up over SLOWER times the best so far ends a variant's timing
const FLOPS_PER_BYTE = 16; // weight of memory traffic in the static cost estimate that orders the groups

/** @param {number[]} xs */
export function median(xs) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * The fastest measured variant: the smallest time, the earlier variant on ties; failed variants (NaN or
 * Infinity) never win.
 * @param {Map<number, number>} times  variant index -> milliseconds
 * @returns {number | undefined}
 */
export function pickWinner(times) {
  let best;
  let bestTime = Infinity;
  for (const [v, t] of times) {
    if (Number.isFinite(t) && t < bestTime) {
      best = v;
      bestTime = t;
    }
  }
  return best;
}

/**
 * Groups of kernels in the order to tune them: largest estimated cost (flops plus weighted bytes, summed over
 * the group's kernels) first; equal costs keep their plan order.
 * @param {Kernel[]} kernels
 * @param {number[][]} groups  kernel indices (plan.sourceGroups)
 */
export function tuningOrder(kernels, groups) {
  const cost = (/** @type {number[]} */ g) => g.reduce((s, i) => s + kernels[i].flops + FLOPS_PER_BYTE * kernels[i].bytes, 0);
  return groups.map((g, i) => ({ g, i, c: cost(g) })).sort((a, b) => b.c - a.c || a.i - b.i).map((x) => x.g);
}

/**
 * How many dispatches a timed pass needs to last TARGET_PASS_MS, given one took `ms`.
 * @param {number} ms
 */
export function dispatchesPerPass(ms) {
  if (!(ms > 0)) return MAX_PER_PASS;
  return Math.min(MAX_PER_PASS, Math.max(1, Math.ceil(TARGET_PASS_MS / ms)));
}

/**
 * @typedef {{kernel: string, sharedWith: string | null, candidates: number, tried: number,
 *            times: Record<string, number>, errors: Record<string, string>, winner: string}} KernelReport
 * @typedef {{source: 'tuned' | 'cache' | 'off', timer: string, budgetMs: number, elapsedMs: number,
 *            complete: boolean, kernels: KernelReport[]}} TuningReport
 */

/**
 * Tune every group of kernels within a budget. What touches the device comes in as functions, so the search
 * itself runs anywhere.
 * @param {{
 *   kernels: Kernel[],
 *   groups: number[][],
 *   current: number[],                                         // starting variant of each kernel
 *   load?: number,                                             // the first `load` kernels run at load: not tuned
 *   candidates: (kernel: number) => number[],                  // fitting variant indices, default first
 *   prepare: (kernel: number, variants: number[]) => Promise<void>,  // compile them, all at once
 *   parallel?: number,                                         // variants compiled together (default 1)
 *   measure: (kernel: number, variant: number, best: number) => Promise<number>,  // warm up, time, median (ms)
 *   choose: (kernels: number[], variant: number) => Promise<void>,
 *   budgetMs: number,
 *   now: () => number,
 *   timer?: string,
 *   always?: boolean,                                          // time a first chunk even with no budget (default true)
 *   onProgress?: (event: {phase: 'tuning', done: number, total: number, kernel: string}) => void,
 * }} o
 * @returns {Promise<TuningReport>}
 */
export async function tune(o) {
  const start = o.now();
  let lastChunkMs = 0; // how long the last chunk took: a chunk that would not fit what is left is not started
  const spent = () => o.now() - start + lastChunkMs > o.budgetMs;
  /** @type {KernelReport[]} */
  const reports = new Array(o.kernels.length);
  const load = o.load || 0;
  // a load-time kernel leaves its group (its source may equal a kernel's that runs every time) and stands alone
  const groups = [...o.groups.map((g) => g.filter((k) => k >= load)).filter((g) => g.length),
    ...o.groups.flat().filter((k) => k < load).map((k) => [k])];
  const order = tuningOrder(o.kernels, groups);
  const always = o.always !== false;
  let timedAny = false;
  let complete = true;
  for (let n = 0; n < order.length; n++) {
    const members = order[n];
    const first = members[0];
    const kernel = o.kernels[first];
    const candidates = first < load ? [o.current[first]] : o.candidates(first);
    /** @type {Map<number, number>} */
    const times = new Map();
    /** @type {Record<string, string>} */
    const errors = {};
    const parallel = Math.max(1, o.parallel || 1);
    // The first chunk of the most expensive group with a choice is always timed, however small the budget:
    // tuning that can end having timed nothing (a slow clock, a busy machine) is not worth its start-up.
    for (let c = 0; candidates.length > 1 && c < candidates.length && (!spent() || (always && !timedAny && c === 0)); c += parallel) {
      timedAny = true;
      const chunk = candidates.slice(c, c + parallel);
      const chunkStart = o.now();
      await o.prepare(first, chunk);
      for (const v of chunk) {
        try {
          const best = pickWinner(times);
          times.set(v, await o.measure(first, v, best === undefined ? Infinity : /** @type {number} */ (times.get(best))));
        } catch (e) {
          times.set(v, NaN);
          errors[kernel.variants[v].key] = /** @type {Error} */ (e).message;
        }
      }
      lastChunkMs = o.now() - chunkStart;
    }
    if (times.size < candidates.length && candidates.length > 1) complete = false;
    const winner = pickWinner(times) ?? o.current[first];
    await o.choose(members, winner);
    /** @type {Record<string, number>} */
    const byKey = {};
    for (const [v, t] of times) byKey[kernel.variants[v].key] = t;
    for (const i of members) {
      reports[i] = {
        kernel: o.kernels[i].name,
        sharedWith: i === first ? null : kernel.name,
        candidates: candidates.length,
        tried: i === first ? times.size : 0,
        times: byKey,
        errors,
        winner: kernel.variants[winner].key,
      };
    }
    if (o.onProgress) o.onProgress({ phase: 'tuning', done: n + 1, total: order.length, kernel: kernel.name });
  }
  return { source: 'tuned', timer: o.timer || '', budgetMs: o.budgetMs, elapsedMs: o.now() - start, complete, kernels: reports };
}

/**
 * Tune every shape class (classes.js), the largest first: each gets the share of what is left of the budget that
 * its work (flops) has among the classes not yet tuned, and only the first times a chunk however small its share.
 * One report comes back: every class's kernel rows, each with its class's `dims`, complete when every class was,
 * and (with more than one class) `classes` with each class's own budget and time.
 * @param {{dims: number[], flops: number}[]} classes  smallest first
 * @param {number} budgetMs
 * @param {(cls: any, budgetMs: number, always: boolean) => Promise<TuningReport>} tuneOne  tune() for one class
 * @param {() => number} now
 * @returns {Promise<TuningReport & {classes?: {dims: number[], budgetMs: number, elapsedMs: number, complete: boolean}[]}>}
 */
export async function tuneClasses(classes, budgetMs, tuneOne, now) {
  const start = now();
  const order = [...classes].reverse();
  let work = order.reduce((s, c) => s + Math.max(c.flops, 1), 0);
  /** @type {TuningReport[]} */
  const reports = [];
  for (const c of order) {
    const share = Math.max(0, budgetMs - (now() - start)) * (Math.max(c.flops, 1) / work);
    work -= Math.max(c.flops, 1);
    const report = await tuneOne(c, share, c === order[0]);
    reports.unshift({ ...report, kernels: report.kernels.map((r) => ({ ...r, dims: c.dims })) });
  }
  const top = reports[reports.length - 1];
  return {
    ...top,
    budgetMs,
    elapsedMs: now() - start,
    complete: reports.every((r) => r.complete),
    kernels: reports.flatMap((r) => r.kernels),
    ...(reports.length > 1 ? { classes: reports.map((r, i) => ({ dims: classes[i].dims, budgetMs: r.budgetMs, elapsedMs: r.elapsedMs, complete: r.complete })) } : {}),
  };
}
