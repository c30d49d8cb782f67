/**
 * A SIGKILL part-way through `DELETE /v1/tenants/{t}` (the fault hook EVENTDBX_FAULT_TENANT_REMOVE,
 * honoured only with NODE_ENV=test, kills after the first 100-entry chunk). Before the removal's
 * durable marker existed, the restarted server accepted writes into the half-removed tenant: a new
 * version 1 sat in front of the old history's leftovers, and verify failed. Now the restart keeps
 * the tenant's writes refused (503) and its placement fixed (409) until it has finished the
 * removal; then every range is empty and a write starts a new, verifiable tenant.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { countTenantRange, type ShardStore } from '../src/shard-worker/index.js';
import { TenantMeta } from '../src/coordinator/tenant-meta.js';
import { assertError, openShards } from './helpers/assertions.js';
import { within } from './helpers/deadline.js';
import { removeDir, spawnServer, stopSpawned, tempDataDir, writeConfigToml, type SpawnedServer } from './helpers/server.js';
import { MULTI_TENANT_TOML, eventually, seedBatches, shardOf, tenantHeaders } from './helpers/tenants.js';

const TENANT = 'acme';
const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

test('tenant remove crash - SIGKILL between two chunks: the restart refuses writes, then finishes the removal', { timeout: 90_000 }, async () => {
  const dataDir = tempDataDir();
  dirs.push(dataDir);
  writeConfigToml(dataDir, MULTI_TENANT_TOML(4, 2));
  const first: SpawnedServer = await spawnServer({ dataDir, env: { NODE_ENV: 'test', EVENTDBX_FAULT_TENANT_REMOVE: 'deleting' } });
  let second: SpawnedServer | undefined;
  try {
    await seedBatches(first, TENANT, Array.from({ length: 60 }, (_, i) => `r-${i}`), 6);
    // Another tenant's data must come through untouched.
    const other = await seedBatches(first, 'globex', ['g-0', 'g-1'], 3);
    const { shard } = await shardOf(first, TENANT);
    const removing = first.request('DELETE', `/v1/tenants/${TENANT}?force=true`).then(
      (res) => res,
      () => undefined,
    );
    await within(first.exited, 30_000, 'the fault hook killed the server while deleting');
    assert.equal(first.child.signalCode, 'SIGKILL');
    assert.equal(await removing, undefined, 'the removal never answered');

    // Part of the tenant is gone, part is left, and the marker says a removal is under way.
    const stores = openShards(dataDir);
    const left = countTenantRange((stores[shard] as ShardStore).worker, shard, TENANT);
    await Promise.all([...new Set(stores.map((st) => st.worker))].map((w) => w.close()));
    assert.ok(Object.values(left).some((n) => n > 0), `the kill came part-way: ${JSON.stringify(left)}`);
    const meta = new TenantMeta(dataDir, { readOnly: true });
    assert.ok(meta.get(TENANT)?.removing, 'the removal marker is on disk');
    await meta.close();

    // A stop while the start's removal runs ends it at its next chunk: the marker stays for the next start.
    const stopped = await spawnServer({ dataDir, env: { NODE_ENV: 'test', EVENTDBX_TEST_REMOVE_HOLD_MS: '300' } });
    assert.equal(await stopSpawned(stopped), 0);
    const still = new TenantMeta(dataDir, { readOnly: true });
    assert.ok(still.get(TENANT)?.removing, 'a stopped removal keeps its marker');
    await still.close();

    second = await spawnServer({ dataDir, env: { NODE_ENV: 'test', EVENTDBX_TEST_REMOVE_HOLD_MS: '3000' } });
    const s = second;
    const refused = await s.request('POST', '/v1/aggregates/order/r-0/events', { event_type: 'ticked', payload: { n: 1 } }, tenantHeaders(TENANT));
    assertError(refused, 503, 'unavailable');
    assert.match(refused.body.error.message, /being removed/);
    const created = await s.request('POST', '/v1/aggregates/order/fresh/events', { event_type: 'ticked', payload: { n: 1 } }, tenantHeaders(TENANT));
    assert.equal(created.status, 503, 'a new aggregate is refused too');
    const snapshot = await s.request('POST', '/v1/aggregates/order/r-0/snapshots', {}, tenantHeaders(TENANT));
    assertError(snapshot, 503, 'unavailable');
    const view = await s.request('GET', `/v1/tenants/${TENANT}`);
    assert.equal(view.status, 200);
    assert.ok(view.body.removing, `the view shows the removal: ${JSON.stringify(view.body)}`);
    const assign = await s.request('PUT', `/v1/tenants/${TENANT}/shard`, { shard: String((shard + 1) % 4) });
    assertError(assign, 409, 'tenant_busy');

    await eventually('the resumed removal finishes', async () => {
      const v = await s.request('GET', `/v1/tenants/${TENANT}`);
      return v.status === 200 && v.body.removing === null && v.body.aggregates === 0;
    }, 30_000);
    const events = await s.request('GET', '/v1/events?take=10', undefined, tenantHeaders(TENANT));
    assert.equal(events.status, 200);
    assert.deepEqual(events.body.items, [], 'no event of the removed tenant is listed');
    const again = await s.request('POST', '/v1/aggregates/order/r-0/events', { event_type: 'ticked', payload: { n: 2 } }, tenantHeaders(TENANT));
    assert.equal(again.status, 201, JSON.stringify(again.body));
    assert.equal(again.body.version, 1, 'a write after the removal starts a new aggregate');
    const verify = await s.request('GET', '/v1/aggregates/order/r-0/verify', undefined, tenantHeaders(TENANT));
    assert.equal(verify.body.valid, true, JSON.stringify(verify.body));
    const history = await s.request('GET', '/v1/aggregates/order/r-0/events', undefined, tenantHeaders(TENANT));
    assert.equal(history.body.items.length, 1, 'no leftover history behind the new event');
    const kept = await s.request('GET', '/v1/aggregates/order/g-0/events', undefined, tenantHeaders('globex'));
    assert.equal(kept.body.items.length, other.filter((a) => a.id === 'g-0').length, 'the other tenant is untouched');
    assert.equal(await stopSpawned(s), 0);
    second = undefined;

    const after = openShards(dataDir);
    const rest = countTenantRange((after[shard] as ShardStore).worker, shard, TENANT);
    assert.equal(rest.events, 1, `only the new event is left: ${JSON.stringify(rest)}`);
    assert.equal(rest.heads, 1);
    await Promise.all([...new Set(after.map((st) => st.worker))].map((w) => w.close()));
  } finally {
    if (first.child.exitCode === null && first.child.signalCode === null) first.kill('SIGKILL');
    if (second) await stopSpawned(second);
  }
});
