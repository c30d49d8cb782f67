/**
 * Outbox (DESIGN §5): every appended event gets an outbox entry in the same LMDB transaction, so a
 * shard's outbox and its events always match one for one. Checked on the stopped server's files.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { EventKey, ShardStore } from '../src/shard-worker/index.js';
import { removeDir, startServerInProcess, tempDataDir } from './helpers/server.js';
import { openShards, range } from './helpers/assertions.js';

const dataDir = tempDataDir();
after(() => removeDir(dataDir));

/**
 * Checks one shard: the plugin dispatcher prunes entries whose jobs the queue holds, so what is
 * left is a suffix of the sequence: contiguous, ending at the shard's event count (the sequence
 * never restarts), values among the stored event keys, in version order per aggregate.
 */
function checkShard(store: ShardStore): number {
  const eventKeys = [...store.events.getRange()].map((e) => e.key);
  const outbox = [...store.outbox.getRange()];
  if (eventKeys.length > 0) assert.ok(outbox.length >= 1, `shard ${store.shard}: the last entry is never pruned`);
  const first = outbox[0]?.key ?? 1;
  outbox.forEach(({ key }, i) => assert.equal(key, first + i, `shard ${store.shard}: outbox sequence has no gap`));
  assert.equal(outbox[outbox.length - 1]?.key ?? 0, eventKeys.length, `shard ${store.shard}: one sequence number per event`);
  const asText = (k: EventKey) => JSON.stringify(k);
  const stored = new Set(eventKeys.map(asText));
  for (const { value } of outbox) assert.ok(stored.has(asText(value)), 'outbox values are event keys');
  // Per aggregate, outbox order is version order (delivery order for plugins).
  const lastVersion = new Map<string, number>();
  for (const { value } of outbox) {
    const aggregate = value.slice(0, 3).join('/');
    assert.ok(value[3] > (lastVersion.get(aggregate) ?? 0), `${aggregate}: outbox in version order`);
    lastVersion.set(aggregate, value[3]);
  }
  return eventKeys.length;
}

function checkAll(): number {
  const stores = openShards(dataDir);
  assert.equal(stores.length, 4);
  return stores.reduce((n, s) => n + checkShard(s), 0);
}

async function writeSome(server: Awaited<ReturnType<typeof startServerInProcess>>, round: number): Promise<number> {
  let appended = 0;
  for (const i of range(12)) {
    const res = await server.request('POST', `/v1/aggregates/box/o-${i}/events`, { event_type: 'filled', payload: { round, i } });
    assert.equal(res.status, 201);
    appended++;
  }
  const concurrent = await Promise.all(range(24).map((i) => server.request('POST', `/v1/aggregates/box/o-${(i % 4) + 1}/events`, { event_type: 'filled' })));
  assert.ok(concurrent.every((r) => r.status === 201));
  appended += 24;
  const batch = await server.request('POST', '/v1/batch', { events: range(8).map((i) => ({ aggregate_type: 'box', aggregate_id: `o-${i}`, event_type: 'batched' })) });
  assert.equal(batch.status, 201);
  appended += 8;
  assert.equal((await server.request('POST', `/v1/aggregates/box/o-1/patch`, { event_type: 'patched', patch: [{ op: 'add', path: '/p', value: round }] })).status, 201);
  assert.equal((await server.request('POST', `/v1/aggregates/box/arch-${round}`, { event_type: 'filled' })).status, 201);
  assert.equal((await server.request('POST', `/v1/aggregates/box/arch-${round}/archive`, {})).status, 200);
  appended += 3;
  // Refused writes leave no outbox entry.
  assert.equal((await server.request('POST', '/v1/aggregates/box/o-2/events', { event_type: 'filled', expected_version: 999 })).status, 409);
  const refused = await server.request('POST', '/v1/batch', {
    events: [
      { aggregate_type: 'box', aggregate_id: 'o-3', event_type: 'batched' },
      { aggregate_type: 'box', aggregate_id: 'o-9', event_type: 'batched', expected_version: 999 },
    ],
  });
  assert.equal(refused.status, 409);
  return appended;
}

test('outbox - each append writes one outbox entry in its transaction; the sequence survives a restart', { timeout: 30_000 }, async () => {
  let server = await startServerInProcess({ dataDir });
  let expected = await writeSome(server, 10);
  await server.stop();
  assert.equal(checkAll(), expected);

  server = await startServerInProcess({ dataDir });
  expected += await writeSome(server, 11);
  await server.stop();
  assert.equal(checkAll(), expected);
});
