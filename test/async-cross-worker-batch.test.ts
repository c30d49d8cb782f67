/**
 * `async` durability with two workers (a kill -9 fuzz finding): a batch spanning both workers was
 * answered only at the next meta-page flush, up to flush_interval_ms, and every write of that
 * worker queued behind its prepare. Now the prepare answers at once, and the home part (with the
 * batch intent) is flushed at once: it is answered after one fdatasync, durable, so a power cut
 * can never keep another part without the intent recovery finishes the batch from.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';

// Far above any flush this machine takes: an answer that waited for the timer is unmistakable.
const FLUSH_INTERVAL_MS = 20_000;
// 1: every group commits on the worker's thread; 4: overlapping groups commit on lmdb-js's write thread.
const IN_FLIGHT = [1, 4] as const;
const servers = new Map<number, TestServer>();

before(async () => {
  for (const n of IN_FLIGHT) {
    servers.set(n, await startServerInProcess({ configToml: `[storage]\ndurability = "async"\nworkers = 2\nflush_interval_ms = ${FLUSH_INTERVAL_MS}\ncommits_in_flight_max = ${n}\n[tenants]\nshard_count = 4\n` }));
  }
});
after(async () => {
  for (const server of servers.values()) {
    await server.stop();
    removeDir(server.dataDir);
  }
});

for (const inFlight of IN_FLIGHT) test(`async cross-worker batch - answered without waiting for the flush timer, and writes beside it too (commits_in_flight_max ${inFlight})`, { timeout: 60_000 }, async () => {
  const server = servers.get(inFlight) as TestServer;
  const status = await server.request('GET', '/v1/status');
  assert.equal(status.body.workers, 2);
  // 16 aggregates over 4 shards on 2 workers: both workers take part (checked below by the answer's shape only).
  const batch = (i: number) => ({ events: Array.from({ length: 16 }, (_, k) => ({ aggregate_type: 'acct', aggregate_id: `a${k}`, event_type: 'posted', payload: { i } })) });
  for (let i = 0; i < 3; i++) {
    const started = Date.now();
    const [res, beside] = await Promise.all([server.request('POST', '/v1/batch', batch(i)), server.request('POST', `/v1/aggregates/other/o-${i}`, { event_type: 'made', payload: {} })]);
    const took = Date.now() - started;
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.events.length, 16);
    assert.equal(beside.status, 201);
    assert.ok(took < FLUSH_INTERVAL_MS / 2, `batch ${i} and the write beside it answered in ${took} ms (flush_interval_ms ${FLUSH_INTERVAL_MS})`);
  }
  for (let k = 0; k < 16; k++) {
    const head = await server.request('GET', `/v1/aggregates/acct/a${k}`);
    assert.equal(head.body.version, 3, `acct/a${k} holds all three batches`);
  }
});
