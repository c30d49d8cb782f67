/**
 * Issue 12 item 2: a SIGKILL at each step of a live move (copying, a catch-up pass, verifying, flipping, deleting;
 * the fault hook EVENTDBX_FAULT_TENANT_MOVE, honoured only with NODE_ENV=test) while writers
 * append. The restarted server resumes the move, and ends with exactly one complete copy serving:
 * every acknowledged event there once, every history verifying, the other shard's range empty.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { countTenantRange, type ShardStore } from '../src/shard-worker/index.js';
import { openShards } from './helpers/assertions.js';
import { within } from './helpers/deadline.js';
import { removeDir, spawnServer, stopSpawned, tempDataDir, writeConfigToml, type SpawnedServer } from './helpers/server.js';
import { MULTI_TENANT_TOML, assertHolds, eventually, seedBatches, shardOf, tenantHeaders, writer, type Ack, type WriterStats } from './helpers/tenants.js';

const TENANT = 'acme';
// 'catching-up': killed between two chunks of a catch-up pass (catch-up chunks of 5 entries, so a pass
// spans several): the resumed pass must redo the whole delta, event_index entries included.
const PHASES = ['copying', 'catching-up', 'verifying', 'flipping', 'deleting'] as const;
const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

for (const phase of PHASES) {
  test(`tenant move crash - SIGKILL while ${phase}: the restart resumes the move into one complete copy`, { timeout: 90_000 }, async () => {
    const dataDir = tempDataDir();
    dirs.push(dataDir);
    writeConfigToml(dataDir, MULTI_TENANT_TOML(4, 2));
    const small: Record<string, string> = phase === 'catching-up' ? { EVENTDBX_TEST_MOVE_CHUNK_ENTRIES: '5' } : {};
    const first: SpawnedServer = await spawnServer({ dataDir, env: { NODE_ENV: 'test', EVENTDBX_FAULT_TENANT_MOVE: phase, ...small } });
    let second: SpawnedServer | undefined;
    try {
      const seeded = await seedBatches(first, TENANT, Array.from({ length: 60 }, (_, i) => `s-${i}`), 6);
      const { shard: from } = await shardOf(first, TENANT);
      const to = (from + 1) % 4;
      const acks: Ack[] = [];
      const stats: WriterStats = { sent: 0, unavailable: 0, retryAfter: 0, slowestMs: 0 };
      const stop = { now: false };
      const writers = Array.from({ length: 8 }, (_, i) => writer(first, TENANT, i, stop, acks, stats, true));
      await new Promise((r) => setTimeout(r, 200));
      // The move kills the server part-way: the request never answers.
      const moving = first.request('PUT', `/v1/tenants/${TENANT}/shard`, { shard: String(to) }, tenantHeaders(TENANT)).then(
        (res) => res,
        () => undefined,
      );
      // within() clears its deadline: a bare race's 30 s timer held the file's process open after the last test.
      await within(first.exited, 30_000, `the fault hook killed the server while ${phase}`);
      assert.equal(first.child.signalCode, 'SIGKILL');
      stop.now = true;
      await Promise.all(writers);
      assert.equal(await moving, undefined, 'the assign never answered');

      second = await spawnServer({ dataDir, env: { NODE_ENV: 'test' } });
      const s = second;
      await eventually('the resumed move finishes', async () => (await shardOf(s, TENANT)).move === null, 30_000);
      const now = await shardOf(s, TENANT);
      assert.equal(now.shard, to, 'the move was resumed to its end');
      const total = await assertHolds(s, TENANT, [...seeded, ...acks]);
      assert.ok(total >= seeded.length + acks.length);
      // Writes go on after the resumed move.
      const more = await s.request('POST', '/v1/aggregates/order/s-0/events', { event_type: 'ticked', payload: { after: phase } }, tenantHeaders(TENANT));
      assert.equal(more.status, 201);
      assert.equal(await stopSpawned(s), 0);
      second = undefined;

      const stores = openShards(dataDir);
      const left = countTenantRange((stores[from] as ShardStore).worker, from, TENANT);
      assert.deepEqual(Object.values(left).filter((n) => n > 0), [], `source range empty: ${JSON.stringify(left)}`);
      const there = countTenantRange((stores[to] as ShardStore).worker, to, TENANT);
      assert.equal(there.events, total + 1, 'one complete copy on the target');
      assert.equal(there.stream, total + 1, 'the stream moved with its seqs');
      // One filter-index entry per event: a short index silently shortens filtered event lists.
      assert.equal(there.event_index, total + 1, 'every event has its event_index entry on the target');
      await Promise.all([...new Set(stores.map((st) => st.worker))].map((w) => w.close()));
    } finally {
      if (first.child.exitCode === null && first.child.signalCode === null) first.kill('SIGKILL');
      if (second) await stopSpawned(second);
    }
  });
}
