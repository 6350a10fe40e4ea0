// Tuning winners persisted in IndexedDB, keyed by the bundle's hash and the adapter, so a second load of the same
// bundle on the same device skips tuning. An entry that cannot be read, belongs to another bundle, or names a
// kernel or variant this bundle and device do not have is ignored (and overwritten by the next tuning).

import { fittingVariants } from './webgpu/plan.js';

export const ENTRY_VERSION = 2;
const DB_NAME = 'webjit';
const STORE = 'tuning';

/** @typedef {import('./manifest.js').Manifest} Manifest */
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
 * The winners of a cache entry if it is valid for this bundle and device, else null: one table per shape class
 * (classes.js; a bundle without classes has one), every kernel of each has a winner, and every winner is a variant
 * of its kernel that fits the device.
 * @param {any} entry
 * @param {Manifest[]} classes  the class views, smallest first (shapeClasses(m).map((c) => c.manifest))
 * @param {string} bundleHash
 * @param {Record<string, number>} limits
 * @returns {Record<string, string>[] | null}
 */
export function validWinners(entry, classes, bundleHash, limits) {
  if (!entry || typeof entry !== 'object' || entry.version !== ENTRY_VERSION || entry.bundle !== bundleHash) return null;
  const winners = entry.winners;
  if (!Array.isArray(winners) || winners.length !== classes.length) return null;
  for (let c = 0; c < classes.length; c++) {
    const table = winners[c];
    if (!table || typeof table !== 'object') return null;
    for (const k of classes[c].kernels) {
      const key = table[k.name];
      if (typeof key !== 'string') return null;
      if (!fittingVariants(k, limits).some((i) => k.variants[i].key === key)) return null;
    }
  }
  return winners;
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
