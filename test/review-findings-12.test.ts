/**
 * Audits of 2026-12-06 (issues 9 and 14 checked against the running server), each failing on the
 * code before its fix:
 * 1. `restrict` in config.toml is read as the original reads it: booleans and aliases map to a mode,
 *    an unknown spelling to `default` (reference §2.1); the server starts.
 * 2. A `float` column does not turn text into a number beyond ±(2^53−1), which the API itself
 *    refuses as input (a stored event must be one an import or a patch can send back).
 * 3. A batch item refused by request validation names its index: `details: { index, violations }`,
 *    the shape the workers' refusals have.
 * (The tenant answers' `removing` field is checked against the OpenAPI document in openapi-complete.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startServerInProcess } from './helpers/server.js';

test('finding 1 (review 12) - restrict aliases and booleans in config.toml start the server in the mode they name', { timeout: 60_000 }, async () => {
  for (const [written, mode] of [
    ['true', 'default'],
    ['false', 'off'],
    ['"prod"', 'default'],
    ['"dev"', 'off'],
    ['"ALL"', 'strict'],
    ['"weird"', 'default'],
  ] as const) {
    const server = await startServerInProcess({ configToml: `restrict = ${written}\n` });
    try {
      const status = await server.request('GET', '/v1/status');
      assert.equal(status.status, 200, `restrict = ${written}: ${JSON.stringify(status.body)}`);
      assert.equal(status.body.restrict, mode, `restrict = ${written}`);
      const write = await server.request('POST', '/v1/aggregates/unschemed/u-1', { event_type: 'made', payload: {} });
      assert.equal(write.status, mode === 'strict' ? 400 : 201, `restrict = ${written}: ${JSON.stringify(write.body)}`);
    } finally {
      await server.stop();
      removeDir(server.dataDir);
    }
  }
});

test('finding 2 (review 12) - a float column refuses text beyond ±(2^53−1) and takes text within it', { timeout: 30_000 }, async () => {
  const server = await startServerInProcess();
  try {
    const schema = await server.request('POST', '/v1/schemas', { aggregate: 'gauge', column_types: { f: 'float' }, events: { read: { fields: [] } } });
    assert.ok(schema.status < 300, JSON.stringify(schema.body));
    const big = await server.request('POST', '/v1/aggregates/gauge/g-1/events', { event_type: 'read', payload: { f: '1e20' } });
    assert.equal(big.status, 400, JSON.stringify(big.body));
    assert.equal(big.body.error.code, 'validation_failed');
    assert.match(JSON.stringify(big.body.error.details), /2\^53/);
    assert.equal((await server.request('GET', '/v1/aggregates/gauge/g-1')).status, 404, 'nothing was written');
    const ok = await server.request('POST', '/v1/aggregates/gauge/g-1/events', { event_type: 'read', payload: { f: '-12.5e3' } });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal((await server.request('GET', '/v1/aggregates/gauge/g-1')).body.state.f, -12500);
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

test('finding 3 (review 12) - a batch item refused by request validation names its index in details', { timeout: 30_000 }, async () => {
  const server = await startServerInProcess();
  try {
    const good = { aggregate_type: 'person', aggregate_id: 'p-1', event_type: 'person_created', payload: {} };
    for (const bad of [
      { ...good, aggregate_id: 'p 1' },
      { ...good, aggregate_id: 'p-2', surprise: true },
    ]) {
      const res = await server.request('POST', '/v1/batch', { events: [good, bad] });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'validation_failed');
      assert.equal(res.body.error.details.index, 1, JSON.stringify(res.body));
      assert.ok(Array.isArray(res.body.error.details.violations) && res.body.error.details.violations.length > 0);
      assert.match(res.body.error.details.violations[0].path, /^body\.events\.1/);
    }
    assert.equal((await server.request('GET', '/v1/aggregates/person/p-1')).status, 404, 'nothing of the batch was written');
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

test('finding 4 (review 12) - a batch refused by schemas lists every violation of every item, each with its index', { timeout: 30_000 }, async () => {
  const server = await startServerInProcess();
  try {
    const schema = await server.request('POST', '/v1/schemas', { aggregate: 'member', column_types: { age: 'integer', ok: 'boolean' }, events: { joined: { fields: [] } } });
    assert.ok(schema.status < 300, JSON.stringify(schema.body));
    const item = (id: string, payload: Record<string, unknown>) => ({ aggregate_type: 'member', aggregate_id: id, event_type: 'joined', payload });
    const res = await server.request('POST', '/v1/batch', { events: [item('m-0', { age: 3 }), item('m-1', { age: 'x' }), item('m-2', { ok: 'y', age: 'z' })] });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'validation_failed');
    const { details } = res.body.error;
    assert.equal(details.index, 1);
    assert.deepEqual(details.violations.map((v: any) => [v.index, v.field]).sort(), [[1, 'age'], [2, 'age'], [2, 'ok']]);
    for (const v of details.violations) assert.ok(v.rule && v.message, JSON.stringify(v));
    for (const id of ['m-0', 'm-1', 'm-2']) assert.equal((await server.request('GET', `/v1/aggregates/member/${id}`)).status, 404, 'nothing was written');
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

test('finding 5 (review 12) - a batch replayed whole by its idempotency keys says so (idempotent-replayed) and costs a limited token nothing', { timeout: 30_000 }, async () => {
  const server = await startServerInProcess();
  try {
    const issued = await server.request('POST', '/v1/tokens', { group: 'g', user: 'u', actions: ['*'], write_limit: 4 });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const as = { authorization: `Bearer ${issued.body.token}` };
    const events = [0, 1].map((n) => ({ aggregate_type: 'order', aggregate_id: `o-${n}`, event_type: 'placed', payload: { n }, idempotency_key: `k-${n}` }));
    const first = await server.request('POST', '/v1/batch', { events }, as);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal(first.headers.get('idempotent-replayed'), null);
    for (let again = 0; again < 3; again++) {
      const replay = await server.request('POST', '/v1/batch', { events }, as);
      assert.equal(replay.status, 201, JSON.stringify(replay.body));
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(replay.body.events.map((e: any) => e.metadata.event_id), first.body.events.map((e: any) => e.metadata.event_id));
    }
    const view = (await server.request('GET', `/v1/tokens/${issued.body.record.jti}`)).body;
    assert.equal(view.writes_used, 2, 'the replays cost nothing');
    assert.equal(view.writes_remaining, 2);
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});
