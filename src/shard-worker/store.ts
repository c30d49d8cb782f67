/**
 * One shard's LMDB environment: the named databases of DESIGN §5, the reads every part shares
 * (coordinator, CLI direct mode, the worker itself) and the one write path (`applyWriteSet`), which
 * only the owning shard worker calls.
 *
 * Every opener passes the same options (lmdb requires it within one process). Readers never block
 * the writer; an acknowledged write is already committed, so a read after the ack sees it.
 */
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { JsonObject } from '../core/index.js';
import type { EventKey, Head, HeadKey, IdempotencyEntry, IndexKey, StoredHead, StoredSnapshot, WriteSet } from './records.js';

export interface StoreOptions {
  mapSizeMib: number;
  readOnly?: boolean;
}

/** Key upper bound for a string segment: ids and names are ASCII, so this sorts after all of them. */
export const KEY_MAX = '\uffff';

/**
 * Flags for every write transaction: ABORTABLE | SYNCHRONOUS_COMMIT | NO_SYNC_FLUSH. With
 * overlappingSync this is LMDB's crash-consistent mode: the commit becomes visible, then LMDB
 * flushes and marks the meta page flushed; awaiting `env.flushed` afterwards is what makes it
 * durable. (Plain flags skip the flush and still mark the commit as flushed: unsafe on power loss.)
 */
export const DURABLE_TXN_FLAGS = 0x1 | 0x2 | 0x10000;

export class ShardStore {
  readonly env: RootDatabase;
  readonly events: Database<string, EventKey>;
  /**
   * Head and current state in one record: an append rewrites both anyway, and one B-tree leaf per
   * aggregate instead of two means fewer dirty pages per commit, i.e. a shorter fdatasync
   * (DESIGN §5 lists `state` as its own database; measured, one record is cheaper).
   */
  readonly heads: Database<StoredHead, HeadKey>;
  readonly index: Database<null, IndexKey>;
  readonly snapshots: Database<StoredSnapshot, EventKey>;
  readonly eventIds: Database<EventKey, string>;
  readonly idempotency: Database<IdempotencyEntry, [string, string, string, string]>;
  readonly outbox: Database<EventKey, number>;
  readonly intents: Database<unknown, string>;
  private outboxNext = -1;

  constructor(readonly path: string, options: StoreOptions) {
    if (!options.readOnly) mkdirSync(path, { recursive: true });
    this.env = open({
      path,
      maxDbs: 16,
      mapSize: options.mapSizeMib * 1024 * 1024,
      readOnly: options.readOnly ?? false,
      // Commits become visible at once and are flushed by LMDB's sync thread; callers await
      // `flushed` before acknowledging, so group commit and durability both hold.
      overlappingSync: true,
      noMemInit: true,
    });
    this.events = this.env.openDB({ name: 'events', encoding: 'string' });
    this.heads = this.env.openDB({ name: 'heads' });
    this.index = this.env.openDB({ name: 'aggregate_index' });
    this.snapshots = this.env.openDB({ name: 'snapshots' });
    this.eventIds = this.env.openDB({ name: 'event_ids', encoding: 'msgpack' });
    this.idempotency = this.env.openDB({ name: 'idempotency' });
    this.outbox = this.env.openDB({ name: 'outbox' });
    this.intents = this.env.openDB({ name: 'batch_intents' });
  }

  getHead(tenant: string, type: string, id: string): StoredHead | undefined {
    return this.heads.get([tenant, type, id]);
  }

  getState(tenant: string, type: string, id: string): JsonObject | undefined {
    return this.heads.get([tenant, type, id])?.state;
  }

  /** Head and state with one read (what an append and a get both need). */
  getHeadAndState(tenant: string, type: string, id: string): { head: Head; state: JsonObject } | undefined {
    const stored = this.heads.get([tenant, type, id]);
    if (!stored) return undefined;
    const { state, ...head } = stored;
    return { head, state };
  }

  getEventJson(key: EventKey): string | undefined {
    return this.events.get(key);
  }

  /** Events of one aggregate with version > afterVersion, in version order. */
  *eventJsonRange(tenant: string, type: string, id: string, afterVersion: number, limit?: number): Iterable<string> {
    const range = this.events.getRange({
      start: [tenant, type, id, afterVersion + 1],
      end: [tenant, type, id, Number.MAX_SAFE_INTEGER],
      ...(limit !== undefined ? { limit } : {}),
    });
    for (const { value } of range) yield value;
  }

  /** Aggregate keys in (type, id) order for one status, strictly after `after` if given. */
  *indexRange(tenant: string, status: 'a' | 'r', type: string | undefined, after?: [string, string]): Iterable<IndexKey> {
    const start: IndexKey | [string, 'a' | 'r', string] = after
      ? [tenant, status, after[0], after[1]]
      : type !== undefined
        ? [tenant, status, type]
        : [tenant, status, ''];
    const end = type !== undefined ? [tenant, status, type, KEY_MAX] : [tenant, status, KEY_MAX];
    for (const { key } of this.index.getRange({ start: start as IndexKey, end: end as unknown as IndexKey })) {
      if (after && key[2] === after[0] && key[3] === after[1]) continue;
      yield key;
    }
  }

  /** Nearest snapshot at or below `version`. */
  nearestSnapshot(tenant: string, type: string, id: string, version: number): { version: number; snapshot: StoredSnapshot } | undefined {
    for (const { key, value } of this.snapshots.getRange({
      start: [tenant, type, id, version],
      end: [tenant, type, id, 0],
      reverse: true,
      limit: 1,
    })) {
      return { version: key[3], snapshot: value };
    }
    return undefined;
  }

  listSnapshots(tenant: string, type: string, id: string): { version: number; snapshot: StoredSnapshot }[] {
    const out: { version: number; snapshot: StoredSnapshot }[] = [];
    for (const { key, value } of this.snapshots.getRange({ start: [tenant, type, id, 0], end: [tenant, type, id, Number.MAX_SAFE_INTEGER] })) {
      out.push({ version: key[3], snapshot: value });
    }
    return out;
  }

  /** Commits `write` in one transaction and resolves once it is on disk. */
  async commitDurably(write: () => void): Promise<void> {
    this.env.transactionSync(write, DURABLE_TXN_FLAGS);
    await this.env.flushed;
  }

  /** Writes a prepared write set; call only inside `env.transactionSync`. */
  applyWriteSet(ws: WriteSet): void {
    if (this.outboxNext < 0) this.outboxNext = this.lastOutboxSequence() + 1;
    for (const e of ws.events) {
      this.events.put(e.key, e.json);
      this.eventIds.put(e.event_id, e.key);
      this.outbox.put(this.outboxNext++, e.key);
    }
    for (const h of ws.heads) this.heads.put(h.key, { ...h.head, state: h.state });
    for (const key of ws.index_del) this.index.remove(key);
    for (const key of ws.index_put) this.index.put(key, null);
    for (const i of ws.idempotency) this.idempotency.put(i.key, i.entry);
    for (const s of ws.snapshots) this.snapshots.put(s.key, s.snapshot);
  }

  /** After a failed commit: the sequence numbers handed out were never written, so re-read. */
  forgetUncommittedSequences(): void {
    this.outboxNext = -1;
  }

  private lastOutboxSequence(): number {
    for (const { key } of this.outbox.getRange({ reverse: true, limit: 1 })) return key;
    return 0;
  }

  /** Aggregates per tenant on this shard (for metrics and status). */
  countAggregates(): number {
    return this.heads.getCount();
  }

  close(): Promise<void> {
    return this.env.close();
  }
}
