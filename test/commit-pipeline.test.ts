/**
 * The commit cycle does not serialise prepare behind the disk (issue 8 item 2): under concurrent
 * writers a group is prepared and handed to LMDB while an earlier group is still being flushed
 * (pipeline depth > 1), acknowledgements still come only after each group's own commit is durable,
 * and with `commits_in_flight_max = 1` there is never any overlap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startServerInProcess } from './helpers/server.js';
import { openShards } from './helpers/assertions.js';

function depthCounts(metrics: string): { total: number; deeper: number } {
  const total = Number(/eventdbx_commit_pipeline_depth_count (\d+)/.exec(metrics)?.[1] ?? 0);
  const onlyOne = Number(/eventdbx_commit_pipeline_depth_bucket\{le="1"\} (\d+)/.exec(metrics)?.[1] ?? 0);
  return { total, deeper: total - onlyOne };
}

async function hammer(configToml: string): Promise<{ total: number; deeper: number; acked: Map<string, number>; dataDir: string }> {
  const server = await startServerInProcess({ configToml });
  const acked = new Map<string, number>();
  try {
    for (let round = 0; round < 6; round++) {
      const answers = await Promise.all(
        Array.from({ length: 64 }, async (_, i) => {
          const id = `p-${i}`;
          const res = await server.request('POST', `/v1/aggregates/pipe/${id}/events`, { event_type: 'ticked', payload: { round } });
          assert.equal(res.status, 201, JSON.stringify(res.body));
          return { id, version: res.body.version as number };
        }),
      );
      for (const { id, version } of answers) acked.set(id, Math.max(version, acked.get(id) ?? 0));
    }
    const metrics = (await server.request('GET', '/metrics')).body as string;
    return { ...depthCounts(metrics), acked, dataDir: server.dataDir };
  } finally {
    await server.stop();
  }
}

test('commit pipeline - groups are prepared and committed while earlier ones flush; every ack is on disk', { timeout: 90_000 }, async () => {
  const { total, deeper, acked, dataDir } = await hammer('[storage]\ncommits_in_flight_max = 4\n');
  try {
    assert.ok(total > 0, 'groups were committed');
    assert.ok(deeper > 0, `some group was handed to LMDB while another was in flight (${deeper} of ${total})`);
    const stores = openShards(dataDir);
    for (const [id, version] of acked) {
      const head = stores.map((s) => s.getHead('default', 'pipe', id)).find(Boolean);
      assert.equal(head?.version, version, `${id}: every acknowledged version is on disk`);
    }
  } finally {
    removeDir(dataDir);
  }
});

test('commit pipeline - commits_in_flight_max = 1 never overlaps two commits', { timeout: 90_000 }, async () => {
  const { total, deeper, dataDir } = await hammer('[storage]\ncommits_in_flight_max = 1\n');
  removeDir(dataDir);
  assert.ok(total > 0);
  assert.equal(deeper, 0, 'no group was in flight beside another');
});
