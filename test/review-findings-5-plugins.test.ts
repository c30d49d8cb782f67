/**
 * Review findings (plugins and the queue), against a real server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startServerInProcess } from './helpers/server.js';

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
