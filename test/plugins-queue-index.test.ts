/**
 * The plugin queue's status index (queue.ts `by_status`): a start loads only open jobs, done jobs
 * are counted in the index and pruned oldest first in batches, never all read (at the default TTL a
 * day of done jobs is millions, and the prune used to decode every job of the queue on the
 * coordinator's thread every interval). A queue written before the index gets it at its next open.
 * Against real LMDB files and a real server delivering to a real HTTP receiver.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { open } from 'lmdb';
import { PluginQueue, type Job, type JobStatus } from '../src/plugins/queue.js';
import { pluginDefinition } from '../src/plugins/types.js';
import { readConfig, writeConfig } from '../src/core/index.js';
import { removeDir, startServerInProcess, tempDataDir } from './helpers/server.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) removeDir(dir);
});
function dir(): string {
  const d = tempDataDir('edbx-queue-index-');
  dirs.push(d);
  return d;
}

function job(plugin: string, n: number, status: JobStatus, updatedAt: number): Job {
  return {
    plugin,
    event_id: String(1_000_000 + n),
    tenant: 'default',
    aggregate_type: 'order',
    aggregate_id: `o-${n}`,
    version: 1,
    status,
    attempts: status === 'pending' ? 0 : 1,
    next_attempt_at: 0,
    last_error: status === 'dead' ? 'refused' : null,
    created_at: updatedAt,
    committed_at: updatedAt,
    updated_at: updatedAt,
  };
}

const counts = (q: PluginQueue, plugin: string) =>
  Object.fromEntries((['pending', 'processing', 'done', 'dead'] as const).map((s) => [s, q.countWithStatus(s, plugin)]));

test('queue status index - counts and open jobs come from the index; every change moves its entry; an old queue is indexed at open', { timeout: 60_000 }, async () => {
  const dataDir = dir();
  let q = new PluginQueue(dataDir, null);
  const jobs: Job[] = [];
  for (let i = 0; i < 3000; i++) jobs.push(job('a', i, 'done', 10_000 + i));
  for (let i = 0; i < 2000; i++) jobs.push(job('b', 5000 + i, 'done', 20_000 - i));
  for (let i = 0; i < 5; i++) jobs.push(job('a', 9000 + i, 'pending', 50_000 + i));
  jobs.push(job('a', 9100, 'processing', 60_000), job('b', 9200, 'dead', 70_000), job('b', 9201, 'dead', 70_001));
  await q.putJobs(jobs);
  assert.deepEqual(counts(q, 'a'), { pending: 5, processing: 1, done: 3000, dead: 0 });
  assert.deepEqual(counts(q, 'b'), { pending: 0, processing: 0, done: 2000, dead: 2 });
  assert.deepEqual([...q.jobsWithStatus('pending', 'a')].map((j) => j.aggregate_id), ['o-9000', 'o-9001', 'o-9002', 'o-9003', 'o-9004']);
  assert.deepEqual([...q.jobsWithStatus('dead', 'b')].map((j) => j.status), ['dead', 'dead']);
  // Oldest completion first, only those before the bound.
  const oldest = q.oldestDone('b', 5, 18_004);
  assert.deepEqual(oldest.map((o) => o.updated_at), [18_001, 18_002, 18_003]);
  assert.deepEqual(q.oldestDone('a', 2).map((o) => o.key), [['a', '1000000'], ['a', '1000001']]);

  // A delivery outcome moves the entry; a removal drops it; a replay over a done job replaces it.
  await q.update([{ ...job('a', 9000, 'done', 80_000), attempts: 1 }]);
  await q.removeJobs([['a', '1000001'], ['a', 'no-such-job']]);
  await q.putJobs([job('a', 2, 'pending', 90_000)]);
  assert.deepEqual(counts(q, 'a'), { pending: 5, processing: 1, done: 2999, dead: 0 });
  assert.equal(q.oldestDone('a', 1, 80_001).length, 1);
  assert.equal(q.oldestDone('a', 5000).at(-1)?.updated_at, 80_000);
  // Removing a plugin removes its index entries with its jobs.
  await q.putDefinition(pluginDefinition.parse({ name: 'b', options: { kind: 'log' } }));
  await q.removeDefinition('b');
  assert.deepEqual(counts(q, 'b'), { pending: 0, processing: 0, done: 0, dead: 0 });
  await q.close();

  // A queue from before the index: the index and its marker are gone; the next open rebuilds it.
  const env = open({ path: join(dataDir, 'queue'), maxDbs: 8 });
  await env.openDB({ name: 'by_status' }).drop();
  await env.openDB({ name: 'meta' }).remove('status_index');
  await env.close();
  q = new PluginQueue(dataDir, null);
  try {
    assert.deepEqual(counts(q, 'a'), { pending: 5, processing: 1, done: 2999, dead: 0 });
  } finally {
    await q.close();
  }
});

test('queue prune - max_done_jobs keeps the newest done jobs and done_ttl_secs drops the old ones, from a first prune soon after the start', { timeout: 60_000 }, async () => {
  const received: number[] = [];
  const recv = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      if (req.method === 'POST') received.push(JSON.parse(text).version as number);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => recv.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(recv.address() as AddressInfo).port}/hook`;
  const dataDir = dir();
  const setPrune = (prune: { done_ttl_secs: number; max_done_jobs?: number }): void => {
    const { config } = readConfig(dataDir);
    writeConfig(dataDir, { ...config, plugin_queue: { prune: { ...config.plugin_queue.prune, ...prune } } });
  };
  const doneCount = async (server: Awaited<ReturnType<typeof startServerInProcess>>): Promise<number> => {
    const res = await server.request('GET', '/v1/queue');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.plugins.find((p: { plugin: string }) => p.plugin === 'hook').done as number;
  };
  const waitFor = async (what: string, ok: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    let server = await startServerInProcess({ dataDir });
    try {
      assert.equal((await server.request('PUT', '/v1/plugins/hook', { options: { kind: 'http', endpoint } })).status, 200);
      assert.equal((await server.request('POST', '/v1/aggregates/order/o-1', { event_type: 'order_placed', payload: { n: 1 } })).status, 201);
      for (let v = 2; v <= 10; v++) assert.equal((await server.request('POST', '/v1/aggregates/order/o-1/events', { event_type: 'order_changed', payload: { n: v } })).status, 201);
      await waitFor('10 deliveries', async () => (await doneCount(server)) === 10);
    } finally {
      await server.stop();
    }
    assert.deepEqual(received, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

    // Keep 3: the newest three completions stay (versions 8–10, delivered last).
    setPrune({ done_ttl_secs: 0, max_done_jobs: 3 });
    server = await startServerInProcess({ dataDir });
    try {
      await waitFor('the prune to keep 3 done jobs', async () => (await doneCount(server)) === 3);
    } finally {
      await server.stop();
    }
    let q = new PluginQueue(dataDir, null);
    try {
      assert.deepEqual([...q.jobsWithStatus('done', 'hook')].map((j) => j.version).sort((a, b) => a - b), [8, 9, 10]);
      assert.equal(q.countWithStatus('done', 'hook'), 3);
    } finally {
      await q.close();
    }

    // A TTL of 1 s: every job completed more than a second ago goes.
    await new Promise((r) => setTimeout(r, 1100));
    setPrune({ done_ttl_secs: 1 });
    server = await startServerInProcess({ dataDir });
    try {
      await waitFor('the prune to drop every done job', async () => (await doneCount(server)) === 0);
    } finally {
      await server.stop();
    }
    q = new PluginQueue(dataDir, null);
    try {
      assert.equal([...q.allJobs('hook')].length, 0, 'no job is left in the queue');
    } finally {
      await q.close();
    }
  } finally {
    recv.close();
  }
});
