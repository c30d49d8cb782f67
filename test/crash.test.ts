/**
 * Crash safety (DESIGN §5, §11): SIGKILL at any moment loses no acknowledged write. 64 clients append
 * to their own and to shared aggregates; the server is killed mid-stream and restarted on the same
 * data dir; every acknowledged event must be there with the same hash, with no gap in any history.
 * In `sync` and in `async` too: there a commit's meta page may not be flushed yet when its reply
 * goes (meta-flush.ts), but the page cache outlives the process. The async run flushes only every
 * 10 s, so nothing but the page cache can keep its acknowledged events.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, spawnServer, stopSpawned, tempDataDir, type SpawnedServer } from './helpers/server.js';

const CLIENTS = 64;
const SHARED = 4;
const RUN_MS = 2_000;

interface Ack {
  type: string;
  id: string;
  version: number;
  event_id: string;
  hash: string;
}

const dataDirs: string[] = [];
after(() => dataDirs.forEach(removeDir));

/** One client: appends until told to stop; records what the server acknowledged. */
async function client(server: SpawnedServer, index: number, stop: { now: boolean }, acks: Ack[]): Promise<{ sent: number; failed: number }> {
  let sent = 0;
  let failed = 0;
  for (let n = 0; !stop.now; n++) {
    const id = n % 2 === 0 ? `own-${index}` : `shared-${(index + n) % SHARED}`;
    sent++;
    try {
      const res = await server.request('POST', `/v1/aggregates/crash/${id}/events`, { event_type: 'ticked', payload: { client: index, n } });
      if (res.status !== 201) {
        failed++;
        continue;
      }
      acks.push({ type: 'crash', id, version: res.body.version, event_id: res.body.metadata.event_id, hash: res.body.hash });
    } catch {
      failed++;
      // The server is gone: connection refused or reset. Nothing was acknowledged.
      if (stop.now) break;
    }
  }
  return { sent, failed };
}

async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

for (const durability of ['sync', 'async'] as const) {
  test(`crash - SIGKILL mid-stream loses no acknowledged event (${durability}); histories stay contiguous and verify`, { timeout: 90_000 }, (t) => crashRun(t, durability));
}

async function crashRun(t: TestContext, durability: 'sync' | 'async'): Promise<void> {
  const dataDir = tempDataDir();
  dataDirs.push(dataDir);
  const configToml = `[storage]\ndurability = "${durability}"\nflush_interval_ms = 10000\n`;
  const first = await spawnServer({ dataDir, configToml });
  const acks: Ack[] = [];
  const stop = { now: false };
  const clients = Array.from({ length: CLIENTS }, (_, i) => client(first, i, stop, acks));
  await new Promise((r) => setTimeout(r, RUN_MS));
  // Kill while requests are in flight, then let the clients notice.
  first.kill('SIGKILL');
  const killedWith = await first.exited;
  stop.now = true;
  const stats = await Promise.all(clients);
  assert.equal(killedWith, null, 'the server died of the signal');
  const failed = stats.reduce((n, s) => n + s.failed, 0);
  t.diagnostic(`${acks.length} acknowledged, ${failed} unacknowledged at the kill`);
  assert.ok(acks.length > CLIENTS, `enough acknowledged writes to mean something (${acks.length}, ${failed} failed)`);

  // Restarted on the same config.toml, so in the same durability.
  const second = await spawnServer({ dataDir });
  try {
    // Every acknowledged event is there, byte-identical in hash, at its version.
    const missing: string[] = [];
    await inParallel(acks, 16, async (ack) => {
      const res = await second.request('GET', `/v1/events/${ack.event_id}`);
      if (res.status !== 200 || res.body.hash !== ack.hash || res.body.version !== ack.version || res.body.aggregate_id !== ack.id) {
        missing.push(`${ack.id}@${ack.version} ${ack.event_id}: ${res.status}`);
      }
    });
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged events lost or changed`);

    // Per aggregate: versions 1..n with no gap, n at least the highest acknowledged, root verifies.
    const highest = new Map<string, number>();
    for (const ack of acks) highest.set(ack.id, Math.max(highest.get(ack.id) ?? 0, ack.version));
    assert.equal(new Set(acks.map((a) => `${a.id}@${a.version}`)).size, acks.length, 'no version acknowledged twice');
    await inParallel([...highest.keys()], 8, async (id) => {
      const versions: number[] = [];
      let cursor: string | null = null;
      do {
        const res = await second.request('GET', `/v1/aggregates/crash/${id}/events?take=1000${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(res.status, 200);
        versions.push(...res.body.items.map((e: { version: number }) => e.version));
        cursor = res.body.next_cursor;
      } while (cursor);
      versions.forEach((v, i) => assert.equal(v, i + 1, `${id}: contiguous versions`));
      assert.ok(versions.length >= (highest.get(id) ?? 0), `${id}: has every acknowledged version`);
      const head = await second.request('GET', `/v1/aggregates/crash/${id}`);
      assert.equal(head.body.version, versions.length);
      const verify = await second.request('GET', `/v1/aggregates/crash/${id}/verify`);
      assert.equal(verify.body.valid, true, `${id}: ${JSON.stringify(verify.body)}`);
    });
    // The restarted server accepts writes where the histories left off.
    const next = await second.request('POST', '/v1/aggregates/crash/shared-0/events', { event_type: 'ticked', payload: { after: true } });
    assert.equal(next.status, 201);
  } finally {
    assert.equal(await stopSpawned(second), 0);
  }
}
