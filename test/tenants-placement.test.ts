/**
 * Issue 12 item 1: multi-tenant placement. Every tenant-scoped request must name its tenant; a
 * tenant lives on its assigned shard (assignment live, no restart), else murmurhash3(tenant) mod S;
 * `dbx tenant assign | unassign | list | stats` through the server and directly on a stopped data
 * dir; shards beyond shard_count refused; a tenant with data is never just re-pointed. Where data
 * landed is read from the shard environments themselves after the server stopped.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tenantShard } from '../src/core/index.js';
import { startServer, TENANT_META_DIR, type RunningServer } from '../src/coordinator/index.js';
import { httpRequest, readCliToken, removeDir, runDbx, tempDataDir, writeConfigToml } from './helpers/server.js';
import { assertError, openShards } from './helpers/assertions.js';

const SHARDS = 4;
const dataDir = tempDataDir('edbx-tenants-placement-');
let server: RunningServer | undefined;
let token = '';

async function start(): Promise<RunningServer> {
  server = await startServer({ dataDir, listenPort: 0, host: '127.0.0.1', logLevel: 'silent' });
  token = readCliToken(dataDir);
  return server;
}

async function stop(): Promise<void> {
  await server?.stop();
  server = undefined;
}

const req = (method: string, path: string, body?: unknown, tenant?: string) =>
  httpRequest((server as RunningServer).url, token, method, path, body, tenant ? { 'x-tenant-id': tenant } : {});
const dbx = (args: string[]) => runDbx([...args, '--data-dir', dataDir]);

async function create(tenant: string, id: string): Promise<void> {
  const res = await req('POST', `/v1/aggregates/order/${id}`, { event_type: 'created', payload: { id } }, tenant);
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

/** tenant → shards holding any of its heads, read from the shard environments. */
function shardsHolding(tenant: string): number[] {
  const out: number[] = [];
  for (const store of openShards(dataDir)) {
    let n = 0;
    for (const { key } of store.storedHeads.getRange()) if (key[0] === tenant) n++;
    if (n > 0) out.push(store.shard);
  }
  return out;
}

const hashShard = (tenant: string) => tenantShard({ shardCount: SHARDS, multiTenant: true }, tenant);

before(async () => {
  writeConfigToml(dataDir, `[tenants]\nmulti_tenant = true\nshard_count = ${SHARDS}\n\n[storage]\nworkers = 2\n`);
  await start();
});
after(async () => {
  await stop();
  removeDir(dataDir);
});

test('tenants - a tenant-scoped request without X-Tenant-Id is refused with 400', async () => {
  const write = await req('POST', '/v1/aggregates/order/o-1', { event_type: 'created', payload: {} });
  assertError(write, 400, 'invalid_input');
  assert.match(write.body.error.message, /X-Tenant-Id/);
  assertError(await req('GET', '/v1/aggregates'), 400, 'invalid_input');
  assertError(await req('POST', '/v1/batch', { events: [] }), 400, 'invalid_input');
  // Nothing was written to `default`.
  assert.equal((await req('GET', '/v1/aggregates/order/o-1', undefined, 'default')).status, 404);
  // Server-wide routes do not need it.
  assert.equal((await req('GET', '/v1/tenant-meta')).status, 200);
  assert.equal((await req('GET', '/health')).status, 200);
});

test('tenants - assign: original outputs, both shard forms, shards beyond shard_count refused', async () => {
  // Nothing configured yet: the original's empty outputs.
  let res = await dbx(['tenant', 'list']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, `no tenant assignments or quotas found\ntenants will hash across ${SHARDS} shards by default\n`);
  res = await dbx(['tenant', 'stats']);
  assert.equal(res.stdout.trim(), 'no explicit tenant assignments; shards fall back to hash-based placement');
  res = await dbx(['tenant', 'assign', 'acme', '--shard', 'shard-0003']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.trim(), "Assigned tenant 'acme' to shard 'shard-0003'.");
  res = await dbx(['tenant', 'assign', 'ACME', '--shard', '3']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.trim(), "Tenant 'acme' is already assigned to shard 'shard-0003'.");
  res = await dbx(['tenant', 'assign', 'acme', '--shard', '4']);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /shard 'shard-0004' exceeds configured shard-count \(4\)/);
  const bad = await req('PUT', '/v1/tenants/acme/shard', { shard: 'shard-x' });
  assertError(bad, 400, 'invalid_input');
  assert.match(bad.body.error.message, /invalid shard id 'shard-x'/);
  assertError(await req('PUT', '/v1/tenants/acme/shard', { shard: 17 }), 400, 'invalid_input');
  assertError(await req('PUT', '/v1/tenants/-bad/shard', { shard: 1 }), 400, 'validation_failed');
  // The refused ones changed nothing.
  const list = await req('GET', '/v1/tenant-meta');
  assert.deepEqual(list.body.items, [{ tenant: 'acme', shard: 'shard-0003' }]);
});

test('tenants - an assignment places the next write at once; unassigned tenants hash', async () => {
  // `acme` was assigned by the previous test on this running server: no restart in between.
  for (const id of ['a-1', 'a-2', 'a-3']) await create('acme', id);
  for (const id of ['b-1', 'b-2']) await create('beta', id);
  // An empty tenant may be assigned and unassigned freely.
  assert.equal((await req('PUT', '/v1/tenants/gamma/shard', { shard: 'shard-0002' })).status, 200);
  await create('gamma', 'g-1');
  // unassign of an empty tenant, with the original's outputs.
  assert.equal((await req('PUT', '/v1/tenants/epsilon/shard', { shard: 0 })).status, 200);
  let res = await dbx(['tenant', 'unassign', 'epsilon']);
  assert.equal(res.stdout.trim(), "Removed explicit shard assignment for tenant 'epsilon'; default hashing will apply.");
  res = await dbx(['tenant', 'unassign', 'epsilon']);
  assert.equal(res.stdout.trim(), "Tenant 'epsilon' was not explicitly assigned to a shard.");
  const view = await req('GET', '/v1/tenants/acme');
  assert.equal(view.status, 200);
  assert.equal(view.body.shard, 'shard-0003');
  assert.equal(view.body.assigned, true);
  assert.equal(view.body.aggregates, 3);
  const beta = await req('GET', '/v1/tenants/beta');
  assert.equal(beta.body.shard, `shard-${String(hashShard('beta')).padStart(4, '0')}`);
  assert.equal(beta.body.assigned, false);
});

test('tenants - changing the placement of a tenant with data never orphans it', async () => {
  const target = hashShard('acme') === 1 ? 'shard-0000' : 'shard-0001';
  const res = await req('PUT', '/v1/tenants/acme/shard', { shard: target });
  if (res.status === 409) {
    // No live move registered: refused, nothing changed.
    assertError(res, 409, 'tenant_not_empty');
    assert.match(res.body.error.message, /has data on shard-0003/);
    assert.equal((await req('GET', '/v1/tenants/acme')).body.shard, 'shard-0003');
    assertError(await req('DELETE', '/v1/tenants/gamma/shard'), 409, 'tenant_not_empty');
    // Put back what the rest of this file expects.
  } else {
    // The live move (issue 12 item 2) moved it: it must now serve from the target.
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.shard, target);
    const moved = await req('PUT', '/v1/tenants/acme/shard', { shard: 'shard-0003' });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
  }
  // Whatever happened, every acknowledged aggregate still reads back.
  for (const id of ['a-1', 'a-2', 'a-3']) assert.equal((await req('GET', `/v1/aggregates/order/${id}`, undefined, 'acme')).status, 200);
  // Other tenants do not see acme's data.
  assert.equal((await req('GET', '/v1/aggregates/order/a-1', undefined, 'beta')).status, 404);
});

test('tenants - list and stats with the original outputs; direct mode on a stopped data dir', async () => {
  let res = await dbx(['tenant', 'list', '--json']);
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(JSON.parse(res.stdout), [
    { tenant: 'acme', shard: 'shard-0003' },
    { tenant: 'gamma', shard: 'shard-0002' },
  ]);
  await stop();
  // Stopped: the CLI opens the data dir itself; the assignment is the one the next server uses.
  res = await dbx(['tenant', 'assign', 'delta', '--shard', '1']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.trim(), "Assigned tenant 'delta' to shard 'shard-0001'.");
  res = await dbx(['tenant', 'list', '--shard', 'shard-0001', '--json']);
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(JSON.parse(res.stdout), [{ tenant: 'delta', shard: 'shard-0001' }]);
  res = await dbx(['tenant', 'stats', '--json']);
  assert.deepEqual(JSON.parse(res.stdout), { 'shard-0001': 1, 'shard-0002': 1, 'shard-0003': 1 });

  await start();
  await create('delta', 'd-1');
  await stop();
  // Where the data landed, read from the shard environments of the stopped server.
  assert.deepEqual(shardsHolding('acme'), [3]);
  assert.deepEqual(shardsHolding('gamma'), [2]);
  assert.deepEqual(shardsHolding('delta'), [1]);
  assert.deepEqual(shardsHolding('beta'), [hashShard('beta')]);
  // tenant_meta is an owner-only LMDB environment.
  const dir = join(dataDir, TENANT_META_DIR);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  for (const f of readdirSync(dir)) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  await start();
});
