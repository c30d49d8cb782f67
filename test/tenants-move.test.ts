/**
 * Issue 12 item 2: the live move. Assigning a tenant that has data moves it to the new shard while
 * 32 writers append to it and a reader reads it; afterwards every acknowledged event is on the
 * target exactly once (contiguous, verifying, same hashes), the source range is empty in every
 * tenant-keyed db, the stream kept its seqs, no plugin delivery was lost or repeated, and other
 * tenants were not touched. A copy that fails verification rolls back and the source keeps serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countTenantRange, type ShardStore } from '../src/shard-worker/index.js';
import { openShards } from './helpers/assertions.js';
import { removeDir, startServerInProcess, tempDataDir, type TestServer } from './helpers/server.js';
import { MULTI_TENANT_TOML, assertHolds, eventually, seed, shardOf, tcpReceiver, tenantHeaders, writer, type Ack, type WriterStats } from './helpers/tenants.js';

const WRITERS = 32;
const TENANT = 'acme';
const BYSTANDER = 'globex';

function streamSeqs(store: ShardStore, tenant: string): number[] {
  return [...store.streamRange(tenant, 0)].map((e) => e.seq);
}

test('tenant move - 32 writers and a reader during a live move: every acknowledged event lands on the target once, the source range empties', { timeout: 120_000 }, async () => {
  const dataDir = tempDataDir();
  const receiver = await tcpReceiver();
  let server: TestServer | undefined = await startServerInProcess({ dataDir, configToml: MULTI_TENANT_TOML(4, 2) });
  try {
    const s = server;
    const plugin = await s.request('PUT', '/v1/plugins/sink', { enabled: true, options: { kind: 'tcp', host: '127.0.0.1', port: receiver.port } }, tenantHeaders(TENANT));
    assert.equal(plugin.status, 200, JSON.stringify(plugin.body));
    const seeded = await seed(s, TENANT, Array.from({ length: 120 }, (_, i) => `s-${i}`), 12);
    const bystander = await seed(s, BYSTANDER, ['b-1', 'b-2'], 5);
    const { shard: from } = await shardOf(s, TENANT);
    // Odd ↔ even: the target lives in the other worker's environment.
    const to = (from + 1) % 4;

    const acks: Ack[] = [];
    const stats: WriterStats = { sent: 0, unavailable: 0, retryAfter: 0, slowestMs: 0 };
    const stop = { now: false };
    const writers = Array.from({ length: WRITERS }, (_, i) => writer(s, TENANT, i, stop, acks, stats));
    // Reads keep answering, and never go back in time across the flip.
    const readVersions = new Map<string, number>();
    let reads = 0;
    const reader = (async () => {
      while (!stop.now) {
        const id = `s-${reads % 120}`;
        const res = await s.request('GET', `/v1/aggregates/order/${id}`, undefined, tenantHeaders(TENANT));
        assert.equal(res.status, 200, `read during the move: ${res.status} ${JSON.stringify(res.body)}`);
        assert.ok(res.body.version >= (readVersions.get(id) ?? 0), 'a read never sees an older version');
        readVersions.set(id, res.body.version);
        reads++;
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const ackedBefore = acks.length;
    const moved = await s.request('PUT', `/v1/tenants/${TENANT}/shard`, { shard: `shard-000${to}` }, tenantHeaders(TENANT));
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    const ackedDuring = acks.length - ackedBefore;
    await new Promise((r) => setTimeout(r, 300));
    stop.now = true;
    await Promise.all([...writers, reader]);

    const report = moved.body.move;
    assert.equal(moved.body.shard, `shard-000${to}`);
    assert.ok(report.entries_copied > 0 && report.catch_up_passes >= 1, JSON.stringify(report));
    assert.ok(typeof report.write_pause_ms === 'number' && report.write_pause_ms < 5000, `flip pause ${report.write_pause_ms} ms`);
    assert.ok(ackedDuring > 0, 'writes were acknowledged while the move ran');
    assert.ok(acks.length > ackedBefore + ackedDuring, 'writes were acknowledged after the flip');
    assert.ok(reads > 0);
    assert.equal(stats.unavailable, stats.retryAfter, 'every 503 carried Retry-After');
    const after = await shardOf(s, TENANT);
    assert.equal(after.shard, to);
    assert.equal(after.move, null, 'the move record is gone');

    const total = await assertHolds(s, TENANT, [...seeded, ...acks]);
    assert.equal(total, seeded.length + acks.length, 'nothing but the acknowledged events');
    assert.equal(await assertHolds(s, BYSTANDER, bystander), bystander.length);
    const list = await s.request('GET', '/v1/aggregates/order?take=1000', undefined, tenantHeaders(TENANT));
    assert.equal(list.body.items.length, 120 + WRITERS * 3, 'the list names every aggregate once');

    // Every event delivered to the plugin exactly once: the move re-delivered nothing, and the
    // source range was deleted only after the dispatcher had taken its outbox.
    const expected = new Set([...seeded, ...acks, ...bystander].map((a) => a.event_id));
    await eventually('every event delivered', () => [...expected].every((id) => receiver.delivered.has(id)));
    for (const [id, n] of receiver.delivered) assert.equal(n, 1, `event ${id} delivered once`);

    await s.stop();
    server = undefined;
    const stores = openShards(dataDir);
    const source = stores[from] as ShardStore;
    const target = stores[to] as ShardStore;
    const left = countTenantRange(source.worker, from, TENANT);
    assert.deepEqual(Object.values(left).filter((n) => n > 0), [], `source range empty: ${JSON.stringify(left)}`);
    const there = countTenantRange(target.worker, to, TENANT);
    assert.equal(there.events, total);
    assert.equal(there.heads, 120 + WRITERS * 3);
    for (const a of [...seeded, ...acks]) {
      assert.deepEqual(target.eventIds.get(a.event_id), [TENANT, 'order', a.id, a.version], 'event id → key on the target');
      assert.equal(source.eventIds.get(a.event_id), undefined, 'no event id left on the source');
    }
    // The stream moved with its seqs: gapless 1..N on the target.
    const seqs = streamSeqs(target, TENANT);
    assert.equal(seqs.length, total);
    seqs.forEach((seq, i) => assert.equal(seq, i + 1));
    // The bystander never moved.
    const bs = bystanderShard(stores);
    const b = countTenantRange((stores[bs] as ShardStore).worker, bs, BYSTANDER);
    assert.equal(b.events, bystander.length);
    await Promise.all([...new Set(stores.map((st) => st.worker))].map((w) => w.close()));
  } finally {
    if (server) await server.stop();
    await receiver.close();
    removeDir(dataDir);
  }
});

function bystanderShard(stores: ShardStore[]): number {
  const at = stores.findIndex((st) => st.getHeadMeta(BYSTANDER, 'order', 'b-1') !== undefined);
  assert.ok(at >= 0, 'the bystander has a shard');
  return at;
}

test('tenant move - a copy that fails verification rolls back: the source keeps serving, the target range stays empty', { timeout: 60_000 }, async () => {
  const dataDir = tempDataDir();
  let server: TestServer | undefined = await startServerInProcess({ dataDir, configToml: MULTI_TENANT_TOML(4, 1) });
  try {
    const acks = await seed(server, TENANT, ['t-1', 't-2', 't-3'], 4);
    const { shard: from } = await shardOf(server, TENANT);
    await server.stop();
    server = undefined;
    // Forge event 2 of t-2 on the source (its stored hash no longer matches its body).
    const stores = openShards(dataDir);
    const store = stores[from] as ShardStore;
    const forged = store.getEvent([TENANT, 'order', 't-2', 2]);
    assert.ok(forged);
    await store.commitDurably(() => void store.events.put([TENANT, 'order', 't-2', 2], JSON.stringify({ ...forged, payload: { n: 999 } })));
    await Promise.all([...new Set(stores.map((st) => st.worker))].map((w) => w.close()));

    server = await startServerInProcess({ dataDir });
    const to = (from + 2) % 4;
    const moved = await server.request('PUT', `/v1/tenants/${TENANT}/shard`, { shard: String(to) }, tenantHeaders(TENANT));
    assert.equal(moved.status, 500, JSON.stringify(moved.body));
    assert.equal(moved.body.error.code, 'integrity_failed');
    assert.match(moved.body.error.message, /order\/t-2/);
    const now = await shardOf(server, TENANT);
    assert.equal(now.shard, from, 'the assignment did not flip');
    assert.equal(now.move, null, 'the move record is gone');
    const read = await server.request('GET', '/v1/aggregates/order/t-1', undefined, tenantHeaders(TENANT));
    assert.equal(read.status, 200, 'the source keeps serving');
    assert.equal(read.body.version, 4);
    const write = await server.request('POST', '/v1/aggregates/order/t-1/events', { event_type: 'ticked', payload: { n: 5 } }, tenantHeaders(TENANT));
    assert.equal(write.status, 201);
    assert.equal(acks.length, 12);
    await server.stop();
    server = undefined;
    const after = openShards(dataDir);
    const left = countTenantRange((after[to] as ShardStore).worker, to, TENANT);
    assert.deepEqual(Object.values(left).filter((n) => n > 0), [], `target range empty after the rollback: ${JSON.stringify(left)}`);
    assert.equal(countTenantRange((after[from] as ShardStore).worker, from, TENANT).events, 13);
    await Promise.all([...new Set(after.map((st) => st.worker))].map((w) => w.close()));
  } finally {
    if (server) await server.stop();
    removeDir(dataDir);
  }
});
