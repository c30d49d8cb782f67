/**
 * Issue 12 item 6: `dbx tenant export` writes every aggregate of a tenant (archived ones, patches,
 * snapshots' histories) with hashes and roots; `dbx tenant check` verifies the file offline and
 * catches a tampered record and a cut file (against the export's roots digest); `dbx tenant
 * import` loads it into an empty tenant with every root re-verified (and refuses a tenant with
 * data, or a forged line); the file is also what `POST /v1/import` reads; `dbx tenant remove`
 * refuses while plugin jobs are undelivered, then removes every range and the tenant's metadata.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalize, issueToken, leafHash, readConfig } from '../src/core/index.js';
import { countTenantRange, type ShardStore } from '../src/shard-worker/index.js';
import { openShards } from './helpers/assertions.js';
import { httpRequest, removeDir, runDbx, spawnServer, stopSpawned, tempDataDir, writeConfigToml, type SpawnedServer } from './helpers/server.js';
import { MULTI_TENANT_TOML, seedBatches, tcpReceiver, tenantHeaders, type Receiver } from './helpers/tenants.js';

let server: SpawnedServer;
let dataDir: string;
let home: string;
let file: string;
const SOURCE = 'acme';

before(async () => {
  dataDir = tempDataDir();
  home = tempDataDir('edbx-home-');
  writeConfigToml(dataDir, MULTI_TENANT_TOML(4, 1));
  server = await spawnServer({ dataDir });
  await seedBatches(server, SOURCE, Array.from({ length: 30 }, (_, i) => `o-${i}`), 5);
  const h = tenantHeaders(SOURCE);
  // An archived aggregate, a patch and a snapshot: all of it must travel.
  assert.equal((await server.request('POST', '/v1/aggregates/order/o-1/archive', {}, h)).status, 200);
  assert.equal((await server.request('POST', '/v1/aggregates/order/o-2/patch', { event_type: 'patched', patch: [{ op: 'add', path: '/extra', value: { deep: [1, 2] } }] }, h)).status, 201);
  assert.equal((await server.request('POST', '/v1/aggregates/order/o-3/snapshots', {}, h)).status, 201);
  assert.equal((await server.request('POST', '/v1/aggregates/person/p-1', { event_type: 'created', payload: { name: 'Ada' } }, h)).status, 201);
  await seedBatches(server, 'other', ['x-1'], 3);
  file = join(home, 'acme.ndjson');
});

after(async () => {
  await stopSpawned(server);
  removeDir(dataDir);
  removeDir(home);
});

const dbx = (args: string[]) => runDbx(args, { env: { HOME: home, EVENTDBX_DATA_DIR: dataDir, EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '' }, timeoutMs: 60_000 });

async function aggregatesOf(tenant: string, at: Pick<SpawnedServer, 'request'> = server): Promise<Record<string, { version: number; merkle_root: string; state: unknown; archived: boolean }>> {
  const out: Record<string, { version: number; merkle_root: string; state: unknown; archived: boolean }> = {};
  for (const type of ['order', 'person']) {
    const res = await at.request('GET', `/v1/aggregates/${type}?take=1000&include_archived=true`, undefined, tenantHeaders(tenant));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const a of res.body.items) out[`${type}/${a.aggregate_id}`] = { version: a.version, merkle_root: a.merkle_root, state: a.state, archived: a.archived };
  }
  return out;
}

let exported: { aggregates: number; events: number; roots_digest: string; sha256: string };

test('tenant export - the file holds every aggregate and event with hashes and roots, and checks offline', { timeout: 60_000 }, async () => {
  const res = await dbx(['tenant', 'export', SOURCE, '--output', file, '--json']);
  assert.equal(res.code, 0, res.stderr);
  exported = JSON.parse(res.stdout);
  assert.equal(exported.aggregates, 31);
  assert.equal(exported.events, 30 * 5 + 3);
  assert.equal(statSync(file).mode & 0o777, 0o600, 'an export is the store data: 0600');
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, exported.events);
  assert.ok(lines.every((e) => /^[0-9a-f]{64}$/.test(e.hash) && /^[0-9a-f]{64}$/.test(e.merkle_root)));
  assert.ok(lines.some((e) => e.event_type === 'aggregate_archived'), 'the archived aggregate travels with its archive event');
  assert.ok(lines.every((e) => e.payload?.tenant !== 'other'), 'nothing of another tenant');
  // The last line of each aggregate carries its head's root.
  const heads = await aggregatesOf(SOURCE);
  for (const [key, head] of Object.entries(heads)) {
    const last = lines.filter((e) => `${e.aggregate_type}/${e.aggregate_id}` === key).at(-1);
    assert.equal(last.version, head.version);
    assert.equal(last.merkle_root, head.merkle_root);
  }
  const check = await dbx(['tenant', 'check', file, '--digest', exported.roots_digest, '--json']);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  const verdict = JSON.parse(check.stdout);
  assert.equal(verdict.valid, true);
  assert.equal(verdict.events, exported.events);
  assert.equal(verdict.sha256, exported.sha256);
  const plain = await dbx(['tenant', 'check', file]);
  assert.equal(plain.code, 0);
  assert.match(plain.stdout, /^consistent: 31 aggregate\(s\), 153 event\(s\)/);
});

test('tenant check - a tampered record, a forged chain and a cut file are caught', { timeout: 60_000 }, async () => {
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const tampered = join(home, 'tampered.ndjson');
  const edited = JSON.parse(lines[7] as string);
  edited.payload = { ...edited.payload, n: 'forged' };
  writeFileSync(tampered, [...lines.slice(0, 7), JSON.stringify(edited), ...lines.slice(8)].join('\n') + '\n');
  const bad = await dbx(['tenant', 'check', tampered, '--json']);
  assert.equal(bad.code, 1);
  const verdict = JSON.parse(bad.stdout);
  assert.equal(verdict.consistent, false);
  assert.equal(verdict.problem.line, 8);
  assert.equal(verdict.problem.aggregate_id, edited.aggregate_id);
  assert.match(verdict.problem.message, /hash is not the hash of the record/);

  // Dropping an aggregate's last event keeps the file consistent: only the digest tells.
  const cut = join(home, 'cut.ndjson');
  writeFileSync(cut, lines.slice(0, -1).join('\n') + '\n');
  const cutPlain = await dbx(['tenant', 'check', cut]);
  assert.equal(cutPlain.code, 0, 'consistent on its own');
  const cutChecked = await dbx(['tenant', 'check', cut, '--digest', exported.roots_digest]);
  assert.equal(cutChecked.code, 1);
  assert.match(cutChecked.stdout, /roots digest .* is not the one given/);

  // A version missing in the middle of a history.
  const gap = join(home, 'gap.ndjson');
  writeFileSync(gap, [...lines.slice(0, 2), ...lines.slice(3)].join('\n') + '\n');
  const gapped = await dbx(['tenant', 'check', gap, '--json']);
  assert.equal(gapped.code, 1);
  assert.match(JSON.parse(gapped.stdout).problem.message, /version \d+ follows version \d+/);
});

test('tenant import - into an empty tenant with every root re-verified; a tenant with data and a forged line are refused', { timeout: 90_000 }, async () => {
  // Event ids are unique per store, so the copy goes to a second server (a restore elsewhere).
  const otherDir = tempDataDir();
  writeConfigToml(otherDir, MULTI_TENANT_TOML(4, 1));
  const other = await spawnServer({ dataDir: otherDir });
  const dbxOther = (args: string[]) => runDbx(args, { env: { HOME: home, EVENTDBX_DATA_DIR: otherDir, EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '' }, timeoutMs: 60_000 });
  try {
    // A forged event whose hash is recomputed to match its new content: only the root chain
    // betrays it. Sent straight to the server, past the CLI's own check: its chunk is refused.
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const first = JSON.parse(lines[0] as string);
    const { hash: _h, merkle_root: _r, ...body } = { ...first, payload: { n: 'forged' } };
    const forged = { ...body, hash: leafHash(canonicalize(body)), merkle_root: first.merkle_root };
    const sent = [JSON.stringify(forged), ...lines.slice(1, 5)].join('\n') + '\n';
    const refused = await httpRequest(other.url, other.token, 'POST', `/v1/tenants/${SOURCE}/import`, sent, { 'content-type': 'application/x-ndjson' });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.match(refused.body.error.message, /^line 1: .*merkle_root/);
    const empty = await other.request('GET', '/v1/aggregates?take=10', undefined, tenantHeaders(SOURCE));
    assert.deepEqual(empty.body.items, [], 'nothing of the refused import was written');
    const noHash = { ...first };
    delete noHash.hash;
    const missing = await httpRequest(other.url, other.token, 'POST', `/v1/tenants/${SOURCE}/import`, `${JSON.stringify(noHash)}\n`, { 'content-type': 'application/x-ndjson' });
    assert.equal(missing.status, 400);
    assert.match(missing.body.error.message, /hash and merkle_root/);

    const res = await dbxOther(['tenant', 'import', file, SOURCE, '--json']);
    assert.equal(res.code, 0, res.stderr);
    const summary = JSON.parse(res.stdout);
    assert.equal(summary.imported, exported.events);
    assert.equal(summary.aggregates, 31);
    const copied = await aggregatesOf(SOURCE, other);
    assert.deepEqual(copied, await aggregatesOf(SOURCE), 'same versions, roots, states and archive flags');
    const verify = await other.request('GET', '/v1/aggregates/order/o-2/verify', undefined, tenantHeaders(SOURCE));
    assert.equal(verify.body.valid, true);

    const again = await dbxOther(['tenant', 'import', file, SOURCE]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds 31 aggregate/);
  } finally {
    await stopSpawned(other);
    removeDir(otherDir);
  }
});

test('tenant remove - refused with undelivered plugin jobs, then removes every range, the assignment, quota and limit; the export restores it', { timeout: 90_000 }, async () => {
  const before = await aggregatesOf(SOURCE);
  let receiver: Receiver | undefined = await tcpReceiver();
  const admin = await server.request('PUT', '/v1/plugins/acme-sink', { enabled: true, tenants: [SOURCE], options: { kind: 'tcp', host: '127.0.0.1', port: receiver.port, timeout_ms: 500 } });
  assert.equal(admin.status, 200, JSON.stringify(admin.body));
  await receiver.close();
  receiver = undefined;
  // Committed while the receiver is gone: its job stays undelivered.
  assert.equal((await server.request('POST', '/v1/aggregates/order/o-0/events', { event_type: 'ticked', payload: { late: true } }, tenantHeaders(SOURCE))).status, 201);
  assert.equal((await server.request('PUT', `/v1/tenants/${SOURCE}/quota`, { max_aggregates: 100 })).status, 200);
  assert.equal((await server.request('PUT', `/v1/tenants/${SOURCE}/limit`, { writes_per_sec: 1000 })).status, 200);

  const auth = readConfig(dataDir).config.auth;
  const tenantAdmin = issueToken(auth, { group: 'ops', user: 'ta', actions: ['tenant.admin'], tenants: [SOURCE] }).token;
  const notOperator = await httpRequest(server.url, tenantAdmin, 'DELETE', `/v1/tenants/${SOURCE}`);
  assert.equal(notOperator.status, 403, "a tenant's own admin cannot remove it");

  const offTty = await dbx(['tenant', 'remove', SOURCE]);
  assert.equal(offTty.code, 2, 'off a terminal, --yes is required');
  const refused = await dbx(['tenant', 'remove', SOURCE, '--yes']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /undelivered plugin job/);
  assert.equal((await aggregatesOf(SOURCE))['order/o-0']?.version, 6, 'a refused removal removed nothing');

  const removed = await dbx(['tenant', 'remove', SOURCE, '--yes', '--force', '--json']);
  assert.equal(removed.code, 0, removed.stderr);
  const result = JSON.parse(removed.stdout);
  assert.equal(result.aggregates, 31);
  assert.equal(result.events, exported.events + 1);
  assert.ok(result.jobs_dropped >= 1);
  assert.equal(result.metadata_removed, true);
  assert.deepEqual(await aggregatesOf(SOURCE), {});
  const meta = await server.request('GET', '/v1/tenant-meta');
  assert.ok(!meta.body.items.some((e: { tenant: string }) => e.tenant === SOURCE), 'quota and limit are gone');
  const queue = await server.request('GET', '/v1/queue');
  assert.ok(!queue.body.jobs.some((j: { tenant: string }) => j.tenant === SOURCE), 'its queued jobs were dropped');
  assert.equal(Object.keys(await aggregatesOf('other')).length, 1, 'other tenants are untouched');
  assert.equal((await server.request('DELETE', '/v1/plugins/acme-sink')).status, 400, 'an enabled plugin stays (removing it is its own decision)');

  // The export is the bulk import format: it restores the tenant as it was exported.
  const bulk = await httpRequest(server.url, server.token, 'POST', '/v1/import', readFileSync(file, 'utf8'), { 'content-type': 'application/x-ndjson', 'x-tenant-id': SOURCE });
  assert.equal(bulk.status, 200, JSON.stringify(bulk.body));
  assert.equal(bulk.body.imported, exported.events);
  const restored = await aggregatesOf(SOURCE);
  assert.deepEqual(restored, { ...before }, 'restored to the exported state');

  await stopSpawned(server);
  const stores = openShards(dataDir);
  const counts = stores.map((store, s) => countTenantRange((store as ShardStore).worker, s, SOURCE).events ?? 0);
  assert.equal(counts.reduce((a, b) => a + b, 0), exported.events, 'exactly the restored events, nothing left from before the removal');
  await Promise.all([...new Set(stores.map((st) => st.worker))].map((w) => w.close()));
  server = await spawnServer({ dataDir });
});
