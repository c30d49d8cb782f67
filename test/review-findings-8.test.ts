/**
 * Findings of the eighth review and the HTTP fuzz run (2026-12-06), each a test that fails if the
 * behaviour changes without the README changing with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

const server = useServer();

// Reference §3.6: `get --version V` answers the current version when V exceeds it. The README says
// so for `?version`; the proof route, which needs a leaf, refuses a version past the head.
test('review-findings-8 - ?version past the head answers the head; the proof route refuses it', async () => {
  const created = await server.request('POST', '/v1/aggregates/rf8/v1', { event_type: 'made', payload: { n: 1 } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const applied = await server.request('POST', '/v1/aggregates/rf8/v1/events', { event_type: 'moved', payload: { n: 2 } });
  assert.equal(applied.status, 201, JSON.stringify(applied.body));
  const head = await server.request('GET', '/v1/aggregates/rf8/v1');
  const past = await server.request('GET', '/v1/aggregates/rf8/v1?version=999&include_events=true');
  assert.equal(past.status, 200, JSON.stringify(past.body));
  assert.equal(past.body.version, 2);
  assert.deepEqual(past.body.state, head.body.state);
  assert.equal(past.body.merkle_root, head.body.merkle_root);
  assert.equal(past.body.events.length, 2);
  const older = await server.request('GET', '/v1/aggregates/rf8/v1?version=1');
  assert.deepEqual([older.body.version, older.body.state], [1, { n: 1 }]);
  assertError(await server.request('GET', '/v1/aggregates/rf8/v1/proof?version=999'), 400, 'invalid_input');
});

// An idempotent retry is answered from its key first: the original result, nothing written, even
// after the aggregate was archived or moved past the retry's expected_version (README, writes).
test('review-findings-8 - a replayed write returns its original event after an archive or a later write, and writes nothing', async () => {
  const created = await server.request('POST', '/v1/aggregates/rf8/k1', { event_type: 'made', payload: { n: 1 } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const body = { event_type: 'moved', payload: { n: 2 }, expected_version: 1, idempotency_key: 'rf8-k' };
  const first = await server.request('POST', '/v1/aggregates/rf8/k1/events', body);
  assert.equal(first.status, 201, JSON.stringify(first.body));
  const later = await server.request('POST', '/v1/aggregates/rf8/k1/events', { event_type: 'moved', payload: { n: 3 } });
  assert.equal(later.status, 201);
  const archived = await server.request('POST', '/v1/aggregates/rf8/k1/archive', {});
  assert.equal(archived.status, 200, JSON.stringify(archived.body));
  const before = await server.request('GET', '/v1/aggregates/rf8/k1?include_events=true');

  const replay = await server.request('POST', '/v1/aggregates/rf8/k1/events', body);
  assert.equal(replay.status, 201, JSON.stringify(replay.body));
  assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  assert.deepEqual(replay.body, first.body);
  // The same key with other content is still a conflict, and a new write is still refused.
  assertError(await server.request('POST', '/v1/aggregates/rf8/k1/events', { ...body, payload: { n: 9 } }), 409, 'already_exists');
  assertError(await server.request('POST', '/v1/aggregates/rf8/k1/events', { event_type: 'moved', payload: { n: 4 } }), 409, 'aggregate_archived');
  const after = await server.request('GET', '/v1/aggregates/rf8/k1?include_events=true');
  assert.deepEqual(after.body, before.body);
});
