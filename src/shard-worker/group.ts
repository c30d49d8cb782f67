/**
 * One group commit: the requests drained from the port in one turn are prepared together, written
 * in one LMDB transaction per touched shard, and answered together after the flush.
 */
import { DbxError, toWireError, type EventRecord, type JsonObject } from '../core/index.js';
import { BatchBuilder, type LoadedAggregate, type PrepareContext } from './prepare.js';
import type { BatchIntent, ShardReply, ShardRequest, WriteCommand } from './protocol.js';
import { headKeyString, type WriteSet } from './records.js';
import { DURABLE_TXN_FLAGS, type ShardStore } from './store.js';

export interface PreparedTransaction {
  txid: string;
  builder: BatchBuilder;
  lockKeys: string[];
}

export interface GroupOutcome {
  replies: ShardReply[];
  deferred: ShardRequest[];
  /** Transactions committed or aborted in this group: their locks can be released. */
  released: string[];
  touched: ShardStore[];
}

export class GroupState {
  readonly prepared = new Map<string, PreparedTransaction>();
  readonly locks = new Map<string, string>();
}

export function lockKey(cmd: Pick<WriteCommand, 'shard' | 'tenant' | 'aggregate_type' | 'aggregate_id'>): string {
  return `${cmd.shard}\u0000${headKeyString(cmd.tenant, cmd.aggregate_type, cmd.aggregate_id)}`;
}

export function runGroup(
  requests: ShardRequest[],
  ctx: PrepareContext,
  stores: Map<number, ShardStore>,
  state: GroupState,
  onCommitted: (overlay: BatchBuilder['overlay']) => void,
): GroupOutcome {
  const main = new BatchBuilder(ctx);
  const extraWrites: { shard: number; ws: WriteSet }[] = [];
  const intentsPut: { shard: number; intent: BatchIntent }[] = [];
  const committedPrepared: PreparedTransaction[] = [];
  const replies: ShardReply[] = [];
  const deferred: ShardRequest[] = [];
  const released: string[] = [];
  const isLocked = (cmds: WriteCommand[]): boolean => cmds.some((c) => state.locks.has(lockKey(c)));

  for (const req of requests) {
    try {
      switch (req.kind) {
        case 'write': {
          if (isLocked([req.command])) {
            deferred.push(req);
            break;
          }
          replies.push({ id: req.id, ok: true, value: { kind: 'write', result: main.add(req.command) } });
          break;
        }
        case 'batch': {
          if (isLocked(req.commands)) {
            deferred.push(req);
            break;
          }
          const child = main.fork();
          const results = req.commands.map((c) => child.add(c));
          main.absorb(child);
          replies.push({ id: req.id, ok: true, value: { kind: 'batch', results } });
          break;
        }
        case 'prepare': {
          if (isLocked(req.commands)) throw new DbxError('unavailable', 'an aggregate of this batch is part of another batch in progress; retry');
          const child = main.fork();
          const results = req.commands.map((c) => child.add(c));
          const lockKeys = [...new Set(req.commands.map(lockKey))];
          for (const key of lockKeys) state.locks.set(key, req.txid);
          state.prepared.set(req.txid, { txid: req.txid, builder: child, lockKeys });
          const parts = [...child.writeSets].map(([shard, ws]) => ({ shard, ws }));
          replies.push({ id: req.id, ok: true, value: { kind: 'prepare', results, parts } });
          break;
        }
        case 'commit': {
          const tx = state.prepared.get(req.txid);
          if (!tx) throw new DbxError('internal', `no prepared batch ${req.txid}`);
          for (const [shard, ws] of tx.builder.writeSets) extraWrites.push({ shard, ws });
          if (req.intent) {
            const home = [...tx.builder.writeSets.keys()][0];
            if (home !== undefined) intentsPut.push({ shard: home, intent: req.intent });
          }
          committedPrepared.push(tx);
          released.push(req.txid);
          replies.push({ id: req.id, ok: true, value: { kind: 'done' } });
          break;
        }
        case 'abort': {
          if (state.prepared.has(req.txid)) released.push(req.txid);
          replies.push({ id: req.id, ok: true, value: { kind: 'done' } });
          break;
        }
        case 'snapshot': {
          if (state.locks.has(lockKey({ ...req }))) {
            deferred.push(req);
            break;
          }
          const version = main.snapshot(req.shard, req.tenant, req.aggregate_type, req.aggregate_id, req.comment ?? null);
          replies.push({ id: req.id, ok: true, value: { kind: 'snapshot', version } });
          break;
        }
      }
    } catch (err) {
      replies.push({ id: req.id, ok: false, error: toWireError(err) });
    }
  }

  const touched = commit(stores, main.writeSets, extraWrites, intentsPut, replies);
  if (touched) {
    onCommitted(main.overlay);
    for (const tx of committedPrepared) onCommitted(tx.builder.overlay);
  }
  return { replies, deferred, released, touched: touched ?? [] };
}

/** Writes everything; on a storage failure turns every successful reply into `unavailable`. */
function commit(
  stores: Map<number, ShardStore>,
  main: Map<number, WriteSet>,
  extra: { shard: number; ws: WriteSet }[],
  intents: { shard: number; intent: BatchIntent }[],
  replies: ShardReply[],
): ShardStore[] | undefined {
  const perShard = new Map<number, WriteSet[]>();
  const push = (shard: number, ws: WriteSet): void => {
    const list = perShard.get(shard) ?? [];
    list.push(ws);
    perShard.set(shard, list);
  };
  for (const [shard, ws] of main) push(shard, ws);
  for (const { shard, ws } of extra) push(shard, ws);
  for (const { shard } of intents) if (!perShard.has(shard)) perShard.set(shard, []);
  const touched: ShardStore[] = [];
  // A shard that records a batch intent commits first: if the process dies before the others,
  // the intent is what lets recovery finish them.
  const intentShards = new Set(intents.map((i) => i.shard));
  const order = [...perShard].sort(([a], [b]) => Number(intentShards.has(b)) - Number(intentShards.has(a)));
  try {
    for (const [shard, sets] of order) {
      const store = stores.get(shard);
      if (!store) throw new DbxError('internal', `shard ${shard} is not owned by this worker`);
      store.env.transactionSync(
        () => {
          for (const ws of sets) store.applyWriteSet(ws);
          for (const i of intents) if (i.shard === shard) store.intents.put(i.intent.txid, i.intent);
        },
        // The caller awaits `flushed` before acknowledging (sync durability).
        DURABLE_TXN_FLAGS,
      );
      touched.push(store);
    }
    return touched;
  } catch (err) {
    const failure = new DbxError('unavailable', 'the shard could not commit the write', undefined, { cause: err });
    console.error('shard commit failed', err);
    for (const store of stores.values()) store.forgetUncommittedSequences();
    for (let i = 0; i < replies.length; i++) {
      const reply = replies[i] as ShardReply;
      if (reply.ok) replies[i] = { id: reply.id, ok: false, error: failure.toWire() };
    }
    return undefined;
  }
}

export type { EventRecord, JsonObject, LoadedAggregate };
