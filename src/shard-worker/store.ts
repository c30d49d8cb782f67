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
import { mkdirDurably } from '../core/durable-file.js';
import { open, type Database, type Key as LmdbKey, type RangeOptions, type RootDatabase } from 'lmdb';
import { ARCHIVE_EVENT, RESTORE_EVENT, type EventRecord, type JsonObject, type ValueCipher } from '../core/index.js';
import type { EventKey, Head, HeadKey, IdempotencyEntry, IndexKey, StoredHead, StoredSnapshot, StreamKey, StreamValue, WriteSet } from './records.js';
import { INDEX_READY, SKEW, streamFloorKey, type EventIndexKey, type EventIndexValue, type QueryMetaKey } from './event-index.js';
import { ShardDb } from './shard-db.js';
import { StreamSeqs } from './stream-seqs.js';
import { EventIndexWriter } from './event-index-writer.js';
import { TENANT_KEYED_DBS, keyHasPrefix, type IndexedEvent, type KeyPrefixRange, type TenantKeyedDb } from './tenant-keyed-dbs.js';
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

export { ShardDb, TENANT_KEYED_DBS, keyHasPrefix, type IndexedEvent, type KeyPrefixRange, type TenantKeyedDb };

type Key = LmdbKey[];
/** An idempotency entry's key: the aggregate and the key as stored (see ShardStore.idempotencyEntry). */
export type IdempotencyDbKey = [tenant: string, type: string, id: string, key: string];

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
  /** The global stream: `[shard, tenant, seq]` → `[type, id, version, event_id]` (see ShardStore.stream). */
  readonly stream: Database<StreamValue, Key>;
  /** Filter indexes (event-index.ts): `[shard, tenant, event_type, created_ms, id_high, id_low]` → event key. */
  readonly eventIndex: Database<EventIndexValue, Key>;
  readonly queryMeta: Database<number, Key>;
  /**
   * Set by the shard worker: hears the stream marks of every `commitDurably` once it is durable
   * (group commits report theirs themselves), so the coordinator learns of control-path writes too.
   */
  onStreamDurable: ((marks: [shard: number, tenant: string, seq: number][]) => void) | undefined;
  /** Cross-worker batch intents, keyed by txid (not by shard: a batch spans shards), sealed whole. */
  readonly intents: SealedDb<unknown, string>;
  readonly cipher: ValueCipher | null;
  private readonly shardViews = new Map<number, ShardStore>();

  constructor(
    readonly path: string,
    options: StoreOptions,
  ) {
    if (!options.readOnly) mkdirDurably(path);
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
    this.stream = this.env.openDB<StreamValue, Key>({ name: 'stream' });
    this.eventIndex = this.env.openDB<EventIndexValue, Key>({ name: 'event_index' });
    this.queryMeta = this.env.openDB<number, Key>({ name: 'query_meta' });
    this.intents = new SealedDb(this.env.openDB<unknown, string>({ name: 'batch_intents' }), intentCodec(this.cipher));
  }

  private readonly rawDbs = new Map<string, Database<Buffer, Key>>();

  /**
   * A named database read and written as stored bytes (no codec, no msgpack): what tenant moves
   * copy. The handle is opened once per name (same dbi, binary values).
   */
  rawDb(name: string): Database<Buffer, Key> {
    let db = this.rawDbs.get(name);
    if (!db) {
      db = this.env.openDB<Buffer, Key>({ name, encoding: 'binary' });
      this.rawDbs.set(name, db);
    }
    return db;
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
    let marks: [number, string, number][] = [];
    this.env.transactionSync(() => {
      write();
      marks = this.takeStreamMarks();
    }, DURABLE_TXN_FLAGS);
    await this.env.flushed;
    if (marks.length > 0) this.onStreamDurable?.(marks);
  }

  /** Per shard and tenant written since the last call, its last stream seq (call inside the write transaction). */
  takeStreamMarks(): [shard: number, tenant: string, seq: number][] {
    const out: [number, string, number][] = [];
    for (const view of this.shardViews.values()) for (const [tenant, seq] of view.takeStreamMarks()) out.push([view.shard, tenant, seq]);
    return out;
  }

  /** After a failed commit: the outbox sequences handed out were never written, so re-read. */
  forgetUncommittedSequences(): void {
    for (const view of this.shardViews.values()) view.forgetUncommittedSequences();
  }

  /** Heads of every shard here: LMDB's own entry count (mdb_stat), not a walk of the keys. */
  countAggregates(): number {
    return (this.heads.getStats() as { entryCount: number }).entryCount;
  }

  /** Events of every shard here, likewise. */
  countEvents(): number {
    return (this.events.getStats() as { entryCount: number }).entryCount;
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
  /** Heads with their states opened but not cached: for full scans (exports), see headCodec. */
  readonly scannedHeads: ShardDb<StoredHead, HeadKey>;
  readonly index: ShardDb<null, IndexKey>;
  readonly snapshots: ShardDb<StoredSnapshot, EventKey>;
  readonly eventIds: ShardDb<EventKey, string>;
  /** Keyed by IdempotencyDbKey; read through idempotencyEntry (the key is stored tagged). */
  readonly idempotency: ShardDb<IdempotencyEntry, IdempotencyDbKey>;
  readonly outbox: ShardDb<EventKey, number>;
  /**
   * The global ordered stream: per tenant, seq 1, 2, 3… in commit order (assigned inside the write
   * transaction, so gapless). Positions (coordinator/stream-position.ts) are vectors of these.
   */
  readonly stream: ShardDb<StreamValue, StreamKey>;
  /** Events by (event_type, created_at, event_id) for filtered lists (event-index.ts). */
  readonly eventIndex: ShardDb<EventIndexValue, EventIndexKey>;
  readonly queryMeta: ShardDb<number, QueryMetaKey>;
  /** Writer side only (event-index-writer.ts). */
  private readonly indexWriter: EventIndexWriter;
  /** Reader side: once the index is complete it stays complete. */
  private indexReady = false;
  readonly cipher: ValueCipher | null;
  private outboxNext = -1;
  /** Writer side only (stream-seqs.ts). */
  private readonly streamSeqs = new StreamSeqs((tenant) => this.lastStreamSeq(tenant));

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
    this.scannedHeads = new ShardDb(worker.heads, shard, false, headCodec(worker.cipher, false));
    this.index = new ShardDb(worker.index, shard);
    this.snapshots = new ShardDb(worker.snapshots, shard, false, snapshotCodec(worker.cipher));
    this.eventIds = new ShardDb(worker.eventIds, shard, true);
    this.idempotency = new ShardDb(worker.idempotency, shard, false, idempotencyCodec(worker.cipher));
    this.outbox = new ShardDb(worker.outbox, shard, true);
    this.stream = new ShardDb(worker.stream, shard);
    this.eventIndex = new ShardDb(worker.eventIndex, shard);
    this.queryMeta = new ShardDb(worker.queryMeta, shard);
    this.indexWriter = new EventIndexWriter(this.eventIndex, this.queryMeta, () => this.storedEvents.getRange());
  }

  /**
   * The entry of an idempotency key of an aggregate. With a DEK the key is stored as a keyed tag,
   * not as given (a key may carry data): the active key's tag, then the retired keys' (written
   * before a rotation), then the key as given (written before a DEK existed).
   */
  idempotencyEntry(tenant: string, type: string, id: string, key: string): IdempotencyEntry | undefined {
    for (const stored of this.idempotencyKeyForms([tenant, type, id, key])) {
      const entry = this.idempotency.get(stored);
      if (entry !== undefined) return entry;
    }
    return undefined;
  }

  /** The stored forms of an idempotency entry's key, the one new entries are written under first. */
  idempotencyKeyForms(key: IdempotencyDbKey): IdempotencyDbKey[] {
    if (!this.cipher) return [key];
    const [tenant, type, id, given] = key;
    return [...this.cipher.lookupTags(given).map((tag): IdempotencyDbKey => [tenant, type, id, tag]), key];
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

  /**
   * The aggregate's archived flag as of `version`: its last archive or restore event at or before
   * it, walking back (the stored text keeps event_type readable, sealed or not); false if none.
   */
  archivedAt(tenant: string, type: string, id: string, version: number): boolean {
    if (version <= 0) return false;
    for (const { value } of this.storedEvents.getRange({ start: [tenant, type, id, version], end: [tenant, type, id, 0], reverse: true })) {
      const eventType = (JSON.parse(value) as { event_type?: unknown }).event_type;
      if (eventType === ARCHIVE_EVENT) return true;
      if (eventType === RESTORE_EVENT) return false;
    }
    return false;
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

  /** The aggregate's snapshots after version `after`, at most `limit` of them, in version order. */
  listSnapshots(tenant: string, type: string, id: string, after = 0, limit = Number.MAX_SAFE_INTEGER): { version: number; snapshot: StoredSnapshot }[] {
    const out: { version: number; snapshot: StoredSnapshot }[] = [];
    for (const { key, value } of this.snapshots.getRange({ start: [tenant, type, id, after + 1], end: [tenant, type, id, Number.MAX_SAFE_INTEGER], limit })) {
      out.push({ version: key[3], snapshot: value });
    }
    return out;
  }

  /** Commits `write` in one durable transaction of the worker's environment. */
  commitDurably(write: () => void): Promise<void> {
    return this.worker.commitDurably(write);
  }

  /**
   * Whether `event_index` holds every event of this shard: written with each event since the
   * shard's first write (which leaves a marker); a shard written before the index existed is
   * indexed whole at its next write, and until then its lists scan (explain says so).
   */
  eventIndexReady(): boolean {
    if (!this.indexReady) {
      let empty = true;
      for (const _ of this.storedEvents.getRange({ limit: 1 })) empty = false;
      this.indexReady = empty || this.queryMeta.get(INDEX_READY) !== undefined;
    }
    return this.indexReady;
  }

  /** Entries of one event type with created_ms in [fromMs, toMs], in (time, id) order or its reverse. */
  eventIndexRange(tenant: string, eventType: string, fromMs: number, toMs: number, reverse: boolean): Iterable<{ key: EventIndexKey; value: EventIndexValue }> {
    const low = [tenant, eventType, fromMs] as unknown as EventIndexKey;
    // Infinity sorts after every id half: the whole last millisecond is inside.
    const high = [tenant, eventType, toMs, Infinity] as unknown as EventIndexKey;
    return this.eventIndex.getRange(reverse ? { start: high, end: low, reverse: true } : { start: low, end: high });
  }

  /** The event types a tenant has on this shard, in order: one seek each (a skip scan). */
  *eventTypes(tenant: string): Generator<string> {
    let from = '';
    for (;;) {
      let next: string | undefined;
      const range = { start: [tenant, from] as unknown as EventIndexKey, end: [tenant, KEY_MAX] as unknown as EventIndexKey, limit: 1 };
      for (const { key } of this.eventIndex.getRange(range)) next = key[1];
      if (next === undefined) return;
      yield next;
      // Event types are [a-z0-9_]: U+0001 sorts after the type itself and before any longer type.
      from = `${next}\u0001`;
    }
  }

  /** The largest |created_at − time in the id| of the tenant's events here (0 unless imports brought one). */
  timeSkewMs(tenant: string): number {
    return this.queryMeta.get([tenant, SKEW]) ?? 0;
  }

  /** Writes a prepared write set; call only inside `env.transactionSync`. */
  applyWriteSet(ws: WriteSet): void {
    if (this.outboxNext < 0) this.outboxNext = this.lastOutboxSequence() + 1;
    if (ws.events.length > 0) this.indexWriter.ensureMarker();
    for (const e of ws.events) {
      if (e.sealed) this.storedEvents.put(e.key, e.json);
      else this.events.put(e.key, e.json);
      this.eventIds.put(e.event_id, e.key);
      if (e.event_type !== undefined && e.created_ms !== undefined) this.indexWriter.index(e.key, e.event_type, e.created_ms, e.event_id);
      else this.indexWriter.indexStored(e.key, e.json);
      this.outbox.put(this.outboxNext++, e.key);
      if (!ws.stream) this.stream.put([e.key[0], this.streamSeqs.take(e.key[0])], [e.key[1], e.key[2], e.key[3], e.event_id]);
    }
    for (const entry of ws.stream ?? []) {
      this.stream.put([entry.tenant, entry.seq], entry.value);
      this.streamSeqs.raise(entry.tenant, entry.seq);
    }
    for (const h of lastHeadPerAggregate(ws.heads)) this.heads.put(h.key, { ...h.head, state: h.state });
    // In command order: an archive and a restore of one aggregate in the same group must leave the
    // index entry that matches the last of them.
    for (const [op, key] of ws.index) {
      if (op === 'del') this.index.remove(key);
      else this.index.put(key, null);
    }
    for (const i of ws.idempotency) this.idempotency.put(this.idempotencyKeyForms(i.key)[0] as IdempotencyDbKey, i.entry);
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
    this.indexWriter.forgetUncommitted();
    this.streamSeqs.forgetUncommitted();
  }

  /**
   * Writer side, after a tenant's range was copied here or deleted from here (tenant-range.ts):
   * the stream seqs cached for it describe the old range, so the next write re-reads the disk.
   */
  forgetTenant(tenant: string): void {
    this.indexWriter.forgetTenant(tenant);
    this.streamSeqs.forgetTenant(tenant);
  }

  /** Tenants written since the last call, with their last seq (inside the write transaction). */
  takeStreamMarks(): [tenant: string, seq: number][] {
    return this.streamSeqs.takeMarks();
  }

  /** Writer side: `seq` of `tenant` is on disk for good. */
  markStreamDurable(tenant: string, seq: number): void {
    this.streamSeqs.markDurable(tenant, seq);
  }

  /** Writer side: the last durable seq of `tenant` (stream-seqs.ts). */
  durableStreamSeq(tenant: string): number {
    return this.streamSeqs.durableSeq(tenant);
  }

  /** The last stream seq of `tenant` in this shard (0: none), or its floor after a deleted range (streamFloorKey). */
  lastStreamSeq(tenant: string): number {
    const floor = this.queryMeta.get(streamFloorKey(tenant)) ?? 0;
    for (const { key } of this.stream.getRange({ start: [tenant, Number.MAX_SAFE_INTEGER], end: [tenant, 0], reverse: true, limit: 1 })) return Math.max(key[1], floor);
    return floor;
  }

  /** Stream entries of `tenant` with afterSeq < seq <= throughSeq, in seq order. */
  *streamRange(tenant: string, afterSeq: number, throughSeq = Number.MAX_SAFE_INTEGER, limit?: number): Iterable<{ seq: number; value: StreamValue }> {
    if (throughSeq <= afterSeq) return;
    const range = this.stream.getRange({ start: [tenant, afterSeq + 1], end: [tenant, throughSeq + 1], ...(limit !== undefined ? { limit } : {}) });
    for (const { key, value } of range) yield { seq: key[1], value };
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

/**
 * The last head of each aggregate in a write set, in order of last appearance. An aggregate
 * written several times in one group (an import of its history, repeated appends) would otherwise
 * pay a seal and a put per version for a record that the same transaction overwrites.
 */
function lastHeadPerAggregate(heads: WriteSet['heads']): WriteSet['heads'] {
  if (heads.length < 2) return heads;
  const last = new Map<string, WriteSet['heads'][number]>();
  for (const h of heads) {
    const key = `${h.key[0]}\u0000${h.key[1]}\u0000${h.key[2]}`;
    // Delete first: the Map then keeps the order of each key's last write.
    last.delete(key);
    last.set(key, h);
  }
  return last.size === heads.length ? heads : [...last.values()];
}
