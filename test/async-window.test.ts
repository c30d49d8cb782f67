/**
 * `async` with overlapping commits (commits_in_flight_max > 1; CI stop 35): a lone write commits on
 * the worker's thread with its meta page left to a later flush; the groups after it commit on
 * lmdb-js's write thread, whose own fdatasync carries that meta page to the disk. The worker did
 * not count that flush, so each of those groups held the commit window until the flush timer: once
 * the window was full nothing more was taken up, and writes waited up to flush_interval_ms.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';

// Far above any flush this machine takes: a wait for the timer is unmistakable.
const FLUSH_INTERVAL_MS = 20_000;
const servers = new Map<number, TestServer>();
const IN_FLIGHT = [2, 4] as const;

before(async () => {
  for (const n of IN_FLIGHT) {
    servers.set(n, await startServerInProcess({ configToml: `[storage]\ndurability = "async"\nworkers = 1\nflush_interval_ms = ${FLUSH_INTERVAL_MS}\ncommits_in_flight_max = ${n}\n[tenants]\nshard_count = 1\n` }));
  }
});
after(async () => {
  for (const server of servers.values()) {
    await server.stop();
    removeDir(server.dataDir);
  }
});

for (const inFlight of IN_FLIGHT) test(`async window - a lone write then bursts never wait for the flush timer (commits_in_flight_max ${inFlight})`, { timeout: 120_000 }, async () => {
  const server = servers.get(inFlight) as TestServer;
  for (let round = 0; round < 4; round++) {
    const started = Date.now();
    // Alone: committed on the worker's thread, its meta page not flushed yet.
    const lone = await server.request('POST', `/v1/aggregates/lone/l-${round}`, { event_type: 'made', payload: {} });
    assert.equal(lone.status, 201);
    // Concurrent: groups of several requests, committed on lmdb-js's write thread, more of them than the window.
    const burst = await Promise.all(
      Array.from({ length: 64 }, (_, k) => server.request('POST', `/v1/aggregates/acct/a${k}/events`, { event_type: 'posted', payload: { round } })),
    );
    const took = Date.now() - started;
    for (const res of burst) assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.ok(took < FLUSH_INTERVAL_MS / 4, `round ${round}: the lone write and 64 beside it took ${took} ms (flush_interval_ms ${FLUSH_INTERVAL_MS})`);
  }
  for (let k = 0; k < 64; k++) {
    const head = await server.request('GET', `/v1/aggregates/acct/a${k}`);
    assert.equal(head.body.version, 4);
  }
});
