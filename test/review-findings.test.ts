/**
 * Findings of a fresh-eyes review of the HTTP API (2026-12-03), each pinned: a tenant's plugin
 * administrator can neither take over a plugin it does not manage nor configure a plugin that
 * reaches the server host; hidden fields cannot be read through a patch; idempotent replays of
 * create and archive answer the original result; take=0 is refused; explain counters and
 * /metrics tell a narrow token nothing beyond its grant; dotted field locks are refused, not
 * silently unenforced; a proof request takes one kind of range.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

let server: TestServer;

before(async () => {
  server = await startServerInProcess({ configToml: '[tenants]\nmulti_tenant = true\n' });
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

const D = { 'x-tenant-id': 'default' };
const O = { 'x-tenant-id': 'other' };

async function token(body: Record<string, unknown>): Promise<string> {
  const res = await server.request('POST', '/v1/tokens', { group: 'g', user: 'u', ...body }, D);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.token as string;
}

test('review-findings - a tenant plugin admin cannot replace a plugin it does not manage, nor configure one that reaches the host', { timeout: 30_000 }, async () => {
  const admin = await token({ actions: ['plugin.admin'], tenants: ['other'] });
  const as = (method: string, path: string, body?: unknown) => httpRequest(server.url, admin, method, path, body, O);
  const serverWide = await server.request('PUT', '/v1/plugins/wide', { enabled: false, options: { kind: 'http', endpoint: 'http://127.0.0.1:1/x' } }, D);
  assert.equal(serverWide.status, 200, JSON.stringify(serverWide.body));
  const shared = await server.request('PUT', '/v1/plugins/shared', { enabled: false, tenants: ['other', 'default'], options: { kind: 'http', endpoint: 'http://127.0.0.1:1/x' } }, D);
  assert.equal(shared.status, 200, JSON.stringify(shared.body));
  for (const name of ['wide', 'shared']) {
    const takeover = await as('PUT', `/v1/plugins/${name}`, { enabled: false, tenants: ['other'], options: { kind: 'http', endpoint: 'http://127.0.0.1:2/steal' } });
    assertError(takeover, 409, 'already_exists');
    assertError(await as('DELETE', `/v1/plugins/${name}`), 404, 'not_found');
    const kept = await server.request('GET', `/v1/plugins/${name}`, undefined, D);
    assert.equal(kept.body.options.endpoint, 'http://127.0.0.1:1/x', `${name} unchanged`);
  }
  // Its own plugins it manages as before.
  const own = await as('PUT', '/v1/plugins/mine', { enabled: false, tenants: ['other'], options: { kind: 'http', endpoint: 'http://127.0.0.1:3/x' } });
  assert.equal(own.status, 200, JSON.stringify(own.body));
  const again = await as('PUT', '/v1/plugins/mine', { enabled: false, tenants: ['other'], options: { kind: 'http', endpoint: 'http://127.0.0.1:4/x' } });
  assert.equal(again.status, 200, JSON.stringify(again.body));
  // Anything that runs a command or touches the host's files needs a server administrator.
  const hostly = [
    { kind: 'process', command: '/bin/sh', args: ['-c', 'cat cli.token'] },
    { kind: 'log', file: '/tmp/anywhere.log' },
    { kind: 'csv', dir: '/tmp/anywhere' },
    { kind: 'json', dir: '/tmp/anywhere' },
    { kind: 'http', endpoint: 'https://127.0.0.1:5/x', ca_file: '/etc/shadow' },
  ];
  for (const options of hostly) {
    const res = await as('PUT', '/v1/plugins/hostly', { enabled: false, tenants: ['other'], options });
    assertError(res, 403, 'forbidden');
    assert.match(res.body.error.message, /server administrator/);
  }
  assertError(await server.request('GET', '/v1/plugins/hostly', undefined, D), 404, 'not_found');
  const byRoot = await server.request('PUT', '/v1/plugins/hostly', { enabled: false, tenants: ['other'], options: { kind: 'log' } }, D);
  assert.equal(byRoot.status, 200, JSON.stringify(byRoot.body));
});

test('review-findings - a patch cannot copy, move or test a hidden field; writing one stays allowed', { timeout: 30_000 }, async () => {
  const put = await server.request('PUT', '/v1/schemas/vault', { hidden_fields: ['secret', 'addr.zip'], events: { opened: {}, changed: {} } }, D);
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const created = await server.request('POST', '/v1/aggregates/vault/v-1', { event_type: 'opened', payload: { secret: 'hunter2', addr: { zip: '123', city: 'x' }, shown: 1 } }, D);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const before = await server.request('GET', '/v1/aggregates/vault/v-1', undefined, D);
  const reads = [
    [{ op: 'copy', from: '/secret', path: '/leak' }],
    [{ op: 'move', from: '/secret', path: '/leak' }],
    [{ op: 'copy', from: '/addr', path: '/leak' }],
    [{ op: 'copy', from: '/addr/zip', path: '/leak' }],
    [{ op: 'test', path: '/secret', value: 'hunter2' }],
    [{ op: 'test', path: '/addr', value: { zip: '123', city: 'x' } }],
    [{ op: 'test', path: '', value: {} }],
  ];
  for (const patch of reads) {
    const res = await server.request('POST', '/v1/aggregates/vault/v-1/patch', { event_type: 'changed', patch }, D);
    assertError(res, 400, 'invalid_input');
    assert.match(res.body.error.message, /hidden by the schema/);
    const batch = await server.request('POST', '/v1/batch', { events: [{ aggregate_type: 'vault', aggregate_id: 'v-1', event_type: 'changed', patch }] }, D);
    assertError(batch, 400, 'invalid_input');
  }
  // A wrong guess and a right one answer alike: nothing is learned.
  const wrong = await server.request('POST', '/v1/aggregates/vault/v-1/patch', { event_type: 'changed', patch: [{ op: 'test', path: '/secret', value: 'nope' }] }, D);
  assert.deepEqual(wrong.body.error.message, (await server.request('POST', '/v1/aggregates/vault/v-1/patch', { event_type: 'changed', patch: [{ op: 'test', path: '/secret', value: 'hunter2' }] }, D)).body.error.message.replace('hunter2', 'nope'));
  assert.deepEqual(await server.request('GET', '/v1/aggregates/vault/v-1', undefined, D).then((r) => r.body), before.body, 'nothing written');
  const write = await server.request('POST', '/v1/aggregates/vault/v-1/patch', { event_type: 'changed', patch: [{ op: 'replace', path: '/secret', value: 'new' }, { op: 'copy', from: '/shown', path: '/also' }] }, D);
  assert.equal(write.status, 201, JSON.stringify(write.body));
});

test('review-findings - idempotent replays of create and archive answer the result they first gave', { timeout: 30_000 }, async () => {
  const first = await server.request('POST', '/v1/aggregates/doc/d-1', { event_type: 'doc_made', payload: { n: 1 }, idempotency_key: 'mk-1' }, D);
  assert.equal(first.status, 201);
  assert.equal((await server.request('POST', '/v1/aggregates/doc/d-1/events', { event_type: 'doc_edited', payload: { n: 2 } }, D)).status, 201);
  const replay = await server.request('POST', '/v1/aggregates/doc/d-1', { event_type: 'doc_made', payload: { n: 1 }, idempotency_key: 'mk-1' }, D);
  assert.equal(replay.status, 201);
  assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  assert.deepEqual(replay.body, first.body);

  const archived = await server.request('POST', '/v1/aggregates/doc/d-1/archive', { idempotency_key: 'ar-1' }, D);
  assert.equal(archived.status, 200, JSON.stringify(archived.body));
  assert.equal(archived.body.archived, true);
  assert.equal((await server.request('POST', '/v1/aggregates/doc/d-1/restore', {}, D)).status, 200);
  const again = await server.request('POST', '/v1/aggregates/doc/d-1/archive', { idempotency_key: 'ar-1' }, D);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.deepEqual(again.body, archived.body);
  // Create takes expected_version like every write: only 0 can match.
  assert.equal((await server.request('POST', '/v1/aggregates/doc/d-2', { event_type: 'doc_made', payload: {}, expected_version: 0 }, D)).status, 201);
  const stale = await server.request('POST', '/v1/aggregates/doc/d-3', { event_type: 'doc_made', payload: {}, expected_version: 2 }, D);
  assertError(stale, 409, 'version_conflict');
  assertError(await server.request('GET', '/v1/aggregates/doc/d-3', undefined, D), 404, 'not_found');
});

test('review-findings - a token limited to some aggregates gets no explain counters; /metrics shows a tenant token its own tenants only', { timeout: 30_000 }, async () => {
  for (const id of ['p-1', 'p-2']) assert.equal((await server.request('POST', `/v1/aggregates/person/${id}`, { event_type: 'person_made', payload: {} }, D)).status, 201);
  assert.equal((await server.request('POST', '/v1/aggregates/person/o-1', { event_type: 'person_made', payload: {} }, O)).status, 201);
  const narrow = await token({ actions: ['aggregate.read', 'events.read'], resources: ['person/p-1'], tenants: ['default'] });
  for (const path of ['/v1/aggregates?explain=true', '/v1/aggregates/person?explain=true', `/v1/events?explain=true&filter=${encodeURIComponent('event_type = "person_made"')}`]) {
    assertError(await httpRequest(server.url, narrow, 'GET', path, undefined, D), 403, 'forbidden');
  }
  const listed = await httpRequest(server.url, narrow, 'GET', '/v1/aggregates/person', undefined, D);
  assert.deepEqual(listed.body.items.map((a: { aggregate_id: string }) => a.aggregate_id), ['p-1']);
  assert.ok((await server.request('GET', '/v1/aggregates?explain=true', undefined, D)).body.explain, 'an unlimited token still gets explain');

  const watcher = await token({ actions: ['metrics.read'], tenants: ['other'] });
  const tenantsIn = async (t: string): Promise<Set<string>> => {
    const res = await httpRequest(server.url, t, 'GET', '/metrics', undefined, O);
    assert.equal(res.status, 200);
    return new Set([...(res.body as string).matchAll(/[{,]tenant="([^"]+)"/g)].map((m) => m[1] as string));
  };
  const all = await tenantsIn(server.token);
  assert.ok(all.has('default') && all.has('other'), `root sees every tenant: ${[...all].join(',')}`);
  assert.deepEqual([...(await tenantsIn(watcher))], ['other']);
  // Plugin samples likewise: those bound to its tenants only (test 1 made wide, shared, mine, hostly).
  const pluginsIn = async (t: string): Promise<string[]> => {
    const res = await httpRequest(server.url, t, 'GET', '/metrics', undefined, O);
    return [...new Set([...(res.body as string).matchAll(/[{,]plugin="([^"]+)"/g)].map((m) => m[1] as string))].sort();
  };
  assert.deepEqual(await pluginsIn(server.token), ['hostly', 'mine', 'shared', 'wide']);
  assert.deepEqual(await pluginsIn(watcher), ['hostly', 'mine']);
  // Server-wide series (every tenant's requests, the process) reach the operator's scraper only:
  // a token naming its tenants gets samples labelled with its tenants or its plugins.
  const samplesIn = async (t: string, headers?: Record<string, string>): Promise<string[]> => {
    const res = await httpRequest(server.url, t, 'GET', '/metrics', undefined, headers);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return (res.body as string).split('\n').filter((l) => l.length > 0 && !l.startsWith('#'));
  };
  const operator = await token({ actions: ['metrics.read'] });
  assert.ok((await samplesIn(operator)).some((l) => l.startsWith('eventdbx_http_requests_total{')), 'the operator scraper sees request counts');
  const watched = await samplesIn(watcher, O);
  assert.ok(watched.length > 0);
  for (const line of watched) assert.match(line, /[{,](tenant="other"|plugin="(hostly|mine)")/, line);
});

test('review-findings - a proof request takes one kind of range', { timeout: 30_000 }, async () => {
  for (let i = 0; i < 3; i++) await server.request('POST', '/v1/aggregates/ledger/l-1/events', { event_type: 'entry_made', payload: { i } }, D);
  const base = '/v1/aggregates/ledger/l-1/proof';
  assert.equal((await server.request('GET', `${base}?version=1&size=3`, undefined, D)).status, 200);
  assert.equal((await server.request('GET', `${base}?from_size=1&to_size=3`, undefined, D)).status, 200);
  for (const q of ['version=1&size=3&from_size=1&to_size=3', 'version=1&from_size=1', 'size=3', 'to_size=3']) {
    const res = await server.request('GET', `${base}?${q}`, undefined, D);
    assertError(res, 400, 'validation_failed');
    assert.ok(Array.isArray(res.body.error.details) && res.body.error.details.length > 0, q);
  }
});

test('review-findings (second pass) - imports, postgres URLs, open metrics and explain keep hidden things hidden', { timeout: 60_000 }, async () => {
  // An imported patch may not read a hidden field either (vault hides `secret`, test 2).
  const lines = [
    { aggregate_type: 'vault', aggregate_id: 'imp-1', event_type: 'opened', version: 1, payload: { secret: 's3' }, extensions: {}, metadata: { event_id: '386790933284257792', created_at: '2026-12-03T08:00:00.000Z', issued_by: null } },
    { aggregate_type: 'vault', aggregate_id: 'imp-1', event_type: 'changed', version: 2, payload: [{ op: 'copy', from: '/secret', path: '/leak' }], extensions: {}, metadata: { event_id: '386790933288452096', created_at: '2026-12-03T08:00:01.000Z', issued_by: null } },
  ];
  const imported = await server.request('POST', '/v1/import', `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`, { ...D, 'content-type': 'application/x-ndjson' });
  assert.notEqual(imported.status, 200, JSON.stringify(imported.body));
  assert.match(JSON.stringify(imported.body), /hidden by the schema/);
  const read = await server.request('GET', '/v1/aggregates/vault/imp-1', undefined, D);
  assert.ok(read.status === 404 || read.body.state.leak === undefined, JSON.stringify(read.body));

  // A tenant's plugin admin may not point a postgres plugin at host files or a unix socket.
  const admin = await token({ actions: ['plugin.admin'], tenants: ['other'] });
  const pg = (url: string) => httpRequest(server.url, admin, 'PUT', '/v1/plugins/pg-other', { enabled: false, tenants: ['other'], options: { kind: 'postgres', url } }, O);
  for (const url of ['postgres://u@127.0.0.1:5432/db?sslrootcert=/etc/passwd', 'postgres://u@127.0.0.1/db?sslmode=require&SSLKEY=/etc/shadow', 'postgres://%2Fvar%2Frun%2Fpostgresql/db', 'postgres://u@127.0.0.1/db?host=/tmp', 'socket:/var/run/postgresql']) {
    assertError(await pg(url), 403, 'forbidden');
  }
  assert.equal((await pg('postgres://u@127.0.0.1:1/db?sslmode=disable')).status, 200);

  // explain across types counts rows of hidden types: refused while the tenant hides one.
  assert.equal((await server.request('PUT', '/v1/schemas/ghost', { hidden: true, events: { made: {} } }, D)).status, 200);
  assert.equal((await server.request('POST', '/v1/aggregates/ghost/g-1', { event_type: 'made', payload: {} }, D)).status, 201);
  assertError(await server.request('GET', '/v1/aggregates?explain=true', undefined, D), 403, 'forbidden');
  assertError(await server.request('GET', '/v1/events?explain=true', undefined, D), 403, 'forbidden');
  assert.ok((await server.request('GET', '/v1/aggregates/person?explain=true', undefined, D)).body.explain, 'one visible type still explains');
  assert.equal((await server.request('GET', '/v1/aggregates?explain=true', undefined, O)).status, 200, 'a tenant without hidden types still explains');

  // Open metrics name no tenant, and of the plugins only the server-wide ones.
  const open = await startServerInProcess({ configToml: '[metrics]\npublic = true\n[tenants]\nmulti_tenant = true\n' });
  try {
    assert.equal((await open.request('PUT', '/v1/plugins/acme-hook', { enabled: false, tenants: ['acme'], options: { kind: 'log' } }, D)).status, 200);
    assert.equal((await open.request('PUT', '/v1/plugins/audit', { enabled: false, options: { kind: 'log' } }, D)).status, 200);
    const anonymous = await fetch(`${open.url}/metrics`);
    assert.equal(anonymous.status, 200);
    const text = await anonymous.text();
    // Samples only (HELP lines mention the labels).
    assert.doesNotMatch(text, /^\w+\{[^}]*plugin="acme-hook"/m);
    assert.match(text, /^\w+\{[^}]*plugin="audit"/m);
    assert.doesNotMatch(text, /^\w+\{[^}]*tenant="/m);
  } finally {
    await open.stop();
    removeDir(open.dataDir);
  }
});

test('review-findings (second pass) - a failing patch that touches a hidden field does not say which op failed', { timeout: 30_000 }, async () => {
  const patch = (ops: unknown[]) => server.request('POST', '/v1/aggregates/vault/v-1/patch', { event_type: 'changed', patch: ops }, D);
  const before = (await server.request('GET', '/v1/aggregates/vault/v-1', undefined, D)).body;
  // The first fails on the hidden path itself, the second gets past it and fails on a visible test.
  const onHidden = await patch([{ op: 'remove', path: '/addr/zip/9' }, { op: 'test', path: '/shown', value: 999 }]);
  const pastHidden = await patch([{ op: 'replace', path: '/secret', value: 'x' }, { op: 'test', path: '/shown', value: 999 }]);
  for (const res of [onHidden, pastHidden]) {
    assertError(res, 400, 'validation_failed');
    assert.match(res.body.error.message, /touches a field hidden by the schema/);
  }
  assert.deepEqual(onHidden.body, pastHidden.body, 'the two answers are the same');
  const batched = await server.request('POST', '/v1/batch', { events: [{ aggregate_type: 'vault', aggregate_id: 'v-1', event_type: 'changed', patch: [{ op: 'remove', path: '/addr/zip/9' }] }] }, D);
  assertError(batched, 400, 'validation_failed');
  assert.match(batched.body.error.message, /touches a field hidden by the schema/);
  // A patch of visible fields only still says what failed.
  const visible = await patch([{ op: 'test', path: '/shown', value: 999 }]);
  assertError(visible, 400, 'validation_failed');
  assert.doesNotMatch(visible.body.error.message, /hidden/);
  assert.deepEqual((await server.request('GET', '/v1/aggregates/vault/v-1', undefined, D)).body, before, 'nothing written');
});
