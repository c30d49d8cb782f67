/**
 * Copying one tenant's key ranges from a source shard to a target shard (the data half of a live
 * move, tenant-move.ts). Reads run here in the coordinator from LMDB read transactions (they never
 * block either shard's writer); writes go to the target's worker as bounded chunks, each one
 * durable transaction there (`tenantWrite`), so neither writer is held for long.
 *
 * Two ways to copy, both over stored bytes of every db in TENANT_KEYED_DBS:
 * - `copyRange`: the bulk copy, one db's whole tenant range in key order, resumable after any key.
 * - `catchUp`: what changed on the source since it was copied (writes go on there during a move).
 *   Every write rewrites its aggregate's head, so comparing the heads' bytes (one point lookup per
 *   aggregate on the target) names the aggregates that changed; only their ranges are compared
 *   again (events and snapshots from the copied head's version on: what is below is immutable).
 *   Append-only dbs (the stream) copy what lies past the target's last key; a db with neither
 *   shape is compared whole. Comparisons are two passes of point lookups (source → target puts,
 *   target → source removals), so memory stays O(one chunk) whatever the tenant's size.
 *
 * A catch-up run while the tenant's writes are paused is exact: afterwards both ranges hold the
 * same bytes (`copyMismatch` checks heads and append-only ends before a flip, `countsCovered` the
 * entry counts, a piece at a time, before the source range is deleted).
 */
import type { Key as LmdbKey } from 'lmdb';
import {
  TENANT_KEYED_DBS,
  countTenantRangeYielding,
  lastKeyOf,
  scanPrefix,
  type IndexedEvent,
  type KeyPrefixRange,
  type RangeEntry,
  type RangeWriteResult,
  type ShardStore,
  type WorkerEnv,
} from '../shard-worker/index.js';

type Key = LmdbKey[];

/** One shard as the copy sees it: its number, its worker environment (read side) and its store view. */
export interface CopySide {
  shard: number;
  env: WorkerEnv;
  store: ShardStore;
}

export interface ChunkBounds {
  /** Entries per target transaction. */
  entries: number;
  /** Stored bytes per target transaction (one entry may exceed it alone). */
  bytes: number;
}

/** Gathers entries for the target and writes them a bounded chunk at a time. */
export class ChunkWriter {
  private pending: RangeEntry[] = [];
  private bytes = 0;
  written = 0;
  removed = 0;
  chunks = 0;

  constructor(
    private readonly target: CopySide,
    private readonly bounds: ChunkBounds,
    private readonly write: (entries: RangeEntry[]) => Promise<RangeWriteResult>,
    /** Runs after each chunk is durable on the target (progress, fault hooks). */
    private readonly afterChunk: () => Promise<void> = async () => {},
  ) {}

  async add(entry: RangeEntry): Promise<void> {
    this.pending.push(entry);
    this.bytes += entry.value?.byteLength ?? 0;
    if (this.pending.length >= this.bounds.entries || this.bytes >= this.bounds.bytes) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const entries = this.pending;
    this.pending = [];
    this.bytes = 0;
    const result = await this.write(entries);
    this.written += result.written;
    this.removed += result.removed;
    this.chunks++;
    // The target's worker committed it: this thread's snapshot must see it before comparing again.
    this.target.env.env.resetReadTxn();
    await this.afterChunk();
  }
}

/** Reads a page of a range, at most `bounds` entries and about `bounds.bytes` bytes. */
function page(side: CopySide, db: string, range: KeyPrefixRange, bounds: ChunkBounds, after: Key | undefined): { key: Key; value: Buffer }[] {
  const out = scanPrefix(side.env, db, side.shard, range, bounds.entries, after);
  let bytes = 0;
  for (let i = 0; i < out.length; i++) {
    bytes += (out[i] as { value: Buffer }).value.byteLength;
    if (bytes >= bounds.bytes) return out.slice(0, i + 1);
  }
  return out;
}

/**
 * Bulk copy of one db's range of `tenant`, in key order, after `after` (resumption). `onPage` hears
 * the last key of every page handed to the writer (the caller persists it as progress).
 */
export async function copyRange(
  source: CopySide,
  tenant: string,
  db: string,
  after: Key | undefined,
  writer: ChunkWriter,
  bounds: ChunkBounds,
  onPage: (last: Key) => Promise<void>,
): Promise<number> {
  let copied = 0;
  let cursor = after;
  for (;;) {
    const entries = page(source, db, { prefix: [tenant] }, bounds, cursor);
    if (entries.length === 0) break;
    for (const e of entries) await writer.add({ db, key: e.key, value: e.value });
    await writer.flush();
    copied += entries.length;
    cursor = (entries[entries.length - 1] as { key: Key }).key;
    await onPage(cursor);
  }
  return copied;
}

/** Makes `target`'s entries of one range equal `source`'s; answers how many entries differed. */
async function syncRange(source: CopySide, target: CopySide, db: string, range: KeyPrefixRange, writer: ChunkWriter, bounds: ChunkBounds): Promise<number> {
  let differing = 0;
  const there = target.env.rawDb(db);
  const here = source.env.rawDb(db);
  for (let after: Key | undefined; ; ) {
    const entries = page(source, db, range, bounds, after);
    if (entries.length === 0) break;
    for (const e of entries) {
      const current = there.get([target.shard, ...e.key]);
      if (current !== undefined && Buffer.compare(current, e.value) === 0) continue;
      differing++;
      await writer.add({ db, key: e.key, value: e.value });
    }
    after = (entries[entries.length - 1] as { key: Key }).key;
  }
  for (let after: Key | undefined; ; ) {
    const entries = page(target, db, range, bounds, after);
    if (entries.length === 0) break;
    for (const e of entries) {
      if (here.get([source.shard, ...e.key]) !== undefined) continue;
      differing++;
      await writer.add({ db, key: e.key, value: null });
    }
    after = (entries[entries.length - 1] as { key: Key }).key;
  }
  return differing;
}

export interface ChangedAggregate {
  type: string;
  id: string;
  /** The version of the target's copy of the head (0: none): every event up to it is on the target. */
  fromVersion: number;
  /** The source's head as read (stored bytes), or null when the source has none. */
  head: Buffer | null;
  /** Its version (0: none): this pass copies entries up to it, the next pass what comes after. */
  version: number;
}

/**
 * Aggregates whose head bytes differ between the two shards (or exist on one side only), with the
 * source head as read. Synchronous from start to end, so every read shares one snapshot: a head's
 * bytes and its decoded version describe the same commit.
 */
export function changedAggregates(source: CopySide, target: CopySide, tenant: string, bounds: ChunkBounds): Map<string, ChangedAggregate> {
  const out = new Map<string, ChangedAggregate>();
  const note = (key: Key, head: Buffer | null): void => {
    const [, type, id] = key as [string, string, string];
    const fromVersion = target.store.storedHeads.get([tenant, type, id])?.version ?? 0;
    const version = head ? (source.store.storedHeads.get([tenant, type, id])?.version ?? 0) : 0;
    out.set(`${type}\u0000${id}`, { type, id, fromVersion, head, version });
  };
  const there = target.env.rawDb('heads');
  const here = source.env.rawDb('heads');
  for (let after: Key | undefined; ; ) {
    const entries = page(source, 'heads', { prefix: [tenant] }, bounds, after);
    if (entries.length === 0) break;
    for (const e of entries) {
      const current = there.get([target.shard, ...e.key]);
      if (current === undefined || Buffer.compare(current, e.value) !== 0) note(e.key, e.value);
    }
    after = (entries[entries.length - 1] as { key: Key }).key;
  }
  for (let after: Key | undefined; ; ) {
    const entries = page(target, 'heads', { prefix: [tenant] }, bounds, after);
    if (entries.length === 0) break;
    for (const e of entries) if (here.get([source.shard, ...e.key]) === undefined) note(e.key, null);
    after = (entries[entries.length - 1] as { key: Key }).key;
  }
  return out;
}

export interface CatchUpResult {
  /** Aggregates that had changed on the source. */
  changed: Map<string, ChangedAggregate>;
  /** Entries written or removed on the target. */
  entries: number;
}

/**
 * One catch-up pass (see the file comment). Each changed aggregate's entries up to the source
 * head's version (as read) are written first, its head LAST; writes that land meanwhile are the
 * next pass's. So after any pass every aggregate on the target is a consistent copy of one source
 * commit (events 1..head, snapshots ≤ head), which the verification relies on.
 *
 * Why the head goes last: a pass spans several durable chunks, and the head is what the next pass
 * compares and where it starts (`fromVersion`). Written first, a crash between chunks left a target
 * head at the new version without the entries below it (events, event_index), and no later pass
 * looked there again (found by a kill -9 fuzz run: filtered event lists silently short after the
 * move). Written last, a crash leaves the old head, and the next pass redoes the whole delta.
 */
export async function catchUp(source: CopySide, target: CopySide, tenant: string, writer: ChunkWriter, bounds: ChunkBounds): Promise<CatchUpResult> {
  source.env.env.resetReadTxn();
  target.env.env.resetReadTxn();
  const changed = changedAggregates(source, target, tenant, bounds);
  let entries = 0;
  for (const db of TENANT_KEYED_DBS) {
    if (db.name === 'heads') continue;
    if (db.aggregateRanges) {
      for (const agg of changed.values()) {
        const through = agg.head ? agg.version : Number.MAX_SAFE_INTEGER;
        for (const range of db.aggregateRanges(tenant, agg.type, agg.id, agg.fromVersion, through)) entries += await syncRange(source, target, db.name, range, writer, bounds);
      }
    } else if (db.appendOnly) {
      entries += await appendPast(source, target, tenant, db.name, writer, bounds);
    } else if (db.eventKeys) {
      for (const agg of changed.values()) entries += await syncEventKeys(source, target, tenant, db.name, db.eventKeys, agg, writer, bounds);
    } else {
      entries += await syncRange(source, target, db.name, { prefix: [tenant] }, writer, bounds);
    }
  }
  // Every entry above is durable before any head that points at it (chunks commit in order).
  await writer.flush();
  for (const agg of changed.values()) {
    await writer.add({ db: 'heads', key: [tenant, agg.type, agg.id], value: agg.head });
    entries++;
  }
  await writer.flush();
  return { changed, entries };
}

/** Per-event entries of one changed aggregate: the keys its events (on either side) contribute, synced one by one. */
async function syncEventKeys(
  source: CopySide,
  target: CopySide,
  tenant: string,
  db: string,
  keysOf: (tenant: string, event: IndexedEvent) => Key[],
  agg: ChangedAggregate,
  writer: ChunkWriter,
  bounds: ChunkBounds,
): Promise<number> {
  const range: KeyPrefixRange = { prefix: [tenant, agg.type, agg.id], from: [tenant, agg.type, agg.id, agg.fromVersion], throughVersion: agg.head ? agg.version : Number.MAX_SAFE_INTEGER };
  const keys = new Map<string, Key>();
  for (const side of [source, target]) {
    for (let after: Key | undefined; ; ) {
      const events = page(side, 'events', range, bounds, after);
      if (events.length === 0) break;
      for (const e of events) for (const key of keysOf(tenant, indexedEvent(e.value))) keys.set(JSON.stringify(key), key);
      after = (events[events.length - 1] as { key: Key }).key;
    }
  }
  const here = source.env.rawDb(db);
  const there = target.env.rawDb(db);
  let differing = 0;
  for (const key of keys.values()) {
    const want = here.get([source.shard, ...key]);
    const have = there.get([target.shard, ...key]);
    if (want === undefined ? have === undefined : have !== undefined && Buffer.compare(want, have) === 0) continue;
    differing++;
    await writer.add({ db, key, value: want ?? null });
  }
  return differing;
}

/** The fields an event index keys on, from a stored event (sealing keeps them readable). */
function indexedEvent(value: Buffer): IndexedEvent {
  const e = JSON.parse(value.toString('utf8')) as { aggregate_type: string; aggregate_id: string; version: number; event_type: string; metadata: { event_id: string; created_at: string } };
  return { aggregate_type: e.aggregate_type, aggregate_id: e.aggregate_id, version: e.version, event_type: e.event_type, event_id: e.metadata.event_id, created_at: e.metadata.created_at };
}

/** Append-only db: copies the source's entries past the target's last key. */
async function appendPast(source: CopySide, target: CopySide, tenant: string, db: string, writer: ChunkWriter, bounds: ChunkBounds): Promise<number> {
  await writer.flush();
  target.env.env.resetReadTxn();
  let after = lastKeyOf(target.env, db, target.shard, [tenant]);
  let copied = 0;
  for (;;) {
    const entries = page(source, db, { prefix: [tenant] }, bounds, after);
    if (entries.length === 0) break;
    for (const e of entries) await writer.add({ db, key: e.key, value: e.value });
    copied += entries.length;
    after = (entries[entries.length - 1] as { key: Key }).key;
  }
  return copied;
}

/**
 * The check before a flip (writes paused, final catch-up done): no head differs, and every
 * append-only db ends at the same key on both shards. A point lookup per aggregate and one seek
 * per db, so it stays small inside the write pause (counting or comparing every entry would not:
 * see `countsCovered`, checked after the flip instead). Answers what differs, or undefined.
 */
export function copyMismatch(source: CopySide, target: CopySide, tenant: string, bounds: ChunkBounds): string | undefined {
  source.env.env.resetReadTxn();
  target.env.env.resetReadTxn();
  const changed = changedAggregates(source, target, tenant, bounds);
  const first = [...changed.values()][0];
  if (first) return `${changed.size} aggregate head(s) differ, e.g. ${first.type}/${first.id}`;
  for (const db of TENANT_KEYED_DBS) {
    if (!db.appendOnly) continue;
    const here = JSON.stringify(lastKeyOf(source.env, db.name, source.shard, [tenant]) ?? null);
    const there = JSON.stringify(lastKeyOf(target.env, db.name, target.shard, [tenant]) ?? null);
    if (here !== there) return `${db.name}: the source ends at ${here}, the target at ${there}`;
  }
  return undefined;
}

/**
 * After the flip, before the source range goes: the target holds at least as many of the tenant's
 * entries as the source in every db (it only grew since). Counted inside LMDB, outside the pause.
 */
export async function countsCovered(source: CopySide, target: CopySide, tenant: string): Promise<string | undefined> {
  source.env.env.resetReadTxn();
  const here = await countTenantRangeYielding(source.env, source.shard, tenant);
  target.env.env.resetReadTxn();
  const there = await countTenantRangeYielding(target.env, target.shard, tenant);
  for (const { name } of TENANT_KEYED_DBS) {
    if ((there[name] ?? 0) < (here[name] ?? 0)) return `${name}: ${here[name]} entries on the source, only ${there[name]} on the target`;
  }
  return undefined;
}
