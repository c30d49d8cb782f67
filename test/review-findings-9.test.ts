/**
 * Review findings of 2026-12-06 (plugins and tenants): each test fails on the code before its fix.
 * 1. A live tenant move keeps one aggregate's deliveries in version order across the flip.
 * 2. Retrying a blocked dead head changes the held job only once the queue has the change: a write
 *    arriving meanwhile cannot overtake the jobs waiting on disk behind it.
 * 3. A replay leaves no phantom pending/dead/done counts.
 * 4. Lag counts jobs waiting on disk behind a dead head.
 * 5. Queue and tenant listings read only what they answer, not the whole backlog.
 * 6. A forced tenant removal drops the job in flight too: it is not retried afterwards.
 * Real servers, real HTTP receivers; the only instrumentation is a delay put in front of one queue
 * commit (a slow disk) and a count of the jobs the listings decode.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PluginQueue } from '../src/plugins/queue.js';
import { removeDir, startServerInProcess, tempDataDir, type TestServer } from './helpers/server.js';
import { until } from './helpers/deadline.js';
import { receiver, type Received } from './helpers/receiver.js';
import { MULTI_TENANT_TOML, tenantHeaders } from './helpers/tenants.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function queueState(server: TestServer, headers?: Record<string, string>) {
  const body = (await server.request('GET', '/v1/queue', undefined, headers)).body;
  return { ...body.plugins[0], total: body.jobs_total, listed: body.jobs.length } as { pending: number; processing: number; done: number; dead: number; lag_ms: number; total: number; listed: number };
}

/** Arrival order per aggregate: each version's first delivery comes after every lower version's. */
function assertInOrder(got: Received[], aggregate: string, through: number): void {
  let next = 1;
  for (const r of got) {
    if (r.aggregate_id !== aggregate || r.version < next) continue;
    assert.equal(r.version, next, `${aggregate}: v${r.version} was delivered before v${next} (${got.filter((g) => g.aggregate_id === aggregate).map((g) => g.version).join(',')})`);
    next++;
  }
  assert.equal(next - 1, through, `${aggregate}: delivered through v${next - 1} of ${through}`);
}

async function append(server: TestServer, id: string, n: number, headers?: Record<string, string>): Promise<void> {
  const res = await server.request('POST', `/v1/aggregates/order/${id}/events`, { event_type: 'touched', payload: { n } }, headers);
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

/**
 * A real HTTP endpoint whose every delivery is answered by `answer` (which may keep `res` to answer
 * later); the plugin's empty connectivity check is answered at once and not counted.
 */
async function hookServer(answer: (res: http.ServerResponse, call: number) => void): Promise<{ url: string; close(): Promise<void> }> {
  let calls = 0;
  const hook = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      if (text.length === 0) return void res.end();
      answer(res, ++calls);
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`,
    close: () => new Promise((r) => { hook.closeAllConnections(); hook.close(() => r()); }),
  };
}

/** Starts a server; the hook is closed if it cannot start. */
async function serverWithHook(hook: { close(): Promise<void> }, configToml: string): Promise<TestServer> {
  return startServerInProcess({ configToml }).catch(async (err: unknown) => {
    await hook.close();
    throw err;
  });
}

test('finding 1 - a live tenant move keeps one aggregate delivered in version order across the flip', { timeout: 120_000 }, async () => {
  const tenant = 'mover';
  const h = tenantHeaders(tenant);
  const recv = await receiver();
  // A slow poll leaves many entries in the source outbox at the flip; the target (shard 0) is read first in a pass.
  const server = await startServerInProcess({ configToml: `${MULTI_TENANT_TOML(4, 2)}\n[plugins]\npoll_ms = 250\n` });
  try {
    assert.equal((await server.request('PUT', `/v1/tenants/${tenant}/shard`, { shard: 'shard-0003' }, h)).status, 200);
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } }, h)).status, 200);
    for (let n = 1; n <= 20; n++) await append(server, 'a-1', n, h);
    let version = 20;
    const stop = { now: false };
    const writing = (async () => {
      while (!stop.now) {
        const res = await server.request('POST', '/v1/aggregates/order/a-1/events', { event_type: 'touched', payload: { n: version + 1 } }, h);
        if (res.status === 201) version++;
        else assert.equal(res.status, 503, JSON.stringify(res.body));
      }
    })();
    await sleep(100);
    const moved = await server.request('PUT', `/v1/tenants/${tenant}/shard`, { shard: 'shard-0000' }, h);
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    await sleep(600);
    stop.now = true;
    await writing;
    await until(30_000, () => new Set(recv.got.filter((r) => r.aggregate_id === 'a-1').map((r) => r.version)).size === version, `all ${version} events delivered`);
    assertInOrder(recv.got, 'a-1', version);
  } finally {
    await server.stop();
    await recv.close();
    removeDir(server.dataDir);
  }
});

test('finding 1 (review 9) - two tenants swapped between two shards at once: both moves finish, and each aggregate keeps version order', { timeout: 120_000 }, async () => {
  const recv = await receiver();
  // A slow poll leaves entries untaken in both source outboxes when the two flips come.
  const server = await startServerInProcess({ configToml: `${MULTI_TENANT_TOML(4, 2)}\n[plugins]\npoll_ms = 250\n` });
  const sides = [
    { tenant: 'left', id: 'l-1', from: 'shard-0003', to: 'shard-0000', version: 0 },
    { tenant: 'right', id: 'r-1', from: 'shard-0000', to: 'shard-0003', version: 0 },
  ];
  try {
    for (const side of sides) {
      const h = tenantHeaders(side.tenant);
      assert.equal((await server.request('PUT', `/v1/tenants/${side.tenant}/shard`, { shard: side.from }, h)).status, 200);
      assert.equal((await server.request('PUT', `/v1/plugins/web-${side.tenant}`, { options: { kind: 'http', endpoint: recv.url } }, h)).status, 200);
      for (let n = 1; n <= 10; n++) await append(server, side.id, n, h);
      side.version = 10;
    }
    const stop = { now: false };
    const writing = sides.map(async (side) => {
      while (!stop.now) {
        const res = await server.request('POST', `/v1/aggregates/order/${side.id}/events`, { event_type: 'touched', payload: { n: side.version + 1 } }, tenantHeaders(side.tenant));
        if (res.status === 201) side.version++;
        else assert.equal(res.status, 503, JSON.stringify(res.body));
      }
    });
    await sleep(100);
    // A move answers once its source range is deleted, which waits for the plugin queue to take the
    // source outbox: two barriers waiting on each other would leave both answers pending for good.
    const moves = Promise.all(sides.map((side) => server.request('PUT', `/v1/tenants/${side.tenant}/shard`, { shard: side.to }, tenantHeaders(side.tenant))));
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([moves, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 25_000)))]);
    clearTimeout(timer);
    stop.now = true;
    await Promise.all(writing);
    assert.ok(answered, 'both moves finished within 25 s (a request gives up at 30 s)');
    for (const a of answered) assert.equal(a.status, 200, JSON.stringify(a.body));
    for (const side of sides) {
      await until(30_000, () => new Set(recv.got.filter((r) => r.aggregate_id === side.id).map((r) => r.version)).size === side.version, `all ${side.version} events of ${side.id} delivered`);
      assertInOrder(recv.got, side.id, side.version);
    }
  } finally {
    await server.stop();
    await recv.close();
    removeDir(server.dataDir);
  }
});

test('finding 2 - retrying a blocked dead head while its commit is slow: a new write does not overtake the jobs behind it', { timeout: 60_000 }, async () => {
  let failV1 = true;
  const recv = await receiver((body) => (failV1 && body.version === 1 ? 500 : 200));
  const server = await startServerInProcess({ configToml: `plugin_max_attempts = 1\n[plugins]\non_dead = "block"\npoll_ms = 5\nretry_base_ms = 5\n` });
  const update = PluginQueue.prototype.update;
  let slow = false;
  try {
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } })).status, 200);
    await append(server, 'b-1', 1);
    await until(10_000, async () => (await queueState(server)).dead === 1, 'v1 dead');
    for (let n = 2; n <= 5; n++) await append(server, 'b-1', n);
    await until(10_000, async () => (await queueState(server)).total === 5, 'v2..v5 queued behind the dead head');
    failV1 = false;
    // The retry's commit (jobs made pending with no attempt) takes 400 ms, a slow disk; a write
    // lands while it is on its way (once v1 went out, where it is sent too early).
    PluginQueue.prototype.update = async function (this: PluginQueue, jobs) {
      if (slow && jobs.some((j) => j.status === 'pending' && j.attempts === 0)) await sleep(400);
      return update.call(this, jobs);
    };
    slow = true;
    const retrying = server.request('POST', '/v1/queue/retry', {});
    for (let waited = 0; waited < 250 && !recv.got.some((r) => r.version === 1); waited += 5) await sleep(5);
    await append(server, 'b-1', 6);
    const retried = await retrying;
    slow = false;
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    assert.equal(retried.body.retried, 1);
    await until(20_000, async () => (await queueState(server)).done === 6, 'all six delivered');
    assertInOrder(recv.got, 'b-1', 6);
  } finally {
    PluginQueue.prototype.update = update;
    await server.stop();
    await recv.close();
    removeDir(server.dataDir);
  }
});

test('finding 3 - a replay over done and dead jobs leaves no phantom counts (and they hold across a restart)', { timeout: 60_000 }, async () => {
  let up = true;
  const recv = await receiver(() => (up ? 200 : 500));
  const dataDir = tempDataDir();
  const toml = `plugin_max_attempts = 1\n[plugins]\non_dead = "skip"\npoll_ms = 5\n`;
  let server = await startServerInProcess({ dataDir, configToml: toml });
  try {
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } })).status, 200);
    for (let n = 1; n <= 3; n++) await append(server, 'done-1', n);
    await until(10_000, async () => (await queueState(server)).done === 3, 'three done');
    up = false;
    for (let n = 1; n <= 2; n++) await append(server, 'dead-1', n);
    await until(10_000, async () => (await queueState(server)).dead === 2, 'two dead');
    up = true;
    for (const id of ['done-1', 'dead-1']) {
      const res = await server.request('POST', '/v1/plugins/web/replay', { aggregate_type: 'order', aggregate_id: id });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    await until(10_000, async () => (await queueState(server)).done >= 5, 'replayed jobs done');
    await sleep(200);
    const live = await queueState(server);
    assert.deepEqual([live.pending, live.processing, live.done, live.dead, live.total], [0, 0, 5, 0, 0], JSON.stringify(live));
    await server.stop();
    server = await startServerInProcess({ dataDir });
    const restarted = await queueState(server);
    assert.deepEqual([restarted.pending, restarted.done, restarted.dead], [0, 5, 0], 'the counts a restart reads from disk');
  } finally {
    await server.stop();
    await recv.close();
    removeDir(dataDir);
  }
});

test('finding 4 - lag counts the jobs waiting on disk behind a dead head', { timeout: 60_000 }, async () => {
  const recv = await receiver((body) => (body.version === 1 ? 500 : 200));
  const server = await startServerInProcess({ configToml: `plugin_max_attempts = 1\n[plugins]\non_dead = "block"\npoll_ms = 5\n` });
  try {
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } })).status, 200);
    await append(server, 'l-1', 1);
    await until(10_000, async () => (await queueState(server)).dead === 1, 'v1 dead');
    const writtenAt = Date.now();
    for (let n = 2; n <= 4; n++) await append(server, 'l-1', n);
    await until(10_000, async () => (await queueState(server)).pending === 3, 'three waiting behind the dead head');
    await sleep(500);
    const state = await queueState(server);
    assert.ok(state.lag_ms >= 400 && state.lag_ms <= Date.now() - writtenAt + 1000, `lag ${state.lag_ms} ms while three jobs wait`);
    const metrics = (await server.request('GET', '/metrics')).body as string;
    const gauge = /eventdbx_plugin_lag_seconds\{plugin="web"\} ([\d.e+-]+)/.exec(metrics);
    assert.ok(gauge && Number(gauge[1]) >= 0.4, `lag gauge ${gauge?.[1]}`);
  } finally {
    await server.stop();
    await recv.close();
    removeDir(server.dataDir);
  }
});

test('finding 5 - GET /v1/queue and a tenant view decode only what they answer, not the backlog on disk', { timeout: 120_000 }, async () => {
  const recv = await receiver(() => 503);
  const server = await startServerInProcess({ configToml: `${MULTI_TENANT_TOML(4, 2)}\n[plugins]\npoll_ms = 5\njobs_in_memory_max = 20\nretry_base_ms = 5000\nretry_max_ms = 5000\n` });
  const { jobsWithStatus, tenantJobs } = PluginQueue.prototype;
  let decoded = 0;
  try {
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } }, tenantHeaders('big'))).status, 200);
    const ids = Array.from({ length: 30 }, (_, i) => `q-${i}`);
    for (let n = 1; n <= 50; n++) await Promise.all(ids.map((id) => append(server, id, n, tenantHeaders('big'))));
    await append(server, 'small-1', 1, tenantHeaders('small'));
    await until(20_000, async () => (await queueState(server, tenantHeaders('big'))).total === 1501, 'the backlog queued');
    PluginQueue.prototype.jobsWithStatus = function* (this: PluginQueue, status, plugin) {
      for (const job of jobsWithStatus.call(this, status, plugin)) {
        decoded++;
        yield job;
      }
    };
    PluginQueue.prototype.tenantJobs = function* (this: PluginQueue, plugin, tenant) {
      for (const job of tenantJobs.call(this, plugin, tenant)) {
        decoded++;
        yield job;
      }
    };
    const listing = await queueState(server, tenantHeaders('big'));
    assert.equal(listing.listed, 1000);
    assert.equal(listing.total, 1501);
    assert.ok(decoded <= 1000, `GET /v1/queue decoded ${decoded} jobs for a listing of 1000`);
    decoded = 0;
    const view = await server.request('GET', '/v1/tenants/small', undefined, tenantHeaders('small'));
    assert.equal(view.status, 200, JSON.stringify(view.body));
    assert.equal(view.body.plugins.pending, 1);
    assert.ok(decoded <= 1, `a tenant view decoded ${decoded} jobs for a tenant with one`);
  } finally {
    PluginQueue.prototype.jobsWithStatus = jobsWithStatus;
    PluginQueue.prototype.tenantJobs = tenantJobs;
    await server.stop();
    await recv.close();
    removeDir(server.dataDir);
  }
});

test('finding 6 - a forced tenant removal drops the job being delivered: it is not retried afterwards', { timeout: 60_000 }, async () => {
  let calls = 0;
  let release: (() => void) | undefined;
  // The first delivery hangs until the removal is done, then fails; any later one fails at once.
  const hook = await hookServer((res, call) => {
    calls = call;
    if (call === 1) release = () => ((res.statusCode = 500), res.end());
    else ((res.statusCode = 500), res.end());
  });
  const { url } = hook;
  const tenant = 'gone';
  const server = await serverWithHook(hook, `plugin_max_attempts = 50\n${MULTI_TENANT_TOML(4, 2)}\n[plugins]\npoll_ms = 5\nretry_base_ms = 5\nretry_max_ms = 10\n`);
  try {
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: url } }, tenantHeaders(tenant))).status, 200);
    await append(server, 'r-1', 1, tenantHeaders(tenant));
    await until(10_000, () => release !== undefined, 'the delivery is in flight');
    const removed = await server.request('DELETE', `/v1/tenants/${tenant}?force=true`, undefined, tenantHeaders(tenant));
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    assert.equal(removed.body.jobs_dropped, 1, 'the job in flight is dropped');
    release?.();
    await sleep(500);
    assert.equal(calls, 1, 'the dropped job was not retried');
    const state = await queueState(server, tenantHeaders(tenant));
    assert.deepEqual([state.pending, state.processing, state.dead, state.total], [0, 0, 0, 0], JSON.stringify(state));
  } finally {
    await server.stop();
    await hook.close();
    removeDir(server.dataDir);
  }
});

test('finding 3 (review 9) - a forced removal whose in-flight delivery succeeds while the jobs are removed leaves no done or pending count behind', { timeout: 60_000 }, async () => {
  let release: (() => void) | undefined;
  const hook = await hookServer((res) => (release = () => res.end('ok'))); // answered 200 once the removal is committing
  const { url } = hook;
  const tenant = 'gone';
  const removeJobs = PluginQueue.prototype.removeJobs;
  const server = await serverWithHook(hook, `${MULTI_TENANT_TOML(4, 2)}\n[plugins]\npoll_ms = 5\n`);
  try {
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: url } }, tenantHeaders(tenant))).status, 200);
    await append(server, 'r-1', 1, tenantHeaders(tenant));
    await until(10_000, () => release !== undefined, 'the delivery is in flight');
    // The delivery's success arrives while the removal's queue commit is on its way (a slow disk).
    PluginQueue.prototype.removeJobs = async function (this: PluginQueue, keys) {
      release?.();
      await sleep(300);
      return removeJobs.call(this, keys);
    };
    const removed = await server.request('DELETE', `/v1/tenants/${tenant}?force=true`, undefined, tenantHeaders(tenant));
    PluginQueue.prototype.removeJobs = removeJobs;
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    assert.equal(removed.body.jobs_dropped, 1);
    await sleep(200);
    const state = await queueState(server);
    assert.deepEqual([state.pending, state.processing, state.done, state.dead, state.total], [0, 0, 0, 0, 0], JSON.stringify(state));
  } finally {
    PluginQueue.prototype.removeJobs = removeJobs;
    await server.stop();
    await hook.close();
    removeDir(server.dataDir);
  }
});

test('finding 4 (review 9) - a retry whose commit lands after a replay of the same job leaves the replayed delivery as it is (processing, not made pending)', { timeout: 60_000 }, async () => {
  let failing = true;
  let release: (() => void) | undefined;
  const hook = await hookServer((res) => {
    if (failing) return void ((res.statusCode = 500), res.end());
    release = () => res.end('ok'); // the replayed delivery hangs until the test lets it go
  });
  const { url } = hook;
  const update = PluginQueue.prototype.update;
  let slowRetry = false;
  let retryCommitting = false;
  const server = await serverWithHook(hook, `plugin_max_attempts = 1\n[plugins]\non_dead = "block"\npoll_ms = 5\n`);
  try {
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: url } })).status, 200);
    await append(server, 'x-1', 1);
    await until(10_000, async () => (await queueState(server)).dead === 1, 'v1 dead');
    failing = false;
    PluginQueue.prototype.update = async function (this: PluginQueue, jobs) {
      if (slowRetry && jobs.some((j) => j.status === 'pending' && j.attempts === 0)) {
        retryCommitting = true;
        await sleep(500);
      }
      return update.call(this, jobs);
    };
    slowRetry = true;
    const retrying = server.request('POST', '/v1/queue/retry', {});
    await until(5000, () => retryCommitting, "the retry's commit is on its way");
    slowRetry = false;
    const replayed = await server.request('POST', '/v1/plugins/web/replay', { aggregate_type: 'order', aggregate_id: 'x-1' });
    assert.equal(replayed.status, 200, JSON.stringify(replayed.body));
    await until(5000, () => release !== undefined, 'the replayed job is being delivered');
    assert.equal((await retrying).status, 200);
    const during = await queueState(server);
    assert.deepEqual([during.processing, during.pending], [1, 0], `the job in flight is processing: ${JSON.stringify(during)}`);
    release?.();
    await until(10_000, async () => (await queueState(server)).done === 1, 'the replayed job done');
    const after = await queueState(server);
    assert.deepEqual([after.pending, after.processing, after.dead, after.total], [0, 0, 0, 0], JSON.stringify(after));
  } finally {
    PluginQueue.prototype.update = update;
    release?.();
    await server.stop();
    await hook.close();
    removeDir(server.dataDir);
  }
});
