/**
 * Issue 12 item 5: per-tenant views. `GET /v1/tenants` and `GET /v1/tenants/{id}` (tenant.admin)
 * answer shard, aggregates, events, approximate bytes, quota, write rate and plugin lag; a tenant
 * admin scoped to some tenants sees only those and cannot change quotas or placement; `/metrics`
 * labels appends and storage by tenant with bounded cardinality (top N plus `_other`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { tenantShard } from '../src/core/index.js';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

let server: TestServer;
let failing: Server;
let failingPort = 0;

before(async () => {
  server = await startServerInProcess({
    configToml: '[tenants]\nmulti_tenant = true\nshard_count = 4\nmetrics_top_n = 2\n\n[plugins]\npoll_ms = 20\n',
  });
  // A plugin endpoint that answers the connectivity check and fails every delivery: its jobs stay
  // pending, so the lag is visible.
  failing = createServer((req, res) => res.writeHead(req.method === 'HEAD' ? 200 : 503).end());
  await new Promise<void>((r) => failing.listen(0, '127.0.0.1', () => r()));
  failingPort = (failing.address() as { port: number }).port;
});
after(async () => {
  await server.stop();
  await new Promise<void>((r) => failing.close(() => r()));
  removeDir(server.dataDir);
});

const as = (tenant: string) => ({ 'x-tenant-id': tenant });

async function write(tenant: string, id: string, events: number): Promise<void> {
  for (let i = 0; i < events; i++) {
    const res = await server.request('POST', `/v1/aggregates/order/${id}/events`, { event_type: 'touched', payload: { i, pad: 'x'.repeat(100) } }, as(tenant));
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
}

async function tokenFor(actions: string[], tenants: string[]): Promise<string> {
  const res = await server.request('POST', '/v1/tokens', { group: 'ops', user: 'tenant-admin', actions, tenants });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.token;
}

async function until<T>(ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('views - every tenant with usage, quota, rate and plugin lag', async () => {
  const plugin = await server.request('PUT', '/v1/plugins/hook', { tenants: ['t1'], options: { kind: 'http', endpoint: `http://127.0.0.1:${failingPort}/` } });
  assert.equal(plugin.status, 200, JSON.stringify(plugin.body));
  await write('t1', 'a', 4);
  await write('t1', 'b', 2);
  await write('t2', 'a', 1);
  await write('t3', 'a', 3);
  await write('t4', 'a', 1);
  assert.equal((await server.request('PUT', '/v1/tenants/t1/quota', { max_aggregates: 50 })).status, 200);
  assert.equal((await server.request('PUT', '/v1/tenants/t2/limit', { writes_per_sec: 100, burst: 300 })).status, 200);

  const list = await server.request('GET', '/v1/tenants');
  assert.equal(list.status, 200, JSON.stringify(list.body));
  const byName = new Map<string, any>(list.body.items.map((v: any) => [v.tenant, v]));
  assert.deepEqual([...byName.keys()], ['t1', 't2', 't3', 't4']);
  const t1 = byName.get('t1');
  assert.equal(t1.shard, `shard-${String(tenantShard({ shardCount: 4, multiTenant: true }, 't1')).padStart(4, '0')}`);
  assert.equal(t1.aggregates, 2);
  assert.equal(t1.events, 6);
  assert.ok(t1.bytes > 6 * 100 && t1.bytes < 6 * 100 * 20, `bytes ≈ stored size, got ${t1.bytes}`);
  assert.deepEqual(t1.quota, { max_aggregates: 50, used: 2 });
  assert.equal(t1.rate_limit, null);
  assert.deepEqual(byName.get('t2').rate_limit, { writes_per_sec: 100, burst: 300 });
  assert.equal(byName.get('t2').quota, null);
  assert.equal(byName.get('t3').events, 3);
  // t1's plugin jobs fail and stay pending: the view shows them and how old the oldest is.
  const lagged = await until(10_000, async () => {
    const v = (await server.request('GET', '/v1/tenants/t1')).body;
    return v.plugins.pending === 6 && v.plugins.lag_ms > 0 ? v : undefined;
  });
  assert.equal(lagged.plugins.dead, 0);
  assert.deepEqual((await server.request('GET', '/v1/tenants/t3')).body.plugins, { pending: 0, dead: 0, lag_ms: 0 });
  // A tenant with no data and no metadata: zeros, not 404 (every tenant id is a place).
  const empty = (await server.request('GET', '/v1/tenants/nobody')).body;
  assert.equal(empty.aggregates, 0);
  assert.equal(empty.events, 0);
});

test('views - a tenant admin sees only its tenants and cannot change placement, quotas or rates', async () => {
  const scoped = await tokenFor(['tenant.admin'], ['t1', 't2']);
  const req = (method: string, path: string, body?: unknown) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${scoped}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
  const list = await req('GET', '/v1/tenants');
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.items.map((v: any) => v.tenant), ['t1', 't2']);
  assert.equal((await req('GET', '/v1/tenants/t2')).status, 200);
  assertError(await req('GET', '/v1/tenants/t3'), 403, 'forbidden');
  assertError(await req('PUT', '/v1/tenants/t1/quota', { max_aggregates: 1_000_000 }), 403, 'forbidden');
  assertError(await req('PUT', '/v1/tenants/t1/shard', { shard: 1 }), 403, 'forbidden');
  assertError(await req('PUT', '/v1/tenants/t1/limit', { writes_per_sec: 1 }), 403, 'forbidden');
  const meta = await req('GET', '/v1/tenant-meta');
  assert.deepEqual(meta.body.items.map((e: any) => e.tenant), ['t1', 't2']);
  // Without tenant.admin: nothing.
  const reader = await tokenFor(['aggregate.read'], ['t1']);
  const res = await fetch(`${server.url}/v1/tenants`, { headers: { authorization: `Bearer ${reader}` } });
  assert.equal(res.status, 403);
  // The quota was not changed by the refused call.
  assert.equal((await server.request('GET', '/v1/tenants/t1')).body.quota.max_aggregates, 50);
});

test('views - /metrics labels appends and storage by tenant: the top N, the rest as _other', async () => {
  await write('t3', 'b', 4); // t3: 7 appends, t1: 6, t2: 1, t4: 1
  const text = await until(20_000, async () => {
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.token}` } });
    const body = await res.text();
    return /eventdbx_tenant_storage\{tenant="t3",kind="events"\} 7\b/.test(body) ? body : undefined;
  });
  const appended = [...text.matchAll(/^eventdbx_tenant_events_appended_total\{tenant="([^"]+)"\} (\d+)/gm)].map((m) => [m[1], Number(m[2])]);
  assert.deepEqual(Object.fromEntries(appended), { t3: 7, t1: 6, _other: 2 });
  const aggregates = [...text.matchAll(/^eventdbx_tenant_storage\{tenant="([^"]+)",kind="aggregates"\} (\d+)/gm)].map((m) => [m[1], Number(m[2])]);
  // t1 and t3 hold 2 aggregates each; t2 and t4 one each → _other = 2.
  assert.deepEqual(Object.fromEntries(aggregates), { t1: 2, t3: 2, _other: 2 });
  const tenantSeries = new Set([...text.matchAll(/tenant="([^"]+)"/g)].map((m) => m[1]));
  assert.ok(tenantSeries.size <= 3, `at most top 2 + other tenant labels, got ${[...tenantSeries].join(',')}`);
});
