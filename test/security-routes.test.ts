/**
 * Issue 10 item 2: enforcement on every route. A table names every registered route with a request
 * that would otherwise reach its handler; each is sent with no token, with each kind of bad token
 * (401), with a token for another tenant and with one lacking the route's action (403). Adding a
 * route without a row here fails the first test.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { decodePrivateKey, generateKeyPair, issueToken, readConfig, type Config, type IssueInput } from '../src/core/index.js';
import { startServer, type RunningServer } from '../src/coordinator/index.js';
import { httpRequest, readCliToken, removeDir, tempDataDir } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

interface Row {
  path: string;
  body?: unknown;
  /** `open`: no token needed (health, the API document); `any-token`: a valid token, no action. */
  kind?: 'open' | 'any-token';
  contentType?: string;
  /** A listing scoped by the token's tenants: another tenant's token gets 200 with none of ours. */
  filtered?: true;
}

const ev = { event_type: 'touched', payload: { n: 1 } };
const TABLE: Record<string, Row> = {
  'GET /health': { path: '/health', kind: 'open' },
  'GET /openapi.json': { path: '/openapi.json', kind: 'open' },
  'GET /metrics': { path: '/metrics' },
  'GET /v1/status': { path: '/v1/status', kind: 'any-token' },
  'POST /v1/aggregates/:type/:id': { path: '/v1/aggregates/order/new-1', body: ev },
  'POST /v1/aggregates/:type/:id/events': { path: '/v1/aggregates/order/o-1/events', body: ev },
  'POST /v1/events': { path: '/v1/events', body: { ...ev, aggregate_type: 'order', aggregate_id: 'o-1' } },
  'POST /v1/aggregates/:type/:id/patch': { path: '/v1/aggregates/order/o-1/patch', body: { event_type: 'p', patch: [{ op: 'add', path: '/x', value: 1 }] } },
  'POST /v1/aggregates/:type/:id/archive': { path: '/v1/aggregates/order/o-1/archive', body: {} },
  'POST /v1/aggregates/:type/:id/restore': { path: '/v1/aggregates/order/o-1/restore', body: {} },
  'POST /v1/batch': { path: '/v1/batch', body: { events: [{ ...ev, aggregate_type: 'order', aggregate_id: 'o-1' }] } },
  'POST /v1/batch/check': { path: '/v1/batch/check', body: { events: [{ ...ev, aggregate_type: 'order', aggregate_id: 'o-1' }] } },
  'POST /v1/aggregates/:type/:id/snapshots': { path: '/v1/aggregates/order/o-1/snapshots', body: {} },
  'GET /v1/aggregates': { path: '/v1/aggregates' },
  'GET /v1/aggregates/:type': { path: '/v1/aggregates/order' },
  'GET /v1/aggregates/:type/:id': { path: '/v1/aggregates/order/o-1' },
  'GET /v1/aggregates/:type/:id/select': { path: '/v1/aggregates/order/o-1/select?fields=n' },
  'GET /v1/aggregates/:type/:id/events': { path: '/v1/aggregates/order/o-1/events' },
  'GET /v1/aggregates/:type/:id/verify': { path: '/v1/aggregates/order/o-1/verify' },
  'GET /v1/aggregates/:type/:id/proof': { path: '/v1/aggregates/order/o-1/proof?version=1' },
  'GET /v1/aggregates/:type/:id/snapshots': { path: '/v1/aggregates/order/o-1/snapshots' },
  'GET /v1/events': { path: '/v1/events' },
  'GET /v1/events/:event_id': { path: '/v1/events/1' },
  'GET /v1/stream': { path: '/v1/stream' },
  'GET /v1/export': { path: '/v1/export?type=order' },
  'GET /v1/export/types': { path: '/v1/export/types' },
  'GET /v1/aggregates/:type/:id/replay': { path: '/v1/aggregates/order/o-1/replay' },
  'POST /v1/import': { path: '/v1/import', body: '', contentType: 'application/x-ndjson' },
  'GET /v1/schemas': { path: '/v1/schemas' },
  'POST /v1/schemas': { path: '/v1/schemas', body: { aggregate: 'thing', events: {} } },
  'GET /v1/schemas/:aggregate': { path: '/v1/schemas/order' },
  'PUT /v1/schemas/:aggregate': { path: '/v1/schemas/order', body: { events: {} } },
  'DELETE /v1/schemas/:aggregate': { path: '/v1/schemas/order' },
  'GET /v1/schemas/:aggregate/versions': { path: '/v1/schemas/order/versions' },
  'GET /v1/schemas/:aggregate/versions/:version': { path: '/v1/schemas/order/versions/1' },
  'GET /v1/schemas/:aggregate/json-schema': { path: '/v1/schemas/order/json-schema' },
  'POST /v1/schemas/:aggregate/validate': { path: '/v1/schemas/order/validate', body: ev },
  'GET /v1/tokens': { path: '/v1/tokens' },
  'POST /v1/tokens': { path: '/v1/tokens', body: { group: 'g', user: 'u', actions: ['aggregate.read'] } },
  'GET /v1/tokens/:jti': { path: '/v1/tokens/some-jti' },
  'POST /v1/tokens/:jti/revoke': { path: '/v1/tokens/some-jti/revoke', body: {} },
  'POST /v1/tokens/:jti/refresh': { path: '/v1/tokens/some-jti/refresh', body: {} },
  'POST /v1/tokens/rotate-keys': { path: '/v1/tokens/rotate-keys', body: {} },
  'GET /v1/plugins': { path: '/v1/plugins' },
  'GET /v1/plugins/:name': { path: '/v1/plugins/web' },
  'PUT /v1/plugins/:name': { path: '/v1/plugins/web', body: { enabled: false, options: { kind: 'log' } } },
  'DELETE /v1/plugins/:name': { path: '/v1/plugins/web' },
  'POST /v1/plugins/:name/enable': { path: '/v1/plugins/web/enable', body: {} },
  'POST /v1/plugins/:name/disable': { path: '/v1/plugins/web/disable', body: {} },
  'POST /v1/plugins/:name/test': { path: '/v1/plugins/web/test', body: {} },
  'POST /v1/plugins/:name/replay': { path: '/v1/plugins/web/replay', body: { aggregate_type: 'order' } },
  'GET /v1/queue': { path: '/v1/queue' },
  'POST /v1/queue/retry': { path: '/v1/queue/retry', body: {} },
  'POST /v1/queue/clear': { path: '/v1/queue/clear', body: {} },
  'GET /v1/tenants': { path: '/v1/tenants', filtered: true },
  'GET /v1/tenants/:tenant': { path: '/v1/tenants/default' },
  'GET /v1/tenant-meta': { path: '/v1/tenant-meta', filtered: true },
  'GET /v1/tenant-meta/stats': { path: '/v1/tenant-meta/stats' },
  'PUT /v1/tenants/:tenant/shard': { path: '/v1/tenants/default/shard', body: { shard: 0 } },
  'DELETE /v1/tenants/:tenant/shard': { path: '/v1/tenants/default/shard' },
  'PUT /v1/tenants/:tenant/quota': { path: '/v1/tenants/default/quota', body: { max_aggregates: 1 } },
  'DELETE /v1/tenants/:tenant/quota': { path: '/v1/tenants/default/quota' },
  'POST /v1/tenants/:tenant/quota/recalc': { path: '/v1/tenants/default/quota/recalc', body: {} },
  'PUT /v1/tenants/:tenant/limit': { path: '/v1/tenants/default/limit', body: { writes_per_sec: 1 } },
  'DELETE /v1/tenants/:tenant/limit': { path: '/v1/tenants/default/limit' },
  'GET /v1/tenants/:tenant/export': { path: '/v1/tenants/default/export' },
  'POST /v1/tenants/:tenant/import': { path: '/v1/tenants/default/import', body: '', contentType: 'application/x-ndjson' },
  'DELETE /v1/tenants/:tenant': { path: '/v1/tenants/default' },
};

let server: RunningServer;
let dataDir: string;
let root: string;
let auth: Config['auth'];

before(async () => {
  dataDir = tempDataDir();
  server = await startServer({ dataDir, listenPort: 0, host: '127.0.0.1', logLevel: 'silent' });
  root = readCliToken(dataDir);
  auth = readConfig(dataDir).config.auth;
  assert.equal((await httpRequest(server.url, root, 'POST', '/v1/aggregates/order/o-1', ev)).status, 201);
});
after(async () => {
  await server.stop();
  removeDir(dataDir);
});

const tokenFor = (input: Partial<IssueInput>, now?: number) => issueToken(auth, { group: 'team', user: 'tester', actions: ['*'], tenants: ['default'], ...input }, now).token;

const send = (row: Row, token: string | undefined, method: string, headers: Record<string, string> = {}) =>
  httpRequest(server.url, token, method, row.path, row.body, { ...(row.contentType ? { 'content-type': row.contentType } : {}), ...headers });

function each(fn: (key: string, method: string, row: Row) => Promise<void>): Promise<void[]> {
  return Promise.all(
    Object.entries(TABLE).map(([key, row]) => fn(key, key.split(' ')[0] as string, row)),
  );
}

test('routes - the table names every registered route, and nothing else', () => {
  const registered = server.routes.map((r) => `${r.method} ${r.url}`).sort();
  assert.deepEqual(Object.keys(TABLE).sort(), registered, 'add a row to TABLE for every new route');
  for (const spec of server.routes) {
    const row = TABLE[`${spec.method} ${spec.url}`] as Row;
    assert.equal(spec.action === null, row.kind !== undefined, `${spec.method} ${spec.url}: only open and any-token rows have no action`);
  }
});

test('routes - every route but the open ones: no token → 401, a token for another tenant → 403', { timeout: 60_000 }, async () => {
  const otherTenant = tokenFor({ tenants: ['elsewhere'] });
  await each(async (key, method, row) => {
    if (row.kind === 'open') {
      const res = await send(row, undefined, method);
      assert.equal(res.status, 200, `${key} is open`);
      return;
    }
    const none = await send(row, undefined, method);
    assert.equal(none.status, 401, `${key} without a token: ${none.status}`);
    assertError(none, 401, 'unauthorized');
    const wrong = await send(row, otherTenant, method);
    if (row.filtered) {
      assert.equal(wrong.status, 200, `${key} with another tenant's token: ${wrong.status}`);
      assert.ok(wrong.body.items.every((i: { tenant: string }) => i.tenant === 'elsewhere'), `${key} shows only the token's tenants`);
      return;
    }
    assert.equal(wrong.status, 403, `${key} with another tenant's token: ${wrong.status} ${JSON.stringify(wrong.body)}`);
    assertError(wrong, 403, 'forbidden');
  });
});

test('routes - a token lacking the route\'s action → 403 on every route that needs one', { timeout: 60_000 }, async () => {
  for (const spec of server.routes) {
    if (spec.action === null) continue;
    const row = TABLE[`${spec.method} ${spec.url}`] as Row;
    // Every action but the one the route needs (and no wildcard).
    const others = ['aggregate.read', 'aggregate.create', 'aggregate.append', 'aggregate.archive', 'aggregate.import', 'events.read', 'schema.read', 'schema.write', 'token.admin', 'metrics.read', 'plugin.admin', 'tenant.admin'].filter(
      (a) => a !== spec.action,
    );
    const res = await send(row, tokenFor({ actions: others }), spec.method);
    assert.equal(res.status, 403, `${spec.method} ${spec.url} without ${spec.action}: ${res.status} ${JSON.stringify(res.body)}`);
    assertError(res, 403, 'forbidden');
  }
});

test('routes - a resource pattern outside the token → 403; <type> and <type>/<id> patterns with * cover what they name', { timeout: 30_000 }, async () => {
  const get = (tok: string, path: string) => httpRequest(server.url, tok, 'GET', path);
  assertError(await get(tokenFor({ resources: ['person'] }), '/v1/aggregates/order/o-1'), 403, 'forbidden');
  assertError(await get(tokenFor({ resources: ['order/o-2*'] }), '/v1/aggregates/order/o-1'), 403, 'forbidden');
  assert.equal((await get(tokenFor({ resources: ['order/o-*'] }), '/v1/aggregates/order/o-1')).status, 200);
  assert.equal((await get(tokenFor({ resources: ['ord*'] }), '/v1/aggregates/order/o-1')).status, 200);
  const append = await httpRequest(server.url, tokenFor({ resources: ['person/*'] }), 'POST', '/v1/aggregates/order/o-1/events', ev);
  assertError(append, 403, 'forbidden');
});

const b64url = (value: string | Uint8Array) => Buffer.from(value).toString('base64url');

function signed(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(ed.sign(Buffer.from(input), decodePrivateKey(auth.private_key)))}`;
}

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8'));
}

test('routes - expired, not yet valid, revoked, foreign, alg none, HS256-with-the-public-key, edited, truncated, garbage and empty tokens → 401 on every route', { timeout: 120_000 }, async () => {
  const now = Date.now();
  const valid = tokenFor({});
  const base = claimsOf(valid);
  const revoked = (await httpRequest(server.url, root, 'POST', '/v1/tokens', { group: 'g', user: 'u', actions: ['*'], tenants: ['default'] })).body;
  assert.equal((await httpRequest(server.url, root, 'POST', `/v1/tokens/${revoked.record.jti}/revoke`, {})).status, 200);
  const hsInput = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'HS256' }))}.${b64url(JSON.stringify(base))}`;
  const [h, c, s] = valid.split('.') as [string, string, string];
  const bad: Record<string, string> = {
    // 1 hour past expiry, far beyond clock_skew_secs.
    expired: tokenFor({ ttl_secs: 60 }, now - 3_600_000),
    'not yet valid': signed({ typ: 'JWT', alg: 'EdDSA' }, { ...base, nbf: Math.floor(now / 1000) + auth.clock_skew_secs + 600 }),
    'issued in the future': signed({ typ: 'JWT', alg: 'EdDSA' }, { ...base, iat: Math.floor(now / 1000) + auth.clock_skew_secs + 600 }),
    revoked: revoked.token,
    'another key': issueToken({ ...auth, ...generateKeyPair() }, { group: 'g', user: 'u', actions: ['*'], tenants: ['default'] }).token,
    'alg none': `${b64url(JSON.stringify({ typ: 'JWT', alg: 'none' }))}.${c}.`,
    'alg none, signature kept': `${b64url(JSON.stringify({ typ: 'JWT', alg: 'none' }))}.${c}.${s}`,
    'HS256 keyed with the public key': `${hsInput}.${createHmac('sha256', auth.public_key).update(hsInput).digest('base64url')}`,
    'HS256 keyed with the raw public key': `${hsInput}.${createHmac('sha256', Buffer.from(auth.public_key, 'base64')).update(hsInput).digest('base64url')}`,
    'claims edited': `${h}.${b64url(JSON.stringify({ ...base, tenants: ['*'], actions: ['*'] }))}.${s}`,
    'issuer edited and re-signed by another key': issueToken({ ...auth, ...generateKeyPair(), issuer: 'evil' }, { group: 'g', user: 'u', actions: ['*'] }).token,
    'wrong audience': signed({ typ: 'JWT', alg: 'EdDSA' }, { ...base, aud: 'someone-else' }),
    truncated: valid.slice(0, -6),
    'signature dropped': `${h}.${c}`,
    'extra segment': `${valid}.${s}`,
    garbage: 'x'.repeat(40),
    'dots only': '..',
    'base64 junk': `${b64url('{')}.${b64url('[')}.${b64url('?')}`,
    'claims not an object': signed({ typ: 'JWT', alg: 'EdDSA' }, 42 as unknown as Record<string, unknown>),
  };
  await each(async (key, method, row) => {
    if (row.kind === 'open') return;
    for (const [what, tok] of Object.entries(bad)) {
      const res = await send(row, tok, method);
      assert.equal(res.status, 401, `${key} with a ${what} token: ${res.status} ${JSON.stringify(res.body)}`);
      assertError(res, 401, 'unauthorized');
    }
    for (const header of ['Bearer', 'Bearer ', 'bearer', '', 'Basic abc', `Bearer ${valid} extra`]) {
      const res = await httpRequest(server.url, undefined, method, row.path, row.body, { authorization: header, ...(row.contentType ? { 'content-type': row.contentType } : {}) });
      assert.equal(res.status, 401, `${key} with Authorization '${header.slice(0, 20)}': ${res.status}`);
    }
  });
  // The same valid token still works (nothing above poisoned the verified-token cache).
  assert.equal((await httpRequest(server.url, valid, 'GET', '/v1/aggregates/order/o-1')).status, 200);
});
