import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ENTRY_VERSION, cacheKey, makeEntry, readEntry, writeEntry } from '../cache.js';
import { validWinners } from '../webgpu/plan.js';

const fixture = () => JSON.parse(readFileSync(new URL('./manifest.fixture.json', import.meta.url), 'utf8'));
const LIMITS = { maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupStorageSize: 65536, maxComputeWorkgroupsPerDimension: 65535 };
const SWIFTSHADER = { vendor: 'google', architecture: 'swiftshader', device: '', description: '' };
const HASH = 'a'.repeat(64);
const WINNERS = [{ k00_gather: 'wg512', k01_matmul: 'BM16' }];

test('the cache key holds the schema version, the bundle hash and the adapter', () => {
  assert.equal(cacheKey(HASH, SWIFTSHADER), `v${ENTRY_VERSION}/${HASH}/google/swiftshader//`);
});

test('different bundles and different adapters get different cache keys', () => {
  const nvidia = { vendor: 'nvidia', architecture: 'hopper', device: '', description: '' };
  assert.notEqual(cacheKey(HASH, SWIFTSHADER), cacheKey('b'.repeat(64), SWIFTSHADER));
  assert.notEqual(cacheKey(HASH, SWIFTSHADER), cacheKey(HASH, nvidia));
});

test('adapter strings cannot forge another key (separators are escaped)', () => {
  const a = { vendor: 'x/y', architecture: '', device: '', description: '' };
  const b = { vendor: 'x', architecture: 'y', device: '', description: '' };
  assert.notEqual(cacheKey(HASH, a), cacheKey(HASH, b));
});

test('a fresh entry for this bundle gives back its winners', () => {
  const entry = makeEntry(HASH, SWIFTSHADER, WINNERS, { source: 'tuned' });
  assert.deepEqual(validWinners(entry, [fixture()], HASH, LIMITS), WINNERS);
});

test('corrupt or stale entries are ignored', () => {
  const m = fixture();
  const good = makeEntry(HASH, SWIFTSHADER, WINNERS, {});
  for (const [why, entry] of /** @type {[string, any][]} */ ([
    ['no entry', null],
    ['not an object', 'garbage'],
    ['another schema version', { ...good, version: ENTRY_VERSION + 1 }],
    ['another bundle', { ...good, bundle: 'b'.repeat(64) }],
    ['no winners', { ...good, winners: null }],
    ['winners of version 1 (one table, not one per shape class)', { ...good, winners: WINNERS[0] }],
    ['a table too many', { ...good, winners: [...WINNERS, ...WINNERS] }],
    ['a kernel without a winner', { ...good, winners: [{ k00_gather: 'wg64' }] }],
    ['a winner that is not a variant', { ...good, winners: [{ ...WINNERS[0], k01_matmul: 'BM999' }] }],
    ['a winner that is not a string', { ...good, winners: [{ ...WINNERS[0], k01_matmul: 1 }] }],
  ])) {
    assert.equal(validWinners(entry, [m], HASH, LIMITS), null, why);
  }
});

test('a winner that does not fit this device makes the entry stale', () => {
  const small = { ...LIMITS, maxComputeInvocationsPerWorkgroup: 256 };
  const entry = makeEntry(HASH, SWIFTSHADER, WINNERS, {});
  assert.equal(validWinners(entry, [fixture()], HASH, small), null);
});

test('without IndexedDB the cache reads nothing and reports why it could not write', async () => {
  assert.equal(await readEntry('k'), null);
  assert.match(/** @type {string} */ (await writeEntry('k', makeEntry(HASH, SWIFTSHADER, WINNERS, {}))), /IndexedDB is not available/);
});
