// The compiler's thread (compiler.js starts it): Pyodide with the webjit package, loaded once and kept for every
// later compile. A compile writes the model and its external data into Pyodide's file system, calls
// webjit.inbrowser.compile_files, and sends the bundle's files back as transferred Uint8Arrays.
//
// Messages in:  {type: 'init', pyodideURL}
//               {type: 'compile', id, model: {url} | {bytes}, externalData: ({path, url} | {path, bytes})[] | null,
//                shapes: {name: number[]} | null, backends: string[]}
// Messages out: {type: 'progress', id, event: {stage, done?, total?, ms?}}
//               {type: 'done', id, files: [path, Uint8Array][], timings}
//               {type: 'error', id, name, error: string, fatal: boolean}   (fatal: Pyodide or webjit did not load)

import { checkDataPath } from './compiler.js';

/** @type {Promise<{pyodide: any, inbrowser: any, pyodideMs: number, packagesMs: number}> | null} */
let ready = null;
let up = false; // Pyodide and the packages are loaded
let queue = Promise.resolve();
let jobs = 0;

self.onmessage = (/** @type {MessageEvent} */ event) => {
  const msg = event.data;
  if (msg.type === 'init') {
    ready = start(msg.pyodideURL);
    ready.then(() => { up = true; }, () => {});
  } else if (msg.type === 'compile') {
    queue = queue.then(() => compile(msg)).then(
      ({ files, timings }) => self.postMessage({ type: 'done', id: msg.id, files, timings }, files.map(([, b]) => b.buffer)),
      (e) => self.postMessage({ type: 'error', id: msg.id, ...describe(e) }));
  }
};

/**
 * Load Pyodide from `indexURL` (its pyodide-lock.json lists the webjit wheel) and import the compiler.
 * @param {string} indexURL
 */
async function start(indexURL) {
  const t0 = performance.now();
  let loadPyodide;
  try {
    ({ loadPyodide } = await import(new URL('pyodide.mjs', indexURL).href));
  } catch (e) {
    throw new Error(`Pyodide is not at ${indexURL} (${/** @type {Error} */ (e).message}): ` +
      'write it with `python -m webjit.pyodide_dist` and serve that folder there');
  }
  const pyodide = await loadPyodide({ indexURL });
  const t1 = performance.now();
  /** @type {string[]} */
  const errors = [];
  await pyodide.loadPackage('webjit', { messageCallback: () => {}, errorCallback: (/** @type {string} */ m) => errors.push(m) });
  let inbrowser;
  try {
    inbrowser = pyodide.pyimport('webjit.inbrowser');
  } catch (e) {
    const why = describe(e).error;
    throw new Error(`cannot import webjit in Pyodide: ${why}${errors.length ? ` (loadPackage: ${errors.join('; ')})` : ''}`);
  }
  return { pyodide, inbrowser, pyodideMs: t1 - t0, packagesMs: performance.now() - t1 };
}

/**
 * @param {string} url
 * @param {string} what
 */
async function fetchBytes(url, what) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${what} ${url}: HTTP ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** @param {any} msg */
async function compile(msg) {
  const progress = (/** @type {any} */ e) => self.postMessage({ type: 'progress', id: msg.id, event: e });
  if (!ready) throw new Error('compile before init');
  const warm = up;
  if (!warm) progress({ stage: 'pyodide' });
  const { pyodide, inbrowser, pyodideMs, packagesMs } = await ready.catch((e) => {
    throw Object.assign(e instanceof Error ? e : new Error(String(e)), { fatal: true }); // this worker is of no use
  });
  if (!warm) progress({ stage: 'packages', ms: pyodideMs + packagesMs });

  const t0 = performance.now();
  const dir = `/models/${++jobs}`;
  const path = `${dir}/model.onnx`;
  const { FS } = pyodide;
  FS.mkdirTree(dir);
  const write = (/** @type {string} */ location, /** @type {Uint8Array} */ bytes) => {
    const target = `${dir}/${checkDataPath(location)}`;
    FS.mkdirTree(target.slice(0, target.lastIndexOf('/')));
    FS.writeFile(target, bytes);
  };
  const shutil = pyodide.pyimport('shutil');
  try {
    progress({ stage: 'fetch', done: 0, total: 1 });
    FS.writeFile(path, msg.model.bytes || await fetchBytes(msg.model.url, 'the model'));
    let data = msg.externalData;
    if (!data && msg.model.url) {
      const locations = inbrowser.external_data(path);
      data = locations.toJs().map((/** @type {string} */ p) => ({ path: checkDataPath(p), url: new URL(p, msg.model.url).href }));
      locations.destroy();
    }
    let fetched = 0;
    await Promise.all((data || []).map(async (/** @type {any} */ d) => {
      write(d.path, d.bytes || await fetchBytes(d.url, `external data '${d.path}' from`));
      progress({ stage: 'fetch', done: ++fetched, total: data.length });
    }));
    const t1 = performance.now();

    const shapes = pyodide.toPy(msg.shapes || {});
    const backends = pyodide.toPy(msg.backends);
    const report = (/** @type {string} */ stage, /** @type {number} */ done, /** @type {number} */ total) => progress({ stage, done, total });
    const result = inbrowser.compile_files.callKwargs(path, { shapes, backends, progress: report });
    shapes.destroy();
    backends.destroy();
    /** @type {[string, Uint8Array][]} */
    const files = [];
    // Each file leaves Python's memory through the file system as soon as it is read: a PyBuffer view of bytes
    // above 2 GiB of the wasm heap has a wrong length (GPT-2's bundle gets there).
    const builtins = pyodide.pyimport('builtins');
    const spill = `${dir}/out.bin`;
    for (const key of Array.from(result.keys())) {
      const value = result.pop(key);
      const file = builtins.open(spill, 'wb');
      file.write(value);
      file.close();
      file.destroy();
      value.destroy();
      files.push([String(key), FS.readFile(spill)]);
      FS.unlink(spill);
    }
    result.destroy();
    builtins.destroy();
    const t2 = performance.now();
    progress({ stage: 'done', ms: t2 - t0 });
    return {
      files,
      timings: { pyodideMs: warm ? 0 : pyodideMs, packagesMs: warm ? 0 : packagesMs, fetchMs: t1 - t0, compileMs: t2 - t1, warm },
    };
  } finally {
    shutil.rmtree(dir, true);
    shutil.destroy();
  }
}

/**
 * One line for an error: a Python exception's type and message, without its traceback.
 * @param {any} e
 */
function describe(e) {
  if (e && e.constructor && e.constructor.name === 'PythonError') {
    const lines = String(e.message).trim().split('\n');
    const last = lines[lines.length - 1];
    const type = String(e.type || 'PythonError');
    const text = last.startsWith(`${type}:`) ? last.slice(type.length + 1).trim()
      : last.replace(/^[\w.]+: /, '');
    return { name: type, error: `${type}: ${text}` };
  }
  return { name: (e && e.name) || 'Error', error: e instanceof Error ? e.message : String(e), fatal: Boolean(e && e.fatal) };
}
