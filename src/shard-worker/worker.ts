/**
 * Shard worker thread entry. Owns one LMDB environment (its logical shards, keys prefixed by
 * shard) for writing. Requests arrive on a dedicated MessagePort; every turn drains the port
 * (`receiveMessageOnPort`) so concurrent writes share one commit. With commits_in_flight_max = 1
 * (default) a group commits on this thread; above 1, up to that many group commits are written and
 * flushed on lmdb-js's write thread while the next group is prepared (see commitGroup).
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { DbxError, SnowflakeGenerator, createValueCipher, toWireError, type EventRecord } from '../core/index.js';
import { controlEndpoint } from './comlink-endpoint.js';
import { GroupState, applyGroup, prepareGroup, type GroupStorage, type PreparedGroup } from './group.js';
import { ReplyQueue, visibilityProbe, type PendingAck } from './replies.js';
import { HeadsCache } from './heads-cache.js';
import type { BatchBuilder, LoadedAggregate, PrepareContext } from './prepare.js';
import type { BatchIntent, ShardMessage, ShardReplyMessage, ShardRequest, WorkerInit } from './protocol.js';
import { headKeyString, type WriteSet } from './records.js';
import { WorkerSchemas } from './schema-check.js';
import type { SchemaRecord } from '../core/schema/api.js';
import { DURABLE_TXN_FLAGS, WorkerEnv, type ShardStore } from './store.js';
import { ASYNC_GROUP_TXN_FLAGS, MetaFlusher } from './meta-flush.js';
import { sealEventFor } from './sealing.js';
import { deleteTenantChunk, writeTenantEntries, type RangeEntry, type RangeWriteResult } from './tenant-range.js';

const init = (workerData as { init: WorkerInit; port: MessagePort }).init;
const port = (workerData as { init: WorkerInit; port: MessagePort }).port;

const dataKeys = (init.dataKeys ?? []).map((key) => Buffer.from(key));
const env = new WorkerEnv(init.envPath, { mapSizeMib: init.mapSizeMib, cipher: dataKeys.length > 0 ? createValueCipher(dataKeys) : null });
const stores = new Map<number, ShardStore>();
for (const shard of init.shards) stores.set(shard, env.shard(shard));
const storeOf = (shard: number): ShardStore => {
  const store = stores.get(shard);
  if (!store) throw new DbxError('internal', `shard ${shard} is not owned by worker ${init.workerIndex}`);
  return store;
};
const storage: GroupStorage = { env, storeOf };
const metaFlush = new MetaFlusher(init.envPath);
const replies = new ReplyQueue(port, () => env.env.resetReadTxn());

/**
 * Stream seqs now durable: the coordinator's live readers read up to these (in `sync` mode nothing
 * a power cut could take back is streamed). Control-path commits (`commitDurably`) report here too.
 */
function reportStreamDurable(marks: [number, string, number][]): void {
  for (const [shard, tenant, seq] of marks) storeOf(shard).markStreamDurable(tenant, seq);
  port.postMessage({ ids: [], replies: [], stream_marks: marks } satisfies ShardReplyMessage);
}
env.onStreamDurable = reportStreamDurable;

const cache = new HeadsCache(init.cacheThreshold);
const groupState = new GroupState(init.prepareLeaseMs);
const schemas = new WorkerSchemas(init.restrict, init.schemas);
const ctx: PrepareContext = {
  restrict: init.restrict,
  schemaFor: (tenant, aggregate) => schemas.get(tenant, aggregate),
  snowflake: new SnowflakeGenerator(init.snowflakeWorkerId, init.snowflakeState),
  snapshotThreshold: init.snapshotThreshold,
  writeLimits: init.writeLimits,
  ...(env.cipher ? { sealEvent: sealEventFor(env.cipher) } : {}),
  load(shard, tenant, type, id): LoadedAggregate | undefined {
    const key = `${shard}\u0000${headKeyString(tenant, type, id)}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const loaded = storeOf(shard).getHeadAndState(tenant, type, id);
    if (!loaded) return undefined;
    cache.set(key, loaded);
    return loaded;
  },
  idempotencyEntry: (shard, tenant, type, id, key) => storeOf(shard).idempotencyEntry(tenant, type, id, key),
  // Every shard of this environment: an event id must be unique where GET /v1/events/{id} looks.
  eventIdExists: (eventId) => {
    for (const store of stores.values()) if (store.eventIds.get(eventId) !== undefined) return true;
    return false;
  },
  readEvent: (shard, tenant, type, id, version): EventRecord | undefined => storeOf(shard).getEvent([tenant, type, id, version]),
};

let queue: ShardRequest[] = [];
let deferred: ShardRequest[] = [];
let scheduled = false;
let draining: (() => void) | undefined;
/** Groups handed to LMDB whose commit is not durable yet (bounded: commits_in_flight_max). */
let inFlight = 0;
/** The newest group whose commit is in flight: the next group looks its effects up there. */
let newest: BatchBuilder | undefined;
/** Settles when every group submitted so far has settled: replies go out in commit order. */
let lastCommit: Promise<unknown> = Promise.resolve();
/**
 * Fail-stop: after a failed commit the heads that later groups were prepared on are not on disk,
 * so this worker refuses everything until the server restarts (like PostgreSQL after a failed
 * fsync) rather than build history on state that may not exist.
 */
let failed: DbxError | undefined;

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(runOnce);
}

/** Decodes one message; requests whose text cannot be read are answered with an error at once. */
function receive(message: ShardMessage): void {
  let requests: ShardRequest[];
  try {
    requests = JSON.parse(message.requests) as ShardRequest[];
  } catch (err) {
    console.error('shard worker: unreadable request message', err);
    const error = toWireError(new DbxError('internal', 'the request could not be read by the shard worker', undefined, { cause: err }));
    replies.send(message.ids.map((id) => ({ id, ok: false, error })));
    return;
  }
  for (const request of requests) queue.push(request);
}

function drainPort(): void {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) receive(m.message as ShardMessage);
}

/**
 * One turn: take what arrived, prepare it, hand it to LMDB and return at once, so the next group is
 * received and prepared while this one is written and flushed (on lmdb-js's write thread). Replies
 * go out only when their own commit is durable.
 */
function runOnce(): void {
  scheduled = false;
  drainPort();
  if (failed) {
    const error = failed.toWire();
    replies.send(queue.concat(deferred).map((r) => ({ id: r.id, ok: false, error })));
    queue = [];
    deferred = [];
    return maybeFinishDrain();
  }
  const now = Date.now();
  if (queue.length === 0 && groupState.expired(now).length === 0) return maybeFinishDrain();
  // Back-pressure: while the window is full, requests pile up and make the next group larger.
  if (inFlight >= init.commitsInFlightMax) return;
  const group = queue.length > init.batchCommandsMax ? queue.splice(0, init.batchCommandsMax) : queue;
  if (group === queue) queue = [];
  const prepared = prepareGroup(group, ctx, groupState, newest, now);
  for (const txid of prepared.released) {
    const tx = groupState.prepared.get(txid);
    if (tx) for (const key of tx.lockKeys) if (groupState.locks.get(key) === txid) groupState.locks.delete(key);
    groupState.prepared.delete(txid);
  }
  if (prepared.deferred.length) deferred.push(...prepared.deferred);
  if (prepared.released.length && deferred.length) {
    queue.unshift(...deferred);
    deferred = [];
  }
  submit(prepared, group.length);
  if (queue.length) schedule();
}

function submit(group: PreparedGroup, groupSize: number): void {
  if (group.replies.length === 0 && !group.writes) return;
  inFlight++;
  let durable: Promise<unknown> = lastCommit;
  let outboxMarks: [number, number][] = [];
  let streamMarks: [number, string, number][] = [];
  let commit: GroupCommit | undefined;
  if (group.writes) {
    for (const [key, value] of group.builder.overlay) cache.set(key, { head: value.head, state: value.state });
    newest = group.builder;
    const write = (): void => {
      // A group prepared on top of a failed one must not reach the disk.
      if (failed) throw failed;
      applyGroup(storage, group);
      outboxMarks = [...group.builder.writeSets.keys()].map((shard) => [shard, storeOf(shard).outboxHigh()]);
      streamMarks = env.takeStreamMarks();
    };
    commit = commitGroup(write, groupSize, group.twoPhase);
    // A part of a cross-worker batch is answered only once durable, even in `async` (group.ts
    // twoPhase): the coordinator commits the other parts once the home part (with the intent) is
    // answered, and forgets the intent once they are. Flushed now on this thread, not at the timer
    // nor on the shared thread pool (meta-flush.ts flushNow): one fdatasync of latency, not up to
    // flush_interval_ms. On either commit path: its reply also waits for the
    // earlier groups' meta pages (found by the power-cut test of such batches: with the other parts
    // answered at visibility, a cut kept 5 of a batch's 6 events).
    if (group.twoPhase && init.durability === 'async') metaFlush.flushNow();
    durable = Promise.all([lastCommit, commit.durable]);
  }
  // A visible commit holds the window no longer: the next group may be prepared and committed
  // (its commit carries this one's meta page to the disk). In `async` a group that writes nothing
  // (prepares of cross-worker batches, idempotent replays, refusals) has nothing to wait for but
  // the visibility of the groups before it, which the reply order gives: it neither holds the
  // window nor waits for their meta-page flush (it did, and a cross-worker batch then took up to
  // flush_interval_ms while every write of the worker queued behind it).
  const visible = commit ? commit.visible : init.durability === 'async';
  const holdsWindow = !visible;
  if (!holdsWindow) inFlight--;
  const ack: PendingAck = {
    group,
    groupSize,
    depth: inFlight + (holdsWindow ? 0 : 1),
    // A part of a cross-worker batch waits for its flush, never for a probe (see commitGroup).
    probe: init.durability === 'async' && !visible && !group.twoPhase ? visibilityProbe(group, storeOf) : undefined,
    visible,
  };
  replies.push(ack);
  // Replies of a group without writes (replays, refusals) may depend on an earlier group's
  // effects, so they too wait for every commit before them: until durable in `sync`; in `async`
  // their place behind the earlier groups' replies (sent once visible) is enough.
  lastCommit = durable.then(
    () => {
      if (holdsWindow) inFlight--;
      // This group is on disk: the next lookups may read it there (renew this thread's snapshot).
      env.env.resetReadTxn();
      group.builder.detach();
      if (newest === group.builder) newest = undefined;
      ack.durable = true;
      // A group without writes (say, an idempotent replay) may lean on a group that failed.
      if (failed && !group.writes) ack.failed = failed;
      if (outboxMarks.length > 0) port.postMessage({ ids: [], replies: [], durable_outbox: outboxMarks } satisfies ShardReplyMessage);
      // Before the replies: a client that got its answer finds its event in the stream.
      if (streamMarks.length > 0) reportStreamDurable(streamMarks);
      replies.flush();
      afterCommit();
    },
    (err: unknown) => {
      if (holdsWindow) inFlight--;
      if (!failed) {
        console.error('shard worker: commit failed; refusing further writes until restart', err);
        failed = new DbxError('unavailable', 'the shard worker stopped after a failed commit; restart the server');
        cache.clear();
        newest = undefined;
      }
      ack.failed = failed;
      replies.flush();
      afterCommit();
    },
  );
}

/** Asynchronous commits handed to lmdb-js's write thread and not yet settled (groups and control writes). */
let asyncCommits = 0;

/** A group handed to LMDB: when it is durable, and whether it is visible already. */
interface GroupCommit {
  durable: Promise<unknown>;
  /** `async`, committed on this thread: its replies may go now (meta-flush.ts). */
  visible: boolean;
}

/**
 * A group's commit: on this thread when no commit of lmdb-js's write thread is pending and either
 * no overlap is configured (`commits_in_flight_max = 1`, the default) or the group is a lone
 * request with nothing queued behind it; otherwise on lmdb-js's write thread (durable when it
 * resolves), so the next group is received and prepared meanwhile. On this thread a commit skips
 * two thread hand-offs and the write thread waiting on this thread's callback (measured,
 * interleaved A/B, 3 rounds: 1-client apply p50 1,583 -> 1,360 µs; with every group committed
 * here, 32 clients 4,269 -> 5,088/s). There `sync` commits with DURABLE_TXN_FLAGS (durable when
 * transactionSync returns) and `async` with ASYNC_GROUP_TXN_FLAGS: visible and its pages flushed
 * when it returns, its meta page flushed by the next commit or the flush timer (meta-flush.ts).
 */
function commitGroup(write: () => void, groupSize: number, mustBeDurable: boolean): GroupCommit {
  // What arrived meanwhile joins the queue (runOnce schedules it after submit).
  drainPort();
  const alone = groupSize === 1 && queue.length === 0;
  if ((init.commitsInFlightMax === 1 || alone) && asyncCommits === 0 && inFlight === 1) {
    const lazyMeta = init.durability === 'async';
    try {
      env.env.transactionSync(write, lazyMeta ? ASYNC_GROUP_TXN_FLAGS : DURABLE_TXN_FLAGS);
    } catch (err) {
      return { durable: Promise.reject(err), visible: false };
    }
    if (!lazyMeta) return { durable: Promise.resolve(), visible: false };
    const committed = metaFlush.committedOne();
    return { durable: metaFlush.whenDurable(committed), visible: !mustBeDurable };
  }
  return { durable: durableOnWriteThread(write), visible: false };
}

/**
 * A commit on lmdb-js's write thread: durable when it resolves, and so is every commit this thread
 * made before it (meta-flush.ts durableThrough). None is made on this thread while it is pending.
 */
function durableOnWriteThread(write: () => void): Promise<void> {
  const covers = metaFlush.lastCommitted;
  return trackAsync(env.env.childTransaction(write)).then(() => metaFlush.durableThrough(covers));
}

function trackAsync<T>(commit: Promise<T>): Promise<T> {
  asyncCommits++;
  const settle = (): void => void asyncCommits--;
  commit.then(settle, settle);
  return commit;
}

function afterCommit(): void {
  if (queue.length || deferred.length || groupState.prepared.size) schedule();
  maybeFinishDrain();
}

function maybeFinishDrain(): void {
  if (draining && queue.length === 0 && inFlight === 0) {
    const done = draining;
    draining = undefined;
    done();
  }
}

port.on('message', (message: ShardMessage) => {
  receive(message);
  schedule();
});

// lmdb-js rejects an internal promise (`commitError`) after a failed commit that nobody can
// attach a handler to; unhandled, it would end this thread. The commit's own promise already put
// the worker into fail-stop; anything else unhandled does the same rather than crash silently.
process.on('unhandledRejection', (err) => {
  console.error('shard worker: unhandled rejection', err);
  if (!failed) {
    failed = new DbxError('unavailable', 'the shard worker stopped after an internal failure; restart the server');
    cache.clear();
    newest = undefined;
  }
});

// `async`: a commit's meta page reaches the disk with the next commit's flush, or here within
// flush_interval_ms once writes pause, which bounds what a power cut can take back. A failed
// flush fails the groups waiting on it, which puts the worker into fail-stop like a failed commit.
if (init.durability === 'async') {
  setInterval(() => {
    if (metaFlush.pending) metaFlush.flushAll().catch(() => undefined);
  }, init.flushIntervalMs).unref();
}

// A prepared batch whose coordinator vanished must not hold its locks forever.
setInterval(() => {
  if (groupState.prepared.size > 0) schedule();
}, Math.max(50, Math.floor(init.prepareLeaseMs / 4))).unref();

/**
 * A control-path write (tenant moves and removals) as one more commit of the pipeline: queued
 * behind the groups in flight and flushed on lmdb-js's write thread like them, so a 1,000-entry
 * chunk holds this thread only while its puts run, not through its flush (a synchronous durable
 * commit here stalled every write of the worker for the flush, measured: seconds under load).
 * Refused after a failed commit, like every write (fail-stop).
 */
function commitBeside(write: () => void): Promise<void> {
  if (failed) return Promise.reject(failed);
  return durableOnWriteThread(write).then(() => env.env.resetReadTxn());
}

/** A DURABLE_TXN_FLAGS commit on this thread: it too carries every earlier meta page to the disk. */
async function durableHere(commit: () => Promise<void>): Promise<void> {
  const covers = metaFlush.lastCommitted;
  await commit();
  metaFlush.durableThrough(covers);
}

/** Rare control calls, served over comlink on the parent port. */
const control = {
  stats(): { shard: number; aggregates: number }[] {
    return [...stores].map(([shard, store]) => ({ shard, aggregates: store.countAggregates() }));
  },
  cacheSize(): number {
    return cache.size;
  },
  /**
   * A registry change (the schema now in force, null once deleted), compiled here once. The
   * coordinator awaits this on every worker before the change answers, so every later write is
   * checked against it; groups already prepared keep the version they were checked against.
   */
  schemaChanged(tenant: string, aggregate: string, record: SchemaRecord | null): number {
    schemas.set(tenant, aggregate, record);
    return record?.version ?? 0;
  },
  /** Per tenant, its last durable stream seq in `shard` (the coordinator asks once per pair it has not heard of). */
  durableStreamSeqs(shard: number, tenants: string[]): number[] {
    const store = storeOf(shard);
    return tenants.map((tenant) => store.durableStreamSeq(tenant));
  },
  listIntents(): BatchIntent[] {
    const out: BatchIntent[] = [];
    for (const { value } of env.intents.getRange()) out.push(value as BatchIntent);
    return out;
  },
  /** Crash recovery of a cross-worker batch: writes a part unless it is already there. */
  async recoverPart(shard: number, ws: WriteSet): Promise<'applied' | 'present'> {
    // Fail-stop covers control writes too: nothing reaches the disk after a failed commit.
    if (failed) throw failed;
    const store = storeOf(shard);
    const first = ws.events[0];
    if (!first || store.storedEvents.get(first.key) !== undefined) return 'present';
    await durableHere(() => store.commitDurably(() => store.applyWriteSet(ws)));
    return 'applied';
  },
  async forgetIntent(txid: string): Promise<void> {
    if (failed) throw failed;
    if (env.intents.get(txid) !== undefined) await durableHere(() => env.commitDurably(() => void env.intents.remove(txid)));
  },
  /**
   * Tenant moves and removals (tenant-range.ts): one bounded durable transaction per call. The
   * tenant's cached heads on that shard go after each: they may describe an earlier stay of the
   * tenant there, which a later write must not build on (the key layout is load()'s).
   */
  async tenantWrite(shard: number, tenant: string, entries: RangeEntry[]): Promise<RangeWriteResult> {
    const result = await writeTenantEntries(env, storeOf(shard), tenant, entries, commitBeside);
    cache.forgetPrefix(`${shard}\u0000${tenant}\u0000`);
    if (result.stream_high > 0) reportStreamDurable([[shard, tenant, result.stream_high]]);
    return result;
  },
  async tenantDelete(shard: number, tenant: string, limit: number): Promise<number> {
    const removed = await deleteTenantChunk(env, storeOf(shard), tenant, limit, commitBeside);
    cache.forgetPrefix(`${shard}\u0000${tenant}\u0000`);
    return removed;
  },
  /** Finishes every queued request and waits until everything written is on disk. */
  async drain(): Promise<void> {
    await new Promise<void>((resolve) => {
      draining = resolve;
      schedule();
    });
    await env.env.flushed;
    await metaFlush.flushAll();
    // The replies and stream marks of the groups that flush made durable go out before drain answers.
    await lastCommit;
  },
};
export type ShardControl = typeof control;

if (parentPort) Comlink.expose(control, controlEndpoint(parentPort));
