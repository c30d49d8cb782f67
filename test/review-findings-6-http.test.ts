/**
 * Findings of a fresh-eyes review of the HTTP API (2026-12-04, late), each pinned over HTTP against
 * a real server: an import line whose event_id is not a decimal answered a raw "SyntaxError: Cannot
 * convert 1.5 to a BigInt" as invalid_input (zod ran the 2^63 refinement after the regex failed);
 * a JSON body holding `"constructor": {"prototype": …}` was refused as "malformed JSON" on every
 * JSON route although import stored it; an NDJSON body declaring a non-UTF-8 charset was decoded as
 * UTF-8 anyway (a JSON body is refused).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';

let server: TestServer;

before(async () => {
  server = await startServerInProcess();
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

const line = (id: string, eventId: string, payload: object = { a: 1 }) =>
  JSON.stringify({
    aggregate_type: 'review6',
    aggregate_id: id,
    event_type: 'review_made',
    version: 1,
    payload,
    extensions: {},
    metadata: { event_id: eventId, created_at: '2026-12-04T00:00:00.000Z', issued_by: { group: 'g', user: 'u' } },
  }) + '\n';

const NDJSON = { 'content-type': 'application/x-ndjson' };

test('review-findings-6-http - an import event_id that is not a decimal Snowflake is validation_failed naming the field, with no exception text', { timeout: 30_000 }, async () => {
  for (const bad of ['1.5', 'abc', '1e5', '١٢', '１２', '0x10', '-1', '00042', '9223372036854775808']) {
    const res = await server.request('POST', '/v1/import', line('e1', bad), NDJSON);
    assert.equal(res.status, 400, `${bad}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'validation_failed', `${bad}: ${JSON.stringify(res.body)}`);
    assert.doesNotMatch(JSON.stringify(res.body), /SyntaxError|BigInt/, bad);
    const errors = res.body.error.details.errors as { path: string }[];
    assert.ok(errors.some((e) => e.path === 'line.metadata.event_id'), `${bad}: ${JSON.stringify(res.body)}`);
  }
  assert.equal((await server.request('GET', '/v1/aggregates/review6/e1')).status, 404);
  const ok = await server.request('POST', '/v1/import', line('e1', '9223372036854775807'), NDJSON);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
});

test('review-findings-6-http - "constructor" and "prototype" members are plain data on the JSON routes, as on import', { timeout: 30_000 }, async () => {
  const payload = { constructor: { prototype: 1 }, nested: { prototype: { constructor: 2 } } };
  const created = await server.request('POST', '/v1/aggregates/review6/c1', { event_type: 'review_made', payload });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const applied = await server.request('POST', '/v1/aggregates/review6/c1/events', { event_type: 'review_made', payload: { constructor: { prototype: 3 } } });
  assert.equal(applied.status, 201, JSON.stringify(applied.body));
  const got = await server.request('GET', '/v1/aggregates/review6/c1');
  assert.equal(got.status, 200);
  assert.deepEqual(got.body.state, { constructor: { prototype: 3 }, nested: { prototype: { constructor: 2 } } });
  assert.equal(({} as Record<string, unknown>).prototype, undefined, 'nothing polluted');
  // __proto__ is still refused, naming the member.
  const proto = await server.request('POST', '/v1/aggregates/review6/c2', '{"event_type":"review_made","payload":{"__proto__":{"x":1}}}', { 'content-type': 'application/json' });
  assert.equal(proto.status, 400);
  assert.equal(proto.body.error.code, 'invalid_input');
  assert.match(proto.body.error.message, /__proto__/);
});

test('review-findings-6-http - an NDJSON body declaring a charset other than UTF-8 is refused and writes nothing', { timeout: 30_000 }, async () => {
  for (const charset of ['latin1', 'iso-8859-1', 'utf-16']) {
    const res = await server.request('POST', '/v1/import', line('cs1', '900000000000000123'), { 'content-type': `application/x-ndjson; charset=${charset}` });
    assert.equal(res.status, 400, `${charset}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'invalid_input');
    assert.match(res.body.error.message, new RegExp(`unsupported charset '${charset}'`));
    const tenant = await server.request('POST', '/v1/tenants/default/import', line('cs1', '900000000000000123'), { 'content-type': `application/x-ndjson; charset=${charset}` });
    assert.equal(tenant.status, 400, `${charset}: ${JSON.stringify(tenant.body)}`);
    assert.equal(tenant.body.error.code, 'invalid_input');
  }
  assert.equal((await server.request('GET', '/v1/aggregates/review6/cs1')).status, 404);
  const ok = await server.request('POST', '/v1/import', line('cs1', '900000000000000123'), { 'content-type': 'application/x-ndjson; charset=UTF-8' });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
});
