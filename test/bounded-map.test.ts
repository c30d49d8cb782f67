/**
 * LRU eviction shared by the heads cache, the opened-heads cache, the verified-token cache and the
 * rate limiter (core/bounded-map.ts): the oldest entries go first, in a batch, so V8's Map holes
 * are walked once per batch instead of once per insert.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evictOldest } from '../src/core/index.js';
import { HeadsCache } from '../src/shard-worker/heads-cache.js';
import { RateLimiter } from '../src/coordinator/rate-limit.js';

test('evictOldest leaves a map at or under its bound alone', () => {
  const map = new Map([['a', 1], ['b', 2]]);
  evictOldest(map, 2);
  assert.deepEqual([...map.keys()], ['a', 'b']);
});

test('evictOldest drops the oldest entries first, a batch at a time, and keeps the newest', () => {
  const max = 1000;
  const map = new Map<number, number>();
  for (let i = 0; i < 5000; i++) {
    map.set(i, i);
    evictOldest(map, max);
    assert.ok(map.size <= max, `size ${map.size} after insert ${i}`);
  }
  const keys = [...map.keys()];
  // The newest entry always survives, and what survives is a contiguous run of the newest ones.
  assert.equal(keys.at(-1), 4999);
  assert.deepEqual(keys, Array.from({ length: keys.length }, (_, i) => 5000 - keys.length + i));
  // A batch is max/64 entries: after an eviction at least max - 15 (1000 >>> 6 = 15) remain.
  assert.ok(keys.length >= max - (max >>> 6), `kept ${keys.length}`);
});

test('the heads cache keeps recently used heads and evicts the least recently used', () => {
  const cache = new HeadsCache(128);
  const head = (v: number) => ({ head: { version: v } as never, state: {} });
  for (let i = 0; i < 128; i++) cache.set(`k${i}`, head(i));
  // Touch k0: it becomes the most recent and must outlive the next eviction batch.
  assert.ok(cache.get('k0'));
  cache.set('k128', head(128));
  assert.ok(cache.size <= 128);
  assert.ok(cache.get('k0'), 'a recently read head stays');
  assert.equal(cache.get('k1'), undefined, 'the least recently used head went first');
  assert.ok(cache.get('k128'));
});

test('the rate limiter bounds its buckets without dropping the key it is charging', () => {
  const limiter = new RateLimiter({ perSec: 1, burst: 1, keysMax: 64 });
  for (let i = 0; i < 1000; i++) assert.equal(limiter.take(`t${i}`, 0).ok, true);
  // The newest key's bucket is still there, empty: a second take within the same ms is refused.
  assert.equal(limiter.take('t999', 0).ok, false);
});
