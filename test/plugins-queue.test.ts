/**
 * Issue 11 items 1–3 and 8: the durable queue, the delivery pool and the dispatcher, delivering to
 * real HTTP receivers started here: at least once with event_id, per-aggregate version order,
 * retries then dead (blocking by default, skipping with on_dead = "skip"), a hanging plugin never
 * slowing writes, SIGKILL under load losing no job, and the queue metrics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { removeDir, spawnServer, startServerInProcess, stopSpawned, tempDataDir, type SpawnedServer, type TestServer } from './helpers/server.js';
import { HEAVY, heavy } from './helpers/heavy.js';
import { until } from './helpers/deadline.js';
import { receiver, type Received } from './helpers/receiver.js';

const FAST_RETRIES = 'plugin_max_attempts = 3\n[plugins]\nretry_base_ms = 10\nretry_max_ms = 40\npoll_ms = 5\n';

const append = (server: { request: TestServer['request'] }, id: string, n: number) => server.request('POST', `/v1/aggregates/order/${id}/events`, { event_type: 'touched', payload: { n } });

function assertInOrder(got: Received[]): void {
  const seen = new Map<string, number>();
  for (const r of got) {
    const last = seen.get(r.aggregate_id) ?? 0;
    assert.ok(r.version > last || r.version === last, `${r.aggregate_id}: v${r.version} arrived after v${last}`);
    seen.set(r.aggregate_id, r.version);
  }
}

test('queue - every committed event reaches the plugin once, with event_id, in version order per aggregate', { timeout: 60_000 }, async () => {
  const recv = await receiver();
  const server = await startServerInProcess({ configToml: FAST_RETRIES });
  try {
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } })).status, 200);
    const writes: Promise<unknown>[] = [];
    for (let n = 1; n <= 10; n++) for (let a = 0; a < 8; a++) writes.push(append(server, `a-${a}`, n));
    const answers = (await Promise.all(writes)) as { status: number; body: any }[];
    assert.ok(answers.every((a) => a.status === 201));
    await until(10_000, () => recv.got.length >= 80, '80 deliveries');
    const ids = new Set(answers.map((a) => a.body.metadata.event_id as string));
    assert.deepEqual(new Set(recv.got.map((r) => r.event_id)), ids);
    assert.equal(recv.got.length, 80, 'no duplicates without failures');
    assertInOrder(recv.got);
    // The receiver has answered; the outcome reaches the dispatcher a moment later.
    await until(5000, async () => (await server.request('GET', '/v1/queue')).body.plugins[0].done === 80, 'every job done');
    const queue = await server.request('GET', '/v1/queue');
    assert.deepEqual(queue.body.plugins.map((p: any) => [p.plugin, p.done, p.pending, p.processing, p.dead]), [['web', 80, 0, 0, 0]]);
    const metrics = await server.request('GET', '/metrics');
    assert.match(metrics.body, /eventdbx_plugin_queue_jobs\{plugin="web",state="done"\} 80/);
    assert.match(metrics.body, /eventdbx_plugin_lag_seconds\{plugin="web"\} 0/);
    assert.match(metrics.body, /eventdbx_plugin_delivery_seconds_count\{plugin="web"\} 80/);
    assert.match(metrics.body, /eventdbx_plugin_attempts_total\{plugin="web"\} 80/);
  } finally {
    await server.stop();
    await recv.close();
    removeDir(server.dataDir);
  }
});

test('queue - a failure retries with backoff; the jobs behind it wait; after the last attempt it is dead and blocks its aggregate only', { timeout: 60_000 }, async () => {
  // a-0 v1 fails twice then succeeds; b-0 v1 always fails (dead after 3 attempts).
  const recv = await receiver((body, attempt) => {
    if (body.aggregate_id === 'a-0' && body.version === 1 && attempt < 3) return 503;
    if (body.aggregate_id === 'b-0' && body.version === 1) return 500;
    return 200;
  });
  const server = await startServerInProcess({ configToml: FAST_RETRIES });
  try {
    await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } });
    for (let n = 1; n <= 3; n++) for (const id of ['a-0', 'b-0', 'c-0']) assert.equal((await append(server, id, n)).status, 201);
    await until(10_000, () => recv.got.filter((r) => r.aggregate_id !== 'b-0').length >= 6, 'a-0 and c-0 delivered');
    const a = recv.got.filter((r) => r.aggregate_id === 'a-0');
    assert.deepEqual(a.map((r) => r.version), [1, 2, 3], 'a-0 in order although v1 needed three attempts');
    assert.equal(a[0]?.attempt, 3);
    await until(10_000, async () => (await server.request('GET', '/v1/queue')).body.plugins[0].dead === 1, 'b-0 v1 dead');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(recv.got.filter((r) => r.aggregate_id === 'b-0').length, 0, 'b-0 v2 and v3 wait behind the dead v1');
    const queue = (await server.request('GET', '/v1/queue')).body;
    const dead = queue.jobs.find((j: any) => j.status === 'dead');
    assert.equal(dead.aggregate_id, 'b-0');
    assert.equal(dead.attempts, 3);
    assert.match(dead.last_error, /500/);
    assert.deepEqual(queue.jobs.filter((j: any) => j.status === 'pending').map((j: any) => j.version).sort(), [2, 3]);
    // Retry after the receiver is fixed: the dead job and then the ones behind it arrive, in order.
    const before = recv.got.length;
    (recv as any).fixed = true;
    const fixed = await receiver();
    await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: fixed.url } });
    const retried = await server.request('POST', '/v1/queue/retry', {});
    assert.deepEqual(retried.body, { retried: 1, still_dead: 0 });
    await until(10_000, () => fixed.got.length >= 3, 'b-0 delivered after retry');
    assert.deepEqual(fixed.got.map((r) => r.version), [1, 2, 3]);
    assert.equal(recv.got.length, before);
    await fixed.close();
  } finally {
    await server.stop();
    await recv.close();
    removeDir(server.dataDir);
  }
});

test('queue - on_dead = "skip" lets later jobs of the aggregate pass a dead one', { timeout: 60_000 }, async () => {
  const recv = await receiver((body) => (body.version === 1 ? 500 : 200));
  const server = await startServerInProcess({ configToml: FAST_RETRIES + 'on_dead = "skip"\n' });
  try {
    await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } });
    for (let n = 1; n <= 3; n++) await append(server, 's-0', n);
    await until(10_000, () => recv.got.length >= 2, 'v2 and v3 delivered');
    assert.deepEqual(recv.got.map((r) => r.version), [2, 3]);
    await until(10_000, async () => (await server.request('GET', '/v1/queue')).body.plugins[0].dead === 1, 'v1 dead');
    const cleared = await server.request('POST', '/v1/queue/clear', {});
    assert.deepEqual(cleared.body, { cleared: 1 });
  } finally {
    await server.stop();
    await recv.close();
    removeDir(server.dataDir);
  }
});

test('queue - a plugin that hangs, refuses connections or answers 500 never delays writes', { timeout: 120_000 }, async () => {
  // Reachable when enabled (HEAD answers), then: one never answers a delivery, one's listener goes
  // away (connections refused), one answers 500.
  const hanging: http.ServerResponse[] = [];
  const hole = http.createServer((req, res) => (req.method === 'HEAD' ? res.end() : hanging.push(res)));
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
  const holeUrl = `http://127.0.0.1:${(hole.address() as AddressInfo).port}/hook`;
  const failing = await receiver(() => 500);
  const goneAway = await receiver();
  let slowest = 0;
  const timeWrites = async (server: TestServer, prefix: string): Promise<number> => {
    const started = performance.now();
    for (let round = 0; round < 10; round++) {
      const batch = Array.from({ length: 20 }, async (_, i) => {
        const t = performance.now();
        const a = await append(server, `${prefix}-${i}`, round);
        slowest = Math.max(slowest, performance.now() - t);
        return a;
      });
      for (const a of await Promise.all(batch)) assert.equal(a.status, 201);
    }
    return performance.now() - started;
  };
  const server = await startServerInProcess({ configToml: 'plugin_max_attempts = 50\n' });
  try {
    await timeWrites(server, 'warm');
    const plain = await timeWrites(server, 'plain');
    for (const [name, url, extra] of [['hole', holeUrl, { timeout_ms: 60_000 }], ['refused', goneAway.url, {}], ['failing', failing.url, {}]] as const) {
      const res = await server.request('PUT', `/v1/plugins/${name}`, { options: { kind: 'http', endpoint: url, ...extra } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    await goneAway.close();
    slowest = 0;
    const withPlugins = await timeWrites(server, 'plugged');
    const ratio = withPlugins / plain;
    // A write that waited on a plugin would wait out its 60 s timeout (or retries): no write may
    // take seconds, and the whole run stays near the plain one. Loose: the broken plugins' retries
    // share the 2 cores with the writes (and other suites run beside this one: ×3.3 seen in CI at
    // +0.6 s), so the run may take 3× or 2 s longer, not a timeout longer; the 1.2× bound is the
    // blackhole test's, with medians of alternating rounds.
    assert.ok(slowest < 3000, `the slowest write took ${Math.round(slowest)} ms with broken plugins`);
    assert.ok(withPlugins < Math.max(3 * plain, plain + 2000), `writes took ${Math.round(withPlugins)} ms with broken plugins vs ${Math.round(plain)} ms without (×${ratio.toFixed(2)})`);
    const open = (c: any) => c.pending + c.processing + c.dead;
    await until(10_000, async () => (await server.request('GET', '/v1/queue')).body.plugins.every((c: any) => open(c) >= 200), 'every job queued');
    for (const c of (await server.request('GET', '/v1/queue')).body.plugins) {
      assert.equal(c.done, 0, `${c.plugin} delivered nothing`);
      assert.equal(open(c), 200, `${c.plugin} keeps its jobs`);
    }
    // Enabling a plugin that cannot be reached is refused with the reason.
    await server.request('POST', '/v1/plugins/refused/disable');
    const refused = await server.request('POST', '/v1/plugins/refused/enable');
    assert.equal(refused.status, 503);
    assert.match(refused.body.error.message, /failed to establish connection for 'refused'/);
  } finally {
    await server.stop();
    for (const res of hanging) res.destroy();
    hole.close();
    await failing.close();
    removeDir(server.dataDir);
  }
});

test('queue - with a blackholed plugin, append throughput and p50 stay within 1.2× of no plugin on a quiet machine (medians of alternating rounds; 3× while other suites share it)', { timeout: 120_000 }, async () => {
  const hanging: http.ServerResponse[] = [];
  const hole = http.createServer((req, res) => (req.method === 'HEAD' ? res.end() : hanging.push(res)));
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(hole.address() as AddressInfo).port}/hook`;
  const server = await startServerInProcess();
  /** 15 waves of 32 concurrent appends: total ms and the p50 of single write latencies. */
  const run = async (prefix: string): Promise<{ ms: number; p50: number }> => {
    const latencies: number[] = [];
    const started = performance.now();
    for (let wave = 0; wave < 15; wave++) {
      await Promise.all(
        Array.from({ length: 32 }, async (_, i) => {
          const t = performance.now();
          assert.equal((await append(server, `${prefix}-${i}`, wave)).status, 201);
          latencies.push(performance.now() - t);
        }),
      );
    }
    latencies.sort((a, b) => a - b);
    return { ms: performance.now() - started, p50: latencies[Math.floor(latencies.length / 2)] as number };
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  try {
    await run('warm');
    assert.equal((await server.request('PUT', '/v1/plugins/hole', { enabled: false, options: { kind: 'http', endpoint: url, timeout_ms: 60_000 } })).status, 200);
    const throughput: number[] = [];
    const p50: number[] = [];
    // Medians of 3 rounds here, of 5 under `npm run test:heavy` (each round ~2 s of appends).
    const rounds = heavy(3, 5);
    for (let round = 0; round < rounds; round++) {
      const plain = await run(`plain-${round}`);
      assert.equal((await server.request('POST', '/v1/plugins/hole/enable')).status, 200, 'enable checks on its own connection, not behind hung deliveries');
      const holed = await run(`hole-${round}`);
      // Let the dispatcher move the round's last events while the plugin is still enabled.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await server.request('POST', '/v1/plugins/hole/disable')).status, 200);
      throughput.push(holed.ms / plain.ms);
      p50.push(holed.p50 / plain.p50);
    }
    const c = (await server.request('GET', '/v1/queue')).body.plugins[0];
    assert.equal(c.done, 0, 'the blackhole never answered');
    assert.ok(c.pending + c.processing >= rounds * 480, 'every event of the plugin rounds is queued');
    // The speed goal (1.2×, measured ×0.96–0.99 alone) is asserted on a quiet machine
    // (EVENTDBX_QUIET_MACHINE=1, or `npm run test:heavy`) and measured by `npm run bench -- --plugins
    // http`. `npm test` runs two files at once on two cores, which moved medians to ×1.6 with no
    // change of code, so the suite asserts only what a write path waiting on a hung delivery breaks
    // (it would not finish a round at all): ×3.
    const bound = process.env.EVENTDBX_QUIET_MACHINE === '1' || HEAVY ? 1.2 : 3;
    assert.ok(median(throughput) <= bound, `time with the blackhole ×${median(throughput).toFixed(2)} (rounds ${throughput.map((x) => x.toFixed(2)).join(', ')})`);
    assert.ok(median(p50) <= bound, `p50 with the blackhole ×${median(p50).toFixed(2)} (rounds ${p50.map((x) => x.toFixed(2)).join(', ')})`);
  } finally {
    await server.stop();
    for (const res of hanging) res.destroy();
    hole.close();
    removeDir(server.dataDir);
  }
});

test('queue - SIGKILL under load, several rounds: no acknowledged event is lost, none stays processing', { timeout: 240_000 }, async () => {
  const recv = await receiver();
  const dataDir = tempDataDir();
  const acked = new Set<string>();
  let server: SpawnedServer | undefined;
  try {
    server = await spawnServer({ dataDir, configToml: FAST_RETRIES });
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: recv.url } })).status, 200);
    // Each round is a SIGKILL mid-load and a recovering start: 2 here, 4 under `npm run test:heavy`.
    for (let round = 0, rounds = heavy(2, 4); round < rounds; round++) {
      const current: SpawnedServer = server;
      let stop = false;
      const load = Array.from({ length: 8 }, async (_, w) => {
        for (let n = 0; !stop; n++) {
          const res = await current.request('POST', `/v1/aggregates/order/k-${w}/events`, { event_type: 'x', payload: { round, n } }).catch(() => undefined);
          if (res?.status === 201) acked.add(res.body.metadata.event_id);
          if (!res) break;
        }
      });
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 500));
      current.kill('SIGKILL');
      stop = true;
      await current.exited;
      await Promise.all(load);
      server = await spawnServer({ dataDir });
    }
    const final = server;
    await until(30_000, async () => {
      const q = (await final.request('GET', '/v1/queue')).body.plugins[0];
      return q.pending === 0 && q.processing === 0;
    }, 'the queue to drain after the last restart');
    const delivered = new Set(recv.got.map((r) => r.event_id));
    const missing = [...acked].filter((id) => !delivered.has(id));
    assert.equal(missing.length, 0, `${missing.length} of ${acked.size} acknowledged events never delivered`);
    assert.ok(acked.size > 50, `load made ${acked.size} writes`);
    // Per aggregate, the first delivery of each version comes in order (redeliveries may repeat one).
    const firsts: Received[] = [];
    const seen = new Set<string>();
    for (const r of recv.got) if (!seen.has(r.event_id)) (seen.add(r.event_id), firsts.push(r));
    assertInOrder(firsts);
  } finally {
    if (server) await stopSpawned(server);
    await recv.close();
    removeDir(dataDir);
  }
});

test('queue - a bad plugin configuration is refused with the key and the reason, and nothing is stored', { timeout: 30_000 }, async () => {
  const server = await startServerInProcess();
  try {
    const missing = await server.request('PUT', '/v1/plugins/bad', { options: { kind: 'http' } });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error.code, 'validation_failed');
    assert.ok(missing.body.error.details.some((d: any) => d.path === 'options.endpoint'), JSON.stringify(missing.body));
    const kind = await server.request('PUT', '/v1/plugins/bad', { options: { kind: 'ftp', host: 'x' } });
    assert.equal(kind.status, 400);
    const mode = await server.request('PUT', '/v1/plugins/bad', { payload_mode: 'everything', options: { kind: 'log' } });
    assert.equal(mode.status, 400);
    assert.ok(mode.body.error.details.some((d: any) => d.path === 'payload_mode'));
    const pg = await server.request('PUT', '/v1/plugins/bad', { payload_mode: 'event-only', options: { kind: 'postgres', url: 'postgres://x@127.0.0.1:1/x' } });
    assert.equal(pg.status, 400);
    assert.match(pg.body.error.message, /state/);
    assert.deepEqual((await server.request('GET', '/v1/plugins')).body.items, []);
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});
