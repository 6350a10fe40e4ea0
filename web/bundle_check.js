// The bundle check page (demo.html): load a bundle, run its reference input, compare with onnxruntime's outputs.

import * as webjit from './webjit.js';

const params = new URLSearchParams(location.search);
const bundleUrl = new URL(params.get('bundle') || '/', location.href);
const budgetMs = Number(params.get('budget') || 2000);
const runs = Math.max(1, Number(params.get('runs') || 5));
const log = /** @type {HTMLElement} */ (document.getElementById('log'));
const say = (/** @type {string} */ line) => { log.textContent += line + '\n'; };  // textContent: names from the model stay text

try {
  const t0 = performance.now();
  const session = await webjit.InferenceSession.create(bundleUrl, {
    tuning: { budgetMs },
    onProgress: (e) => { if (e.phase === 'ready' || e.phase === 'manifest') say(`${e.phase}`); },
  });
  say(`loaded in ${(performance.now() - t0).toFixed(0)} ms (tuning ${session.tuningReport.source}, ` +
      `${session.timings.tuningMs.toFixed(0)} ms)`);
  const ref = await webjit.loadReference(session.bundle);
  const times = [];
  /** @type {Record<string, webjit.Tensor>} */
  let out = {};
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    out = await session.run(ref.inputs);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  say(`run: median ${times[runs >> 1].toFixed(1)} ms over ${runs}`);
  for (const [name, want] of Object.entries(ref.outputs)) {
    const got = out[name].data;
    let err = 0;
    for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(Number(got[i]) - Number(want.data[i])));
    say(`${name} [${out[name].dims}]: max abs error vs ${ref.source}: ${err.toExponential(2)}`);
  }
} catch (e) {
  say(`error: ${/** @type {Error} */ (e).message}`);
}
say('done');
