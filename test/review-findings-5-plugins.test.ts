/**
 * Review findings (plugins and the queue), against a real server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { removeDir, startServerInProcess, tempDataDir } from './helpers/server.js';
import { until } from './helpers/deadline.js';

test('review-findings-5 - an http plugin endpoint that is not an http(s) URL is refused 400 validation_failed naming options.endpoint, enabled or not, and nothing is stored', { timeout: 20_000 }, async () => {
  const server = await startServerInProcess();
  try {
    for (const endpoint of ['ftp://example.com/hook', 'http://exa mple.com/hook', 'http://']) {
      for (const enabled of [false, true]) {
        const res = await server.request('PUT', '/v1/plugins/bad', { enabled, options: { kind: 'http', endpoint } });
        assert.equal(res.status, 400, `${endpoint} enabled=${enabled}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'validation_failed');
        assert.ok(res.body.error.details.some((d: any) => d.path === 'options.endpoint' && d.field === 'options.endpoint'), JSON.stringify(res.body));
      }
    }
    assert.deepEqual((await server.request('GET', '/v1/plugins')).body.items, []);
    // A scheme-less endpoint stays valid (the original's rule: http:// is added).
    const ok = await server.request('PUT', '/v1/plugins/fine', { enabled: false, options: { kind: 'http', endpoint: '127.0.0.1:9/hook' } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

test('review-findings-5 - a replay queued while the same event is in flight is not lost when the first delivery then succeeds (its "done" does not overwrite the replayed job)', { timeout: 30_000 }, async () => {
  // The receiver holds the first POST until released; later ones answer at once.
  const posts: { event_id: string; attempt: string }[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let first = true;
  const recv = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      if (req.method !== 'POST') return void res.end();
      posts.push({ event_id: JSON.parse(text).event_id, attempt: String(req.headers['x-eventdbx-attempt']) });
      if (!first) return void res.end('ok');
      first = false;
      void held.then(() => res.end('ok'));
    });
  });
  await new Promise<void>((r) => recv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(recv.address() as AddressInfo).port}/hook`;
  const dataDir = tempDataDir();
  const config = '[plugins]\nretry_base_ms = 10\nretry_max_ms = 40\npoll_ms = 5\nstate_flush_ms = 10\n';
  let server = await startServerInProcess({ dataDir, configToml: config });
  try {
    assert.equal((await server.request('PUT', '/v1/plugins/web', { options: { kind: 'http', endpoint: url } })).status, 200);
    const event = await server.request('POST', '/v1/aggregates/order/o-1/events', { event_type: 'placed', payload: { n: 1 } });
    assert.equal(event.status, 201);
    await until(10_000, () => posts.length === 1, 'the first delivery to be in flight');
    // Disabled, then replayed: the replayed job waits for the plugin to be enabled again.
    assert.equal((await server.request('POST', '/v1/plugins/web/disable')).status, 200);
    assert.deepEqual((await server.request('POST', '/v1/plugins/web/replay', { aggregate_type: 'order', aggregate_id: 'o-1' })).body, { queued: 1 });
    release();
    // The first delivery answered (delivered, though its job was replaced: the queue counts no done job for it).
    await until(10_000, async () => /eventdbx_plugin_delivered_total\{plugin="web"\} 1/.test((await server.request('GET', '/metrics')).body as string), 'the first delivery to be done');
    assert.equal((await server.request('GET', '/v1/queue')).body.plugins[0].done, 0, 'the replaced job is not counted done');
    await new Promise((r) => setTimeout(r, 200)); // its state change is flushed
    await server.stop();
    server = await startServerInProcess({ dataDir });
    const queue = (await server.request('GET', '/v1/queue')).body;
    assert.deepEqual(queue.jobs.map((j: any) => [j.event_id, j.status]), [[event.body.metadata.event_id, 'pending']], 'the replayed job is still pending after the restart');
    assert.equal((await server.request('POST', '/v1/plugins/web/enable')).status, 200);
    await until(10_000, () => posts.length === 2, 'the replayed delivery');
    assert.equal(posts[1]?.event_id, event.body.metadata.event_id);
  } finally {
    await server.stop();
    await new Promise<void>((r) => { recv.closeAllConnections(); recv.close(() => r()); });
    removeDir(dataDir);
  }
});

