/**
 * Findings of an audit of authorization and write accounting (2026-12-07), each pinned:
 * a token administrator limited to some aggregates grants only patterns it covers; a patch cannot
 * read state its token may not read; an idempotent retry is answered from its key even when the
 * token's write limit is used up or the tenant is over its write rate; a clean stop gives a
 * limited token's unused reservation back.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, removeDir, startServerInProcess, tempDataDir, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';
import { globCovers } from '../src/core/index.js';

let server: TestServer;
before(async () => {
  server = await startServerInProcess();
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

async function mint(spec: Record<string, unknown>, token?: string): Promise<{ status: number; body: any }> {
  // A grant by an administrator ends before it: one of the same lifetime, a second later, would outlive it.
  return httpRequest(server.url, token ?? server.token, 'POST', '/v1/tokens', { group: 'g', user: 'u', tenants: ['default'], expiration_secs: token ? 600 : 3600, ...spec });
}

test('glob cover - a pattern covers another only when every value of the inner one matches the outer one', () => {
  const yes: [string, string][] = [
    ['*', 'order'],
    ['order', 'order'],
    ['o*', 'order*'],
    ['o*', 'o?'],
    ['o?', 'ox'],
    ['*a', '*xa'],
    ['a*b*c', 'a*bxb*c'],
    ['aggregate.*', 'aggregate.read'],
    ['*.*', 'aggregate.*'],
  ];
  const no: [string, string][] = [
    ['o1', 'o*'],
    ['o?', 'o*'],
    ['o?', 'oxy'],
    ['order', 'order*'],
    ['*a', '*'],
    ['aggregate.read', 'aggregate.*'],
    ['aggregate.*', '*'],
    ['a?c', 'a*c'],
  ];
  for (const [outer, inner] of yes) assert.equal(globCovers(outer, inner), true, `${outer} covers ${inner}`);
  for (const [outer, inner] of no) assert.equal(globCovers(outer, inner), false, `${outer} does not cover ${inner}`);
});

test('finding 1 - a token administrator limited to some aggregates grants only resource and action patterns it covers', async () => {
  for (const id of ['o1', 'o2', 'order-9999']) {
    assert.equal((await server.request('POST', `/v1/aggregates/order/${id}`, { event_type: 'created', payload: { v: id } })).status, 201);
  }
  const cases: { admin: string[]; grant: string[]; ok: boolean }[] = [
    { admin: ['order/o1'], grant: ['order'], ok: false },
    { admin: ['order/o1'], grant: ['order/*'], ok: false },
    { admin: ['order/o?'], grant: ['order/o*'], ok: false },
    { admin: ['order/o1'], grant: [], ok: false },
    { admin: ['order/o1'], grant: ['*'], ok: false },
    { admin: ['order/o1'], grant: ['ord*/o1'], ok: false },
    { admin: ['order/o1'], grant: ['order/o1'], ok: true },
    { admin: ['order/o?'], grant: ['order/o2'], ok: true },
    { admin: ['order'], grant: ['order/o*'], ok: true },
    { admin: ['ord*'], grant: ['order', 'orders/x'], ok: true },
  ];
  for (const { admin, grant, ok } of cases) {
    const issued = await mint({ actions: ['token.admin', 'aggregate.read'], resources: admin });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const granted = await mint({ actions: ['aggregate.read'], resources: grant }, issued.body.token);
    if (ok) assert.equal(granted.status, 201, `${admin} grants ${JSON.stringify(grant)}: ${JSON.stringify(granted.body)}`);
    else {
      assertError(granted, 403, 'forbidden');
      assert.match(granted.body.error.message, /cannot grant resource/);
    }
  }
  // Actions are patterns too: `aggregate.*` names more than `aggregate.read`.
  const reader = await mint({ actions: ['token.admin', 'aggregate.read'] });
  assert.equal((await mint({ actions: ['aggregate.read'] }, reader.body.token)).status, 201);
  const wide = await mint({ actions: ['token.admin', 'aggregate.*'] });
  assert.equal((await mint({ actions: ['aggregate.read', 'aggregate.append'] }, wide.body.token)).status, 201);
  assertError(await mint({ actions: ['aggregate.*'] }, reader.body.token), 403, 'forbidden');
  assertError(await mint({ actions: ['*'] }, reader.body.token), 403, 'forbidden');
  // What a refused grant would have reached stays out of reach of the administrator's own grants.
  const narrow = await mint({ actions: ['token.admin', 'aggregate.read'], resources: ['order/o1'] });
  const own = await mint({ actions: ['aggregate.read'], resources: ['order/o1'] }, narrow.body.token);
  assert.equal((await httpRequest(server.url, own.body.token, 'GET', '/v1/aggregates/order/o1')).status, 200);
  assertError(await httpRequest(server.url, own.body.token, 'GET', '/v1/aggregates/order/o2'), 403, 'forbidden');
});

test('finding 2 - a patch cannot read what its token may not read: test/copy/move refused (403), failures do not name the op or path; a hidden type likewise', async () => {
  assert.equal((await server.request('POST', '/v1/aggregates/patient/p1', { event_type: 'created', payload: { pin: 4821, diagnosis: 'flu', age: 40 } })).status, 201);
  const appender = await mint({ actions: ['aggregate.append'] });
  const token = appender.body.token as string;
  assertError(await httpRequest(server.url, token, 'GET', '/v1/aggregates/patient/p1'), 403, 'forbidden');
  const patch = (ops: unknown[], who = token, path = '/v1/aggregates/patient/p1/patch') => httpRequest(server.url, who, 'POST', path, { event_type: 'updated', patch: ops });
  const before = (await server.request('GET', '/v1/aggregates/patient/p1')).body.version;
  for (const ops of [
    [{ op: 'test', path: '/diagnosis', value: 'flu' }],
    [{ op: 'copy', from: '/pin', path: '/age' }],
    [{ op: 'move', from: '/pin', path: '/copied' }],
    [{ op: 'replace', path: '/age', value: 1 }, { op: 'test', path: '/pin', value: 4821 }],
  ]) {
    const res = await patch(ops);
    assertError(res, 403, 'forbidden');
    assert.match(res.body.error.message, /reads the state/);
    assert.doesNotMatch(JSON.stringify(res.body), /4821|flu/);
  }
  // A failed op is not named: which key is missing would tell what is stored.
  const missing = await patch([{ op: 'replace', path: '/nokey', value: 1 }]);
  assertError(missing, 400, 'validation_failed');
  assert.doesNotMatch(JSON.stringify(missing.body), /nokey/);
  const batch = await httpRequest(server.url, token, 'POST', '/v1/batch', { events: [{ aggregate_type: 'patient', aggregate_id: 'p1', event_type: 'updated', patch: [{ op: 'test', path: '/diagnosis', value: 'flu' }] }] });
  assertError(batch, 403, 'forbidden');
  assert.equal((await server.request('GET', '/v1/aggregates/patient/p1')).body.version, before, 'nothing was written');
  // Writing blind stays allowed.
  const blind = await patch([{ op: 'replace', path: '/age', value: 41 }]);
  assert.equal(blind.status, 201, JSON.stringify(blind.body));
  // A reader keeps the whole patch language and its precise messages.
  const reader = await mint({ actions: ['aggregate.append', 'aggregate.read'] });
  assert.equal((await patch([{ op: 'test', path: '/diagnosis', value: 'flu' }], reader.body.token)).status, 201);
  const named = await patch([{ op: 'replace', path: '/nokey', value: 1 }], reader.body.token);
  assertError(named, 400, 'validation_failed');
  assert.match(JSON.stringify(named.body), /nokey/);

  // A hidden type answers 404 on reads, to every token: its patches may not read either.
  const schema = await server.request('POST', '/v1/schemas', { aggregate: 'vault', hidden: true, events: { created: { fields: [] }, updated: { fields: [] } } });
  assert.equal(schema.status, 201, JSON.stringify(schema.body));
  assert.equal((await server.request('POST', '/v1/aggregates/vault/v1', { event_type: 'created', payload: { code: 'C-1234' } })).status, 201);
  assertError(await server.request('GET', '/v1/aggregates/vault/v1'), 404, 'not_found');
  const probe = await patch([{ op: 'test', path: '/code', value: 'C-1234' }], server.token, '/v1/aggregates/vault/v1/patch');
  assertError(probe, 403, 'forbidden');
  assert.match(probe.body.error.message, /hidden/);
  assert.equal((await patch([{ op: 'replace', path: '/code', value: 'C-9' }], server.token, '/v1/aggregates/vault/v1/patch')).status, 201);
});

test('finding 5 - with its write limit used up, a token\'s retry of a stored write is answered from its idempotency key (costs nothing); anything new is still 429', async () => {
  const limited = (await mint({ actions: ['aggregate.*'], write_limit: 1 })).body.token as string;
  const body = { event_type: 'paid', payload: { amount: 5 }, idempotency_key: 'pay-1' };
  const first = await httpRequest(server.url, limited, 'POST', '/v1/aggregates/ledger/l1/events', body);
  assert.equal(first.status, 201, JSON.stringify(first.body));
  for (let i = 0; i < 2; i++) {
    const retry = await httpRequest(server.url, limited, 'POST', '/v1/aggregates/ledger/l1/events', body);
    assert.equal(retry.status, 201, JSON.stringify(retry.body));
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    assert.equal(retry.body.metadata.event_id, first.body.metadata.event_id);
  }
  // Another write, or the same key with other content, is refused as before; nothing is written.
  assertError(await httpRequest(server.url, limited, 'POST', '/v1/aggregates/ledger/l1/events', { ...body, idempotency_key: 'pay-2' }), 429, 'write_limit_exhausted');
  assertError(await httpRequest(server.url, limited, 'POST', '/v1/aggregates/ledger/l1/events', { event_type: 'paid', payload: { amount: 6 } }), 429, 'write_limit_exhausted');
  assertError(await httpRequest(server.url, limited, 'POST', '/v1/aggregates/ledger/l1/events', { ...body, payload: { amount: 6 } }), 409, 'already_exists');
  assert.equal((await server.request('GET', '/v1/aggregates/ledger/l1')).body.version, 1);

  // A batch: replayed whole it answers; one new item among replays refuses the whole batch.
  const three = (await mint({ actions: ['aggregate.*'], write_limit: 3 })).body.token as string;
  const items = [1, 2, 3].map((i) => ({ aggregate_type: 'ledger', aggregate_id: `b${i}`, event_type: 'x', payload: {}, idempotency_key: `k${i}` }));
  assert.equal((await httpRequest(server.url, three, 'POST', '/v1/batch', { events: items })).status, 201);
  const again = await httpRequest(server.url, three, 'POST', '/v1/batch', { events: items });
  assert.equal(again.status, 201, JSON.stringify(again.body));
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  const mixed = [...items, { aggregate_type: 'ledger', aggregate_id: 'b4', event_type: 'x', payload: {}, idempotency_key: 'k4' }];
  assertError(await httpRequest(server.url, three, 'POST', '/v1/batch', { events: mixed }), 429, 'write_limit_exhausted');
  assertError(await server.request('GET', '/v1/aggregates/ledger/b4'), 404, 'not_found');
  const jtiOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()).jti as string;
  const listed = (await server.request('GET', '/v1/tokens')).body.items as { jti: string; writes_used: number }[];
  assert.equal(listed.find((t) => t.jti === jtiOf(three))?.writes_used, 3, 'replays cost nothing');
  assert.equal(listed.find((t) => t.jti === jtiOf(limited))?.writes_used, 1, 'replays cost nothing');
});

test('finding 3 - a clean stop right after a limited token\'s writes gives its unused reservation back: after the restart it has exactly limit − accepted writes', async () => {
  const dataDir = tempDataDir();
  let own = await startServerInProcess({ dataDir });
  try {
    const issued = await httpRequest(own.url, own.token, 'POST', '/v1/tokens', { group: 'g', user: 'u', tenants: ['default'], actions: ['aggregate.*'], write_limit: 10 });
    const token = issued.body.token as string;
    // Concurrent writes make the allowance reserve headroom ahead of them.
    const first = await Promise.all(Array.from({ length: 4 }, (_, i) => httpRequest(own.url, token, 'POST', `/v1/aggregates/meter/m${i}`, { event_type: 'created', payload: { i } })));
    assert.deepEqual(first.map((r) => r.status), [201, 201, 201, 201]);
    await own.stop(); // at once: before the idle timer would settle the reservation
    own = await startServerInProcess({ dataDir });
    const listed = (await httpRequest(own.url, own.token, 'GET', '/v1/tokens')).body.items.find((t: any) => t.jti === issued.body.record.jti);
    assert.deepEqual([listed.writes_used, listed.writes_remaining], [4, 6]);
    let accepted = 0;
    for (let i = 0; i < 8; i++) {
      const r = await httpRequest(own.url, token, 'POST', `/v1/aggregates/meter/n${i}`, { event_type: 'created', payload: { i } });
      if (r.status === 201) accepted++;
      else assertError(r, 429, 'write_limit_exhausted');
    }
    assert.equal(accepted, 6, 'limit 10 − 4 accepted before the stop');
  } finally {
    await own.stop();
    removeDir(dataDir);
  }
});

test('audit A finding 1 - event_id compares numerically with negative and fractional numbers too (on every event list)', async () => {
  const created = await server.request('POST', '/v1/aggregates/tick/t1', { event_type: 'created', payload: {} });
  assert.equal(created.status, 201);
  const id = created.body.events?.[0]?.metadata?.event_id ?? (await server.request('GET', '/v1/aggregates/tick/t1/events')).body.items[0].metadata.event_id;
  const cases: [string, boolean][] = [
    ['event_id > 0', true],
    ['event_id > -1', true],
    ['event_id >= -5', true],
    ['event_id > -0.5', true],
    ['event_id <= -1', false],
    ['event_id < -1', false],
    ['event_id = -1', false],
    ['event_id != -1', true],
    ['event_id > 1.5', true],
    ['event_id < 1.5', false],
    [`event_id = ${id}.0`, true],
    [`event_id = ${id}.5`, false],
    [`event_id > ${id}.5`, false],
    [`event_id < ${id}.5`, true],
    [`event_id >= ${id}.0`, true],
    [`event_id IN [-1, ${id}.0]`, true],
    ['event_id < 100000000000000000000000000000', true],
    ['event_id = 100000000000000000000000000000.0', false],
  ];
  for (const [filter, matches] of cases) {
    for (const path of ['/v1/events', '/v1/aggregates/tick/t1/events']) {
      const res = await server.request('GET', `${path}?filter=${encodeURIComponent(`aggregate_type = "tick" AND ${filter}`)}`);
      assert.equal(res.status, 200, `${filter}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.items.length, matches ? 1 : 0, `${path} ${filter}`);
    }
  }
});

test('audit A finding 2 - a key-order cursor continues only a listing of its own type; a cursor naming no aggregate a write could make is refused', async () => {
  for (const [type, id] of [['person', 'p1'], ['person', 'p2'], ['orderx', 'o1'], ['zebra', 'z1']]) {
    assert.equal((await server.request('POST', `/v1/aggregates/${type}/${id}`, { event_type: 'created', payload: {} })).status, 201);
  }
  const first = await server.request('GET', '/v1/aggregates/person?take=1');
  assert.equal(first.status, 200);
  const next = await server.request('GET', `/v1/aggregates/person?take=1&cursor=${encodeURIComponent(first.body.next_cursor)}`);
  assert.deepEqual(next.body.items.map((a: any) => a.aggregate_id), ['p2'], 'its own cursor still pages');
  for (const cursor of ['a:orderx:o1', 'a:zebra:z1', 'a:PERSON:p1']) {
    const res = await server.request('GET', `/v1/aggregates/person?cursor=${encodeURIComponent(cursor)}`);
    assertError(res, 400, 'invalid_input');
    assert.match(res.body.error.message, /invalid cursor/);
  }
  const filtered = await server.request('GET', `/v1/aggregates?filter=${encodeURIComponent('aggregate_type = "orderx"')}&cursor=a:person:p1`);
  assertError(filtered, 400, 'invalid_input');
  const events = await server.request('GET', `/v1/events?filter=${encodeURIComponent('aggregate_type = "orderx"')}&cursor=a:person:p1:1`);
  assertError(events, 400, 'invalid_input');
  assertError(await server.request('GET', '/v1/events?cursor=a:per%20son:p1:1'), 400, 'invalid_input');
  // Across types, any type's cursor continues the one listing of all of them.
  assert.equal((await server.request('GET', '/v1/aggregates?cursor=a:person:p1')).status, 200);
});

test('audit A finding 3 - take=0 is an empty page on the schema lists too', async () => {
  assert.equal((await server.request('POST', '/v1/schemas', { aggregate: 'gadget', events: { created: { fields: [] } } })).status, 201);
  for (const path of ['/v1/schemas?take=0', '/v1/schemas/gadget/versions?take=0', '/v1/aggregates?take=0', '/v1/events?take=0']) {
    const res = await server.request('GET', path);
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
    assert.deepEqual(res.body.items, [], path);
  }
});

test('finding 4 - a refresh racing a limited token\'s writes loses none: writes the reservation covered go through, the replacement carries the rest', async () => {
  for (let round = 0; round < 4; round++) {
    const issued = await mint({ actions: ['aggregate.*'], write_limit: 6 });
    const token = issued.body.token as string;
    const writes = Array.from({ length: 6 }, (_, i) => httpRequest(server.url, token, 'POST', `/v1/aggregates/race/r${round}x${i}`, { event_type: 'created', payload: {} }));
    const refresh = server.request('POST', `/v1/tokens/${issued.body.record.jti}/refresh`, {});
    const [renewed, ...answers] = await Promise.all([refresh, ...writes]);
    assert.equal(renewed.status, 201, JSON.stringify(renewed.body));
    const accepted = answers.filter((r) => r.status === 201).length;
    for (const r of answers) if (r.status !== 201) assertError(r, 401, 'unauthorized');
    assert.equal(renewed.body.record.writes_remaining, 6 - accepted, `round ${round}: ${accepted} accepted by the old token`);
    let more = 0;
    for (let i = 0; i < 8; i++) if ((await httpRequest(server.url, renewed.body.token, 'POST', `/v1/aggregates/race/n${round}x${i}`, { event_type: 'created', payload: {} })).status === 201) more++;
    assert.equal(accepted + more, 6, `round ${round}: ${accepted} + ${more} writes of a limit of 6`);
  }
});

test('finding 6 - a token that only imports writes history in its own name: a line naming another author is refused and nothing is stored', async () => {
  assert.equal((await server.request('POST', '/v1/aggregates/book/acc1', { event_type: 'opened', payload: { balance: 0 } })).status, 201);
  const importer = await httpRequest(server.url, server.token, 'POST', '/v1/tokens', { group: 'ops', user: 'mallory', tenants: ['default'], actions: ['aggregate.import'] });
  const token = importer.body.token as string;
  const line = (issuedBy: unknown, id: string) =>
    JSON.stringify({ aggregate_type: 'book', aggregate_id: 'acc1', event_type: 'withdrawn', version: 2, payload: { balance: -100 }, extensions: {}, metadata: { event_id: id, created_at: '2020-01-01T00:00:00.000Z', issued_by: issuedBy } });
  const upload = (who: string, body: string) => httpRequest(server.url, who, 'POST', '/v1/import', body, { 'content-type': 'application/x-ndjson' });
  for (const issuedBy of [{ group: 'cli', user: 'root' }, { group: 'ops', user: 'eve' }, null]) {
    const res = await upload(token, `${line(issuedBy, '7000000000000001')}\n`);
    assertError(res, 403, 'forbidden');
    assert.match(res.body.error.message, /issued_by/);
    assert.equal((await server.request('GET', '/v1/aggregates/book/acc1')).body.version, 1, 'nothing was imported');
  }
  const own = await upload(token, `${line({ group: 'ops', user: 'mallory' }, '7000000000000002')}\n`);
  assert.equal(own.status, 200, JSON.stringify(own.body));
  const events = (await server.request('GET', '/v1/aggregates/book/acc1/events')).body.items;
  assert.deepEqual(events[1].metadata.issued_by, { group: 'ops', user: 'mallory' });
  // The server administrator restores history with its authors, as exported.
  const restored = await upload(server.token, `${JSON.stringify({ aggregate_type: 'book', aggregate_id: 'acc2', event_type: 'opened', version: 1, payload: {}, extensions: {}, metadata: { event_id: '7000000000000003', created_at: '2020-01-01T00:00:00.000Z', issued_by: { group: 'bank', user: 'teller' } } })}\n`);
  assert.equal(restored.status, 200, JSON.stringify(restored.body));
});
