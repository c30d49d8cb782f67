/**
 * Bad input (DESIGN §3, §6): every input is validated at the edge; every refusal uses the error
 * model; a refused write leaves the aggregate's version and Merkle root exactly as they were.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError, headOf } from './helpers/assertions.js';

let server: TestServer;
let baseline: { version: number; merkle_root: string } | null;

before(async () => {
  server = await startServerInProcess();
  await server.request('POST', '/v1/aggregates/person/b-1', { event_type: 'person_created', payload: { name: 'Ada' } });
  await server.request('POST', '/v1/aggregates/person/b-1/events', { event_type: 'person_named', payload: { name: 'Grace' } });
  baseline = await headOf(server, 'person', 'b-1');
  assert.equal(baseline?.version, 2);
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

/** Sends a write that must be refused, then checks nothing changed on person/b-1. */
async function refused(path: string, body: unknown, status: number, code: string, headers?: Record<string, string>): Promise<any> {
  const res = await server.request('POST', path, body, headers);
  assertError(res, status, code);
  assert.deepEqual(await headOf(server, 'person', 'b-1'), baseline, `person/b-1 unchanged after ${path}`);
  return res.body.error;
}

const EVENTS = '/v1/aggregates/person/b-1/events';

test('bad-input - malformed JSON, empty and non-JSON bodies are refused with 400', { timeout: 20_000 }, async () => {
  await refused(EVENTS, '{"event_type": "x", ', 400, 'invalid_input');
  await refused(EVENTS, '', 400, 'invalid_input', { 'content-type': 'application/json' });
  await refused(EVENTS, '<event/>', 400, 'invalid_input', { 'content-type': 'application/xml' });
  // fastify reads text/plain as a string, which then fails validation as a non-object body.
  await refused(EVENTS, 'event_type=x', 400, 'validation_failed', { 'content-type': 'text/plain' });
  await refused(EVENTS, '[1,2,3]', 400, 'validation_failed');
  await refused(EVENTS, 'null', 400, 'invalid_input');
});

test('bad-input - unknown fields and wrong types are 400 validation_failed with per-field details', { timeout: 20_000 }, async () => {
  const unknown = await refused(EVENTS, { event_type: 'person_named', payload: {}, colour: 'red' }, 400, 'validation_failed');
  assert.ok(Array.isArray(unknown.details));
  assert.ok(unknown.details.some((d: { path: string; message: string }) => d.path.startsWith('body') && typeof d.message === 'string'));
  await refused(EVENTS, { payload: {} }, 400, 'validation_failed');
  await refused(EVENTS, { event_type: 'person_named', payload: 'not an object' }, 400, 'validation_failed');
  await refused(EVENTS, { event_type: 'person_named', payload: [1, 2] }, 400, 'validation_failed');
  await refused(EVENTS, { event_type: 'person_named', expected_version: -1 }, 400, 'validation_failed');
  await refused(EVENTS, { event_type: 'person_named', expected_version: 1.5 }, 400, 'validation_failed');
  await refused(EVENTS, { event_type: 'person_named', idempotency_key: 'k'.repeat(129) }, 400, 'validation_failed');
  await refused('/v1/aggregates/person/b-1/patch', { event_type: 'p', patch: [] }, 400, 'validation_failed');
  await refused('/v1/aggregates/person/b-1/patch', { event_type: 'p', patch: [{ op: 'jump', path: '/x' }] }, 400, 'validation_failed');
  await refused('/v1/aggregates/person/b-1/patch', { event_type: 'p', patch: [{ op: 'remove', path: '/nope' }] }, 400, 'validation_failed');
  await refused('/v1/aggregates/person/b-1/patch', { event_type: 'p', patch: [{ op: 'add', path: '/a~2b', value: 1 }] }, 400, 'validation_failed');
  await refused('/v1/aggregates/person/b-1/patch', { event_type: 'p', patch: [{ op: 'copy', path: '/x', from: '/a~' }] }, 400, 'validation_failed');
  await refused('/v1/aggregates/person/b-1/patch', { event_type: 'p', patch: [{ op: 'test', path: '/name', value: 'Ada' }] }, 400, 'validation_failed');
  await refused('/v1/aggregates/person/b-1/archive', { reason: 'x' }, 400, 'validation_failed');
  await refused('/v1/batch', { events: [] }, 400, 'validation_failed');
  await refused('/v1/batch', { events: [{ aggregate_type: 'person', aggregate_id: 'b-1', event_type: 'ok' }, { aggregate_type: 'person', event_type: 'x' }] }, 400, 'validation_failed');
});

test('bad-input - bad names: uppercase type, id with spaces, 129-char id, reserved event type', { timeout: 20_000 }, async () => {
  await refused('/v1/aggregates/Person/b-1/events', { event_type: 'person_named' }, 400, 'validation_failed');
  await refused('/v1/aggregates/person/b%201/events', { event_type: 'person_named' }, 400, 'validation_failed');
  await refused('/v1/aggregates/person/b:1/events', { event_type: 'person_named' }, 400, 'validation_failed');
  await refused(`/v1/aggregates/person/${'x'.repeat(129)}/events`, { event_type: 'person_named' }, 400, 'validation_failed');
  await refused(`/v1/aggregates/person/${'x'.repeat(300)}/events`, { event_type: 'person_named' }, 400, 'invalid_input');
  await refused('/v1/aggregates/person/b%E0%A4%A/events', { event_type: 'person_named' }, 400, 'invalid_input');
  await refused(`/v1/aggregates/${'t'.repeat(65)}/b-1/events`, { event_type: 'person_named' }, 400, 'validation_failed');
  await refused(EVENTS, { event_type: 'PersonNamed' }, 400, 'validation_failed');
  await refused(EVENTS, { event_type: 'aggregate_archived' }, 400, 'validation_failed');
  await refused('/v1/events', { aggregate_type: 'person', aggregate_id: 'b 1', event_type: 'person_named' }, 400, 'validation_failed');
  await refused(EVENTS, { event_type: 'person_named' }, 400, 'validation_failed', { 'x-tenant-id': 'bad tenant!' });
  // The limits themselves are accepted.
  const longest = await server.request('POST', `/v1/aggregates/person/${'x'.repeat(128)}/events`, { event_type: 'person_named' });
  assert.equal(longest.status, 201);
});

test('bad-input - a payload over 256 KiB is 413 payload_too_large', { timeout: 20_000 }, async () => {
  const big = { blob: 'x'.repeat(256 * 1024) };
  await refused(EVENTS, { event_type: 'person_named', payload: big }, 413, 'payload_too_large');
  await refused('/v1/aggregates/person/b-1/patch', { event_type: 'p', patch: [{ op: 'add', path: '/blob', value: big.blob }] }, 413, 'payload_too_large');
  await refused(EVENTS, { event_type: 'person_named', metadata: { '@big': 'x'.repeat(64 * 1024) } }, 413, 'payload_too_large');
  // Over the HTTP body limit (1 MiB by default) it is refused before parsing.
  await refused(EVENTS, { event_type: 'person_named', payload: { blob: 'x'.repeat(1100 * 1024) } }, 413, 'payload_too_large');
  const fits = await server.request('POST', '/v1/aggregates/person/b-big/events', { event_type: 'person_named', payload: { blob: 'x'.repeat(200 * 1024) } });
  assert.equal(fits.status, 201);
});

test('bad-input - metadata keys must start with @; a note is at most 128 characters', { timeout: 20_000 }, async () => {
  const meta = await refused(EVENTS, { event_type: 'person_named', metadata: { trace: 'abc' } }, 400, 'validation_failed');
  assert.match(JSON.stringify(meta.details), /@/);
  await refused(EVENTS, { event_type: 'person_named', metadata: { '@': 'empty name' } }, 400, 'validation_failed');
  await refused(EVENTS, { event_type: 'person_named', note: 'n'.repeat(129) }, 400, 'validation_failed');
  const ok = await server.request('POST', '/v1/aggregates/person/b-note/events', { event_type: 'person_named', note: 'n'.repeat(128), metadata: { '@trace': 'abc' } });
  assert.equal(ok.status, 201);
});

test('bad-input - bad query parameters and cursors are 400', { timeout: 20_000 }, async () => {
  const bad: [string, string][] = [
    ['/v1/aggregates?take=-1', 'validation_failed'],
    ['/v1/aggregates?take=abc', 'validation_failed'],
    ['/v1/aggregates?colour=red', 'validation_failed'],
    ['/v1/aggregates?include_archived=maybe', 'validation_failed'],
    ['/v1/aggregates?include_archived=true&archived_only=true', 'validation_failed'],
    ['/v1/aggregates/person/b-1?version=two', 'validation_failed'],
    ['/v1/aggregates/person/b-1?include_events=yes', 'validation_failed'],
    ['/v1/aggregates/person/b-1/select', 'validation_failed'],
    ['/v1/aggregates/person/b-1/select?fields=,,', 'validation_failed'],
    ['/v1/aggregates/person/b-1/proof', 'validation_failed'],
    ['/v1/aggregates/person/b-1/proof?version=0', 'validation_failed'],
    ['/v1/aggregates/person/b-1/proof?version=3&size=2', 'invalid_input'],
    ['/v1/aggregates/person/b-1/proof?from_size=3&to_size=2', 'invalid_input'],
    ['/v1/aggregates?cursor=garbage', 'invalid_input'],
    ['/v1/aggregates?cursor=x:person:b-1', 'invalid_input'],
    ['/v1/aggregates?cursor=a:person', 'invalid_input'],
    ['/v1/aggregates/person/b-1/events?cursor=a:person:b-1:notanumber', 'invalid_input'],
    ['/v1/aggregates/person/b-1/events?cursor=a:person:b-1', 'invalid_input'],
    ['/v1/events?cursor=r::b-1:1', 'invalid_input'],
    [`/v1/events?filter=${encodeURIComponent('name ==== 1')}`, 'invalid_input'],
    [`/v1/aggregates?filter=${'x'.repeat(5000)}`, 'validation_failed'],
  ];
  for (const [path, code] of bad) {
    const res = await server.request('GET', path);
    assert.equal(res.status, 400, `${path} → ${res.status} ${JSON.stringify(res.body)}`);
    assertError(res, 400, code);
  }
  const empty = await server.request('GET', '/v1/aggregates?take=0');
  assert.deepEqual(empty.body, { items: [], next_cursor: null });
});
