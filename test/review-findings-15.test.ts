/**
 * Findings of audits of the core write path and of schemas (2026-12-07, third session), each
 * pinned: contending cross-worker batches are retried instead of refused; `?version=N` answers
 * version N's time whether or not a manual snapshot sits there; a duplicate imported event id
 * does not name the wrong aggregate; one problem is one entry in `validation_failed` details; a
 * patch follows its event's `fields` list; `hidden_fields` hides a top-level key holding a dot;
 * hanging plugins cannot take a healthy plugin's share of the delivery pool; PUT of a plugin
 * refuses a body naming another one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { shardFor } from '../src/core/index.js';
import { readLayout, workerOfShard } from '../src/coordinator/layout.js';
import { httpRequest, removeDir, startServerInProcess, tempDataDir, useServer, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';
import { until } from './helpers/deadline.js';
import { receiver } from './helpers/receiver.js';

const server = useServer();

const NDJSON = { 'content-type': 'application/x-ndjson' };

test('batches across two workers that share aggregates all commit: a prepare meeting another batch is retried, not answered 503', { timeout: 60_000 }, async () => {
  const dataDir = tempDataDir('edbx-rf15-');
  const two = await startServerInProcess({ dataDir, configToml: '[storage]\nworkers = 2\n' });
  try {
    const layout = readLayout(dataDir);
    assert.ok(layout && layout.workers === 2);
    const workerOf = (id: string): number => workerOfShard(shardFor({ shardCount: layout.shard_count, multiTenant: false }, 'default', 'cw', id), layout);
    const ids = Array.from({ length: 32 }, (_, i) => `a${i}`);
    const chosen = [...ids.filter((id) => workerOf(id) === 0).slice(0, 2), ...ids.filter((id) => workerOf(id) === 1).slice(0, 2)];
    assert.equal(chosen.length, 4);
    const body = { events: chosen.map((id) => ({ aggregate_type: 'cw', aggregate_id: id, event_type: 'x', payload: {} })) };
    const rounds = 8;
    const statuses: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const answers = await Promise.all(Array.from({ length: 4 }, () => two.request('POST', '/v1/batch', body)));
      statuses.push(...answers.map((a) => a.status));
    }
    assert.deepEqual(statuses, new Array(rounds * 4).fill(201), `every batch commits: ${statuses.join(',')}`);
    for (const id of chosen) {
      const events = await two.request('GET', `/v1/aggregates/cw/${id}/events?take=1000`);
      assert.deepEqual(events.body.items.map((e: { version: number }) => e.version), Array.from({ length: rounds * 4 }, (_, i) => i + 1));
    }
  } finally {
    await two.stop();
    removeDir(dataDir);
  }
});

test('GET ?version=N answers the time of version N even when a manual snapshot sits at N', { timeout: 20_000 }, async () => {
  for (let i = 1; i <= 3; i++) assert.equal((await server.request('POST', '/v1/aggregates/ts/t1/events', { event_type: 'x', payload: { i } })).status, 201);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal((await server.request('POST', '/v1/aggregates/ts/t1/snapshots', {})).status, 201);
  assert.equal((await server.request('POST', '/v1/aggregates/ts/t1/events', { event_type: 'x', payload: { i: 4 } })).status, 201);
  const events = (await server.request('GET', '/v1/aggregates/ts/t1/events')).body.items as { version: number; metadata: { created_at: string } }[];
  for (const v of [1, 2, 3]) {
    const at = await server.request('GET', `/v1/aggregates/ts/t1?version=${v}`);
    assert.equal(at.status, 200);
    assert.equal(at.body.updated_at, events[v - 1]?.metadata.created_at, `version ${v}`);
  }
});

test('an imported line whose event_id is taken names itself, not a holder it is not', { timeout: 20_000 }, async () => {
  const stored = await server.request('POST', '/v1/aggregates/dup/d-1/events', { event_type: 'x', payload: { a: 1 } });
  assert.equal(stored.status, 201);
  const line = { ...stored.body, aggregate_id: 'd-2' };
  delete line.hash;
  delete line.merkle_root;
  const refused = await server.request('POST', '/v1/import', JSON.stringify(line) + '\n', NDJSON);
  assertError(refused, 409, 'already_exists');
  const message = refused.body.error.message as string;
  assert.match(message, /line 1: event_id \d+ is already stored, by another event \(this line: aggregate dup\/d-2 version 1/);
  assert.equal((await server.request('GET', '/v1/aggregates/dup/d-2')).status, 404);
});

test('one problem is one entry of validation_failed details (an unsafe integer breaks two checks of one field)', { timeout: 20_000 }, async () => {
  const take = await server.request('GET', '/v1/aggregates/pg?take=99999999999999999999999');
  assertError(take, 400, 'validation_failed');
  assert.equal(take.body.error.details.length, 1, JSON.stringify(take.body.error.details));
  const version = await server.request('POST', '/v1/aggregates/fz/f-1/events', { event_type: 'x', payload: {}, expected_version: 1e300 });
  assertError(version, 400, 'validation_failed');
  assert.equal(version.body.error.details.length, 1, JSON.stringify(version.body.error.details));
  assert.equal(version.body.error.details[0].field, 'expected_version');
});

test("a patch is held to its event's fields list like an apply, and a refusal writes nothing", { timeout: 20_000 }, async () => {
  const schema = {
    aggregate: 'order',
    events: { order_created: {}, order_paid: { fields: ['paid', 'amount'] } },
    column_types: { paid: 'boolean', amount: 'decimal(8,2)', name: 'text' },
  };
  assert.equal((await server.request('PUT', '/v1/schemas/order', schema)).status, 200);
  assert.equal((await server.request('POST', '/v1/aggregates/order/o1', { event_type: 'order_created', payload: { name: 'Ada' } })).status, 201);
  const before = (await server.request('GET', '/v1/aggregates/order/o1')).body;
  const apply = await server.request('POST', '/v1/aggregates/order/o1/events', { event_type: 'order_paid', payload: { name: 'Eve' } });
  assertError(apply, 400, 'validation_failed');
  const patch = await server.request('POST', '/v1/aggregates/order/o1/patch', { event_type: 'order_paid', patch: [{ op: 'replace', path: '/name', value: 'Eve' }] });
  assertError(patch, 400, 'validation_failed');
  const rules = (patch.body.error.details as { field: string; rule: string }[]).map((d) => `${d.rule}:${d.field}`).sort();
  assert.deepEqual(rules, (apply.body.error.details as { field: string; rule: string }[]).map((d) => `${d.rule}:${d.field}`).sort(), 'the same violations as the apply');
  assert.deepEqual(rules, ['field_missing:amount', 'field_missing:paid', 'field_not_permitted:name']);
  // Only the listed fields, all of them: accepted, and a column-type problem is reported with a fields problem in one answer.
  const ok = await server.request('POST', '/v1/aggregates/order/o1/patch', {
    event_type: 'order_paid',
    patch: [
      { op: 'add', path: '/paid', value: true },
      { op: 'add', path: '/amount', value: '12.50' },
    ],
  });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  const both = await server.request('POST', '/v1/aggregates/order/o1/patch', { event_type: 'order_paid', patch: [{ op: 'replace', path: '/paid', value: 'not a boolean' }] });
  assertError(both, 400, 'validation_failed');
  const kinds = new Set((both.body.error.details as { rule: string }[]).map((d) => d.rule));
  assert.ok(kinds.has('field_missing') && kinds.has('type'), JSON.stringify(both.body.error.details));
  const after = (await server.request('GET', '/v1/aggregates/order/o1')).body;
  assert.equal(after.version, before.version + 1, 'only the accepted patch was written');
});

test('hidden_fields hides a top-level key whose name holds a dot, in every answer', { timeout: 20_000 }, async () => {
  const schema = { aggregate: 'acct', events: { opened: {} }, column_types: { 'card.pin': 'text' }, hidden_fields: ['card.pin'] };
  assert.equal((await server.request('PUT', '/v1/schemas/acct', schema)).status, 200);
  const created = await server.request('POST', '/v1/aggregates/acct/a1', { event_type: 'opened', payload: { 'card.pin': '1234', v: 1 } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const answers = [
    JSON.stringify(created.body),
    JSON.stringify((await server.request('GET', '/v1/aggregates/acct/a1')).body),
    JSON.stringify((await server.request('GET', '/v1/aggregates/acct/a1/events')).body),
    JSON.stringify((await server.request('GET', '/v1/aggregates/acct')).body),
  ];
  for (const text of answers) {
    assert.doesNotMatch(text, /1234/, text);
    assert.doesNotMatch(text, /card\.pin/, text);
  }
  assert.match(answers[1] as string, /"v":1/, 'the other fields stay');
});


test('hanging plugins together cannot take the delivery pool: a healthy plugin delivers and `plugin test` answers at once', { timeout: 90_000 }, async () => {
  // A small pool (1 thread, 32 slots) and in_flight_max 8: five hanging plugins would hold 40.
  const hanging: http.ServerResponse[] = [];
  const hole = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => (req.method !== 'POST' || text.length === 0 ? res.end() : hanging.push(res)));
  });
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
  const holeUrl = `http://127.0.0.1:${(hole.address() as AddressInfo).port}/hook`;
  const good = await receiver();
  const dataDir = tempDataDir('edbx-rf15-plugins-');
  const plugged = await startServerInProcess({ dataDir, configToml: '[plugins]\nin_flight_max = 8\npool_threads = 1\npoll_ms = 5\n' });
  try {
    for (let i = 1; i <= 5; i++) {
      const res = await plugged.request('PUT', `/v1/plugins/hang${i}`, { options: { kind: 'http', endpoint: holeUrl, timeout_ms: 60_000 } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    assert.equal((await plugged.request('PUT', '/v1/plugins/good', { options: { kind: 'http', endpoint: good.url } })).status, 200);
    const writes = await Promise.all(Array.from({ length: 40 }, (_, i) => plugged.request('POST', `/v1/aggregates/order/o${i}/events`, { event_type: 'placed', payload: { n: i } })));
    assert.ok(writes.every((w) => w.status === 201));
    await until(15_000, () => good.got.length >= 40, `the healthy plugin's 40 deliveries (got ${good.got.length}, ${hanging.length} hanging)`);
    const started = performance.now();
    const check = await plugged.request('POST', '/v1/plugins/good/test');
    assert.equal(check.status, 200, JSON.stringify(check.body));
    assert.ok(performance.now() - started < 10_000, `plugin test took ${Math.round(performance.now() - started)} ms`);
    // The name is the path's.
    const renamed = await plugged.request('PUT', '/v1/plugins/alpha', { name: 'beta', options: { kind: 'http', endpoint: good.url } });
    assertError(renamed, 400, 'validation_failed');
    assert.equal((await plugged.request('GET', '/v1/plugins/alpha')).status, 404, 'nothing stored');
    assert.equal((await plugged.request('GET', '/v1/plugins/beta')).status, 404);
  } finally {
    for (const res of hanging) res.destroy();
    await plugged.stop();
    hole.close();
    await good.close();
    removeDir(dataDir);
  }
});

test('a schema with a shape problem and deeper problems gets one 400 listing them all', { timeout: 20_000 }, async () => {
  const body = { events: { e: {} }, column_types: { a: { type: 'integer', requried: true }, b: { type: 'text', regex: ['(a'] } } };
  for (const [method, path, sent] of [
    ['PUT', '/v1/schemas/bad', body],
    ['POST', '/v1/schemas', { ...body, aggregate: 'bad' }],
  ] as const) {
    const res = await server.request(method, path, sent);
    assertError(res, 400, 'validation_failed');
    const fields = (res.body.error.details as { field: string; message: string }[]).map((d) => `${d.field}: ${d.message}`);
    assert.ok(fields.some((f) => f.startsWith('column_types.a') && f.includes('requried')), fields.join(' | '));
    assert.ok(fields.some((f) => f.startsWith('column_types.b.regex') && /regex/.test(f)), fields.join(' | '));
    for (const d of res.body.error.details as { path?: string }[]) assert.match(d.path ?? '', /^body/);
  }
  assert.equal((await server.request('GET', '/v1/schemas/bad')).status, 404, 'nothing stored');
});

test('a stream position saved before a tenant was removed still resumes: the removed tenant counts on from where its stream ended', { timeout: 60_000 }, async () => {
  const dataDir = tempDataDir('edbx-rf15-stream-');
  let s: TestServer | undefined = await startServerInProcess({ dataDir });
  try {
    for (let i = 0; i < 6; i++) assert.equal((await s.request('POST', `/v1/aggregates/old/o${i}/events`, { event_type: 'e', payload: {} })).status, 201);
    const saved = (await s.request('GET', '/v1/stream?after=end')).body.next_position as string;
    const removed = await s.request('DELETE', '/v1/tenants/default?force=true');
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    for (let i = 0; i < 4; i++) assert.equal((await s.request('POST', `/v1/aggregates/fresh/n${i}/events`, { event_type: 'e', payload: {} })).status, 201);
    const page = await s.request('GET', `/v1/stream?after=${encodeURIComponent(saved)}&take=100`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    assert.deepEqual(page.body.items.map((e: { aggregate_id: string }) => e.aggregate_id), ['n0', 'n1', 'n2', 'n3'], 'every event written after the removal, from the saved position');
    assert.notEqual(page.body.next_position, saved);
    const all = await s.request('GET', '/v1/stream?after=start&take=100');
    assert.deepEqual(all.body.items.map((e: { aggregate_id: string }) => e.aggregate_id), ['n0', 'n1', 'n2', 'n3']);
    // After a restart too (the floor is on disk, not in the worker's memory).
    await s.stop();
    s = undefined;
    const again = await startServerInProcess({ dataDir });
    try {
      assert.equal((await again.request('POST', '/v1/aggregates/fresh/n4/events', { event_type: 'e', payload: {} })).status, 201);
      const later = await again.request('GET', `/v1/stream?after=${encodeURIComponent(page.body.next_position)}&take=100`);
      assert.deepEqual(later.body.items.map((e: { aggregate_id: string }) => e.aggregate_id), ['n4']);
    } finally {
      await again.stop();
    }
  } finally {
    await s?.stop();
    removeDir(dataDir);
  }
});

test('a time literal keeps its sub-millisecond digits: >= and = do not match the millisecond below it', { timeout: 20_000 }, async () => {
  const made = await server.request('POST', '/v1/aggregates/subms/s1/events', { event_type: 'e', payload: {} });
  assert.equal(made.status, 201);
  const at = made.body.metadata.created_at as string; // …ss.mmmZ
  const plus = (digit: string) => at.replace(/Z$/, `${digit}Z`);
  const count = async (filter: string) => (await server.request('GET', `/v1/events?filter=${encodeURIComponent(`aggregate_type = "subms" AND ${filter}`)}`)).body.items.length as number;
  assert.equal(await count(`created_at = "${at}"`), 1);
  assert.equal(await count(`created_at = "${plus('9')}"`), 0);
  assert.equal(await count(`created_at >= "${plus('9')}"`), 0);
  assert.equal(await count(`created_at <= "${plus('1')}"`), 1);
  assert.equal(await count(`created_at > "${plus('1')}"`), 0);
  assert.equal(await count(`created_at < "${plus('1')}"`), 1);
  assert.equal(await count(`created_at <= "${plus('1')}" AND created_at >= "${plus('9')}"`), 0, 'an impossible range matches nothing');
  // The aggregate list (no index) agrees.
  const listed = await server.request('GET', `/v1/aggregates/subms?filter=${encodeURIComponent(`created_at >= "${plus('9')}"`)}`);
  assert.equal(listed.body.items.length, 0);
});

test('a CSV cell or header holding a C1 control (NEL U+0085) or a line separator is quoted', { timeout: 20_000 }, async () => {
  assert.equal((await server.request('POST', '/v1/aggregates/hdr/h1/events', { event_type: 'set', payload: { 'u\u0085': 5, w: '\u0085y', v: 'a\u2028b' } })).status, 201);
  const csv = await server.request('GET', '/v1/export?type=hdr&format=csv');
  assert.equal(csv.status, 200);
  const text = csv.body as string;
  assert.ok(text.includes('"u\u0085"'), text);
  assert.ok(text.includes('"\u0085y"'), text);
  assert.ok(text.includes('"a\u2028b"'), text);
});

test('a lone surrogate is refused on every route that takes a body, not only the aggregate routes (I-JSON)', { timeout: 20_000 }, async () => {
  const raw = (json: string) => json.replace(/LONE/g, '\\ud800');
  const cases: [string, string, string][] = [
    ['POST', '/v1/tokens', raw('{"group":"LONE","user":"u","actions":["aggregate.read"]}')],
    ['PUT', '/v1/schemas/lone', raw('{"events":{"e":{}},"hidden_fields":["aLONE"]}')],
    ['PUT', '/v1/plugins/lone', raw('{"enabled":false,"options":{"kind":"log","template":"xLONE"}}')],
    ['POST', '/v1/queue/clear', raw('{"plugin":"LONE"}')],
    ['POST', '/v1/aggregates/lone/l1', raw('{"event_type":"e","payload":{"LONE":1}}')],
  ];
  for (const [method, path, body] of cases) {
    const res = await server.request(method, path, body, { 'content-type': 'application/json' });
    assertError(res, 400, 'validation_failed');
    assert.match(res.body.error.message, /lone surrogate/, `${method} ${path}: ${JSON.stringify(res.body)}`);
  }
  assert.equal((await server.request('GET', '/v1/schemas/lone')).status, 404);
  assert.equal((await server.request('GET', '/v1/plugins/lone')).status, 404);
  // A surrogate pair, escaped, is a character like any other.
  const pair = await server.request('POST', '/v1/aggregates/lone/l2', '{"event_type":"e","payload":{"s":"\\ud83d\\ude00"}}', { 'content-type': 'application/json' });
  assert.equal(pair.status, 201, JSON.stringify(pair.body));
  assert.equal(pair.body.state?.s ?? (await server.request('GET', '/v1/aggregates/lone/l2')).body.state.s, '😀');
});

test("a tenant's scraper sees its own tenant series, exact, even when its tenant is outside metrics_top_n", { timeout: 60_000 }, async () => {
  const dataDir = tempDataDir('edbx-rf15-metrics-');
  const s = await startServerInProcess({ dataDir, configToml: '[tenants]\nmetrics_top_n = 0\n' });
  try {
    const acme = { 'x-tenant-id': 'acme' };
    for (let i = 0; i < 3; i++) assert.equal((await s.request('POST', `/v1/aggregates/order/a${i}/events`, { event_type: 'e', payload: {} }, acme)).status, 201);
    const scraper = await s.request('POST', '/v1/tokens', { group: 'g', user: 'scrape', actions: ['metrics.read'], tenants: ['acme'] });
    assert.equal(scraper.status, 201, JSON.stringify(scraper.body));
    const root = await s.request('GET', '/metrics');
    assert.doesNotMatch(root.body, /tenant="acme"/, 'with metrics_top_n = 0 every tenant is under _other for the operator');
    const mine = await httpRequest(s.url, scraper.body.token, 'GET', '/metrics', undefined, acme);
    assert.equal(mine.status, 200);
    const text = mine.body as string;
    assert.match(text, /^eventdbx_tenant_events_appended_total\{tenant="acme"\} 3$/m);
    assert.match(text, /^eventdbx_tenant_storage\{tenant="acme",kind="events"\} 3$/m);
    assert.match(text, /^eventdbx_tenant_storage\{tenant="acme",kind="aggregates"\} 3$/m);
    assert.doesNotMatch(text, /^[^#\n].*tenant="_other"/m, 'no rollup sample');
    // Each family's samples stay together, right after its TYPE line (the exposition format).
    const lines = text.split('\n');
    const type = lines.findIndex((l) => l.startsWith('# TYPE eventdbx_tenant_events_appended_total '));
    assert.ok(type >= 0 && lines[type + 1]?.startsWith('eventdbx_tenant_events_appended_total{tenant="acme"}'), lines.slice(type, type + 3).join('\n'));
  } finally {
    await s.stop();
    removeDir(dataDir);
  }
});
