/**
 * One group commit: the requests drained from the port in one turn are prepared together, written
 * in one LMDB (child) transaction of the worker's environment whatever shards they touch, and
 * answered together once that commit is durable.
 */
import { DbxError, toWireError, type EventRecord, type JsonObject, type WireError } from '../core/index.js';
import { BatchBuilder, type LoadedAggregate, type PrepareContext } from './prepare.js';
import { importTouchesLocked, prepareImport } from './import.js';
import { BATCH_LOCKED_MESSAGE, type AbortOutcome, type BatchIntent, type ShardReply, type ShardRequest, type WriteCommand } from './protocol.js';
import { headKeyString } from './records.js';
import type { ShardStore, WorkerEnv } from './store.js';

export interface PreparedTransaction {
  txid: string;
  builder: BatchBuilder;
  lockKeys: string[];
  /** A prepare whose commit or abort never arrives is released at this time (ms since epoch). */
  expiresAt: number;
}

/** How many committed txids are remembered so a late abort can say "that one committed". */
const COMMITTED_TXIDS_MAX = 4096;
/** How many failed imports are remembered (their later chunks are refused). */
const FAILED_IMPORTS_MAX = 1024;

export class GroupState {
  readonly prepared = new Map<string, PreparedTransaction>();
  readonly locks = new Map<string, string>();
  readonly committed = new Set<string>();
  readonly failedImports = new Set<string>();

  constructor(readonly prepareLeaseMs: number) {}

  rememberCommitted(txid: string): void {
    this.committed.add(txid);
    if (this.committed.size > COMMITTED_TXIDS_MAX) {
      const oldest = this.committed.values().next();
      if (!oldest.done) this.committed.delete(oldest.value);
    }
  }

  rememberFailedImport(importId: string): void {
    this.failedImports.add(importId);
    if (this.failedImports.size > FAILED_IMPORTS_MAX) {
      const oldest = this.failedImports.values().next();
      if (!oldest.done) this.failedImports.delete(oldest.value);
    }
  }

  /** Prepares past their lease: the coordinator lost track of them, so their locks must go. */
  expired(now: number): string[] {
    const out: string[] = [];
    for (const tx of this.prepared.values()) if (tx.expiresAt <= now) out.push(tx.txid);
    return out;
  }
}

export function lockKey(cmd: Pick<WriteCommand, 'shard' | 'tenant' | 'aggregate_type' | 'aggregate_id'>): string {
  return `${cmd.shard}\u0000${headKeyString(cmd.tenant, cmd.aggregate_type, cmd.aggregate_id)}`;
}

export interface GroupStorage {
  env: WorkerEnv;
  storeOf(shard: number): ShardStore;
}

/** A group ready to commit: its replies wait for the commit to be durable. */
export interface PreparedGroup {
  /** Every write of the group, committed prepares absorbed: one write set per shard. */
  builder: BatchBuilder;
  replies: ShardReply[];
  deferred: ShardRequest[];
  /** Transactions committed, aborted or expired in this group: their locks can be released. */
  released: string[];
  intents: BatchIntent[];
  /** Outbox entries to drop, per shard: every sequence below `through`. */
  prunes: { shard: number; through: number }[];
  /** False when the group writes nothing (idempotent replays and failures only). */
  writes: boolean;
  /**
   * It commits a part of a cross-worker batch (home or not): answered only once durable, in `async`
   * too. The home part's intent must be on disk before the others commit, and the others before the
   * intent is forgotten; else a power cut could keep one part without the intent recovery needs.
   */
  twoPhase: boolean;
}

/**
 * Checks and prepares every request of a group against the heads (the heads cache, then `parent`
 * — the previous group while its commit is in flight — then disk). Nothing is written here.
 */
export function prepareGroup(requests: ShardRequest[], ctx: PrepareContext, state: GroupState, parent: BatchBuilder | undefined, now = Date.now()): PreparedGroup {
  const main = new BatchBuilder(ctx, parent);
  const intents: BatchIntent[] = [];
  let twoPhase = false;
  const prunes: { shard: number; through: number }[] = [];
  const replies: ShardReply[] = [];
  const deferred: ShardRequest[] = [];
  const released: string[] = state.expired(now);
  for (const txid of released) console.error(`shard worker: prepared batch ${txid} expired without commit or abort; its locks are released`);
  const releasedSet = new Set(released);
  const lockedKey = (key: string): boolean => {
    const holder = state.locks.get(key);
    return holder !== undefined && !releasedSet.has(holder);
  };
  const isLocked = (cmds: WriteCommand[]): boolean => cmds.some((c) => lockedKey(lockKey(c)));
  const release = (txid: string): void => {
    if (releasedSet.has(txid)) return;
    released.push(txid);
    releasedSet.add(txid);
  };

  for (const req of requests) {
    if (req.deadline !== undefined && req.deadline <= now && req.kind !== 'commit' && req.kind !== 'abort') {
      replies.push({ id: req.id, ok: false, error: new DbxError('unavailable', 'the request passed its deadline before the shard worker reached it').toWire() });
      continue;
    }
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
          const results = addItems(child, req.commands);
          if (!req.dry_run) main.absorb(child);
          replies.push({ id: req.id, ok: true, value: { kind: 'batch', results } });
          break;
        }
        case 'prepare': {
          // Refused at once, not queued: two batches each holding one worker's locks and waiting for
          // the other's would deadlock. The coordinator retries (writes.ts BATCH_LOCK_RETRY_MS).
          if (isLocked(req.commands)) throw new DbxError('unavailable', BATCH_LOCKED_MESSAGE, { retry_after_secs: 1 });
          const child = main.fork();
          const results = addItems(child, req.commands);
          const lockKeys = [...new Set(req.commands.map(lockKey))];
          for (const key of lockKeys) state.locks.set(key, req.txid);
          state.prepared.set(req.txid, { txid: req.txid, builder: child, lockKeys, expiresAt: now + state.prepareLeaseMs });
          const parts = [...child.writeSets].map(([shard, ws]) => ({ shard, ws }));
          replies.push({ id: req.id, ok: true, value: { kind: 'prepare', results, parts } });
          break;
        }
        case 'commit': {
          const tx = state.prepared.get(req.txid);
          if (!tx || releasedSet.has(req.txid)) throw new DbxError('unavailable', `batch ${req.txid} is no longer prepared (aborted or expired)`);
          // Its aggregates were locked since the prepare, so nothing in this group touched them.
          main.absorb(tx.builder);
          // The intent is written with the home worker's part, even when that part is empty (all
          // idempotent replays): whenever a batch spans more than one transaction, recovery needs it.
          if (req.intent) intents.push(req.intent);
          twoPhase = true;
          state.rememberCommitted(req.txid);
          release(req.txid);
          replies.push({ id: req.id, ok: true, value: { kind: 'done' } });
          break;
        }
        case 'abort': {
          let outcome: AbortOutcome = 'unknown';
          if (state.committed.has(req.txid)) outcome = 'committed';
          else if (state.prepared.has(req.txid)) {
            outcome = 'aborted';
            release(req.txid);
          }
          replies.push({ id: req.id, ok: true, value: { kind: 'abort', outcome } });
          break;
        }
        case 'import': {
          if (req.import_id !== undefined && state.failedImports.has(req.import_id)) {
            throw new DbxError('invalid_input', 'an earlier chunk of this import failed: this chunk was not written', { superseded: true });
          }
          if (importTouchesLocked(req.commands, lockedKey, state.locks.size > 0)) {
            deferred.push(req);
            break;
          }
          replies.push({ id: req.id, ok: true, value: prepareImport(main, req.commands, req.verify) });
          break;
        }
        case 'prune_outbox': {
          prunes.push({ shard: req.shard, through: req.through });
          replies.push({ id: req.id, ok: true, value: { kind: 'done' } });
          break;
        }
        case 'snapshot': {
          if (lockedKey(lockKey(req))) {
            deferred.push(req);
            break;
          }
          const version = main.snapshot(req.shard, req.tenant, req.aggregate_type, req.aggregate_id, req.comment ?? null);
          replies.push({ id: req.id, ok: true, value: { kind: 'snapshot', version } });
          break;
        }
      }
    } catch (err) {
      if (req.kind === 'import' && req.import_id !== undefined) state.rememberFailedImport(req.import_id);
      replies.push({ id: req.id, ok: false, error: toWireError(err) });
    }
  }
  return { builder: main, replies, deferred, released, intents, prunes, writes: main.writeSets.size > 0 || intents.length > 0 || prunes.length > 0, twoPhase };
}

/** Writes a prepared group; call inside the worker environment's write transaction. */
/**
 * The items of an atomic batch, in order; a refused item names its position so the client can
 * point at it: `details: { index, ...details }`. Schema violations are gathered from every item
 * (a person fixes them all at once): `{ index, violations }`, `index` the first refused item's and
 * each violation naming its own item's `index`. Another refusal ends the checks (one found after a
 * violation is not reported: it may only follow from the refused item). (Within a cross-worker
 * prepare the indexes are local; the coordinator maps them back.)
 */
function addItems(builder: BatchBuilder, commands: WriteCommand[]): ReturnType<BatchBuilder['add']>[] {
  const results: ReturnType<BatchBuilder['add']>[] = [];
  const violations: object[] = [];
  let first: { err: DbxError; index: number } | undefined;
  for (const [index, command] of commands.entries()) {
    try {
      results.push(builder.add(command));
    } catch (err) {
      if (!(err instanceof DbxError) || err.code === 'internal') throw err;
      if (err.code === 'validation_failed' && Array.isArray(err.details)) {
        for (const v of err.details) violations.push({ ...(v as object), index });
        first ??= { err, index };
        continue;
      }
      if (first) break;
      const details = Array.isArray(err.details) ? { violations: err.details } : typeof err.details === 'object' && err.details !== null ? err.details : {};
      throw new DbxError(err.code, err.message, { ...details, index }, err.cause !== undefined ? { cause: err.cause } : undefined);
    }
  }
  if (first) {
    const items = new Set(violations.map((v) => (v as { index: number }).index)).size;
    const more = items > 1 ? ` (and violations in ${items - 1} more item${items > 2 ? 's' : ''})` : '';
    throw new DbxError('validation_failed', `${first.err.message}${more}`, { index: first.index, violations });
  }
  return results;
}

export function applyGroup(storage: GroupStorage, group: PreparedGroup): void {
  for (const [shard, ws] of group.builder.writeSets) storage.storeOf(shard).applyWriteSet(ws);
  for (const intent of group.intents) storage.env.intents.put(intent.txid, intent);
  for (const { shard, through } of group.prunes) storage.storeOf(shard).pruneOutbox(through);
}

/** Every successful reply of a group becomes `error` (its commit failed: nothing of it is on disk). */
export function failReplies(replies: ShardReply[], error: WireError): ShardReply[] {
  return replies.map((reply) => (reply.ok ? { id: reply.id, ok: false, error } : reply));
}

export type { EventRecord, JsonObject, LoadedAggregate };
