// Verified bundle files kept in Cache Storage for the next visit, by their SHA-256: a file is stored only after
// its hash checked out, so a later load takes it from there without fetching or hashing it again. The key is the
// hash, so bundles that share a weight shard share its entry. Only large files (weight shards, WebAssembly
// modules) are kept: a small kernel file costs more to look up than to fetch from the HTTP cache and hash.

const CACHE = 'webjit-verified-files-v1';
const MIN_BYTES = 64 * 1024;

export class VerifiedFiles {
  /** A store where the page has Cache Storage (a secure context), else null. */
  static open() {
    return typeof caches !== 'undefined' && typeof caches.open === 'function' ? new VerifiedFiles() : null;
  }

  constructor() {
    /** @type {Promise<Cache | null> | null} */ this._cache = null;
    /** Files served from the store since the bundle loaded, and bytes. */
    this.hits = { files: 0, bytes: 0 };
  }

  /** @returns {Promise<Cache | null>} */
  _open() {
    if (!this._cache) this._cache = caches.open(CACHE).catch(() => null); // storage refused: fetch as usual
    return this._cache;
  }

  /** @param {string} sha256 */
  static key(sha256) {
    return new URL(`/.webjit-verified/${sha256}`, globalThis.location ? globalThis.location.href : 'http://127.0.0.1/').href;
  }

  /**
   * The stored bytes of a file of `bytes` bytes with this SHA-256, or null.
   * @param {string} sha256
   * @param {number} bytes
   */
  async get(sha256, bytes) {
    if (bytes < MIN_BYTES) return null;
    const cache = await this._open();
    const hit = cache && await cache.match(VerifiedFiles.key(sha256)).catch(() => undefined);
    if (!hit) return null;
    const data = await hit.arrayBuffer().catch(() => null);
    if (!data || data.byteLength !== bytes) return null;
    this.hits.files += 1;
    this.hits.bytes += bytes;
    return data;
  }

  /**
   * Keep verified bytes (in the background; a full or refused store is not an error).
   * @param {string} sha256
   * @param {ArrayBuffer} data
   */
  put(sha256, data) {
    if (data.byteLength < MIN_BYTES) return;
    this._open().then((cache) => cache && cache.put(VerifiedFiles.key(sha256), new Response(data.slice(0)))).catch(() => {});
  }
}
