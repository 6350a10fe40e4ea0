// Tuning winners persisted in IndexedDB, keyed by the bundle's hash and the device (a WebGPU adapter, or what stands
// for the CPU on wasm), so a second load of the same bundle on the same device skips tuning. The session
// (session.js) reads, checks and writes the entries the same way for every provider. An entry that cannot be read,
// belongs to another bundle, or names a kernel or variant this bundle and device do not have is ignored (and
// overwritten by the next tuning).

export const ENTRY_VERSION = 2;
const DB_NAME = 'webjit';
const STORE = 'tuning';

/**
 * What names the device in a cache key: a WebGPU adapter's info, or what stands for the CPU (wasm/choices.js).
 * @typedef {{vendor: string, architecture: string, device: string, description: string}} AdapterInfo
 */
/**
 * @typedef {{version: number, bundle: string, adapter: AdapterInfo, created: string,
 *            winners: Record<string, string>[], report: any}} CacheEntry
 */

/**
 * The cache key of a bundle on an adapter.
 * @param {string} bundleHash  SHA-256 of manifest.json
 * @param {AdapterInfo} info
 */
export function cacheKey(bundleHash, info) {
  const adapter = [info.vendor, info.architecture, info.device, info.description].map((s) => encodeURIComponent(s || '')).join('/');
  return `v${ENTRY_VERSION}/${bundleHash}/${adapter}`;
}

/**
 * The winner tables of a cache entry if it is one for this bundle in this format, else null: one table per shape
 * class (classes.js; a bundle without classes has one), each an object of kernel name -> variant key. Whether every
 * winner is a candidate on this device is the provider's to say (webgpu/plan.js `winnerIndices`, wasm/choices.js
 * `chosenFrom`).
 * @param {any} entry
 * @param {string} bundleHash
 * @param {number} classCount
 * @returns {Record<string, string>[] | null}
 */
export function cachedTables(entry, bundleHash, classCount) {
  if (!entry || typeof entry !== 'object' || entry.version !== ENTRY_VERSION || entry.bundle !== bundleHash) return null;
  const tables = entry.winners;
  if (!Array.isArray(tables) || tables.length !== classCount) return null;
  return tables.every((t) => t && typeof t === 'object') ? tables : null;
}

/**
 * A cache entry for the winners of a tuning run.
 * @param {string} bundleHash
 * @param {AdapterInfo} info
 * @param {Record<string, string>[]} winners  per shape class, kernel name -> variant key
 * @param {any} report
 * @returns {CacheEntry}
 */
export function makeEntry(bundleHash, info, winners, report) {
  return { version: ENTRY_VERSION, bundle: bundleHash, adapter: info, created: new Date().toISOString(), winners, report };
}

/** @returns {Promise<IDBDatabase>} */
function open() {
  return new Promise((resolve, reject) => {
    if (!globalThis.indexedDB) {
      reject(new Error('IndexedDB is not available'));
      return;
    }
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error('IndexedDB is blocked by another tab'));
  });
}

/**
 * @template T
 * @param {'readonly' | 'readwrite'} mode
 * @param {(store: IDBObjectStore) => IDBRequest<T>} op
 * @returns {Promise<T>}
 */
async function withStore(mode, op) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = op(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/**
 * The stored entry under `key`, or null when there is none or it cannot be read.
 * @param {string} key
 * @returns {Promise<any>}
 */
export async function readEntry(key) {
  try {
    return (await withStore('readonly', (s) => s.get(key))) ?? null;
  } catch {
    return null;
  }
}

/**
 * Store an entry; returns an error message instead of throwing (a session works without a cache).
 * @param {string} key
 * @param {CacheEntry} entry
 * @returns {Promise<string | null>}
 */
export async function writeEntry(key, entry) {
  try {
    await withStore('readwrite', (s) => s.put(entry, key));
    return null;
  } catch (e) {
    return /** @type {Error} */ (e).message || String(e);
  }
}
