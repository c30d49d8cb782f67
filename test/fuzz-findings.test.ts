/**
 * Contract gaps a fuzzing pass found (2026-12-03), each pinned: I-JSON bodies (RFC 7493: UTF-8,
 * unique member names; no `__proto__`), unknown query and body fields on routes without a schema,
 * out-of-range time literals in filters, 63-bit event ids on import, plugin definitions naming
 * impossible tenants or types. Every refused write leaves the store as it was.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError, headOf } from './helpers/assertions.js';

let server: TestServer;
let slow: TestServer;
let baseline: { version: number; merkle_root: string } | null;

before(async () => {
  server = await startServerInProcess();
  slow = await startServerInProcess({ configToml: '[http]\nrequest_timeout_ms = 1500\n' });
  await server.request('POST', '/v1/aggregates/acct/f-1', { event_type: 'acct_opened', payload: { name: 'Ada' } });
  baseline = await headOf(server, 'acct', 'f-1');
});
after(async () => {
  await server.stop();
  await slow.stop();
  removeDir(server.dataDir);
  removeDir(slow.dataDir);
});

const EVENTS = '/v1/aggregates/acct/f-1/events';

async function refused(path: string, body: unknown, status: number, code: string, headers?: Record<string, string>): Promise<{ message: string; details?: unknown }> {
  const res = await server.request('POST', path, body, headers);
  assertError(res, status, code);
  assert.deepEqual(await headOf(server, 'acct', 'f-1'), baseline, `acct/f-1 unchanged after a refused ${path}`);
  return res.body.error;
}

test('fuzz-findings - a body that is not UTF-8, or names another charset, is refused, not stored with U+FFFD', { timeout: 20_000 }, async () => {
  const bytes = Buffer.concat([Buffer.from('{"event_type":"acct_noted","payload":{"k":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}}')]);
  const err = await refused(EVENTS, bytes, 400, 'validation_failed');
  assert.match(err.message, /UTF-8/);
  await refused(EVENTS, '{"event_type":"acct_noted","payload":{}}', 400, 'invalid_input', { 'content-type': 'application/json; charset=utf-16' });
  const ok = await server.request('POST', EVENTS, '{"event_type":"acct_noted","payload":{"k":"é"}}', { 'content-type': 'application/json; charset=UTF-8' });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  assert.equal(ok.body.payload.k, 'é');
  baseline = await headOf(server, 'acct', 'f-1');
});

test('fuzz-findings - duplicate member names and __proto__ are refused with the path that holds them', { timeout: 20_000 }, async () => {
  const dup = await refused(EVENTS, '{"event_type":"a_b","event_type":"a_c","payload":{}}', 400, 'validation_failed');
  assert.match(dup.message, /body\.event_type: duplicate member name "event_type"/);
  const nested = await refused(EVENTS, '{"event_type":"a_b","payload":{"list":[{"k":1},{"k":1,"k":2}]}}', 400, 'validation_failed');
  assert.deepEqual(nested.details, [{ path: 'body.payload.list.1.k', field: 'payload.list.1.k', rule: 'invalid', message: nested.message.replace(/^body\.payload\.list\.1\.k: /, '') }]);
  // Escapes decode first: "a\u0062" and "ab" are one name.
  await refused(EVENTS, '{"event_type":"a_b","payload":{"a\\u0062":1,"ab":2}}', 400, 'validation_failed');
  const proto = await refused(EVENTS, '{"event_type":"a_b","payload":{"__proto__":{"x":1}}}', 400, 'invalid_input');
  assert.match(proto.message, /__proto__/);
  // The same text inside a string value is just text.
  const fine = await server.request('POST', EVENTS, '{"event_type":"a_b","payload":{"s":"\\"k\\":1,\\"k\\":2"}}');
  assert.equal(fine.status, 201, JSON.stringify(fine.body));
  baseline = await headOf(server, 'acct', 'f-1');
});

test('fuzz-findings - routes without a query or body schema refuse unknown fields', { timeout: 20_000 }, async () => {
  assertError(await server.request('GET', '/v1/aggregates/acct/f-1/snapshots?take=abc'), 400, 'validation_failed');
  assertError(await server.request('GET', '/v1/status?x=1'), 400, 'validation_failed');
  await refused(`${EVENTS}?bogus_param=1`, { event_type: 'a_b', payload: {} }, 400, 'validation_failed');
  const rotate = await server.request('POST', '/v1/tokens/rotate-keys', { x: 1 });
  assertError(rotate, 400, 'validation_failed');
  // The token still works: nothing was rotated.
  assert.equal((await server.request('GET', '/v1/aggregates/acct/f-1')).status, 200);
  // An empty object is no field at all.
  assert.equal((await server.request('GET', '/v1/status')).status, 200);
});

test('fuzz-findings - an epoch-ms literal outside the time range is 400, not 500', { timeout: 20_000 }, async () => {
  const lists = ['/v1/events', '/v1/aggregates', '/v1/aggregates/acct/f-1/events'];
  for (const filter of ['created_at > 8640000000000001', 'created_at < -8640000000000001']) {
    for (const path of lists) assertError(await server.request('GET', `${path}?filter=${encodeURIComponent(filter)}`), 400, 'invalid_input');
  }
  // On event lists metadata.created_at is the event's time too (on aggregate lists, a state path).
  for (const path of ['/v1/events', '/v1/aggregates/acct/f-1/events']) {
    assertError(await server.request('GET', `${path}?filter=${encodeURIComponent('metadata.created_at <= 386792590495711232')}`), 400, 'invalid_input');
  }
  const edge = await server.request('GET', `/v1/events?filter=${encodeURIComponent('created_at > -8640000000000000')}`);
  assert.equal(edge.status, 200, JSON.stringify(edge.body));
});

test('fuzz-findings - an import line with an event id beyond 63 bits, a duplicate name or bad UTF-8 is refused by its line', { timeout: 20_000 }, async () => {
  const line = (id: string, extra = ''): string =>
    `{"aggregate_type":"imp","aggregate_id":"i-1","event_type":"imp_created","version":1,"payload":{}${extra},"extensions":{},"metadata":{"event_id":"${id}","created_at":"2026-01-01T00:00:00.000Z","issued_by":{"group":"g","user":"u"}}}`;
  const post = (body: string | Buffer) => server.request('POST', '/v1/import', body, { 'content-type': 'application/x-ndjson' });
  for (const id of ['99999999999999999999', '9223372036854775808']) {
    const res = await post(`${line(id)}\n`);
    assertError(res, 400, 'validation_failed');
    assert.match(res.body.error.message, /^line 1: /);
  }
  const dup = await post(`${line('386792590495711232', ',"version":1')}\n`);
  assertError(dup, 400, 'validation_failed');
  assert.match(dup.body.error.message, /^line 1: version: duplicate member name/);
  const bad = await post(Buffer.concat([Buffer.from(`${line('386792590495711232')}\n`), Buffer.from([0xff, 0xfe, 0x0a])]));
  assertError(bad, 400, 'validation_failed');
  assert.match(bad.body.error.message, /^line 2: not UTF-8/);
  assertError(await server.request('GET', '/v1/aggregates/imp/i-1'), 404, 'not_found');
  const ok = await post(`${line('9223372036854775807')}\n`);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.imported, 1);
});

test('fuzz-findings - a plugin definition naming an impossible tenant or aggregate type is refused', { timeout: 20_000 }, async () => {
  const put = (body: unknown) => server.request('PUT', '/v1/plugins/fz', body);
  assertError(await put({ enabled: false, tenants: ['BAD!'], options: { kind: 'log' } }), 400, 'validation_failed');
  assertError(await put({ enabled: false, aggregate_types: ['a/b'], options: { kind: 'log' } }), 400, 'validation_failed');
  assertError(await server.request('GET', '/v1/plugins/fz'), 404, 'not_found');
  const ok = await put({ enabled: false, tenants: ['default'], aggregate_types: ['acct'], options: { kind: 'log' } });
  assert.ok(ok.status === 200 || ok.status === 201, JSON.stringify(ok.body));
});

test('fuzz-findings - a body that stops arriving gets its 408 within about request_timeout_ms', { timeout: 20_000 }, async () => {
  const url = new URL(slow.url);
  const started = Date.now();
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(`POST /v1/aggregates/acct/s-1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${slow.token}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"event_type":`);
    });
    let text = '';
    socket.on('data', (d) => (text += d.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
  const waited = Date.now() - started;
  assert.match(answer, /^HTTP\/1\.1 408 /);
  assert.match(answer, /"code":"request_timeout"/);
  assert.ok(waited < 1500 + 1000, `408 after ${waited} ms (request_timeout_ms = 1500)`);
  assertError(await slow.request('GET', '/v1/aggregates/acct/s-1'), 404, 'not_found');
});

test('fuzz-findings - every validation_failed lists its fields in details; a bad jti is named as a jti', { timeout: 20_000 }, async () => {
  const answers = [
    await server.request('GET', '/v1/aggregates/acct/f-1/proof'),
    await server.request('GET', '/v1/aggregates?include_archived=true&archived_only=true'),
    await server.request('POST', '/v1/aggregates/acct/f-1/patch', { event_type: 'acct_patched', patch: [{ op: 'replace', path: '', value: [1] }] }),
  ];
  for (const res of answers) {
    assertError(res, 400, 'validation_failed');
    assert.ok(Array.isArray(res.body.error.details) && res.body.error.details.length > 0, `details list the fields: ${JSON.stringify(res.body)}`);
    for (const d of res.body.error.details) assert.ok(typeof d.path === 'string' && typeof d.message === 'string', JSON.stringify(d));
  }
  assert.deepEqual(await headOf(server, 'acct', 'f-1'), baseline);
  const jti = await server.request('GET', '/v1/tokens/%00');
  assertError(jti, 400, 'validation_failed');
  assert.match(jti.body.error.message, /jti/);
  assert.doesNotMatch(jti.body.error.message, /aggregate_id/);
});

test('fuzz-findings - a number that underflows a double is refused, not stored as 0', { timeout: 20_000 }, async () => {
  const err = await refused(EVENTS, '{"event_type":"a_b","payload":{"tiny":1e-400}}', 400, 'validation_failed');
  assert.match(err.message, /^body\.payload\.tiny: number 1e-400 is too small/);
  // Zero written any way is zero; small numbers a double holds are fine.
  const ok = await server.request('POST', EVENTS, '{"event_type":"a_b","payload":{"z":0.0e-400,"n":-0,"small":5e-324}}');
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  assert.equal(ok.body.payload.small, 5e-324);
  baseline = await headOf(server, 'acct', 'f-1');
});

test('fuzz-findings - a CSV export names an empty state key field: and quotes cells with control characters', { timeout: 20_000 }, async () => {
  const created = await server.request('POST', '/v1/aggregates/odd_keys/k-1', { event_type: 'odd_set', payload: { '': 'empty', 'a\u0000b': 'tab\there', 'field:': 1, plain: 'x' } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const res = await server.request('GET', '/v1/export?type=odd_keys&format=csv');
  assert.equal(res.status, 200);
  const [header, row] = (res.body as string).split('\r\n');
  // Escaped names are injective: '' -> 'field:', 'field:' -> 'field:field:'.
  assert.equal(header, '__aggregate_id,field:,"a\u0000b",field:field:,plain');
  assert.equal(row, 'k-1,empty,"tab\there",1,x');
});
