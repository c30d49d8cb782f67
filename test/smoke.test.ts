import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServerInProcess, removeDir } from './helpers/server.js';

test('smoke - start, write, read, stop', { timeout: 30_000 }, async () => {
  const server = await startServerInProcess();
  try {
    const created = await server.request('POST', '/v1/aggregates/person/p-1', { event_type: 'person_created', payload: { name: 'Ada' } });
    assert.equal(created.status, 201);
    assert.equal(created.body.version, 1);
    const got = await server.request('GET', '/v1/aggregates/person/p-1');
    assert.deepEqual(got.body.state, { name: 'Ada' });
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});
