/**
 * Cross-shard batches (two-phase commit): if the process dies after the home shard committed its
 * part and the batch intent but before another shard committed its part, the next start finishes
 * the batch from the intent. The crash is staged with the real prepare code on the stopped data
 * dir: the home part and the intent are written, the other part is not.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { SnowflakeGenerator, shardFor, type EventRecord } from '../src/core/index.js';
import { BatchBuilder, type PrepareContext } from '../src/shard-worker/prepare.js';
import type { BatchIntent, ShardStore, WriteCommand } from '../src/shard-worker/index.js';
import { removeDir, startServerInProcess, tempDataDir } from './helpers/server.js';
import { openShards } from './helpers/assertions.js';

const dataDir = tempDataDir();
after(() => removeDir(dataDir));

function contextFor(stores: ShardStore[]): PrepareContext {
  return {
    snowflake: new SnowflakeGenerator(0),
    snapshotThreshold: 100,
    load(shard, tenant, type, id) {
      const store = stores[shard] as ShardStore;
      const head = store.getHead(tenant, type, id);
      return head ? { head, state: store.getState(tenant, type, id) ?? {} } : undefined;
    },
    idempotencyEntry: (shard, tenant, type, id, key) => (stores[shard] as ShardStore).idempotencyEntry(tenant, type, id, key),
    readEvent(shard, tenant, type, id, version) {
      const json = (stores[shard] as ShardStore).getEventJson([tenant, type, id, version]);
      return json === undefined ? undefined : (JSON.parse(json) as EventRecord);
    },
  };
}

test('batch recovery - a cross-shard batch interrupted after the home commit is finished at the next start', { timeout: 30_000 }, async () => {
  // First start creates the data dir and shards; nothing else.
  // Two workers, so shards 0 and 1 live in different environments and the batch spans two commits.
  await (await startServerInProcess({ dataDir, configToml: '[storage]\nworkers = 2\n' })).stop();

  const placement = { shardCount: 4, multiTenant: false };
  const ids: string[] = [];
  for (let i = 0; ids.length < 2; i++) {
    const id = `acct-${i}`;
    // Shard s is on worker s mod 2: the two ids must be on different workers.
    if (ids.length === 0 || shardFor(placement, 'default', 'ledger', id) % 2 !== shardFor(placement, 'default', 'ledger', ids[0] as string) % 2) ids.push(id);
  }
  const stores = openShards(dataDir);
  const builder = new BatchBuilder(contextFor(stores));
  for (const id of ids) {
    const command: WriteCommand = {
      op: 'apply',
      shard: shardFor(placement, 'default', 'ledger', id),
      tenant: 'default',
      aggregate_type: 'ledger',
      aggregate_id: id,
      event_type: 'posted',
      payload: { amount: 10 },
      issued_by: { group: 'test', user: 'crash' },
    };
    builder.add(command);
  }
  const parts = [...builder.writeSets].map(([shard, ws]) => ({ shard, ws }));
  assert.equal(parts.length, 2, 'the batch spans two shards on two workers');
  const [home, other] = parts as [(typeof parts)[0], (typeof parts)[0]];
  const intent: BatchIntent = { txid: 'staged-crash', parts };
  const homeStore = stores[home.shard] as ShardStore;
  homeStore.env.transactionSync(() => {
    homeStore.applyWriteSet(home.ws);
    homeStore.worker.intents.put(intent.txid, intent);
  });
  await homeStore.env.flushed;
  const otherId = other.ws.events[0]?.key[2] as string;
  assert.equal((stores[other.shard] as ShardStore).getHead('default', 'ledger', otherId), undefined, 'the other part is missing before recovery');

  const server = await startServerInProcess({ dataDir });
  try {
    for (const id of ids) {
      const got = await server.request('GET', `/v1/aggregates/ledger/${id}`);
      assert.equal(got.status, 200, `${id} exists after recovery`);
      assert.deepEqual(got.body.state, { amount: 10 });
      const verify = await server.request('GET', `/v1/aggregates/ledger/${id}/verify`);
      assert.equal(verify.body.valid, true);
    }
  } finally {
    await server.stop();
  }
  const after = openShards(dataDir);
  assert.equal([...(after[home.shard] as ShardStore).worker.intents.getRange()].length, 0, 'the intent is cleared once finished');
});
