import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SLOWER, dispatchesPerPass, median, pickWinner, tune, tuneClasses, tuningOrder } from '../tuner.js';

test('the median of an odd count is the middle value, of an even count the mean of the middle two', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('the winner is the fastest variant, the earlier one on ties, and failed variants never win', () => {
  assert.equal(pickWinner(new Map([[0, 3], [1, 2], [2, 2]])), 1);
  assert.equal(pickWinner(new Map([[0, NaN], [1, 5]])), 1);
  assert.equal(pickWinner(new Map([[0, NaN], [1, Infinity]])), undefined);
  assert.equal(pickWinner(new Map()), undefined);
});

test('groups are tuned most expensive first, plan order on ties', () => {
  const k = (/** @type {number} */ flops, /** @type {number} */ bytes) => /** @type {any} */ ({ flops, bytes });
  const kernels = [k(0, 10), k(1000, 10), k(0, 10), k(1000, 10), k(2000, 0)];
  assert.deepEqual(tuningOrder(kernels, [[0, 2], [1, 3], [4]]), [[1, 3], [4], [0, 2]]);
});

test('a timed pass holds enough dispatches to last a millisecond, at most 64', () => {
  assert.equal(dispatchesPerPass(5), 1);
  assert.equal(dispatchesPerPass(0.3), 4);
  assert.equal(dispatchesPerPass(0.0001), 64);
  assert.equal(dispatchesPerPass(0), 64);
});

/**
 * A plan of `groups` (kernel counts) where kernel i has the given variant times, and a fake clock that advances
 * by `compileMs` per compiled variant and by the variant's time per measurement.
 * @param {number[][]} times  per kernel, ms per variant
 * @param {number[][]} groups
 */
function fake(times, groups, { compileMs = 0, budgetMs = Infinity, parallel = 1, fail = new Set() } = {}) {
  let clock = 0;
  const calls = { prepare: /** @type {number[][]} */ ([]), measure: /** @type {[number, number, number][]} */ ([]), choose: /** @type {[number[], number][]} */ ([]) };
  const kernels = times.map((ts, i) => ({
    name: `k${i}`, kind: 'x', node: `n${i}`, bindings: [], flops: 100 - i, bytes: 0,
    variants: ts.map((_, v) => ({ key: `v${v}`, file: `kernels/${i}-${v}.wgsl`, dispatch: [1, 1, 1], threads: 1, smemBytes: 0, registers: 0 })),
  }));
  const options = {
    kernels, groups, current: kernels.map(() => 0), budgetMs, parallel,
    candidates: (/** @type {number} */ k) => times[k].map((_, v) => v),
    prepare: async (/** @type {number} */ k, /** @type {number[]} */ vs) => { calls.prepare.push(vs); clock += compileMs; },
    measure: async (/** @type {number} */ k, /** @type {number} */ v, /** @type {number} */ best) => {
      calls.measure.push([k, v, best]);
      if (fail.has(`${k}:${v}`)) throw new Error('validation error');
      clock += times[k][v];
      return times[k][v];
    },
    choose: async (/** @type {number[]} */ ks, /** @type {number} */ v) => { calls.choose.push([ks, v]); },
    now: () => clock,
  };
  return { options, calls };
}

test('each group gets its fastest variant, timed once for all its kernels', async () => {
  const { options, calls } = fake([[3, 1, 2], [5, 4], [3, 1, 2]], [[0, 2], [1]]);
  const report = await tune(options);
  assert.deepEqual(calls.choose, [[[0, 2], 1], [[1], 1]]);
  assert.equal(calls.measure.filter(([k]) => k === 2).length, 0);
  assert.equal(report.complete, true);
  assert.deepEqual(report.kernels.map((r) => [r.kernel, r.winner, r.tried, r.sharedWith]),
    [['k0', 'v1', 3, null], ['k1', 'v1', 2, null], ['k2', 'v1', 0, 'k0']]);
  assert.deepEqual(report.kernels[0].times, { v0: 3, v1: 1, v2: 2 });
});

test('each measurement is told the best median so far, so slow variants can stop after the warm-up', async () => {
  const { options, calls } = fake([[3, 1, 2]], [[0]]);
  await tune(options);
  assert.deepEqual(calls.measure.map(([, v, best]) => [v, best]), [[0, Infinity], [1, 3], [2, 1]]);
  assert.ok(SLOWER > 1);
});

test('variants are compiled a chunk at a time, and tuning stops at the first chunk boundary past the budget', async () => {
  const { options, calls } = fake([[10, 10, 10, 10, 10], [1, 2]], [[0], [1]], { budgetMs: 15, parallel: 2 });
  const report = await tune(options);
  assert.deepEqual(calls.prepare, [[0, 1]]);
  assert.equal(report.complete, false);
  assert.deepEqual(report.kernels.map((r) => r.tried), [2, 0]);
  assert.deepEqual(calls.choose, [[[0], 0], [[1], 0]]);
});

test('a chunk that would not fit what is left of the budget (judged by the last chunk) is not started', async () => {
  const { options, calls } = fake([[10, 10, 10, 10]], [[0]], { budgetMs: 25, parallel: 1 });
  const report = await tune(options);
  assert.deepEqual(calls.prepare, [[0], [1]]);  // a third chunk would end at 30 ms
  assert.ok(report.elapsedMs <= options.budgetMs, `${report.elapsedMs} ms`);
  assert.equal(report.complete, false);
});

test('however small the budget, the first chunk of the most expensive group is timed', async () => {
  const { options, calls } = fake([[10, 10, 10], [9, 1]], [[0], [1]], { budgetMs: 0, parallel: 2 });
  options.now = (() => { let t = 0; return () => (t += 5); })();  // time passes even before the first chunk
  const report = await tune(options);
  assert.deepEqual(calls.prepare, [[0, 1]]);
  assert.deepEqual(report.kernels.map((r) => r.tried), [2, 0]);
});

test('a group the budget never reached keeps its starting variant', async () => {
  const { options } = fake([[10, 10], [9, 1]], [[0], [1]], { budgetMs: 5 });
  options.current = [0, 0];
  const report = await tune(options);
  assert.equal(report.kernels[1].winner, 'v0');
  assert.equal(report.kernels[1].tried, 0);
});

test('a variant that fails is reported and skipped', async () => {
  const { options } = fake([[3, 1, 2]], [[0]], { fail: new Set(['0:1']) });
  const report = await tune(options);
  assert.equal(report.kernels[0].winner, 'v2');
  assert.deepEqual(report.kernels[0].errors, { v1: 'validation error' });
});

test('a kernel with a single fitting variant is not timed', async () => {
  const { options, calls } = fake([[3]], [[0]]);
  const report = await tune(options);
  assert.equal(calls.measure.length, 0);
  assert.equal(report.kernels[0].winner, 'v0');
  assert.equal(report.complete, true);
});

test('load-time kernels are not timed: each keeps its starting variant and leaves its group', async () => {
  const { options, calls } = fake([[1, 9], [9, 1], [9, 1], [1, 9]], [[0], [1, 2], [3]]);
  options.current = [1, 0, 0, 0];
  const report = await tune({ ...options, load: 2 });
  assert.deepEqual(calls.measure.filter(([k]) => k < 2), []);
  assert.deepEqual(report.kernels.map((r) => [r.winner, r.tried, r.candidates, r.sharedWith]),
    [['v1', 0, 1, null], ['v0', 0, 1, null], ['v1', 2, 2, null], ['v0', 2, 2, null]]);
  assert.equal(report.complete, true);
});

test('however small the budget, the first group with a choice is timed, after load-time kernels', async () => {
  const { options, calls } = fake([[10, 10], [9, 1]], [[0], [1]], { budgetMs: 0 });
  options.now = (() => { let t = 0; return () => (t += 5); })();
  const report = await tune({ ...options, load: 1 });
  assert.deepEqual(calls.prepare, [[0]]);
  assert.deepEqual(report.kernels.map((r) => r.tried), [0, 1]);
});

test('progress is reported once per group', async () => {
  const { options } = fake([[3, 1], [2, 1]], [[0], [1]]);
  /** @type {any[]} */
  const events = [];
  await tune({ ...options, onProgress: (e) => events.push(e) });
  assert.deepEqual(events, [{ phase: 'tuning', done: 1, total: 2, kernel: 'k0' }, { phase: 'tuning', done: 2, total: 2, kernel: 'k1' }]);
});

test('shape classes are tuned largest first, each with its share by work of what the budget has left', async () => {
  let clock = 0;
  const classes = [{ dims: [16], flops: 1 }, { dims: [32], flops: 2 }, { dims: [64], flops: 5 }];
  /** @type {[number[], number, boolean][]} */
  const calls = [];
  const report = await tuneClasses(classes, 80, async (c, share, always) => {
    calls.push([c.dims, share, always]);
    clock += 10; // each class spends 10 ms
    return { source: 'tuned', timer: 't', budgetMs: share, elapsedMs: 10, complete: c.dims[0] !== 32,
      kernels: [{ kernel: `k${c.dims[0]}`, sharedWith: null, candidates: 2, tried: 1, times: {}, errors: {}, winner: 'v0' }] };
  }, () => clock);
  // shares: 80 * 5/8 first; then what is left (70) * 2/3; then (60) * 1/1
  assert.deepEqual(calls, [[[64], 80 * 5 / 8, true], [[32], 70 * 2 / 3, false], [[16], 60, false]]);
  assert.deepEqual(report.kernels.map((k) => [k.kernel, /** @type {any} */ (k).dims]), [['k16', [16]], ['k32', [32]], ['k64', [64]]]);
  assert.equal(report.complete, false);
  assert.equal(report.elapsedMs, 30);
  assert.deepEqual(report.classes?.map((c) => c.dims), [[16], [32], [64]]);
});
