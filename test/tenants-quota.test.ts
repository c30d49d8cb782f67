/**
 * Issue 12 item 3: aggregate quotas per tenant. `dbx tenant quota set | clear | recalc` with the
 * original's outputs; creating beyond the quota is 403 `quota_exceeded` on every path that creates
 * (create, apply to a new id, batch, bulk import; patch never creates); exact under concurrency (20
 * racing creates for 5 slots → 5), a batch crossing the quota refused whole; the count survives a
 * SIGKILL. Single-tenant mode over 2 workers, the case where no one worker sees the whole count.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, removeDir, runDbx, spawnServer, stopSpawned, tempDataDir, type SpawnedServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

const dataDir = tempDataDir('edbx-tenants-quota-');
let server: SpawnedServer;

const req = (method: string, path: string, body?: unknown, tenant = 'acme', headers: Record<string, string> = {}) =>
  httpRequest(server.url, server.token, method, path, body, { 'x-tenant-id': tenant, ...headers });
const dbx = (args: string[]) => runDbx([...args, '--data-dir', dataDir]);
const create = (id: string, tenant = 'acme') => req('POST', `/v1/aggregates/order/${id}`, { event_type: 'created', payload: { id } }, tenant);
const apply = (id: string, tenant = 'acme') => req('POST', `/v1/aggregates/order/${id}/events`, { event_type: 'touched', payload: { t: Date.now() } }, tenant);

async function count(tenant = 'acme'): Promise<number> {
  const res = await req('GET', `/v1/tenants/${tenant}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.aggregates;
}

before(async () => {
  server = await spawnServer({ dataDir, configToml: '[tenants]\nshard_count = 4\n\n[storage]\nworkers = 2\n' });
});
after(async () => {
  await stopSpawned(server);
  removeDir(dataDir);
});

test('quota - set with the original output; 20 concurrent creates for 5 slots → exactly 5', async () => {
  const res = await dbx(['tenant', 'quota', 'set', 'acme', '--max-aggregates', '5']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.trim(), "Set aggregate quota for tenant 'acme' to 5.");
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => create(`c-${i}`)));
  const ok = answers.filter((a) => a.status === 201);
  const refused = answers.filter((a) => a.status === 403);
  assert.equal(ok.length, 5, JSON.stringify(answers.map((a) => a.status)));
  assert.equal(refused.length, 15);
  for (const r of refused) {
    assertError(r, 403, 'quota_exceeded');
    assert.match(r.body.error.message, /tenant quota exceeded: tenant 'acme' reached aggregate quota \(5\)/);
  }
  assert.equal(await count(), 5);
  const view = await req('GET', '/v1/tenants/acme');
  assert.deepEqual(view.body.quota, { max_aggregates: 5, used: 5 });
});

test('quota - at the quota: appends to existing aggregates pass, every creating path is refused and writes nothing', async () => {
  const existing = (await req('GET', '/v1/aggregates?take=10')).body.items.map((a: { aggregate_id: string }) => a.aggregate_id) as string[];
  assert.equal(existing.length, 5);
  assert.equal((await apply(existing[0] as string)).status, 201);
  assertError(await apply('new-1'), 403, 'quota_exceeded');
  assertError(await req('POST', '/v1/events', { aggregate_type: 'order', aggregate_id: 'new-2', event_type: 'touched', payload: {} }), 403, 'quota_exceeded');
  // patch never creates: a missing aggregate is 404 either way.
  assertError(await req('POST', '/v1/aggregates/order/new-3/patch', { event_type: 'patched', patch: [{ op: 'add', path: '/a', value: 1 }] }), 404, 'not_found');
  const before = (await req('GET', `/v1/aggregates/order/${existing[1]}`)).body.version;
  const batch = await req('POST', '/v1/batch', {
    events: [
      { aggregate_type: 'order', aggregate_id: existing[1], event_type: 'touched', payload: {} },
      { aggregate_type: 'order', aggregate_id: 'new-4', event_type: 'touched', payload: {} },
    ],
  });
  assertError(batch, 403, 'quota_exceeded');
  assert.equal((await req('GET', `/v1/aggregates/order/${existing[1]}`)).body.version, before, 'the refused batch wrote nothing');
  const line = {
    aggregate_type: 'order',
    aggregate_id: 'imported-1',
    event_type: 'created',
    version: 1,
    payload: {},
    extensions: {},
    metadata: { event_id: '900000000000000001', created_at: '2025-01-02T03:04:05.678Z', issued_by: { group: 'import', user: 'test' } },
  };
  const imported = await req('POST', '/v1/import', JSON.stringify(line) + '\n', 'acme', { 'content-type': 'application/x-ndjson' });
  assertError(imported, 403, 'quota_exceeded');
  for (const id of ['new-1', 'new-2', 'new-3', 'new-4', 'imported-1']) assert.equal((await req('GET', `/v1/aggregates/order/${id}`)).status, 404, id);
  assert.equal(await count(), 5);
  // Other tenants are not affected by acme's quota.
  assert.equal((await create('other-1', 'beta')).status, 201);
});

test('quota - a batch crossing the quota is refused whole; one within it passes', async () => {
  assert.equal((await req('PUT', '/v1/tenants/acme/quota', { max_aggregates: 8 })).status, 200);
  const events = (ids: string[]) => ({ events: ids.map((id) => ({ aggregate_type: 'order', aggregate_id: id, event_type: 'touched', payload: {} })) });
  assertError(await req('POST', '/v1/batch', events(['b-1', 'b-2', 'b-3', 'b-4'])), 403, 'quota_exceeded');
  for (const id of ['b-1', 'b-2', 'b-3', 'b-4']) assert.equal((await req('GET', `/v1/aggregates/order/${id}`)).status, 404);
  // Two events of one new aggregate count once.
  const ok = await req('POST', '/v1/batch', events(['b-1', 'b-1', 'b-2', 'b-3']));
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  assert.equal(await count(), 8);
});

test('quota - creates of existing ids (409) racing new ones never take their room', async () => {
  assert.equal((await req('PUT', '/v1/tenants/acme/quota', { max_aggregates: 10 })).status, 200);
  const dupes = Array.from({ length: 8 }, () => create('b-1'));
  const fresh = Array.from({ length: 4 }, (_, i) => create(`r-${i}`));
  const [d, f] = await Promise.all([Promise.all(dupes), Promise.all(fresh)]);
  for (const a of d) assertError(a, 409, 'already_exists');
  assert.equal(f.filter((a) => a.status === 201).length, 2);
  assert.equal(await count(), 10);
});

test('quota - the count survives a SIGKILL; recalc and clear with the original outputs', async () => {
  server.kill('SIGKILL');
  await server.exited;
  server = await spawnServer({ dataDir });
  assertError(await create('after-crash'), 403, 'quota_exceeded');
  let res = await dbx(['tenant', 'quota', 'recalc', 'acme']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.trim(), "Recalculated aggregate count for tenant 'acme' (10 aggregate(s)).");
  res = await dbx(['tenant', 'list', '--json']);
  assert.deepEqual(JSON.parse(res.stdout), [{ tenant: 'acme', quota: 10, count: 10 }]);
  res = await dbx(['tenant', 'quota', 'clear', 'acme']);
  assert.equal(res.stdout.trim(), "Cleared aggregate quota for tenant 'acme'.");
  const again = await req('DELETE', '/v1/tenants/acme/quota');
  assert.deepEqual(again.body, { tenant: 'acme', cleared: false });
  assert.equal((await create('after-clear')).status, 201);
  assertError(await req('PUT', '/v1/tenants/acme/quota', { max_aggregates: 0 }), 400, 'validation_failed');
});
