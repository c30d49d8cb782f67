/**
 * Storage (DESIGN §5): one LMDB environment per shard worker (`WorkerEnv`), holding the logical
 * shards mapped to that worker with every key prefixed by its shard. A group commit is then one
 * transaction and one set of flushes whatever S is: measured on the first layout (one environment
 * per shard), every extra environment on one disk paid its own flushes.
 *
 * `ShardStore` is one shard's view of its worker's environment: the same reads and named databases
 * as before, keys without the shard prefix. The coordinator, the CLI's direct mode, the tests and
 * the worker all go through it; only the owning worker writes.
 *
 * Every opener passes the same options (lmdb requires it within one process). Readers never block
 * the writer; an acknowledged write is already committed, so a read after the ack sees it.
 */
import { mkdirSync } from 'node:fs';
import { open, type Database, type Key as LmdbKey, type RangeOptions, type RootDatabase } from 'lmdb';
import type { EventRecord, JsonObject, ValueCipher } from '../core/index.js';
import type { EventKey, Head, HeadKey, IdempotencyEntry, IndexKey, StoredHead, StoredSnapshot, WriteSet } from './records.js';
import { eventCodec, headCodec, idempotencyCodec, intentCodec, openEventRecord, snapshotCodec, type ValueCodec } from './sealing.js';

export interface StoreOptions {
  mapSizeMib: number;
  readOnly?: boolean;
  /**
   * Encryption at rest (sealing.ts): values written through the shard views are sealed with it and
   * read back through it. Absent: written in plaintext; reading a sealed value is `integrity_failed`.
   */
  cipher?: ValueCipher | null;
}

/** Key upper bound for a string segment: ids and names are ASCII, so this sorts after all of them. */
export const KEY_MAX = '\uffff';

/**
 * Flags for every write transaction: ABORTABLE | SYNCHRONOUS_COMMIT | NO_SYNC_FLUSH. Measured with
 * strace (lmdb 3.5.6, overlappingSync): the commit call itself writes the dirty pages, fdatasyncs
 * and writes the meta page through an O_DSYNC descriptor, on the calling thread; `env.flushed`
 * afterwards resolves at once. So a commit made with these flags is durable when it returns.
 */
export const DURABLE_TXN_FLAGS = 0x1 | 0x2 | 0x10000;

type Key = LmdbKey[];

/**
 * One shard's slice of a named database: prefixes every key with the shard and strips it from
 * range results. `scalar` databases have a single-value key (the outbox sequence, an event id, a
 * batch txid) that becomes `[shard, key]` on disk.
 */
export class ShardDb<V, K> {
  constructor(
    readonly db: Database<V, Key>,
    readonly shard: number,
    private readonly scalar = false,
    /** Stored form of the values (sealing); absent = stored as they are. */
    private readonly codec?: ValueCodec<V>,
  ) {}

  private full(key: K): Key {
    return this.scalar ? [this.shard, key as LmdbKey] : [this.shard, ...(key as unknown as LmdbKey[])];
  }

  private local(key: Key): K {
    return (this.scalar ? key[1] : key.slice(1)) as K;
  }

  get(key: K): V | undefined {
    const stored = this.db.get(this.full(key));
    return stored === undefined || !this.codec ? stored : this.codec.decode(stored);
  }

  put(key: K, value: V): Promise<boolean> {
    return this.db.put(this.full(key), (this.codec ? this.codec.encode(value) : value) as V);
  }

  remove(key: K): Promise<boolean> {
    return this.db.remove(this.full(key));
  }

  /** Keys compare as on disk; an absent bound is this shard's first or last key. */
  getRange(options: { start?: K; end?: K; reverse?: boolean; limit?: number } = {}): Iterable<{ key: K; value: V }> & { map<T>(fn: (e: { key: K; value: V }) => T): Iterable<T> } {
    const low: Key = [this.shard];
    const high: Key = [this.shard + 1];
    const range: RangeOptions = {
      start: options.start !== undefined ? this.full(options.start) : options.reverse ? high : low,
      end: options.end !== undefined ? this.full(options.end) : options.reverse ? low : high,
      ...(options.reverse ? { reverse: true } : {}),
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
    };
    const codec = this.codec;
    return this.db.getRange(range).map(({ key, value }) => ({ key: this.local(key as Key), value: codec ? codec.decode(value) : (value as V) }));
  }

  getCount(): number {
    return this.db.getCount({ start: [this.shard], end: [this.shard + 1] });
  }
}

/** A worker's environment and its named databases (keys shard-prefixed). */
export class WorkerEnv {
  readonly env: RootDatabase;
  readonly events: Database<string, Key>;
  readonly heads: Database<StoredHead, Key>;
  readonly index: Database<null, Key>;
  readonly snapshots: Database<StoredSnapshot, Key>;
  readonly eventIds: Database<EventKey, Key>;
  readonly idempotency: Database<IdempotencyEntry, Key>;
  readonly outbox: Database<EventKey, Key>;
  /** Cross-worker batch intents, keyed by txid (not by shard: a batch spans shards), sealed whole. */
  readonly intents: SealedDb<unknown, string>;
  readonly cipher: ValueCipher | null;
  private readonly shardViews = new Map<number, ShardStore>();

  constructor(
    readonly path: string,
    options: StoreOptions,
  ) {
    if (!options.readOnly) mkdirSync(path, { recursive: true, mode: 0o700 });
    this.env = open({
      path,
      maxDbs: 16,
      mapSize: options.mapSizeMib * 1024 * 1024,
      readOnly: options.readOnly ?? false,
      overlappingSync: true,
      // Off: LMDB zeroes the unused bytes of every page it writes, instead of leaving whatever the
      // heap held there (possibly plaintext of another value) in the file.
      noMemInit: false,
    });
    this.cipher = options.cipher ?? null;
    this.events = this.env.openDB<string, Key>({ name: 'events', encoding: 'string' });
    this.heads = this.env.openDB<StoredHead, Key>({ name: 'heads' });
    this.index = this.env.openDB<null, Key>({ name: 'aggregate_index' });
    this.snapshots = this.env.openDB<StoredSnapshot, Key>({ name: 'snapshots' });
    this.eventIds = this.env.openDB<EventKey, Key>({ name: 'event_ids', encoding: 'msgpack' });
    this.idempotency = this.env.openDB<IdempotencyEntry, Key>({ name: 'idempotency' });
    this.outbox = this.env.openDB<EventKey, Key>({ name: 'outbox' });
    this.intents = new SealedDb(this.env.openDB<unknown, string>({ name: 'batch_intents' }), intentCodec(this.cipher));
  }

  shard(index: number): ShardStore {
    let view = this.shardViews.get(index);
    if (!view) {
      view = new ShardStore(this, index);
      this.shardViews.set(index, view);
    }
    return view;
  }

  /** Commits `write` in one durable transaction (see DURABLE_TXN_FLAGS). */
  async commitDurably(write: () => void): Promise<void> {
    this.env.transactionSync(write, DURABLE_TXN_FLAGS);
    await this.env.flushed;
  }

  /** After a failed commit: the outbox sequences handed out were never written, so re-read. */
  forgetUncommittedSequences(): void {
    for (const view of this.shardViews.values()) view.forgetUncommittedSequences();
  }

  countAggregates(): number {
    return this.heads.getCount();
  }

  close(): Promise<void> {
    return this.env.close();
  }
}

/** A database without shard prefix whose values pass through a codec (the batch intents). */
export class SealedDb<V, K extends LmdbKey> {
  constructor(
    readonly db: Database<unknown, K>,
    private readonly codec: ValueCodec<V>,
  ) {}

  get(key: K): V | undefined {
    const stored = this.db.get(key);
    return stored === undefined ? undefined : this.codec.decode(stored);
  }

  put(key: K, value: V): Promise<boolean> {
    return this.db.put(key, this.codec.encode(value));
  }

  remove(key: K): Promise<boolean> {
    return this.db.remove(key);
  }

  *getRange(options: RangeOptions = {}): Iterable<{ key: K; value: V }> {
    for (const { key, value } of this.db.getRange(options)) yield { key: key as K, value: this.codec.decode(value) };
  }
}

export class ShardStore {
  readonly env: RootDatabase;
  /** Event texts as the API returns them (sealed on put, opened on read). */
  readonly events: ShardDb<string, EventKey>;
  /** The same database, stored form: for reads that parse the text themselves or need no key. */
  readonly storedEvents: ShardDb<string, EventKey>;
  /**
   * Head and current state in one record: an append rewrites both anyway, and one B-tree leaf per
   * aggregate instead of two means fewer dirty pages per commit, i.e. a shorter fdatasync
   * (DESIGN §5).
   */
  readonly heads: ShardDb<StoredHead, HeadKey>;
  /** Heads, stored form (state still sealed): for lookups of version and flags only. */
  readonly storedHeads: ShardDb<Head, HeadKey>;
  readonly index: ShardDb<null, IndexKey>;
  readonly snapshots: ShardDb<StoredSnapshot, EventKey>;
  readonly eventIds: ShardDb<EventKey, string>;
  readonly idempotency: ShardDb<IdempotencyEntry, [string, string, string, string]>;
  readonly outbox: ShardDb<EventKey, number>;
  readonly cipher: ValueCipher | null;
  private outboxNext = -1;

  constructor(
    readonly worker: WorkerEnv,
    readonly shard: number,
  ) {
    this.env = worker.env;
    this.cipher = worker.cipher;
    this.events = new ShardDb(worker.events, shard, false, eventCodec(worker.cipher));
    this.storedEvents = new ShardDb(worker.events, shard);
    this.heads = new ShardDb(worker.heads, shard, false, headCodec(worker.cipher));
    this.storedHeads = new ShardDb(worker.heads as unknown as Database<Head, Key>, shard);
    this.index = new ShardDb(worker.index, shard);
    this.snapshots = new ShardDb(worker.snapshots, shard, false, snapshotCodec(worker.cipher));
    this.eventIds = new ShardDb(worker.eventIds, shard, true);
    this.idempotency = new ShardDb(worker.idempotency, shard, false, idempotencyCodec(worker.cipher));
    this.outbox = new ShardDb(worker.outbox, shard, true);
  }

  getHead(tenant: string, type: string, id: string): StoredHead | undefined {
    return this.heads.get([tenant, type, id]);
  }

  /** The head without its state: no decryption (version, archived flag, frontier, root). */
  getHeadMeta(tenant: string, type: string, id: string): Head | undefined {
    return this.storedHeads.get([tenant, type, id]);
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

  /** One event as the API returns it (one parse, not decode-to-text then parse). */
  getEvent(key: EventKey): EventRecord | undefined {
    const stored = this.storedEvents.get(key);
    return stored === undefined ? undefined : this.openEvent(stored);
  }

  /** A stored event text (from `storedEvents`) as the API's record. */
  openEvent(stored: string): EventRecord {
    return openEventRecord(this.cipher, stored);
  }

  /** Events of one aggregate with version > afterVersion, in version order, as records. */
  *eventRange(tenant: string, type: string, id: string, afterVersion: number, limit?: number): Iterable<EventRecord> {
    for (const stored of this.storedEventRange(tenant, type, id, afterVersion, limit)) yield this.openEvent(stored);
  }

  /** Stored event texts of one aggregate: hash, merkle_root, version readable without the key. */
  *storedEventRange(tenant: string, type: string, id: string, afterVersion: number, limit?: number): Iterable<string> {
    const range = this.storedEvents.getRange({
      start: [tenant, type, id, afterVersion + 1],
      end: [tenant, type, id, Number.MAX_SAFE_INTEGER],
      ...(limit !== undefined ? { limit } : {}),
    });
    for (const { value } of range) yield value;
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

  /** Commits `write` in one durable transaction of the worker's environment. */
  commitDurably(write: () => void): Promise<void> {
    return this.worker.commitDurably(write);
  }

  /** Writes a prepared write set; call only inside `env.transactionSync`. */
  applyWriteSet(ws: WriteSet): void {
    if (this.outboxNext < 0) this.outboxNext = this.lastOutboxSequence() + 1;
    for (const e of ws.events) {
      if (e.sealed) this.storedEvents.put(e.key, e.json);
      else this.events.put(e.key, e.json);
      this.eventIds.put(e.event_id, e.key);
      this.outbox.put(this.outboxNext++, e.key);
    }
    for (const h of ws.heads) this.heads.put(h.key, { ...h.head, state: h.state });
    // In command order: an archive and a restore of one aggregate in the same group must leave the
    // index entry that matches the last of them.
    for (const [op, key] of ws.index) {
      if (op === 'del') this.index.remove(key);
      else this.index.put(key, null);
    }
    for (const i of ws.idempotency) this.idempotency.put(i.key, i.entry);
    for (const s of ws.snapshots) this.snapshots.put(s.key, s.snapshot);
  }

  /**
   * Drops outbox entries below `through` (the plugin queue holds their jobs). The entry at
   * `through` stays: the next sequence is read from the last entry, and must keep counting up.
   */
  pruneOutbox(through: number): void {
    const keys = [...this.outbox.getRange({ end: through })].map((e) => e.key);
    for (const key of keys) this.outbox.remove(key);
  }

  /** The last outbox sequence written (in this thread's transaction, or on disk). */
  outboxHigh(): number {
    return this.outboxNext > 0 ? this.outboxNext - 1 : this.lastOutboxSequence();
  }

  /** After a failed commit: the sequence numbers handed out were never written, so re-read. */
  forgetUncommittedSequences(): void {
    this.outboxNext = -1;
  }

  private lastOutboxSequence(): number {
    for (const { key } of this.outbox.getRange({ reverse: true, limit: 1 })) return key;
    return 0;
  }

  /** Aggregates on this shard (for metrics and status). */
  countAggregates(): number {
    return this.heads.getCount();
  }
}
