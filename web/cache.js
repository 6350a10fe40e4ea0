// Tuning winners persisted in IndexedDB, keyed by the bundle's hash and the adapter, so a second load of the same
// bundle on the same device skips tuning. An entry that cannot be read, belongs to another bundle, or names a
// kernel or variant this bundle and device do not have is ignored (and overwritten by the next tuning).

import { fittingVariants } from './plan.js';

export const ENTRY_VERSION = 1;
const DB_NAME = 'webjit';
const STORE = 'tuning';

/** @typedef {import('./manifest.js').Manifest} Manifest */
/** @typedef {import('./device.js').AdapterInfo} AdapterInfo */
/**
 * @typedef {{version: number, bundle: string, adapter: AdapterInfo, created: string,
 *            winners: Record<string, string>, report: any}} CacheEntry
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
 * The winners of a cache entry if it is valid for this bundle and device, else null: every kernel of the
 * manifest has a winner, and every winner is a variant of its kernel that fits the device.
 * @param {any} entry
 * @param {Manifest} manifest
 * @param {string} bundleHash
 * @param {Record<string, number>} limits
 * @returns {Record<string, string> | null}
 */
export function validWinners(entry, manifest, bundleHash, limits) {
  if (!entry || typeof entry !== 'object' || entry.version !== ENTRY_VERSION || entry.bundle !== bundleHash) return null;
  const winners = entry.winners;
  if (!winners || typeof winners !== 'object') return null;
  for (const k of manifest.kernels) {
    const key = winners[k.name];
    if (typeof key !== 'string') return null;
    if (!fittingVariants(k, limits).some((i) => k.variants[i].key === key)) return null;
  }
  return winners;
}

/**
 * A cache entry for the winners of a tuning run.
 * @param {string} bundleHash
 * @param {AdapterInfo} info
 * @param {Record<string, string>} winners
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
