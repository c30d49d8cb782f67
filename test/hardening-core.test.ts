/**
 * Issue 7, write-path hardening: the JSON hop with deadlines and prepare leases (item 1), archive
 * and restore in one group commit (3), intents for replay-only home parts (5), the recorded storage
 * layout (6), no half-visible cross-worker batches (7) and worker errors that keep their cause (16).
 * Real servers and real shard workers on real LMDB; the crash and the lost answer are staged by
 * driving a real `ShardPool` by hand, the way the coordinator would if it died half-way.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DbxError, configSchema, createSnowflakeState, readConfig, shardFor, toWireError, writeConfig, type JsonObject } from '../src/core/index.js';
import { startServer } from '../src/coordinator/index.js';
import { LAYOUT_FORMAT, readLayout, workerOfShard, type StorageLayout } from '../src/coordinator/layout.js';
import { ShardPool } from '../src/coordinator/shard-pool.js';
import type { BatchIntent, IdempotencyDbKey, ShardResult, ShardStore, WriteCommand } from '../src/shard-worker/index.js';
import { removeDir, runDbx, spawnServer, startServerInProcess, stopSpawned, tempDataDir, useServer, type TestServer } from './helpers/server.js';
import { assertError, openShards, range, shardHolding } from './helpers/assertions.js';

const dirs: string[] = [];
const dir = (): string => {
  const d = tempDataDir('edbx-hardening-');
  dirs.push(d);
  return d;
};
after(() => dirs.forEach(removeDir));

/** Two workers, and the depth ceiling, so batches across workers and deep payloads both occur. */
const server = useServer({ configToml: '[storage]\nworkers = 2\n\n[limits]\njson_depth_max = 1000\n' });

const DEFAULT_PLACEMENT = { shardCount: 4, multiTenant: false };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rejects when `promise` has not settled within `ms`: a hang fails the test instead of stalling it. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** `{"a":{"a":…{}…}}`: `depth` objects nested (the outermost counts as 1). */
function nested(depth: number): JsonObject {
  let value: JsonObject = {};
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
}

function depthOf(value: unknown): number {
  let depth = 0;
  for (let v = value as Record<string, unknown> | undefined; v && typeof v === 'object'; v = v.a as Record<string, unknown> | undefined) depth++;
  return depth;
}

/** `count` aggregate ids of `type` whose shards sit on different workers (shard s on worker s mod 2). */
function idsOnWorkers(type: string, prefix: string, workers = 2): string[] {
  const byWorker = new Map<number, string>();
  for (let i = 0; byWorker.size < workers; i++) {
    const id = `${prefix}-${i}`;
    const w = shardFor(DEFAULT_PLACEMENT, 'default', type, id) % workers;
    if (!byWorker.has(w)) byWorker.set(w, id);
  }
  return range(workers, 0).map((w) => byWorker.get(w) as string);
}

// ---------------------------------------------------------------------------------------------
// A real shard pool, driven by hand (what the coordinator does, minus HTTP).

async function startPool(dataDir: string, layout: StorageLayout, storage: Record<string, number> = {}): Promise<ShardPool> {
  // The data dir's own DEK, as the server would hand its workers (a pool without it cannot read the sealed state).
  const config = configSchema.parse({ storage, data_encryption_key: readConfig(dataDir).config.data_encryption_key });
  const pool = new ShardPool(config, dataDir, layout, createSnowflakeState());
  await within(20_000, 'pool start', pool.start());
  return pool;
}

function command(type: string, id: string, payload: JsonObject, extra: Partial<WriteCommand> = {}): WriteCommand {
  return {
    op: 'apply',
    shard: shardFor(DEFAULT_PLACEMENT, 'default', type, id),
    tenant: 'default',
    aggregate_type: type,
    aggregate_id: id,
    event_type: 'doc_set',
    payload,
    issued_by: { group: 'test', user: 'hardening' },
    ...extra,
  };
}

const write = (pool: ShardPool, cmd: WriteCommand): Promise<ShardResult> => pool.request(cmd.shard, { kind: 'write', command: cmd });

test('hardening - a reply too deep for a structured clone fails alone, and the rest of its group commit is answered (item 1)', { timeout: 40_000 }, async () => {
  const dataDir = dir();
  const pool = await startPool(dataDir, { format: LAYOUT_FORMAT, shard_count: 4, workers: 1 });
  try {
    // 3,000 levels survive JSON but not a structured clone (it overflows the stack while
    // deserialising): before the JSON hop this lost every reply of the group in a `messageerror`.
    // Sent straight to the pool, past the HTTP edge that now refuses it, to exercise the hop itself.
    const deep = write(pool, command('doc', 'hop-deep', nested(3000)));
    const others = range(20).map((i) => write(pool, command('doc', `hop-${i}`, { n: i })));
    const settled = await within(10_000, 'the group of the deep write', Promise.allSettled([deep, ...others]));
    settled.slice(1).forEach((s, i) => assert.equal(s.status, 'fulfilled', `unrelated write ${i + 1} of the same group is acknowledged: ${String((s as PromiseRejectedResult).reason)}`));
    const [deepOutcome] = settled;
    if (deepOutcome?.status === 'rejected') assert.ok(deepOutcome.reason instanceof DbxError, 'a failure of the deep write is a DbxError, not a hang');
    // The worker keeps serving.
    const next = await within(10_000, 'a later write', write(pool, command('doc', 'hop-1', { n: 100 })));
    assert.equal(next.kind, 'write');
    assert.equal((next as Extract<ShardResult, { kind: 'write' }>).result.event.version, 2);
  } finally {
    await pool.stop();
  }
});

test('hardening - a request without an answer fails at its deadline, and an abandoned prepare is released after its lease (item 1)', { timeout: 40_000 }, async () => {
  const dataDir = dir();
  const timeoutMs = 1000;
  const pool = await startPool(dataDir, { format: LAYOUT_FORMAT, shard_count: 4, workers: 1 }, { worker_reply_timeout_ms: timeoutMs });
  try {
    const txid = 'abandoned-prepare';
    const locked = command('doc', 'lease-1', { n: 1 });
    const preparedAt = Date.now();
    const prepared = await within(5_000, 'prepare', pool.requestWorker(0, { kind: 'prepare', txid, commands: [locked] }));
    assert.equal(prepared.kind, 'prepare');
    // The coordinator "dies" here: no commit, no abort. A write to the locked aggregate waits for
    // the lock; its caller gets 503 at the deadline instead of waiting forever.
    const waiting = write(pool, command('doc', 'lease-1', { n: 2 }));
    const refused = await within(timeoutMs * 4, 'the deadline', waiting.then(() => undefined, (err: unknown) => err));
    assert.ok(refused instanceof DbxError, `the waiting write is refused, not acknowledged (${String(refused)})`);
    assert.equal(refused.code, 'unavailable');
    // Either the pool's deadline sweep answers, or the worker drops it at its deadline (a loaded machine).
    assert.match(refused.message, /did not answer in time|passed its deadline/);
    // Past the lease (2 × worker_reply_timeout_ms) the prepare's locks are gone.
    await sleep(Math.max(0, preparedAt + 2 * timeoutMs + 300 - Date.now()));
    const after = await within(5_000, 'a write after the lease', write(pool, command('doc', 'lease-1', { n: 3 })));
    assert.equal(after.kind, 'write');
    // The write answered 503 at its deadline was dropped, never applied once the lock went: this
    // write is version 1, not 2 (a client retrying that 503 without an idempotency key appends once).
    assert.equal((after as Extract<ShardResult, { kind: 'write' }>).result.event.version, 1);
    // A late commit of the expired prepare is refused rather than applied.
    const late = await within(5_000, 'a late commit', pool.requestWorker(0, { kind: 'commit', txid }).then(() => undefined, (err: unknown) => err));
    assert.ok(late instanceof DbxError, 'the late commit is refused');
    assert.equal(late.code, 'unavailable');
    assert.match(late.message, /no longer prepared/);
  } finally {
    await pool.stop();
  }
});

test('hardening - a payload at the depth limit is stored and read back; one 3,000 levels deep is refused while unrelated writes of the same moment succeed (item 1)', { timeout: 40_000 }, async () => {
  const atLimit = await server.request('POST', '/v1/aggregates/deep/limit-1/events', { event_type: 'doc_set', payload: nested(1000) });
  assert.equal(atLimit.status, 201, JSON.stringify(atLimit.body).slice(0, 300));
  const read = await server.request('GET', '/v1/aggregates/deep/limit-1');
  assert.equal(read.status, 200);
  assert.equal(depthOf(read.body.state), 1000, 'the state comes back whole');

  const text = `{"event_type":"doc_set","payload":${JSON.stringify(nested(3000))}}`;
  const deep = server.request('POST', '/v1/aggregates/deep/deep-1/events', text, { 'content-type': 'application/json' });
  const others = range(30).map((i) => server.request('POST', `/v1/aggregates/deep/other-${i}/events`, { event_type: 'doc_set', payload: { n: i } }));
  const [deepAnswer, ...otherAnswers] = await within(15_000, 'the deep write and its neighbours', Promise.all([deep, ...others]));
  assertError(deepAnswer as { status: number; body: unknown }, 400, 'validation_failed');
  assert.match((deepAnswer as { body: any }).body.error.message, /json_depth_max/);
  otherAnswers.forEach((a, i) => assert.equal(a.status, 201, `write ${i}: ${JSON.stringify(a.body)}`));
  assert.equal((await server.request('GET', '/v1/aggregates/deep/other-1')).status, 200);
  const list = await server.request('GET', '/v1/aggregates/deep?take=100');
  assert.equal(list.status, 200);
  assert.equal(list.body.items.length, 31, 'the list shows the 30 writes and the one at the limit');
  assert.equal((await server.request('GET', '/v1/aggregates?take=10')).status, 200);
});

// ---------------------------------------------------------------------------------------------
// Item 3: index operations in command order.

/** Every aggregate of `type` in exactly one of the active and archived lists, matching its flag. */
async function assertIndexMatchesHeads(target: TestServer, type: string, ids: string[]): Promise<Map<string, boolean>> {
  const active = await target.request('GET', `/v1/aggregates/${type}?take=1000`);
  const archived = await target.request('GET', `/v1/aggregates/${type}?take=1000&archived_only=true`);
  assert.equal(active.status, 200);
  assert.equal(archived.status, 200);
  const activeIds = new Set<string>(active.body.items.map((i: { aggregate_id: string }) => i.aggregate_id));
  const archivedIds = new Set<string>(archived.body.items.map((i: { aggregate_id: string }) => i.aggregate_id));
  const flags = new Map<string, boolean>();
  const wrong: string[] = [];
  for (const id of ids) {
    const got = await target.request('GET', `/v1/aggregates/${type}/${id}`);
    assert.equal(got.status, 200);
    flags.set(id, got.body.archived);
    const inActive = activeIds.has(id);
    const inArchived = archivedIds.has(id);
    if (inActive === inArchived || inArchived !== got.body.archived) wrong.push(`${id} (archived=${got.body.archived}, active list ${inActive}, archived list ${inArchived})`);
  }
  assert.deepEqual(wrong, [], 'each aggregate is in exactly one list, the one its head says');
  return flags;
}

test('hardening - archive and restore of one aggregate in one group commit leave exactly one index entry, matching the head (item 3)', { timeout: 40_000 }, async () => {
  const ids = range(40).map((i) => `ar-${i}`);
  await Promise.all(ids.map((id) => server.request('POST', `/v1/aggregates/toggle/${id}`, { event_type: 'made', payload: { id } })));
  const flags = new Map(ids.map((id) => [id, false]));
  let pairsBothApplied = 0;
  for (let round = 0; round < 4; round++) {
    // Both requests of a pair leave at once, so they land in one group (or two pipelined ones).
    const answers = await Promise.all(
      ids.map((id) => {
        const [first, second] = flags.get(id) ? ['restore', 'archive'] : ['archive', 'restore'];
        return Promise.all([
          server.request('POST', `/v1/aggregates/toggle/${id}/${first}`, {}),
          server.request('POST', `/v1/aggregates/toggle/${id}/${second}`, {}),
        ]);
      }),
    );
    for (const pair of answers) {
      for (const a of pair) assert.ok(a.status === 200 || a.status === 400 || a.status === 409, `archive/restore answers ${a.status} ${JSON.stringify(a.body)}`);
      if (pair.every((a) => a.status === 200)) pairsBothApplied++;
    }
    const now = await assertIndexMatchesHeads(server, 'toggle', ids);
    for (const [id, archived] of now) flags.set(id, archived);
  }
  assert.ok(pairsBothApplied > 0, 'some pairs applied both operations (the case that corrupted the index)');
});

test('hardening - after concurrent archive/restore pairs the stored index holds one entry per aggregate, matching head.archived (item 3, on disk)', { timeout: 40_000 }, async () => {
  const target = await startServerInProcess({ dataDir: dir() });
  const ids = range(30).map((i) => `disk-${i}`);
  try {
    await Promise.all(ids.map((id) => target.request('POST', `/v1/aggregates/toggle/${id}`, { event_type: 'made', payload: {} })));
    for (let round = 0; round < 3; round++) {
      // Archive then restore, and then again restore then archive: the second of each pair wins.
      await Promise.all(ids.map((id) => Promise.all([target.request('POST', `/v1/aggregates/toggle/${id}/archive`, {}), target.request('POST', `/v1/aggregates/toggle/${id}/restore`, {})])));
    }
    await assertIndexMatchesHeads(target, 'toggle', ids);
  } finally {
    await target.stop();
  }
  const stores = openShards(target.dataDir);
  const wrong: string[] = [];
  for (const id of ids) {
    const store = shardHolding(stores, 'default', 'toggle', id);
    const head = store.getHead('default', 'toggle', id);
    assert.ok(head);
    const entries = (['a', 'r'] as const).filter((status) => store.index.get(['default', status, 'toggle', id]) !== undefined);
    const others = stores.filter((s) => s !== store).filter((s) => ['a', 'r'].some((st) => s.index.get(['default', st as 'a', 'toggle', id]) !== undefined));
    if (entries.length !== 1 || entries[0] !== (head.archived ? 'r' : 'a') || others.length > 0) wrong.push(`${id}: entries ${entries.join(',')} archived=${head.archived}`);
  }
  assert.deepEqual(wrong, [], 'one index entry per aggregate, the one its head says');
});

// ---------------------------------------------------------------------------------------------
// Items 5 and 7: batches across two worker environments.

test('hardening - a cross-worker batch whose home part is all idempotent replays commits the other part (item 5)', { timeout: 30_000 }, async () => {
  const [a, b] = idsOnWorkers('pair5', 'p5') as [string, string];
  const first = await server.request('POST', `/v1/aggregates/pair5/${a}/events`, { event_type: 'posted', payload: { n: 1 }, idempotency_key: 'once' });
  assert.equal(first.status, 201);
  // A first: the home worker is the one of the first item, and all of its items are replays.
  const batch = await server.request('POST', '/v1/batch', {
    events: [
      { aggregate_type: 'pair5', aggregate_id: a, event_type: 'posted', payload: { n: 1 }, idempotency_key: 'once' },
      { aggregate_type: 'pair5', aggregate_id: b, event_type: 'posted', payload: { n: 1 } },
    ],
  });
  assert.equal(batch.status, 201, JSON.stringify(batch.body));
  assert.equal(batch.body.events[0].metadata.event_id, first.body.metadata.event_id, 'the replay answers the original event');
  assert.equal(batch.body.events[1].version, 1);
  assert.equal((await server.request('GET', `/v1/aggregates/pair5/${a}`)).body.version, 1, 'the replay appended nothing');
  assert.deepEqual((await server.request('GET', `/v1/aggregates/pair5/${b}`)).body.state, { n: 1 });
});

test('hardening - the home worker records the intent even when its part is all replays, and recovery finishes the other part (item 5, staged crash)', { timeout: 40_000 }, async () => {
  const dataDir = dir();
  const [a, b] = idsOnWorkers('ledger', 'acct') as [string, string];
  const first = await startServerInProcess({ dataDir, configToml: '[storage]\nworkers = 2\n' });
  try {
    assert.equal((await first.request('POST', `/v1/aggregates/ledger/${a}/events`, { event_type: 'posted', payload: { amount: 5 }, idempotency_key: 'k-a' })).status, 201);
  } finally {
    await first.stop();
  }
  const layout = readLayout(dataDir);
  assert.ok(layout);
  assert.equal(layout.workers, 2);
  const cmdA = command('ledger', a, { amount: 5 }, { event_type: 'posted', idempotency_key: 'k-a' });
  const cmdB = command('ledger', b, { amount: 7 }, { event_type: 'posted' });
  const home = workerOfShard(cmdA.shard, layout);
  const other = workerOfShard(cmdB.shard, layout);
  assert.notEqual(home, other);

  // What Writer.twoPhase does, stopped after the home commit (the process "dies" there).
  const txid = 'staged-replay-home';
  const pool = await startPool(dataDir, layout);
  try {
    const homePrep = (await within(5_000, 'home prepare', pool.requestWorker(home, { kind: 'prepare', txid, commands: [cmdA] }))) as Extract<ShardResult, { kind: 'prepare' }>;
    const otherPrep = (await within(5_000, 'other prepare', pool.requestWorker(other, { kind: 'prepare', txid, commands: [cmdB] }))) as Extract<ShardResult, { kind: 'prepare' }>;
    assert.equal(homePrep.results[0]?.replayed, true, 'the home item is a replay');
    assert.equal(homePrep.parts.length, 0, 'the home part writes no events');
    const intent: BatchIntent = { txid, parts: [...homePrep.parts, ...otherPrep.parts] };
    await within(5_000, 'home commit', pool.requestWorker(home, { kind: 'commit', txid, intent }));
  } finally {
    await pool.stop();
  }
  const stores = openShards(dataDir);
  const homeStore = stores[cmdA.shard] as ShardStore;
  assert.ok(homeStore.worker.intents.get(txid) !== undefined, 'the intent is durable on the home worker although its part wrote no event');
  assert.equal((stores[cmdB.shard] as ShardStore).getHead('default', 'ledger', b), undefined, 'the other part is missing before recovery');

  const again = await startServerInProcess({ dataDir });
  try {
    const gotB = await again.request('GET', `/v1/aggregates/ledger/${b}`);
    assert.equal(gotB.status, 200, 'recovery finished the other part');
    assert.deepEqual(gotB.body.state, { amount: 7 });
    assert.equal((await again.request('GET', `/v1/aggregates/ledger/${b}/verify`)).body.valid, true);
    assert.equal((await again.request('GET', `/v1/aggregates/ledger/${a}`)).body.version, 1, 'the replayed part appended nothing');
  } finally {
    await again.stop();
  }
  assert.equal([...(openShards(dataDir)[cmdA.shard] as ShardStore).worker.intents.getRange()].length, 0, 'the intent is cleared once finished');
});

test('hardening - no list answer shows one aggregate after a cross-worker batch and the other before it (item 7)', { timeout: 60_000 }, async () => {
  const [a, b] = idsOnWorkers('pair7', 'p7') as [string, string];
  const created = await server.request('POST', '/v1/batch', {
    events: [
      { aggregate_type: 'pair7', aggregate_id: a, event_type: 'counted', payload: { n: 0 } },
      { aggregate_type: 'pair7', aggregate_id: b, event_type: 'counted', payload: { n: 0 } },
    ],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const READS = 200;
  let reads = 0;
  let writes = 0;
  const torn: string[] = [];
  const seen = new Set<number>();
  const writer = (async () => {
    for (let k = 1; reads < READS && k <= 2000; k++) {
      const res = await server.request('POST', '/v1/batch', {
        events: [
          { aggregate_type: 'pair7', aggregate_id: a, event_type: 'counted', payload: { n: k } },
          { aggregate_type: 'pair7', aggregate_id: b, event_type: 'counted', payload: { n: k } },
        ],
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      writes++;
    }
  })();
  const reader = async (): Promise<void> => {
    while (reads < READS) {
      // One request reads both aggregates: the list of the type.
      const res = await server.request('GET', '/v1/aggregates/pair7?take=10');
      assert.equal(res.status, 200);
      reads++;
      const byId = new Map<string, { version: number; state: { n: number } }>(res.body.items.map((i: any) => [i.aggregate_id, i]));
      const ga = byId.get(a);
      const gb = byId.get(b);
      assert.ok(ga && gb, 'both aggregates are listed');
      seen.add(ga.state.n);
      if (ga.version !== gb.version || ga.state.n !== gb.state.n) torn.push(`A v${ga.version} n=${ga.state.n} / B v${gb.version} n=${gb.state.n}`);
    }
  };
  await within(50_000, 'readers and writer', Promise.all([writer, reader(), reader(), reader(), reader()]));
  assert.deepEqual(torn.slice(0, 10), [], `${torn.length} of ${reads} reads saw a half-applied batch`);
  assert.ok(writes > 5 && seen.size > 5, `the reads overlapped the batches (${writes} batches, ${seen.size} distinct values seen)`);
});

// ---------------------------------------------------------------------------------------------
// Item 6: the storage layout is recorded and a disagreeing start is refused.

function setConfig(dataDir: string, change: (config: ReturnType<typeof readConfig>['config']) => void): void {
  const { config } = readConfig(dataDir);
  change(config);
  writeConfig(dataDir, config);
}

async function refusedInProcess(dataDir: string): Promise<Error> {
  const err = await startServer({ dataDir, listenPort: 0, host: '127.0.0.1', logLevel: 'silent' }).then(
    async (s) => {
      await s.stop();
      return undefined;
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error, 'the start is refused');
  assert.equal(err.name, 'ServerStartError');
  assert.equal(err.message.split('\n').length, 1, `one line: ${err.message}`);
  return err;
}

test('hardening - a start whose shard_count or workers disagree with a non-empty store is refused with one line (item 6)', { timeout: 60_000 }, async () => {
  const dataDir = dir();
  const first = await startServerInProcess({ dataDir });
  const ids = range(12).map((i) => `lay-${i}`);
  try {
    for (const id of ids) assert.equal((await first.request('POST', `/v1/aggregates/layout/${id}`, { event_type: 'made', payload: { id } })).status, 201);
  } finally {
    await first.stop();
  }
  const recorded = readFileSync(join(dataDir, 'shards', 'layout.json'), 'utf8');
  assert.deepEqual(JSON.parse(recorded), { format: LAYOUT_FORMAT, shard_count: 4, workers: 1 });

  setConfig(dataDir, (c) => (c.tenants.shard_count = 8));
  const err = await refusedInProcess(dataDir);
  assert.match(err.message, /shard_count = 4/);
  assert.match(err.message, /shard_count = 8/);

  // The real binary: exit non-zero, one line on stderr, no stack.
  const out = await runDbx(['start', '--foreground', '--data-dir', dataDir, '--port', '0'], { env: { EVENTDBX_LOG_LEVEL: 'warn' }, timeoutMs: 20_000 });
  assert.notEqual(out.code, 0, `exit code (stderr: ${out.stderr})`);
  assert.notEqual(out.code, null, 'the binary exits by itself');
  const lines = out.stderr.split('\n').filter((l) => l.trim().length > 0);
  assert.equal(lines.length, 1, `one line on stderr, got:\n${out.stderr}`);
  assert.match(lines[0] as string, /shard_count/);
  assert.doesNotMatch(out.stderr, / {4}at /, 'no stack trace');
  assert.equal(readFileSync(join(dataDir, 'shards', 'layout.json'), 'utf8'), recorded, 'a refused start leaves the layout alone');

  // An explicit workers count that disagrees is refused the same way.
  setConfig(dataDir, (c) => {
    c.tenants.shard_count = 4;
    c.storage.workers = 2;
  });
  assert.match((await refusedInProcess(dataDir)).message, /workers = 1.*workers = 2/);

  // With the recorded settings back, every aggregate is found again.
  setConfig(dataDir, (c) => (c.storage.workers = 0));
  const again = await startServerInProcess({ dataDir });
  try {
    for (const id of ids) assert.equal((await again.request('GET', `/v1/aggregates/layout/${id}`)).status, 200, `${id} is found`);
    assert.equal((await again.request('GET', '/v1/aggregates/layout?take=100')).body.items.length, ids.length);
  } finally {
    await again.stop();
  }
});

test('hardening - an empty store takes a new shard_count; a data dir of the per-shard layout is refused with one line (item 6)', { timeout: 40_000 }, async () => {
  const dataDir = dir();
  await (await startServerInProcess({ dataDir })).stop();
  setConfig(dataDir, (c) => (c.tenants.shard_count = 8));
  const server8 = await startServerInProcess({ dataDir });
  try {
    assert.equal((await server8.request('POST', '/v1/aggregates/layout/e-1', { event_type: 'made', payload: {} })).status, 201);
    assert.equal((await server8.request('GET', '/v1/aggregates/layout/e-1')).status, 200);
  } finally {
    await server8.stop();
  }
  assert.equal(readLayout(dataDir)?.shard_count, 8, 'the empty store took the new layout');

  const legacy = dir();
  mkdirSync(join(legacy, 'shards', 'shard-0000'), { recursive: true });
  writeFileSync(join(legacy, 'shards', 'shard-0000', 'data.mdb'), 'the first layout');
  writeFileSync(join(legacy, 'config.toml'), '# as 0.1 wrote it\n[server]\nport = 7070\n');
  const before = treeOf(legacy);
  assert.match((await refusedInProcess(legacy)).message, /one-environment-per-shard/);
  assert.equal(existsSync(join(legacy, 'shards', 'layout.json')), false, 'nothing is recorded over the old layout');
  assert.deepEqual(treeOf(legacy), before, 'the refused dir is left byte for byte as it was (0.1 can still open it)');
});

/** Every file under `root` (but the start lock) with its bytes. */
function treeOf(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(root, { recursive: true }) as string[]) {
    const path = join(root, name);
    if (statSync(path).isFile() && !/lock/.test(name)) out[name] = readFileSync(path).toString('base64');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Item 16: errors from workers keep their cause (in the log, never in the answer).

test('hardening - toWireError carries the cause of an internal error across the hop, and toWire() never includes it (item 16)', () => {
  const root = new Error('disk on fire');
  const wire = toWireError(new DbxError('internal', 'the shard could not commit', undefined, { cause: root }));
  assert.equal(wire.code, 'internal');
  assert.equal(wire.message, 'the shard could not commit');
  assert.match(wire.cause ?? '', /disk on fire/);
  assert.match(wire.cause ?? '', /\n\s+at /, 'the cause carries the stack');
  // Over the hop (JSON text) and back.
  const rebuilt = DbxError.fromWire(JSON.parse(JSON.stringify(wire)));
  assert.equal(rebuilt.code, 'internal');
  assert.equal(rebuilt.cause, wire.cause);
  assert.deepEqual(rebuilt.toWire(), { code: 'internal', message: 'the shard could not commit' }, 'an answer never carries the cause');

  // An unknown throwable: a generic message, its own stack as the cause.
  const unknown = toWireError(new TypeError('x.y is not a function'));
  assert.deepEqual({ code: unknown.code, message: unknown.message }, { code: 'internal', message: 'internal error' });
  assert.match(unknown.cause ?? '', /TypeError: x\.y is not a function/);
  // An internal error without a cause is its own cause (where it was thrown).
  assert.match(toWireError(new DbxError('internal', 'bad state')).cause ?? '', /DbxError: bad state\n\s+at /);
  // Client errors are not failures of ours: no cause crosses.
  assert.equal(toWireError(new DbxError('not_found', 'gone', undefined, { cause: root })).cause, undefined);
});

test('hardening - an internal error in a shard worker answers 500 without its cause and logs the worker-side stack (item 16)', { timeout: 60_000 }, async () => {
  const dataDir = dir();
  const body = { event_type: 'doc_set', payload: { n: 1 }, idempotency_key: 'k-1' };
  const first = await spawnServer({ dataDir });
  try {
    assert.equal((await first.request('POST', '/v1/aggregates/doc/broken-1/events', body)).status, 201);
  } finally {
    await stopSpawned(first);
  }
  // Corrupt the idempotency entry (server stopped): it now points at a version that does not exist.
  const store = shardHolding(openShards(dataDir), 'default', 'doc', 'broken-1');
  const entry = store.idempotencyEntry('default', 'doc', 'broken-1', 'k-1');
  assert.ok(entry);
  await store.idempotency.put(store.idempotencyKeyForms(['default', 'doc', 'broken-1', 'k-1'])[0] as IdempotencyDbKey, { ...entry, version: 99 });

  const second = await spawnServer({ dataDir });
  try {
    const res = await second.request('POST', '/v1/aggregates/doc/broken-1/events', body);
    assertError(res, 500, 'internal');
    assert.doesNotMatch(JSON.stringify(res.body), /replayIdempotent|prepare\.js|cause/, 'no cause in the answer');
    const log = (): string => second.stdout() + second.stderr();
    const deadline = Date.now() + 5_000;
    while (!/replayIdempotent|shard-worker\/prepare\.js/.test(log()) && Date.now() < deadline) await sleep(50);
    assert.match(log(), /idempotency entry points at a missing event/);
    assert.match(log(), /replayIdempotent|shard-worker\/prepare\.js/, 'the log has the worker-side stack, not just "internal error"');
    // The server keeps serving other aggregates.
    assert.equal((await second.request('POST', '/v1/aggregates/doc/fine-1/events', { event_type: 'doc_set', payload: {} })).status, 201);
  } finally {
    await stopSpawned(second);
  }
});
