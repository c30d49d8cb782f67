/** Snapshots (DESIGN §3): automatic every snapshot_threshold events, and on demand. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError, range } from './helpers/assertions.js';

let server: TestServer;
before(async () => {
  server = await startServerInProcess({ configToml: 'snapshot_threshold = 3\n' });
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

async function appendMany(id: string, count: number): Promise<any[]> {
  const out: any[] = [];
  for (const v of range(count)) {
    const res = await server.request('POST', `/v1/aggregates/counter/${id}/events`, { event_type: 'counted', payload: { n: v, [`at_${v}`]: true } });
    assert.equal(res.status, 201);
    out.push(res.body);
  }
  return out;
}

const stateAt = (version: number): Record<string, unknown> => Object.fromEntries([['n', version], ...range(version).map((v) => [`at_${v}`, true])]);

test('snapshots - one is taken automatically every snapshot_threshold events', { timeout: 20_000 }, async () => {
  const events = await appendMany('s-auto', 7);
  const res = await server.request('GET', '/v1/aggregates/counter/s-auto/snapshots');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.items.map((s: { version: number }) => s.version), [3, 6]);
  for (const snap of res.body.items) {
    assert.equal(snap.aggregate_type, 'counter');
    assert.equal(snap.aggregate_id, 's-auto');
    assert.deepEqual(snap.state, stateAt(snap.version));
    assert.equal(snap.merkle_root, events[snap.version - 1].merkle_root);
    assert.ok(!Number.isNaN(Date.parse(snap.created_at)));
  }
  const agg = await server.request('GET', '/v1/aggregates/counter/s-auto');
  assert.equal(agg.body.snapshot_version, 6);
});

test('snapshots - POST …/snapshots takes one now at the current version', { timeout: 20_000 }, async () => {
  const events = await appendMany('s-manual', 4);
  const made = await server.request('POST', '/v1/aggregates/counter/s-manual/snapshots', { comment: 'before migration' });
  assert.equal(made.status, 201);
  assert.equal(made.body.version, 4);
  assert.equal(made.body.comment, 'before migration');
  assert.deepEqual(made.body.state, stateAt(4));
  assert.equal(made.body.merkle_root, events[3].merkle_root);
  const noBody = await server.request('POST', '/v1/aggregates/counter/s-manual/snapshots');
  assert.equal(noBody.status, 201);
  assert.equal(noBody.body.version, 4);

  // A snapshot is not an event: version and root stay; the next automatic one still comes at 6.
  const agg = await server.request('GET', '/v1/aggregates/counter/s-manual');
  assert.equal(agg.body.version, 4);
  assert.equal(agg.body.merkle_root, events[3].merkle_root);
  assert.equal(agg.body.snapshot_version, 4);
  for (const v of [5, 6]) {
    await server.request('POST', '/v1/aggregates/counter/s-manual/events', { event_type: 'counted', payload: { n: v } });
  }
  const list = await server.request('GET', '/v1/aggregates/counter/s-manual/snapshots');
  assert.deepEqual(list.body.items.map((s: { version: number }) => s.version), [3, 4, 6]);
  assert.deepEqual(list.body.items.map((s: { comment: string | null }) => s.comment), ['auto snapshot v3', null, 'auto snapshot v6']);
  const old = await server.request('GET', '/v1/aggregates/counter/s-manual?version=5');
  assert.equal(old.body.snapshot_version, 4);
  assert.deepEqual(old.body.state, { ...stateAt(4), n: 5 });

  assertError(await server.request('POST', '/v1/aggregates/counter/s-nobody/snapshots', {}), 404, 'not_found');
  assertError(await server.request('POST', '/v1/aggregates/counter/s-manual/snapshots', { comment: 'x', extra: 1 }), 400, 'validation_failed');
});
