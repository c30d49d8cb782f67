/**
 * Issue 12 items 5 and 8, a large neighbour seen by the views: the scan behind `GET /v1/tenants`
 * and the per-tenant storage series of /metrics counts a tenant's ranges in steps (20,000 keys,
 * yielding between them) so a tenant of millions never stalls other tenants' requests. The counts
 * must stay exact: a tenant spanning several steps is counted the same as the one-tenant view
 * (counted at once), by /metrics, and as imported; and a small tenant beside it too.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';

let server: TestServer;

before(async () => {
  server = await startServerInProcess({ configToml: '[tenants]\nmulti_tenant = true\nshard_count = 2\n' });
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

let nextEventId = 900_000_000_000_000_000n;

/** `aggregates` new aggregates of `tenant`, `versions` events each, through the bulk import. */
async function seed(tenant: string, aggregates: number, versions: number): Promise<void> {
  const chunk = 10_000;
  for (let from = 0; from < aggregates; from += chunk) {
    const lines: string[] = [];
    for (let a = from; a < Math.min(aggregates, from + chunk); a++) {
      for (let v = 1; v <= versions; v++) {
        lines.push(
          JSON.stringify({
            aggregate_type: 'acct',
            aggregate_id: `a${a}`,
            event_type: 'changed',
            version: v,
            payload: { v },
            extensions: {},
            metadata: { event_id: (nextEventId++).toString(), created_at: '2025-01-02T03:04:05.678Z', issued_by: { group: 'import', user: 'test' } },
          }),
        );
      }
    }
    const res = await server.request('POST', '/v1/import', `${lines.join('\n')}\n`, { 'content-type': 'application/x-ndjson', 'x-tenant-id': tenant });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
}

test('noisy - the tenant scan counts a tenant spanning several scan steps exactly', { timeout: 240_000 }, async () => {
  // 45,000 heads and 90,000 events: 3 and 5 steps of 20,000 keys.
  await seed('big', 45_000, 2);
  await seed('small', 7, 3);
  const list = await server.request('GET', '/v1/tenants');
  assert.equal(list.status, 200, JSON.stringify(list.body));
  const byTenant = new Map<string, { aggregates: number; events: number; bytes: number }>(list.body.items.map((i: { tenant: string }) => [i.tenant, i]));
  assert.equal(byTenant.get('big')?.aggregates, 45_000);
  assert.equal(byTenant.get('big')?.events, 90_000);
  assert.equal(byTenant.get('small')?.aggregates, 7);
  assert.equal(byTenant.get('small')?.events, 21);
  // The one-tenant view counts at once (no steps): the same numbers.
  const one = await server.request('GET', '/v1/tenants/big');
  assert.equal(one.status, 200);
  assert.equal(one.body.aggregates, 45_000);
  assert.equal(one.body.events, 90_000);
  assert.ok(byTenant.get('big')!.bytes > 0);
  // /metrics reports the same scan's numbers per tenant.
  const metrics = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.token}` } });
  const text = await metrics.text();
  assert.match(text, /eventdbx_tenant_storage\{tenant="big",kind="aggregates"\} 45000\b/);
  assert.match(text, /eventdbx_tenant_storage\{tenant="big",kind="events"\} 90000\b/);
  assert.match(text, /eventdbx_tenant_storage\{tenant="small",kind="events"\} 21\b/);
});

test('noisy - a rescan after more writes counts them (the previous scan only hints how to count)', { timeout: 60_000 }, async () => {
  // The previous scan's count only decides how a range is counted (at once when it was small):
  // what the next scan reports is what is stored then.
  await seed('small2', 3, 1);
  // The views cache their scan briefly: poll until a fresh scan reports what is stored.
  const scanned = async (want: number): Promise<number | undefined> => {
    let seen: number | undefined;
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
      const list = await server.request('GET', '/v1/tenants');
      seen = list.body.items.find((i: { tenant: string }) => i.tenant === 'small2')?.aggregates;
      if (seen === want) break;
    }
    return seen;
  };
  assert.equal(await scanned(3), 3);
  const res = await server.request('POST', '/v1/aggregates/acct/extra/events', { event_type: 'changed', payload: {} }, { 'x-tenant-id': 'small2' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const seen = await scanned(4);
  assert.equal(seen, 4);
});
