/**
 * The dispatcher's memory stays bounded (`[plugins] jobs_in_memory_max`): a plugin that is down
 * or slow keeps the jobs beyond the window in the queue on disk, and they come back oldest first,
 * a lane at a time, without breaking version order per aggregate, without losing or duplicating
 * a job, across a restart, and with blocked (dead-headed) aggregates not starving the others.
 * Real server, real HTTP receiver, the window read from /metrics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, spawnServer, startServerInProcess, stopSpawned, tempDataDir, type SpawnedServer, type TestServer } from './helpers/server.js';
import { until } from './helpers/deadline.js';
import { receiver, type Received } from './helpers/receiver.js';

const WINDOW = 20;
const config = (onDead: 'block' | 'skip', attempts = 255) =>
  `plugin_max_attempts = ${attempts}\n[plugins]\non_dead = "${onDead}"\njobs_in_memory_max = ${WINDOW}\nretry_base_ms = 5\nretry_max_ms = 20\npoll_ms = 5\nin_flight_max = 4\n`;

async function held(server: TestServer): Promise<number> {
  const text = (await server.request('GET', '/metrics')).body as string;
  const m = /eventdbx_plugin_jobs_in_memory\{plugin="web"\} (\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

async function counts(server: TestServer): Promise<{ pending: number; processing: number; done: number; dead: number; total: number }> {
  const body = (await server.request('GET', '/v1/queue')).body;
  const c = body.plugins[0];
  return { pending: c.pending, processing: c.processing, done: c.done, dead: c.dead, total: body.jobs_total };
}

/** Appends `perAggregate` events to each of `aggregates`, interleaved, 8 at a time; answers the event ids. */
async function appendAll(server: TestServer, aggregates: string[], perAggregate: number): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 1; n <= perAggregate; n++) {
    const answers = await Promise.all(aggregates.map((id) => server.request('POST', `/v1/aggregates/order/${id}/events`, { event_type: 'touched', payload: { n } })));
    for (const a of answers) {
      assert.equal(a.status, 201, JSON.stringify(a.body));
      ids.push(a.body.metadata.event_id);
    }
  }
  return ids;
}

/** Whether every aggregate in `expected` has its versions 1..n delivered (redeliveries ignored). */
function deliveredThrough(got: Received[], expected: Map<string, number>): boolean {
  const next = new Map<string, number>();
  for (const r of got) if (r.version === (next.get(r.aggregate_id) ?? 0) + 1) next.set(r.aggregate_id, r.version);
  return [...expected].every(([id, n]) => (next.get(id) ?? 0) >= n);
}

/** Each aggregate's first successful deliveries, in arrival order, are 1..n with none skipped. */
function assertVersionOrder(got: Received[], expected: Map<string, number>, atLeast = false): void {
  const next = new Map<string, number>();
  for (const r of got) {
    const want = (next.get(r.aggregate_id) ?? 0) + 1;
    if (r.version < want) continue; // a redelivery (at least once)
    assert.equal(r.version, want, `${r.aggregate_id}: v${r.version} arrived before v${want}`);
    next.set(r.aggregate_id, want);
  }
  for (const [id, n] of expected) {
    // After a kill, an event committed but not yet acknowledged may be delivered too.
    if (atLeast) assert.ok((next.get(id) ?? 0) >= n, `${id}: delivered through v${next.get(id) ?? 0} of ${n} acknowledged`);
    else assert.equal(next.get(id), n, `${id}: delivered through v${next.get(id) ?? 0} of ${n}`);
  }
}

test('memory window - a plugin that is down keeps at most jobs_in_memory_max jobs in memory; once up, every job arrives, in order per aggregate', { timeout: 120_000 }, async () => {
  let up = false;
  const recv = await receiver(() => (up ? 200 : 503));
  const server = await startServerInProcess({ configToml: config('block') });
  try {
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } })).status, 200);
    const aggregates = Array.from({ length: 10 }, (_, i) => `w-${i}`);
    const ids = await appendAll(server, aggregates, 12);
    await until(10_000, async () => (await counts(server)).total === 120, 'all 120 jobs queued');
    await until(5000, () => recv.calls() > 10, 'deliveries attempted while the plugin is down');
    const c = await counts(server);
    assert.equal(c.pending + c.processing, 120, 'every job is counted, held or not');
    assert.equal(c.done, 0);
    const inMemory = await held(server);
    assert.ok(inMemory > 0 && inMemory <= WINDOW, `held ${inMemory} jobs, window ${WINDOW}`);
    up = true;
    await until(30_000, async () => (await counts(server)).done === 120, 'all 120 jobs done');
    assertVersionOrder(recv.got, new Map(aggregates.map((a) => [a, 12])));
    assert.deepEqual(new Set(recv.got.map((r) => r.event_id)), new Set(ids));
    const after = await counts(server);
    assert.deepEqual([after.pending, after.processing, after.dead, after.total], [0, 0, 0, 0]);
    assert.equal(await held(server), 0);
  } finally {
    await server.stop();
    await recv.close();
    removeDir(server.dataDir);
  }
});

test('memory window - a backlog larger than the window survives a restart: loaded back a window at a time, delivered in order', { timeout: 120_000 }, async () => {
  let up = false;
  const recv = await receiver(() => (up ? 200 : 503));
  const dataDir = tempDataDir();
  let server = await startServerInProcess({ dataDir, configToml: config('block') });
  try {
    await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } });
    const aggregates = Array.from({ length: 6 }, (_, i) => `r-${i}`);
    const ids = await appendAll(server, aggregates, 15);
    await until(10_000, async () => (await counts(server)).total === 90, 'all 90 jobs queued');
    await server.stop();
    server = await startServerInProcess({ dataDir });
    const c = await counts(server);
    assert.equal(c.pending + c.processing, 90, 'the backlog is whole after the restart');
    // A lane is loaded whole: at most the window plus one aggregate's jobs.
    const inMemory = await held(server);
    assert.ok(inMemory <= WINDOW + 15, `held ${inMemory} jobs after the restart`);
    up = true;
    await until(30_000, async () => (await counts(server)).done === 90, 'all 90 jobs done');
    assertVersionOrder(recv.got, new Map(aggregates.map((a) => [a, 15])));
    assert.deepEqual(new Set(recv.got.map((r) => r.event_id)), new Set(ids));
  } finally {
    await server.stop();
    await recv.close();
    removeDir(dataDir);
  }
});

test('memory window - block: a dead head holds its aggregate on disk and does not starve the others; a retry delivers it and its tail in order', { timeout: 120_000 }, async () => {
  let healed = false;
  const recv = await receiver((body) => (body.aggregate_id.startsWith('poison') && !healed ? 500 : 200));
  const server = await startServerInProcess({ configToml: config('block', 2) });
  try {
    await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } });
    // More poisoned aggregates than fit the window once their tails count, then healthy ones.
    const poison = Array.from({ length: 8 }, (_, i) => `poison-${i}`);
    await appendAll(server, poison, 5);
    await until(10_000, async () => (await counts(server)).dead === 8, 'every poisoned head dead');
    const healthy = Array.from({ length: 10 }, (_, i) => `ok-${i}`);
    await appendAll(server, healthy, 4);
    await until(30_000, () => recv.got.length >= 40, 'every healthy event delivered');
    assertVersionOrder(recv.got, new Map(healthy.map((a) => [a, 4])));
    // The receiver records a delivery a moment before the dispatcher counts its answer.
    let c = await counts(server);
    await until(5000, async () => (c = await counts(server)).done === 40, 'the 40 deliveries counted done');
    assert.deepEqual([c.dead, c.pending + c.processing, c.done], [8, 32, 40]);
    assert.ok((await held(server)) <= 8, 'a blocked aggregate holds only its dead head');
    assert.equal(recv.got.filter((r) => r.aggregate_id.startsWith('poison')).length, 0, 'nothing passes a dead head');
    healed = true;
    const retried = await server.request('POST', '/v1/queue/retry', {});
    assert.deepEqual(retried.body, { retried: 8, still_dead: 0 });
    await until(30_000, async () => (await counts(server)).done === 80, 'every job done after the retry');
    assertVersionOrder(recv.got, new Map([...healthy.map((a): [string, number] => [a, 4]), ...poison.map((a): [string, number] => [a, 5])]));
  } finally {
    await server.stop();
    await recv.close();
    removeDir(server.dataDir);
  }
});

test('memory window - skip: dead jobs leave memory but stay counted, listed and clearable; later jobs pass them', { timeout: 120_000 }, async () => {
  const recv = await receiver((body) => (body.version === 1 ? 500 : 200));
  const server = await startServerInProcess({ configToml: config('skip', 2) });
  try {
    await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } });
    const aggregates = Array.from({ length: 30 }, (_, i) => `s-${i}`);
    await appendAll(server, aggregates, 2);
    await until(30_000, async () => {
      const c = await counts(server);
      return c.dead === 30 && c.done === 30;
    }, 'v1 of each aggregate dead, v2 delivered');
    assert.equal(await held(server), 0, 'no dead job is held in memory');
    const queue = (await server.request('GET', '/v1/queue')).body;
    assert.equal(queue.jobs_total, 30);
    assert.ok(queue.jobs.every((j: any) => j.status === 'dead' && j.version === 1));
    const cleared = await server.request('POST', '/v1/queue/clear', {});
    assert.deepEqual(cleared.body, { cleared: 30 });
    const after = await counts(server);
    assert.deepEqual([after.dead, after.pending, after.total], [0, 0, 0]);
  } finally {
    await server.stop();
    await recv.close();
    removeDir(server.dataDir);
  }
});

test('memory window - SIGKILL while the plugin is spilled (slow, failing half its deliveries) loses no job: after the restart every acknowledged event arrives, in order', { timeout: 180_000 }, async () => {
  let flaky = true;
  let n = 0;
  const recv = await receiver(() => (flaky && n++ % 2 === 0 ? 503 : 200));
  const dataDir = tempDataDir();
  const acked = new Map<string, number>();
  let server: SpawnedServer | undefined;
  try {
    server = await spawnServer({ dataDir, configToml: config('block') });
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } })).status, 200);
    const current = server;
    let stop = false;
    const load = Array.from({ length: 6 }, async (_, w) => {
      for (let v = 1; !stop; v++) {
        const res = await current.request('POST', `/v1/aggregates/order/k-${w}/events`, { event_type: 'x', payload: { v } }).catch(() => undefined);
        if (!res) break;
        if (res.status === 201) acked.set(`k-${w}`, res.body.version);
      }
    });
    // Past the window, then killed mid-load.
    await until(20_000, () => [...acked.values()].reduce((a, b) => a + b, 0) > WINDOW * 4, 'a backlog beyond the window');
    server.kill('SIGKILL');
    stop = true;
    await server.exited;
    await Promise.all(load);
    flaky = false;
    server = await spawnServer({ dataDir });
    const total = [...acked.values()].reduce((a, b) => a + b, 0);
    const restarted = server;
    // Wait on what arrived, not on the done count: events committed but unacknowledged at the kill
    // are delivered too, so `done` can pass the acknowledged total while one aggregate's tail waits.
    await until(60_000, () => deliveredThrough(recv.got, acked), `${total} acknowledged events delivered`);
    assertVersionOrder(recv.got, acked, true);
    await until(10_000, async () => {
      const c = await counts(restarted as unknown as TestServer);
      return c.pending + c.processing === 0;
    }, 'nothing left pending after the deliveries');
    const c = await counts(server as unknown as TestServer);
    assert.equal(c.dead, 0);
    assert.ok(c.done >= total, `done ${c.done} of at least ${total}`);
  } finally {
    if (server) await stopSpawned(server).catch(() => undefined);
    await recv.close();
    removeDir(dataDir);
  }
});

test('memory window - a replay of a whole type keeps at most the window (plus the lanes loaded whole) in memory; every replayed job arrives, in order per aggregate', { timeout: 120_000 }, async () => {
  let up = true;
  const recv = await receiver(() => (up ? 200 : 503));
  const server = await startServerInProcess({ configToml: config('block') });
  try {
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } })).status, 200);
    const aggregates = Array.from({ length: 40 }, (_, i) => `p-${i}`);
    const ids = await appendAll(server, aggregates, 3);
    await until(30_000, async () => (await counts(server)).done === 120, 'the first 120 deliveries done');
    up = false;
    const before = recv.got.length;
    const replay = await server.request('POST', '/v1/plugins/web/replay', { aggregate_type: 'order' });
    assert.equal(replay.status, 200, JSON.stringify(replay.body));
    assert.equal(replay.body.queued, 120);
    const c = await counts(server);
    assert.equal(c.pending + c.processing, 120, 'every replayed job is counted, held or not');
    assert.equal(c.done, 0, 'the replayed jobs replaced the done ones');
    const calls = recv.calls();
    await until(5000, () => recv.calls() > calls + 5, 'replayed deliveries attempted while the plugin is down');
    // A lane is loaded whole: at most the window plus one aggregate's jobs.
    const inMemory = await held(server);
    assert.ok(inMemory > 0 && inMemory <= WINDOW + 3, `held ${inMemory} jobs after a replay of 120, window ${WINDOW}`);
    up = true;
    await until(30_000, async () => (await counts(server)).done === 120, 'all 120 replayed jobs done');
    const replayed = recv.got.slice(before);
    assertVersionOrder(replayed, new Map(aggregates.map((a) => [a, 3])));
    assert.deepEqual(new Set(replayed.map((r) => r.event_id)), new Set(ids));
    assert.equal(await held(server), 0);
  } finally {
    await server.stop();
    await recv.close();
    removeDir(server.dataDir);
  }
});
