/**
 * Tampering (issue 7 item 8): events are written over HTTP, the server is stopped, the stored
 * records are edited with the lmdb package (through the shard stores of the data dir), and the
 * restarted server must notice: verify names what was altered and where, a GET of a head whose
 * Merkle frontier does not fold to its root answers `integrity_failed` (and logs it), and an honest
 * append onto that forged frontier is refused instead of giving every later event a wrong root.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendLeaf, canonicalize, frontierRoot, leafHash } from '../src/core/index.js';
import type { ShardStore } from '../src/shard-worker/index.js';
import { assertError, openShards, range, shardHolding } from './helpers/assertions.js';
import { removeDir, spawnServer, startServerInProcess, tempDataDir, type SpawnedServer } from './helpers/server.js';

const TENANT = 'default';
const TYPE = 'acct';
let dataDir: string;
let server: SpawnedServer;

async function seed(request: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>, id: string, n: number): Promise<void> {
  for (const i of range(n)) {
    const res = await request('POST', `/v1/aggregates/${TYPE}/${id}/events`, { event_type: 'posted', payload: { n: i, balance: i * 10 } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
}

/** Rewrites the last event of an aggregate and recomputes its hash, its root and the head's frontier and root. */
function forgeLastEvent(store: ShardStore, id: string, mutate: (body: Record<string, unknown>) => void): void {
  const events = [...store.eventJsonRange(TENANT, TYPE, id, 0)].map((json) => JSON.parse(json));
  const last = events[events.length - 1];
  let frontier: string[] = [];
  for (const [i, e] of events.slice(0, -1).entries()) frontier = appendLeaf(frontier, i, e.hash);
  const { hash: _hash, merkle_root: _root, ...body } = last;
  mutate(body);
  const hash = leafHash(canonicalize(body));
  frontier = appendLeaf(frontier, events.length - 1, hash);
  const merkleRoot = frontierRoot(frontier);
  const head = store.getHead(TENANT, TYPE, id);
  assert.ok(head);
  store.env.transactionSync(() => {
    store.events.put([TENANT, TYPE, id, last.version], JSON.stringify({ ...body, hash, merkle_root: merkleRoot }));
    store.heads.put([TENANT, TYPE, id], { ...head, frontier, merkle_root: merkleRoot });
  });
}

before(async () => {
  dataDir = tempDataDir('edbx-tamper-');
  // Snapshots every 2 events, so every aggregate below has some to check.
  const first = await startServerInProcess({ dataDir, configToml: 'snapshot_threshold = 2\n' });
  await seed(first.request, 't-frontier', 5);
  await seed(first.request, 't-state', 3);
  await seed(first.request, 't-snap', 5);
  await seed(first.request, 't-key', 3);
  await seed(first.request, 't-version', 3);
  // An honest history with every kind of event: verify must find nothing wrong with it.
  const honest = `/v1/aggregates/${TYPE}/t-honest`;
  for (const [path, body] of [
    [honest, { event_type: 'opened', payload: { owner: 'ada', tags: ['a'] } }],
    [`${honest}/events`, { event_type: 'renamed', payload: { owner: 'grace', gone: null } }],
    [`${honest}/patch`, { event_type: 'tagged', patch: [{ op: 'add', path: '/tags/-', value: 'b' }, { op: 'remove', path: '/owner' }] }],
    [`${honest}/archive`, { comment: 'closing' }],
    [`${honest}/restore`, { comment: 'reopened' }],
    [`${honest}/events`, { event_type: 'noted', payload: { note: 'x' } }],
    [`${honest}/snapshots`, {}],
  ] as const) {
    const res = await first.request('POST', path, body);
    assert.ok(res.status === 200 || res.status === 201, `${path}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  await first.stop();

  const stores = openShards(dataDir);
  const at = (id: string) => shardHolding(stores, TENANT, TYPE, id);

  // 1. One hash of the stored frontier replaced; the head's merkle_root left as it was.
  const frontierStore = at('t-frontier');
  const frontierHead = frontierStore.getHead(TENANT, TYPE, 't-frontier');
  assert.ok(frontierHead && frontierHead.frontier.length === 2, 'size 5 has a frontier of two subtrees');
  frontierStore.env.transactionSync(() => frontierStore.heads.put([TENANT, TYPE, 't-frontier'], { ...frontierHead, frontier: ['ab'.repeat(32), frontierHead.frontier[1] as string] }));

  // 2. The head's state edited (frontier and root untouched).
  const stateStore = at('t-state');
  const stateHead = stateStore.getHead(TENANT, TYPE, 't-state');
  assert.ok(stateHead);
  stateStore.env.transactionSync(() => stateStore.heads.put([TENANT, TYPE, 't-state'], { ...stateHead, state: { ...stateHead.state, balance: 1_000_000 } }));

  // 3. The state inside the snapshot at version 4 edited.
  const snapStore = at('t-snap');
  const snapshot = snapStore.snapshots.get([TENANT, TYPE, 't-snap', 4]);
  assert.ok(snapshot, 'snapshot_threshold = 2 left a snapshot at version 4');
  snapStore.env.transactionSync(() => snapStore.snapshots.put([TENANT, TYPE, 't-snap', 4], { ...snapshot, state: { ...snapshot.state, balance: -1 } }));

  // 4. Event 3 rewritten to name another aggregate (and another version), with every hash and root
  //    recomputed so that only the check of the body against its key can see it.
  forgeLastEvent(at('t-key'), 't-key', (body) => (body.aggregate_id = 't-other'));
  forgeLastEvent(at('t-version'), 't-version', (body) => (body.version = 7));

  for (const store of new Set(stores.map((s) => s.env))) await store.flushed;
  server = await spawnServer({ dataDir });
});

after(async () => {
  await server?.stop();
  removeDir(dataDir);
});

async function verify(id: string): Promise<any> {
  const res = await server.request('GET', `/v1/aggregates/${TYPE}/${id}/verify`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

function kinds(result: any): { kind: string; version: number }[] {
  return (result.problems ?? []).map((p: any) => {
    assert.equal(typeof p.message, 'string');
    return { kind: p.kind, version: p.version };
  });
}

test('tamper - an honest history with patches, archive, restore and snapshots verifies clean', { timeout: 20_000 }, async () => {
  const result = await verify('t-honest');
  assert.equal(result.valid, true, JSON.stringify(result));
  assert.equal('problems' in result, false);
  assert.equal('first_invalid_version' in result, false);
  assert.equal((await server.request('GET', `/v1/aggregates/${TYPE}/t-honest`)).status, 200);
});

test('tamper - an edited Merkle frontier fails verify at the head version', { timeout: 20_000 }, async () => {
  const result = await verify('t-frontier');
  assert.equal(result.valid, false);
  assert.equal(result.first_invalid_version, 5);
  assert.deepEqual(kinds(result), [{ kind: 'head_frontier', version: 5 }]);
});

test('tamper - GET of a head whose frontier does not fold to its root answers integrity_failed and logs it', { timeout: 20_000 }, async () => {
  const get = await server.request('GET', `/v1/aggregates/${TYPE}/t-frontier`);
  assertError(get, 500, 'integrity_failed');
  assert.match(get.body.error.message, /verify/);
  assertError(await server.request('GET', `/v1/aggregates/${TYPE}/t-frontier/select?fields=balance`), 500, 'integrity_failed');
  const deadline = Date.now() + 5_000;
  while (!/integrity check/.test(server.stdout() + server.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.match(server.stdout() + server.stderr(), /integrity check/, 'the failure is in the server log');
});

test('tamper - an honest append onto a forged frontier is refused and writes nothing', { timeout: 20_000 }, async () => {
  const append = await server.request('POST', `/v1/aggregates/${TYPE}/t-frontier/events`, { event_type: 'posted', payload: { n: 6 } });
  assertError(append, 500, 'integrity_failed');
  const events = await server.request('GET', `/v1/aggregates/${TYPE}/t-frontier/events?take=100`);
  assert.equal(events.status, 200);
  assert.deepEqual(
    events.body.items.map((e: any) => e.version),
    range(5),
  );
  assert.equal((await verify('t-frontier')).version, 5);
});

test('tamper - an edited head state fails verify as head_state', { timeout: 20_000 }, async () => {
  const result = await verify('t-state');
  assert.equal(result.valid, false);
  assert.equal(result.first_invalid_version, 3);
  assert.deepEqual(kinds(result), [{ kind: 'head_state', version: 3 }]);
});

test('tamper - an edited snapshot state fails verify at the snapshot version', { timeout: 20_000 }, async () => {
  const result = await verify('t-snap');
  assert.equal(result.valid, false);
  assert.equal(result.first_invalid_version, 4);
  assert.deepEqual(kinds(result), [{ kind: 'snapshot_state', version: 4 }]);
});

test('tamper - an event body naming another aggregate or version than its key fails verify as event_key', { timeout: 20_000 }, async () => {
  for (const id of ['t-key', 't-version']) {
    const result = await verify(id);
    assert.equal(result.valid, false, `${id}: ${JSON.stringify(result)}`);
    assert.equal(result.first_invalid_version, 3);
    assert.deepEqual(kinds(result), [{ kind: 'event_key', version: 3 }], id);
  }
});
