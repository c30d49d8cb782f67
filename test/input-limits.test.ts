/**
 * Input limits at the edge and in the worker (issue 7, items 1, 9, 11): JSON nesting depth and node
 * count, I-JSON (RFC 7493: well-formed Unicode, finite numbers, integers within ±(2^53−1)), and the
 * size of every event and resulting state. A refused write leaves the aggregate exactly as it was,
 * and the server keeps answering. The server runs with non-default `[limits]` so the test also
 * proves the config keys reach both the HTTP edge and the shard workers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../src/core/index.js';
import { useServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

const DEPTH_MAX = 20;
const NODES_MAX = 5000;
const STATE_BYTES_MAX = 64 * 1024;
const EVENT_BYTES_MAX = 32 * 1024;

const server = useServer({
  configToml: `[limits]\njson_depth_max = ${DEPTH_MAX}\njson_nodes_max = ${NODES_MAX}\nstate_bytes_max = ${STATE_BYTES_MAX}\nevent_bytes_max = ${EVENT_BYTES_MAX}\n`,
});

/** `{"a":[[…[]…]]}` nested `depth` levels in all (the payload object is level 1). */
function nestedText(depth: number): string {
  return `{"a":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
}

async function aggregate(type: string, id: string): Promise<{ version: number; state: unknown; merkle_root: string }> {
  const res = await server.request('GET', `/v1/aggregates/${type}/${id}`);
  assert.equal(res.status, 200, brief(res.body));
  return { version: res.body.version, state: res.body.state, merkle_root: res.body.merkle_root };
}

/** Posts raw JSON text (so escapes like \ud800 and numbers like 1e309 reach the parser as written). */
function post(path: string, text: string) {
  return server.request('POST', path, text, { 'content-type': 'application/json' });
}

/** A short view of an answer for assertion messages (some bodies here are large). */
const brief = (body: unknown): string => JSON.stringify(body)?.slice(0, 300) ?? String(body);

function assertRefused(res: { status: number; body: any }, status: number, code: string, mention: RegExp): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${brief(res.body)}`);
  assertError(res, status, code);
  assert.match(res.body.error.message, mention, `message names the cause: ${res.body.error.message}`);
}

test('input-limits - the [limits] keys have sensible defaults', () => {
  const { limits } = configSchema.parse({});
  assert.deepEqual(limits, { json_depth_max: 64, json_nodes_max: 100_000, state_bytes_max: 4 * 1024 * 1024, event_bytes_max: 512 * 1024 });
});

test('input-limits - a payload nested 3,000 levels deep is refused with 400 and the server keeps answering', { timeout: 30_000 }, async () => {
  const res = await post('/v1/aggregates/doc/deep-1/events', `{"event_type":"doc_set","payload":${nestedText(3000)}}`);
  assertRefused(res, 400, 'validation_failed', /body\.payload.*json_depth_max \(20\)/);
  // Metadata, patch values and batch items are walked the same way.
  assertRefused(await post('/v1/aggregates/doc/deep-1/events', `{"event_type":"doc_set","metadata":{"@x":${nestedText(3000)}}}`), 400, 'validation_failed', /body\.metadata.*json_depth_max/);
  assertRefused(
    await post('/v1/batch', `{"events":[{"aggregate_type":"doc","aggregate_id":"deep-1","event_type":"doc_set","payload":${nestedText(3000)}}]}`),
    400,
    'validation_failed',
    /body\.events\.0\.payload.*json_depth_max/,
  );
  // The server still takes writes and answers reads and lists of that tenant.
  const ok = await server.request('POST', '/v1/aggregates/doc/deep-1/events', { event_type: 'doc_set', payload: { n: 1 } });
  assert.equal(ok.status, 201, brief(ok.body));
  assert.equal((await aggregate('doc', 'deep-1')).version, 1);
  const list = await server.request('GET', '/v1/aggregates/doc');
  assert.equal(list.status, 200);
  const patch = await post('/v1/aggregates/doc/deep-1/patch', `{"event_type":"doc_patched","patch":[{"op":"add","path":"/b","value":${nestedText(3000)}}]}`);
  assertRefused(patch, 400, 'validation_failed', /body\.patch\.0\.value.*json_depth_max/);
  assert.equal((await aggregate('doc', 'deep-1')).version, 1);
});

test('input-limits - a payload with more nodes than json_nodes_max is refused with 400', { timeout: 20_000 }, async () => {
  const res = await server.request('POST', '/v1/aggregates/doc/nodes-1/events', { event_type: 'doc_set', payload: { list: new Array(NODES_MAX).fill(0) } });
  assertRefused(res, 400, 'validation_failed', /body\.payload.*json_nodes_max \(5000\)/);
  assert.equal((await server.request('GET', '/v1/aggregates/doc/nodes-1')).status, 404);
});

test('input-limits - a write just under every limit is accepted', { timeout: 20_000 }, async () => {
  // Depth exactly json_depth_max; nodes exactly json_nodes_max (payload object + list + its items).
  const deep = await post('/v1/aggregates/doc/under-1', `{"event_type":"doc_created","payload":${nestedText(DEPTH_MAX)}}`);
  assert.equal(deep.status, 201, brief(deep.body));
  const wide = await server.request('POST', '/v1/aggregates/doc/under-1/events', { event_type: 'doc_set', payload: { list: new Array(NODES_MAX - 2).fill(0) } });
  assert.equal(wide.status, 201, brief(wide.body));
  const safe = await post('/v1/aggregates/doc/under-1/events', '{"event_type":"doc_set","payload":{"max":9007199254740991,"min":-9007199254740991,"big":1e15,"tiny":5e-324}}');
  assert.equal(safe.status, 201, brief(safe.body));
  assert.equal(safe.body.payload.max, Number.MAX_SAFE_INTEGER);
  // A state that ends just under state_bytes_max: the patch doubles it three times to ~48 KiB.
  await server.request('POST', '/v1/aggregates/doc/under-2', { event_type: 'doc_created', payload: { s: 'x'.repeat(6000) } });
  const grow = await server.request('POST', '/v1/aggregates/doc/under-2/patch', {
    event_type: 'doc_patched',
    patch: [1, 2, 3].map((n) => ({ op: 'copy', from: '', path: `/c${n}` })),
  });
  assert.equal(grow.status, 201, brief(grow.body));
  const size = Buffer.byteLength(JSON.stringify((await aggregate('doc', 'under-2')).state));
  assert.ok(size > 40_000 && size < STATE_BYTES_MAX, `state is ${size} bytes`);
});

test('input-limits - strings that are not well-formed Unicode are refused with 400 (I-JSON)', { timeout: 20_000 }, async () => {
  await server.request('POST', '/v1/aggregates/doc/utf-1', { event_type: 'doc_created', payload: { name: 'Ada' } });
  const before = await aggregate('doc', 'utf-1');
  const bodies = [
    ['/v1/aggregates/doc/utf-1/events', '{"event_type":"doc_set","payload":{"name":"\\ud800"}}', /body\.payload\.name.*Unicode/],
    ['/v1/aggregates/doc/utf-1/events', '{"event_type":"doc_set","payload":{"x\\udc00":1}}', /body\.payload.*Unicode/],
    ['/v1/aggregates/doc/utf-1/events', '{"event_type":"doc_set","payload":{"a":[{"b":"ok \\udbff"}]}}', /body\.payload\.a\.0\.b.*Unicode/],
    ['/v1/aggregates/doc/utf-1/events', '{"event_type":"doc_set","metadata":{"@m":"\\ud800"}}', /body\.metadata.*Unicode/],
    ['/v1/aggregates/doc/utf-1/events', '{"event_type":"doc_set","note":"\\ud800"}', /body\.note.*Unicode/],
    ['/v1/aggregates/doc/utf-1/events', '{"event_type":"doc_set","idempotency_key":"k\\ud800"}', /body\.idempotency_key.*Unicode/],
    ['/v1/aggregates/doc/utf-1/patch', '{"event_type":"doc_patched","patch":[{"op":"add","path":"/n","value":"\\ud800"}]}', /body\.patch\.0\.value.*Unicode/],
    ['/v1/aggregates/doc/utf-1/patch', '{"event_type":"doc_patched","patch":[{"op":"add","path":"/\\ud800","value":1}]}', /body\.patch\.0\.path.*Unicode/],
    ['/v1/batch', '{"events":[{"aggregate_type":"doc","aggregate_id":"utf-1","event_type":"doc_set","payload":{"n":"\\udfff"}}]}', /body\.events\.0\.payload\.n.*Unicode/],
  ] as const;
  for (const [path, text, mention] of bodies) assertRefused(await post(path, text), 400, 'validation_failed', mention);
  assert.deepEqual(await aggregate('doc', 'utf-1'), before);
  // A well-formed pair (an emoji written as escapes) is fine and comes back intact.
  const pair = await post('/v1/aggregates/doc/utf-1/events', '{"event_type":"doc_set","payload":{"name":"\\ud83d\\ude00"}}');
  assert.equal(pair.status, 201, brief(pair.body));
  assert.deepEqual((await aggregate('doc', 'utf-1')).state, { name: '\u{1F600}' });
  // Query strings cannot carry a lone surrogate (percent-decoding is UTF-8); a bad sequence is not a 500.
  const query = await server.request('GET', `/v1/aggregates?filter=${encodeURIComponent('name = "')}%ED%A0%80%22`);
  assert.ok(query.status === 200 || query.status === 400, `query answered ${query.status}`);
});

test('input-limits - 1e309 and integers beyond 2^53 are refused with 400 (I-JSON)', { timeout: 20_000 }, async () => {
  await server.request('POST', '/v1/aggregates/doc/num-1', { event_type: 'doc_created', payload: { n: 1 } });
  const before = await aggregate('doc', 'num-1');
  const events = '/v1/aggregates/doc/num-1/events';
  assertRefused(await post(events, '{"event_type":"doc_set","payload":{"n":1e309}}'), 400, 'validation_failed', /body\.payload\.n.*finite/);
  assertRefused(await post(events, '{"event_type":"doc_set","payload":{"n":-1e309}}'), 400, 'validation_failed', /finite/);
  assertRefused(await post(events, '{"event_type":"doc_set","expected_version":1e309}'), 400, 'validation_failed', /expected_version/);
  const big = await post(events, '{"event_type":"doc_set","payload":{"n":9007199254740994}}');
  assertRefused(big, 400, 'validation_failed', /body\.payload\.n.*2\^53.*string.*RFC 7493/);
  assertRefused(await post(events, '{"event_type":"doc_set","payload":{"l":[-9007199254740994]}}'), 400, 'validation_failed', /body\.payload\.l\.0.*string/);
  assertRefused(await post(events, '{"event_type":"doc_set","metadata":{"@n":9007199254740992}}'), 400, 'validation_failed', /body\.metadata.*string/);
  assertRefused(
    await post('/v1/aggregates/doc/num-1/patch', '{"event_type":"doc_patched","patch":[{"op":"replace","path":"/n","value":1e309}]}'),
    400,
    'validation_failed',
    /body\.patch\.0\.value.*finite/,
  );
  assertRefused(
    await post('/v1/batch', '{"events":[{"aggregate_type":"doc","aggregate_id":"num-1","event_type":"doc_set","payload":{"n":9007199254740994}}]}'),
    400,
    'validation_failed',
    /body\.events\.0\.payload\.n.*string/,
  );
  assert.deepEqual(await aggregate('doc', 'num-1'), before);
});

test('input-limits - a patch bomb is refused with 413 and the aggregate is unchanged', { timeout: 30_000 }, async () => {
  await server.request('POST', '/v1/aggregates/doc/bomb-1', { event_type: 'doc_created', payload: { name: 'Ada', tags: ['a', 'b'] } });
  const before = await aggregate('doc', 'bomb-1');
  const bomb = { event_type: 'doc_patched', patch: Array.from({ length: 18 }, (_, i) => ({ op: 'copy', from: '', path: `/c${i}` })) };
  assert.ok(JSON.stringify(bomb).length < 1024, 'a small request');
  // Good writes sent in the same turn share the bomb's group commit and must not be tainted by it.
  const [refused, ...others] = await Promise.all([
    server.request('POST', '/v1/aggregates/doc/bomb-1/patch', bomb),
    ...[1, 2, 3].map((n) => server.request('POST', `/v1/aggregates/doc/bystander-${n}`, { event_type: 'doc_created', payload: { n } })),
  ]);
  assertRefused(refused as { status: number; body: any }, 413, 'payload_too_large', /state_bytes_max \(65536\)/);
  for (const res of others) assert.equal(res.status, 201, brief(res.body));
  assert.deepEqual(await aggregate('doc', 'bomb-1'), before);
  // Inside an atomic batch the whole batch is refused.
  const batch = await server.request('POST', '/v1/batch', {
    events: [
      { aggregate_type: 'doc', aggregate_id: 'bomb-1', event_type: 'doc_set', payload: { ok: true } },
      { aggregate_type: 'doc', aggregate_id: 'bomb-1', ...bomb },
    ],
  });
  assertRefused(batch, 413, 'payload_too_large', /state_bytes_max/);
  assert.deepEqual(await aggregate('doc', 'bomb-1'), before);
});

test('input-limits - merges that grow the state past state_bytes_max are refused with 413', { timeout: 20_000 }, async () => {
  const chunk = 'x'.repeat(20_000);
  assert.equal((await server.request('POST', '/v1/aggregates/doc/grow-1', { event_type: 'doc_created', payload: { a: chunk } })).status, 201);
  assert.equal((await server.request('POST', '/v1/aggregates/doc/grow-1/events', { event_type: 'doc_set', payload: { b: chunk } })).status, 201);
  // Overwriting a key does not grow the state: still accepted.
  assert.equal((await server.request('POST', '/v1/aggregates/doc/grow-1/events', { event_type: 'doc_set', payload: { a: chunk } })).status, 201);
  const before = await aggregate('doc', 'grow-1');
  const res = await server.request('POST', '/v1/aggregates/doc/grow-1/events', { event_type: 'doc_set', payload: { c: chunk, d: chunk } });
  assertRefused(res, 413, 'payload_too_large', /state_bytes_max \(65536\)/);
  assert.deepEqual(await aggregate('doc', 'grow-1'), before);
});

test('input-limits - an event larger than event_bytes_max is refused with 413', { timeout: 20_000 }, async () => {
  const res = await server.request('POST', '/v1/aggregates/doc/event-1', { event_type: 'doc_created', payload: { s: 'x'.repeat(EVENT_BYTES_MAX) } });
  assertRefused(res, 413, 'payload_too_large', /event_bytes_max \(32768\)/);
  assert.equal((await server.request('GET', '/v1/aggregates/doc/event-1')).status, 404);
  const ok = await server.request('POST', '/v1/aggregates/doc/event-1', { event_type: 'doc_created', payload: { s: 'x'.repeat(EVENT_BYTES_MAX - 1024) } });
  assert.equal(ok.status, 201, brief(ok.body));
});

test('input-limits - a patch is stored exactly as sent, and a move of the root into itself is refused', { timeout: 20_000 }, async () => {
  await server.request('POST', '/v1/aggregates/doc/move-1', { event_type: 'doc_created', payload: { name: 'Ada' } });
  // A later operation editing inside an earlier one's value must not edit the stored patch.
  const sent = [{ op: 'add', path: '/obj', value: {} }, { op: 'add', path: '/obj/b', value: 1 }];
  const patched = await server.request('POST', '/v1/aggregates/doc/move-1/patch', { event_type: 'doc_patched', patch: sent });
  assert.equal(patched.status, 201, brief(patched.body));
  assert.deepEqual(patched.body.payload, sent);
  assert.deepEqual((await aggregate('doc', 'move-1')).state, { name: 'Ada', obj: { b: 1 } });
  const before = await aggregate('doc', 'move-1');
  // `move from ""` would make the state contain itself; it used to fail the whole group commit (503).
  const [cycle, bystander] = await Promise.all([
    server.request('POST', '/v1/aggregates/doc/move-1/patch', { event_type: 'doc_patched', patch: [{ op: 'move', from: '', path: '/x' }] }),
    server.request('POST', '/v1/aggregates/doc/move-bystander', { event_type: 'doc_created', payload: {} }),
  ]);
  assertRefused(cycle, 400, 'validation_failed', /prefix/);
  assert.equal(bystander.status, 201, brief(bystander.body));
  assertRefused(
    await server.request('POST', '/v1/aggregates/doc/move-1/patch', { event_type: 'doc_patched', patch: [{ op: 'move', from: '/obj', path: '/obj/c' }] }),
    400,
    'validation_failed',
    /prefix/,
  );
  assert.deepEqual(await aggregate('doc', 'move-1'), before);
});

test('input-limits - a patch may not nest the state deeper than json_depth_max', { timeout: 20_000 }, async () => {
  await post('/v1/aggregates/doc/nest-1', `{"event_type":"doc_created","payload":${nestedText(DEPTH_MAX - 1)}}`);
  const before = await aggregate('doc', 'nest-1');
  // Each value is within the limit, but copying the whole state one level down is not.
  const res = await server.request('POST', '/v1/aggregates/doc/nest-1/patch', {
    event_type: 'doc_patched',
    patch: [{ op: 'add', path: '/w', value: {} }, { op: 'copy', from: '', path: '/w/copy' }],
  });
  assertRefused(res, 400, 'validation_failed', /json_depth_max \(20\)/);
  assert.deepEqual(await aggregate('doc', 'nest-1'), before);
});

test('input-limits - an imported event is held to event_bytes_max to the byte (its stored size is measured before the worker places it)', { timeout: 20_000 }, async () => {
  // The stored record is the line's fields plus hash and merkle_root, 64 hex digits each; 'é' is 2 UTF-8 bytes.
  const record = (id: string, eventId: string, filler: string) => ({
    aggregate_type: 'doc',
    aggregate_id: id,
    event_type: 'doc_imported',
    version: 1,
    payload: { s: filler },
    extensions: {},
    metadata: { event_id: eventId, created_at: '2025-01-02T03:04:05.678Z', issued_by: { group: 'import', user: 'limits' } },
  });
  const storedBytes = (r: object) => Buffer.byteLength(JSON.stringify({ ...r, hash: '0'.repeat(64), merkle_root: '0'.repeat(64) }), 'utf8');
  const fit = (id: string, eventId: string, extra: number) => {
    const base = storedBytes(record(id, eventId, 'é'));
    const filler = 'é' + 'x'.repeat(EVENT_BYTES_MAX - base + extra);
    const r = record(id, eventId, filler);
    assert.equal(storedBytes(r), EVENT_BYTES_MAX + extra);
    return JSON.stringify(r) + '\n';
  };
  const over = await server.request('POST', '/v1/import', fit('import-over', '910000000000000001', 1), { 'content-type': 'application/x-ndjson' });
  assertRefused(over, 413, 'payload_too_large', /event_bytes_max \(32768\)/);
  assert.equal((await server.request('GET', '/v1/aggregates/doc/import-over')).status, 404);
  const exact = await server.request('POST', '/v1/import', fit('import-exact', '910000000000000002', 0), { 'content-type': 'application/x-ndjson' });
  assert.equal(exact.status, 200, brief(exact.body));
  const stored = await server.request('GET', '/v1/aggregates/doc/import-exact/events');
  assert.equal(stored.status, 200, brief(stored.body));
  // What the server returns is the stored record: exactly at the limit.
  assert.equal(Buffer.byteLength(JSON.stringify(stored.body.items[0]), 'utf8'), EVENT_BYTES_MAX);
  const verify = await server.request('GET', '/v1/aggregates/doc/import-exact/verify');
  assert.equal(verify.status, 200, brief(verify.body));
  assert.equal(verify.body.valid, true);
});
