/**
 * /v1/status and /metrics (eventdbx_shard_aggregates) count aggregates per shard in steps (reader.ts aggregateCounts), so a
 * shard of 1M heads does not stall the event loop for one long count. The counts stay exact across
 * more than one step (tenant-stats.ts SCAN_KEYS_PER_STEP = 20,000).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';

const AGGREGATES = 45_000;
let server: TestServer;

before(async () => {
  server = await startServerInProcess({ configToml: '[tenants]\nshard_count = 1\n' });
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

test('counts-in-steps - status and metrics count every aggregate of a shard larger than one step', { timeout: 120_000 }, async () => {
  const lines: string[] = [];
  for (let i = 0; i < AGGREGATES; i++) {
    const eventId = (386790933284257792n + BigInt(i) * 4194304n).toString();
    lines.push(JSON.stringify({ aggregate_type: 'item', aggregate_id: `i${i}`, event_type: 'item_made', version: 1, payload: { n: i }, extensions: {}, metadata: { event_id: eventId, created_at: '2026-12-03T08:00:00.000Z', issued_by: { group: 'g', user: 'u' } } }));
  }
  const imported = await server.request('POST', '/v1/import', `${lines.join('\n')}\n`, { 'content-type': 'application/x-ndjson' });
  assert.equal(imported.status, 200, JSON.stringify(imported.body));
  const created = await server.request('POST', '/v1/aggregates/item/extra', { event_type: 'item_made', payload: { n: -1 } });
  assert.equal(created.status, 201, JSON.stringify(created.body));

  const status = await server.request('GET', '/v1/status');
  assert.equal(status.status, 200);
  assert.equal(status.body.aggregates, AGGREGATES + 1);
  const metrics = await server.request('GET', '/metrics');
  assert.equal(metrics.status, 200);
  const series = (metrics.body as string).split('\n').filter((line) => line.startsWith('eventdbx_shard_aggregates{'));
  assert.deepEqual(series, [`eventdbx_shard_aggregates{shard="0"} ${AGGREGATES + 1}`]);
});
