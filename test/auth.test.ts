/** Auth (DESIGN §7): Ed25519 JWTs, actions, resources, tenants; /health is open. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, issueToken, readConfig, type IssueInput } from '../src/core/index.js';
import { httpRequest, removeDir, runDbx, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError, headOf } from './helpers/assertions.js';

let server: TestServer;
let auth: ReturnType<typeof readConfig>['config']['auth'];

before(async () => {
  server = await startServerInProcess();
  auth = readConfig(server.dataDir).config.auth;
  for (const [type, id] of [['order', 'o-1'], ['order', 'o-2'], ['person', 'p-1']]) {
    assert.equal((await server.request('POST', `/v1/aggregates/${type}/${id}`, { event_type: 'created', payload: {} })).status, 201);
  }
  assert.equal((await server.request('POST', '/v1/aggregates/order/o-1', { event_type: 'created' }, { 'x-tenant-id': 'acme' })).status, 201);
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

function token(input: Partial<IssueInput> = {}, now?: number): string {
  return issueToken(auth, { group: 'team', user: 'tester', actions: ['*'], ...input }, now).token;
}

const as = (tok: string | undefined, method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  httpRequest(server.url, tok, method, path, body, headers);
const append = (tok: string | undefined, type = 'order', id = 'o-1', headers?: Record<string, string>) =>
  as(tok, 'POST', `/v1/aggregates/${type}/${id}/events`, { event_type: 'touched', payload: { by: 'auth-test' } }, headers);

test('auth - no token, a malformed header or a bad signature is 401 unauthorized', { timeout: 20_000 }, async () => {
  assertError(await as(undefined, 'GET', '/v1/aggregates/order/o-1'), 401, 'unauthorized');
  assertError(await append(undefined), 401, 'unauthorized');
  assertError(await as(undefined, 'GET', '/v1/aggregates/order/o-1', undefined, { authorization: 'Basic dXNlcjpwdw==' }), 401, 'unauthorized');
  assertError(await as('not.a-jwt', 'GET', '/v1/aggregates/order/o-1'), 401, 'unauthorized');
  // Signed with another key.
  const foreign = issueToken({ ...auth, ...generateKeyPair() }, { group: 'team', user: 'tester', actions: ['*'] }).token;
  assertError(await as(foreign, 'GET', '/v1/aggregates/order/o-1'), 401, 'unauthorized');
  // A reader's claims swapped for a root's, keeping the reader's signature.
  const reader = token({ actions: ['aggregate.read'] }).split('.');
  const root = token().split('.');
  assertError(await as(`${reader[0]}.${root[1]}.${reader[2]}`, 'GET', '/v1/aggregates/order/o-1'), 401, 'unauthorized');
  assert.equal((await headOf(server, 'order', 'o-1'))?.version, 1);
});

test('auth - an expired token is 401; a valid one works', { timeout: 20_000 }, async () => {
  const expired = token({ ttl_secs: 60 }, Date.now() - 3_600_000);
  assertError(await as(expired, 'GET', '/v1/aggregates/order/o-1'), 401, 'unauthorized');
  const fresh = token({ ttl_secs: 60 });
  assert.equal((await as(fresh, 'GET', '/v1/aggregates/order/o-1')).status, 200);
});

test('auth - a token lacking the action is 403 forbidden; wildcards match', { timeout: 20_000 }, async () => {
  const reader = token({ actions: ['aggregate.read'] });
  assert.equal((await as(reader, 'GET', '/v1/aggregates/order/o-1')).status, 200);
  assertError(await append(reader), 403, 'forbidden');
  assertError(await as(reader, 'GET', '/v1/events'), 403, 'forbidden');
  assertError(await as(reader, 'POST', '/v1/aggregates/order/o-1/archive', {}), 403, 'forbidden');
  assertError(await as(reader, 'GET', '/metrics'), 403, 'forbidden');
  const writer = token({ actions: ['aggregate.*'] });
  assert.equal((await append(writer)).status, 201);
  assert.equal((await as(token({ actions: ['events.read'] }), 'GET', '/v1/events')).status, 200);
});

test('auth - tenants: a bound token works only for its tenants; a token without tenants only for default', { timeout: 20_000 }, async () => {
  const acme = token({ actions: ['aggregate.read'], tenants: ['acme'] });
  assert.equal((await as(acme, 'GET', '/v1/aggregates/order/o-1', undefined, { 'x-tenant-id': 'acme' })).status, 200);
  assert.equal((await as(acme, 'GET', '/v1/aggregates/order/o-1', undefined, { 'x-tenant-id': 'ACME' })).status, 200);
  assertError(await as(acme, 'GET', '/v1/aggregates/order/o-1', undefined, { 'x-tenant-id': 'globex' }), 403, 'forbidden');
  assertError(await as(acme, 'GET', '/v1/aggregates/order/o-1'), 403, 'forbidden');

  const unbound = token({ actions: ['aggregate.read', 'aggregate.append'] });
  assert.equal((await as(unbound, 'GET', '/v1/aggregates/order/o-1')).status, 200);
  assert.equal((await as(unbound, 'GET', '/v1/aggregates/order/o-1', undefined, { 'x-tenant-id': 'default' })).status, 200);
  assertError(await as(unbound, 'GET', '/v1/aggregates/order/o-1', undefined, { 'x-tenant-id': 'acme' }), 403, 'forbidden');
  assertError(await append(unbound, 'order', 'o-1', { 'x-tenant-id': 'acme' }), 403, 'forbidden');
  assert.equal((await headOf(server, 'order', 'o-1', 'acme'))?.version, 1);
});

test('auth - resource patterns <type> and <type>/<id> limit which aggregates a token reaches', { timeout: 20_000 }, async () => {
  const orders = token({ actions: ['aggregate.read', 'aggregate.append'], resources: ['order'] });
  assert.equal((await as(orders, 'GET', '/v1/aggregates/order/o-2')).status, 200);
  assertError(await as(orders, 'GET', '/v1/aggregates/person/p-1'), 403, 'forbidden');
  assertError(await append(orders, 'person', 'p-1'), 403, 'forbidden');
  // Routes that name the aggregate in the body check it too, before anything is written.
  assertError(await as(orders, 'POST', '/v1/events', { aggregate_type: 'person', aggregate_id: 'p-1', event_type: 'touched' }), 403, 'forbidden');
  const batch = await as(orders, 'POST', '/v1/batch', {
    events: [
      { aggregate_type: 'order', aggregate_id: 'o-2', event_type: 'touched' },
      { aggregate_type: 'person', aggregate_id: 'p-1', event_type: 'touched' },
    ],
  });
  assertError(batch, 403, 'forbidden');
  assert.equal((await headOf(server, 'order', 'o-2'))?.version, 1);
  assert.equal((await headOf(server, 'person', 'p-1'))?.version, 1);

  const one = token({ actions: ['aggregate.read'], resources: ['order/o-1'] });
  assert.equal((await as(one, 'GET', '/v1/aggregates/order/o-1')).status, 200);
  assertError(await as(one, 'GET', '/v1/aggregates/order/o-2'), 403, 'forbidden');
  assertError(await as(one, 'GET', '/v1/aggregates/person/p-1'), 403, 'forbidden');
  const glob = token({ actions: ['aggregate.read'], resources: ['order/o-*'] });
  assert.equal((await as(glob, 'GET', '/v1/aggregates/order/o-2')).status, 200);
});

test('auth - writes need group and user claims', { timeout: 20_000 }, async () => {
  assertError(await append(token({ group: '', user: '' })), 403, 'forbidden');
});

test('auth - /health needs no token', { timeout: 20_000 }, async () => {
  const res = await as(undefined, 'GET', '/health');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { status: 'ok' });
});

test('auth - tokens from `dbx token generate --json` work against the server', { timeout: 30_000 }, async () => {
  const out = await runDbx(['token', 'generate', '--data-dir', server.dataDir, '--group', 'ops', '--user', 'ada', '--action', 'aggregate.read', '--json']);
  assert.equal(out.code, 0, out.stderr);
  const issued = JSON.parse(out.stdout);
  assert.equal(typeof issued.jti, 'string');
  assert.deepEqual(issued.actions, ['aggregate.read']);
  assert.equal((await as(issued.token, 'GET', '/v1/aggregates/order/o-1')).status, 200);
  assertError(await append(issued.token), 403, 'forbidden');

  const bound = await runDbx(['token', 'generate', '--data-dir', server.dataDir, '--group', 'ops', '--user', 'bo', '--tenant', 'acme', '--resource', 'order', '--json']);
  assert.equal(bound.code, 0, bound.stderr);
  const tok = JSON.parse(bound.stdout).token as string;
  assert.equal((await append(tok, 'order', 'o-1', { 'x-tenant-id': 'acme' })).status, 201);
  assertError(await append(tok, 'person', 'p-1', { 'x-tenant-id': 'acme' }), 403, 'forbidden');
  assertError(await append(tok), 403, 'forbidden');
});

test('auth - lists and event reads show only the aggregates the token covers', { timeout: 20_000 }, async () => {
  const narrow = token({ actions: ['aggregate.read', 'events.read'], resources: ['order/o-1'] });
  const all = await as(narrow, 'GET', '/v1/aggregates?take=100');
  assert.equal(all.status, 200);
  assert.deepEqual(all.body.items.map((a: { aggregate_id: string }) => a.aggregate_id), ['o-1']);
  const ofType = await as(narrow, 'GET', '/v1/aggregates/order?take=100');
  assert.deepEqual(ofType.body.items.map((a: { aggregate_id: string }) => a.aggregate_id), ['o-1']);
  const events = await as(narrow, 'GET', '/v1/events?take=100');
  assert.ok(events.body.items.length > 0);
  assert.ok(events.body.items.every((e: { aggregate_id: string }) => e.aggregate_id === 'o-1'));
  const foreignEvent = (await server.request('GET', '/v1/aggregates/person/p-1/events')).body.items[0].metadata.event_id;
  // 404, not 403: an event outside the token's resources must look absent (test/leaks.test.ts).
  assertError(await as(narrow, 'GET', `/v1/events/${foreignEvent}`), 404, 'not_found');
  const typeWide = token({ actions: ['aggregate.read'], resources: ['order'] });
  const orders = await as(typeWide, 'GET', '/v1/aggregates?take=100');
  assert.deepEqual(orders.body.items.map((a: { aggregate_type: string }) => a.aggregate_type).sort(), ['order', 'order']);
});

test('auth - a caller without a token gets 401 before any validation error', { timeout: 20_000 }, async () => {
  assertError(await as(undefined, 'GET', '/v1/aggregates/Person/x'), 401, 'unauthorized');
  assertError(await as(undefined, 'GET', '/v1/aggregates?bogus=1'), 401, 'unauthorized');
  assertError(await as(undefined, 'POST', '/v1/aggregates/order/o-1/events', '{not json'), 401, 'unauthorized');
});
