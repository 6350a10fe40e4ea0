// One thread of the 'wasm' execution provider: a Web Worker that instantiates the plan's module over the shared
// WebAssembly.Memory and calls `run(t, nt)` each time the session asks (and `load(t, nt)`, the load-time kernels,
// once when it loads). Its kernels meet the other workers at the
// module's atomic barrier (memory.atomic.wait32 is allowed in a worker); the main thread never waits on atomics.
//
// Messages in:  {type: 'init', modules: WebAssembly.Module[], memory: WebAssembly.Memory, t: number, nt: number}
//               {type: 'run', cls: number}      (modules[cls] runs: one module per shape class)
//               {type: 'load', cls: number}     (modules[cls]'s load-time kernels run)
//               {type: 'steps', cls: number, k: number, reps: number}   (kernel k alone, reps times: tuning)
// Messages out: {type: 'ready'} | {type: 'done'} | {type: 'error', error: string}
// A thread that traps reports it at once (the session then rejects the run and stops every worker); the threads
// left waiting at the barrier give up after the module's timeout and report that, so a run never hangs.

/** @type {{run: (t: number, nt: number) => void}[] | null} */
let kernels = null;
/** @type {WebAssembly.Memory | null} */
let memory = null;
let thread = 0;
let threads = 1;

self.onmessage = async (/** @type {MessageEvent} */ event) => {
  const msg = event.data;
  try {
    if (msg.type === 'init') {
      const instances = await Promise.all(msg.modules.map((/** @type {WebAssembly.Module} */ m) => WebAssembly.instantiate(m, { env: { memory: msg.memory } })));
      kernels = instances.map((i) => /** @type {any} */ (i.exports));
      memory = msg.memory;
      thread = msg.t;
      threads = msg.nt;
      self.postMessage({ type: 'ready' });
    } else if (msg.type === 'run' || msg.type === 'load') {
      if (!kernels) throw new Error(`${msg.type} before init`);
      /** @type {any} */ (kernels[msg.cls])[msg.type](thread, threads);
      self.postMessage({ type: 'done' });
    } else if (msg.type === 'steps') {
      if (!kernels) throw new Error('steps before init');
      /** @type {any} */ (kernels[msg.cls]).steps(msg.k, msg.reps, thread, threads);
      self.postMessage({ type: 'done' });
    }
  } catch (e) {
    // byte 8 of the memory: the module's barrier gave up waiting for the other threads (see module.wat.j2)
    const gaveUp = memory !== null && new Int32Array(memory.buffer, 8, 1)[0] === 1;
    const why = gaveUp ? 'gave up waiting at the barrier between kernels: another thread trapped or is stuck'
      : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    self.postMessage({ type: 'error', error: `thread ${thread}: ${why}` });
  }
};
