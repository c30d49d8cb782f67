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
