/**
 * Leaks (issue 7 item 14): `/v1/status` shows the host (pid, data dir) and every tenant's count
 * only to a server administrator (a `*` token for every tenant); `GET /v1/events/{id}` answers the
 * same 404 for an event outside the token's resources as for one that does not exist.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { issueToken, readConfig, type IssueInput } from '../src/core/index.js';
import { httpRequest, removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

let server: TestServer;
let auth: ReturnType<typeof readConfig>['config']['auth'];
let personEventId: string;
let orderEventId: string;

before(async () => {
  server = await startServerInProcess();
  auth = readConfig(server.dataDir).config.auth;
  const person = await server.request('POST', '/v1/aggregates/person/p-1/events', { event_type: 'person_created', payload: { name: 'Ada' } });
  assert.equal(person.status, 201, JSON.stringify(person.body));
  personEventId = person.body.metadata.event_id;
  const order = await server.request('POST', '/v1/aggregates/order/o-1/events', { event_type: 'order_created', payload: {} });
  assert.equal(order.status, 201, JSON.stringify(order.body));
  orderEventId = order.body.metadata.event_id;
  const acme = await server.request('POST', '/v1/aggregates/order/o-9/events', { event_type: 'order_created', payload: {} }, { 'x-tenant-id': 'acme' });
  assert.equal(acme.status, 201, JSON.stringify(acme.body));
});
after(async () => {
  if (!server) return;
  await server.stop();
  removeDir(server.dataDir);
});

function token(input: Partial<IssueInput>): string {
  return issueToken(auth, { group: 'team', user: 'tester', actions: ['aggregate.read'], ...input }).token;
}

const as = (tok: string, path: string, headers?: Record<string, string>) => httpRequest(server.url, tok, 'GET', path, undefined, headers);

const HOST_FIELDS = ['pid', 'data_dir', 'aggregates', 'shards', 'workers'];

test('leaks - /v1/status gives the full server view only to a * token for every tenant', { timeout: 20_000 }, async () => {
  for (const admin of [server.token, token({ actions: ['*'] }), token({ actions: ['*'], tenants: ['*'] })]) {
    const res = await as(admin, '/v1/status');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.scope, 'server');
    assert.equal(res.body.pid, process.pid);
    assert.equal(res.body.data_dir, server.dataDir);
    assert.equal(res.body.aggregates, 3, 'every tenant counted');
  }
});

test('leaks - /v1/status for any other token is the tenant view: no pid, paths or counts', { timeout: 20_000 }, async () => {
  const limited = [
    token({ actions: ['aggregate.read'] }),
    token({ actions: ['tenant.admin', 'aggregate.*', 'events.read'] }),
    token({ actions: ['*'], tenants: ['default'] }), // root of one tenant only
  ];
  for (const tok of limited) {
    const res = await as(tok, '/v1/status');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.scope, 'tenant');
    assert.equal(res.body.tenant, 'default');
    for (const field of HOST_FIELDS) assert.equal(field in res.body, false, `no ${field}`);
    assert.equal(JSON.stringify(res.body).includes(server.dataDir), false, 'the data dir appears nowhere');
    assert.equal(typeof res.body.port, 'number');
    assert.equal(typeof res.body.uptime_secs, 'number');
  }
  const acme = token({ actions: ['aggregate.read'], tenants: ['acme'] });
  const own = await as(acme, '/v1/status', { 'x-tenant-id': 'acme' });
  assert.equal(own.status, 200);
  assert.equal(own.body.tenant, 'acme');
  assertError(await as(acme, '/v1/status', { 'x-tenant-id': 'globex' }), 403, 'forbidden');
  assertError(await as(acme, '/v1/status'), 403, 'forbidden');
});

test('leaks - GET /v1/events/{id} outside the token resources is the same 404 as an absent id', { timeout: 20_000 }, async () => {
  const orders = token({ actions: ['events.read'], resources: ['order'] });
  // In scope: found.
  const own = await as(orders, `/v1/events/${orderEventId}`);
  assert.equal(own.status, 200, JSON.stringify(own.body));
  assert.equal(own.body.aggregate_type, 'order');
  // Out of scope and absent: both 404 not_found, with bodies equal once the id is masked.
  const hidden = await as(orders, `/v1/events/${personEventId}`);
  const absentId = String(BigInt(personEventId) + 1_000_000n);
  const absent = await as(orders, `/v1/events/${absentId}`);
  assertError(hidden, 404, 'not_found');
  assertError(absent, 404, 'not_found');
  assert.equal(JSON.stringify(hidden.body).replaceAll(personEventId, 'ID'), JSON.stringify(absent.body).replaceAll(absentId, 'ID'));
  assert.equal(hidden.headers.get('content-length'), absent.headers.get('content-length'), 'same length (ids of equal length)');
  // Per-id resources behave the same.
  const oneOrder = token({ actions: ['events.read'], resources: ['order/o-2'] });
  assertError(await as(oneOrder, `/v1/events/${orderEventId}`), 404, 'not_found');
  // A token without events.read is still refused for lacking the action, whatever the id.
  assertError(await as(token({ actions: ['aggregate.read'] }), `/v1/events/${personEventId}`), 403, 'forbidden');
});
