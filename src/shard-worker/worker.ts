/**
 * Shard worker thread entry. Owns its shards' LMDB environments for writing. Requests arrive on a
 * dedicated MessagePort; every turn drains the port (`receiveMessageOnPort`) so concurrent writes
 * share one commit, and the next group is prepared and committed while LMDB flushes the previous one.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { DbxError, SnowflakeGenerator, type EventRecord } from '../core/index.js';
import { controlEndpoint } from './comlink-endpoint.js';
import { GroupState, runGroup } from './group.js';
import { HeadsCache } from './heads-cache.js';
import type { LoadedAggregate, PrepareContext } from './prepare.js';
import type { BatchIntent, ShardMessage, ShardReply, ShardReplyMessage, ShardRequest, WorkerInit } from './protocol.js';
import { headKeyString, type WriteSet } from './records.js';
import { ShardStore } from './store.js';

const init = (workerData as { init: WorkerInit; port: MessagePort }).init;
const port = (workerData as { init: WorkerInit; port: MessagePort }).port;

const stores = new Map<number, ShardStore>();
for (const shard of init.shards) stores.set(shard.index, new ShardStore(shard.path, { mapSizeMib: init.mapSizeMib }));
const storeOf = (shard: number): ShardStore => {
  const store = stores.get(shard);
  if (!store) throw new DbxError('internal', `shard ${shard} is not owned by worker ${init.workerIndex}`);
  return store;
};

const cache = new HeadsCache(init.cacheThreshold);
const groupState = new GroupState();
const ctx: PrepareContext = {
  snowflake: new SnowflakeGenerator(init.snowflakeWorkerId, init.snowflakeState),
  snapshotThreshold: init.snapshotThreshold,
  load(shard, tenant, type, id): LoadedAggregate | undefined {
    const key = `${shard}\u0000${headKeyString(tenant, type, id)}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const loaded = storeOf(shard).getHeadAndState(tenant, type, id);
    if (!loaded) return undefined;
    cache.set(key, loaded);
    return loaded;
  },
  idempotencyEntry: (shard, tenant, type, id, key) => storeOf(shard).idempotency.get([tenant, type, id, key]),
  readEvent(shard, tenant, type, id, version): EventRecord | undefined {
    const json = storeOf(shard).getEventJson([tenant, type, id, version]);
    return json === undefined ? undefined : (JSON.parse(json) as EventRecord);
  },
};

let queue: ShardRequest[] = [];
let deferred: ShardRequest[] = [];
let scheduled = false;
let draining: (() => void) | undefined;
let inFlightFlushes = 0;

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(runOnce);
}

function drainPort(): void {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    queue.push(...(m.message as ShardMessage).requests);
  }
}

function runOnce(): void {
  scheduled = false;
  drainPort();
  if (queue.length === 0) return maybeFinishDrain();
  const group = queue.length > init.batchCommandsMax ? queue.splice(0, init.batchCommandsMax) : queue;
  if (group === queue) queue = [];
  const outcome = runGroup(group, ctx, stores, groupState, (overlay) => {
    for (const [key, value] of overlay) cache.set(key, { head: value.head, state: value.state });
  });
  for (const txid of outcome.released) {
    const tx = groupState.prepared.get(txid);
    if (tx) for (const key of tx.lockKeys) groupState.locks.delete(key);
    groupState.prepared.delete(txid);
  }
  if (outcome.deferred.length) deferred.push(...outcome.deferred);
  if (outcome.released.length && deferred.length) {
    queue.unshift(...deferred);
    deferred = [];
  }
  answer(outcome.replies, outcome.touched, group.length);
  if (queue.length) schedule();
}

/** Sync durability answers after the flush; async answers now (committed and visible). */
function answer(replies: ShardReply[], touched: ShardStore[], groupSize: number): void {
  if (replies.length === 0) return;
  const message: ShardReplyMessage = { replies, group_size: groupSize };
  if (init.durability === 'async' || touched.length === 0) {
    port.postMessage(message);
    return;
  }
  inFlightFlushes++;
  Promise.all(touched.map((s) => s.env.flushed)).then(
    () => {
      inFlightFlushes--;
      port.postMessage(message);
      maybeFinishDrain();
    },
    (err: unknown) => {
      inFlightFlushes--;
      console.error('shard flush failed', err);
      const failure = new DbxError('unavailable', 'the shard could not flush the write to disk').toWire();
      port.postMessage({ replies: replies.map((r) => ({ id: r.id, ok: false, error: failure })) } satisfies ShardReplyMessage);
      maybeFinishDrain();
    },
  );
}

function maybeFinishDrain(): void {
  if (draining && queue.length === 0 && inFlightFlushes === 0) {
    const done = draining;
    draining = undefined;
    done();
  }
}

port.on('message', (message: ShardMessage) => {
  queue.push(...message.requests);
  schedule();
});

// A commit is made durable only when someone waits on `flushed` (that is what asks LMDB for the
// fdatasync). In async durability nobody waits per write, so ask every flush_interval_ms: that is
// the bound on what a power loss may take.
if (init.durability === 'async') {
  setInterval(() => {
    for (const store of stores.values()) store.env.flushed.then(noop, (err: unknown) => console.error('shard flush failed', err));
  }, init.flushIntervalMs).unref();
}
function noop(): void {}

/** Rare control calls, served over comlink on the parent port. */
const control = {
  stats(): { shard: number; aggregates: number }[] {
    return [...stores].map(([shard, store]) => ({ shard, aggregates: store.countAggregates() }));
  },
  cacheSize(): number {
    return cache.size;
  },
  listIntents(): BatchIntent[] {
    const out: BatchIntent[] = [];
    for (const store of stores.values()) for (const { value } of store.intents.getRange()) out.push(value as BatchIntent);
    return out;
  },
  /** Crash recovery of a cross-shard batch: writes a part unless it is already there. */
  async recoverPart(shard: number, ws: WriteSet): Promise<'applied' | 'present'> {
    const store = storeOf(shard);
    const first = ws.events[0];
    if (!first || store.getEventJson(first.key) !== undefined) return 'present';
    await store.commitDurably(() => store.applyWriteSet(ws));
    return 'applied';
  },
  async forgetIntent(txid: string): Promise<void> {
    for (const store of stores.values()) {
      if (store.intents.get(txid) !== undefined) await store.commitDurably(() => void store.intents.remove(txid));
    }
  },
  /** Finishes every queued request and waits until everything written is on disk. */
  async drain(): Promise<void> {
    await new Promise<void>((resolve) => {
      draining = resolve;
      schedule();
    });
    await Promise.all([...stores.values()].map((s) => s.env.flushed));
  },
};
export type ShardControl = typeof control;

if (parentPort) Comlink.expose(control, controlEndpoint(parentPort));
