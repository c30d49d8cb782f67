/**
 * The outbox reader in src/plugins: what the plugin dispatcher consumes. What is left of it (the
 * dispatcher prunes what the queue holds) is full event records in commit order, paged without gaps.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { outboxHead, readOutbox, type OutboxEntry } from '../src/plugins/index.js';
import { removeDir, startServerInProcess, tempDataDir } from './helpers/server.js';
import { openShards } from './helpers/assertions.js';

const dataDir = tempDataDir();
after(() => removeDir(dataDir));

test('plugins outbox - every acknowledged event is readable from the outbox, paged by sequence', { timeout: 30_000 }, async () => {
  const server = await startServerInProcess({ dataDir });
  const acknowledged = new Map<string, string>();
  try {
    for (let i = 0; i < 30; i++) {
      const res = await server.request('POST', `/v1/aggregates/order/o-${i % 7}/events`, { event_type: 'line_added', payload: { line: i } });
      assert.equal(res.status, 201);
      acknowledged.set(res.body.metadata.event_id, res.body.hash);
    }
  } finally {
    await server.stop();
  }
  const seen: OutboxEntry[] = [];
  openShards(dataDir).forEach((store, shard) => {
    // Entries whose jobs the plugin queue holds are pruned: page from the first one left.
    const first = [...store.outbox.getRange({ limit: 1 })][0]?.key ?? 1;
    let after = first - 1;
    for (;;) {
      const page = readOutbox(store, shard, after, 4);
      if (page.length === 0) break;
      for (const entry of page) {
        assert.equal(entry.sequence, after + 1, 'no gap within or between pages');
        after = entry.sequence;
      }
      seen.push(...page);
    }
    assert.equal(after, outboxHead(store));
  });
  assert.ok(seen.length >= 1 && seen.length <= acknowledged.size);
  for (const entry of seen) assert.equal(acknowledged.get(entry.event.metadata.event_id), entry.event.hash);
});
