/**
 * A tenant's data as key ranges (DESIGN §2: every key inside a shard starts with the tenant): the
 * primitives a live move (coordinator/tenant-move.ts) and a tenant removal stand on. Reads run
 * anywhere (LMDB readers never block the writer); writes run only in the shard's own worker, as
 * bounded durable transactions, so a move never holds the writer for long.
 *
 * Everything works on stored bytes (`WorkerEnv.rawDb`): a sealed value is copied sealed (one data
 * key for every shard), nothing is re-encoded, and a db added to TENANT_KEYED_DBS moves with its
 * tenant without a line here. `event_ids` (`[shard, event_id]`, no tenant) follows the events: a
 * copied event gets its id entry on the target, a deleted one loses it. No outbox entry is ever
 * written or removed here: moved events were delivered (or are queued) from their first shard, so
 * a move re-delivers nothing and leaves both shards' outbox sequences alone.
 */
import type { Key as LmdbKey } from 'lmdb';
import { DbxError } from '../core/index.js';
import { INDEX_READY, streamFloorKey } from './event-index.js';
import { TENANT_KEYED_DBS, keyHasPrefix, type KeyPrefixRange, type ShardStore, type WorkerEnv } from './store.js';

type Key = LmdbKey[];

/**
 * A segment above every segment a key under a prefix holds: strings sort after numbers, and no
 * name, id or idempotency key starts with U+10FFFF.
 */
const ABOVE_ALL = '\u{10FFFF}';

/**
 * Runs `write` in one write transaction and resolves once it is durable. The shard worker passes
 * its own (queued behind its group commits, flushed off its thread, so a chunk does not stall the
 * worker's pipeline for a flush); tools default to a synchronous durable commit.
 */
export type Commit = (write: () => void) => Promise<void>;

const defaultCommit = (env: WorkerEnv): Commit => (write) => env.commitDurably(write);

/** One entry to write on a shard: a local key (after the shard) and its stored bytes, or null to remove it. */
export interface RangeEntry {
  db: string;
  key: Key;
  value: Uint8Array | null;
}

/** What a written chunk did; `stream_high` is the highest stream seq it wrote for the tenant (0: none). */
export interface RangeWriteResult {
  written: number;
  removed: number;
  stream_high: number;
}

const TENANT_DB_NAMES: ReadonlySet<string> = new Set(TENANT_KEYED_DBS.map((d) => d.name));

/**
 * Local entries of one prefix range of `shard`, in key order, strictly after `after` when given,
 * at most `limit`. Keys come back without the shard.
 */
export function scanPrefix(env: WorkerEnv, db: string, shard: number, range: KeyPrefixRange, limit: number, after?: Key): { key: Key; value: Buffer }[] {
  const raw = env.rawDb(db);
  const out: { key: Key; value: Buffer }[] = [];
  const start = [shard, ...(after ?? range.from ?? range.prefix)];
  for (const { key, value } of raw.getRange({ start })) {
    const local = (key as Key).slice(1);
    if ((key as Key)[0] !== shard || !keyHasPrefix(local, range.prefix)) break;
    if (range.throughVersion !== undefined) {
      const version = local[range.prefix.length];
      if (typeof version === 'number' && version > range.throughVersion) break;
    }
    if (after && sameKey(local, after)) continue;
    out.push({ key: local, value });
    if (out.length >= limit) break;
  }
  return out;
}

/** The last local key of a prefix range (for append-only dbs), or undefined when it is empty. */
export function lastKeyOf(env: WorkerEnv, db: string, shard: number, prefix: Key): Key | undefined {
  for (const { key } of env.rawDb(db).getRange({ start: [shard, ...prefix, ABOVE_ALL], reverse: true, limit: 1 })) {
    const local = (key as Key).slice(1);
    return (key as Key)[0] === shard && keyHasPrefix(local, prefix) ? local : undefined;
  }
  return undefined;
}

/** Entries per tenant-keyed db in `shard` (counted inside LMDB; all 0 once the range is gone). */
export function countTenantRange(env: WorkerEnv, shard: number, tenant: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { name } of TENANT_KEYED_DBS) out[name] = env.rawDb(name).getCount({ start: [shard, tenant], end: [shard, tenant, ABOVE_ALL] });
  return out;
}

/**
 * The same counts, a bounded piece at a time with a turn of the event loop between pieces: for a
 * thread that serves requests (the coordinator), where counting a large tenant's ranges at once
 * (hundreds of thousands of keys per db) would stall every request for its duration.
 */
export async function countTenantRangeYielding(env: WorkerEnv, shard: number, tenant: string, pieceKeys = 20_000): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const { name } of TENANT_KEYED_DBS) {
    const raw = env.rawDb(name);
    let n = 0;
    for (let after: Key | undefined; ; ) {
      let last: Key | undefined;
      let seen = 0;
      for (const key of raw.getKeys({ start: [shard, ...(after ?? [tenant])], end: [shard, tenant, ABOVE_ALL], limit: pieceKeys + (after ? 1 : 0) })) {
        if (after && seen === 0 && sameKey(key as Key, [shard, ...after])) {
          seen++;
          continue;
        }
        last = (key as Key).slice(1);
        seen++;
        n++;
      }
      if (!last || seen < pieceKeys) break;
      after = last;
      await new Promise((resolve) => setImmediate(resolve));
    }
    out[name] = n;
  }
  return out;
}

/** The event id stored in an event's bytes (readable in sealed records too: sealing keeps metadata.event_id). */
export function eventIdOf(value: Uint8Array): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8'));
  } catch {
    throw new DbxError('integrity_failed', 'a stored event is not a JSON record');
  }
  const id = (parsed as { metadata?: { event_id?: unknown } } | null)?.metadata?.event_id;
  if (typeof id !== 'string' || id.length === 0) throw new DbxError('integrity_failed', 'a stored event has no event id');
  return id;
}

/**
 * Writes one chunk of a tenant's entries into `store`'s shard, in one durable transaction (`commit`). Every key must lie in `tenant`'s range of a tenant-keyed db (asserted before
 * anything is written). Events keep `event_ids` in step; stream entries raise nothing here: the
 * caller resets the worker's cached seqs (`ShardStore.forgetTenant`) and reports `stream_high`.
 */
export async function writeTenantEntries(env: WorkerEnv, store: ShardStore, tenant: string, entries: RangeEntry[], commit: Commit = defaultCommit(env)): Promise<RangeWriteResult> {
  for (const e of entries) {
    if (!TENANT_DB_NAMES.has(e.db)) throw new DbxError('internal', `tenant range: '${e.db}' is not a tenant-keyed database`);
    if (!Array.isArray(e.key) || e.key[0] !== tenant) throw new DbxError('internal', `tenant range: a key outside tenant '${tenant}'`);
  }
  const shard = store.shard;
  const result: RangeWriteResult = { written: 0, removed: 0, stream_high: 0 };
  await commit(() => {
    for (const e of entries) {
      const raw = env.rawDb(e.db);
      const full = [shard, ...e.key];
      if (e.value === null) {
        const old = raw.get(full);
        if (old === undefined) continue;
        if (e.db === 'events') forgetEventId(env, shard, e.key, old);
        raw.remove(full);
        result.removed++;
        continue;
      }
      const value = Buffer.from(e.value.buffer, e.value.byteOffset, e.value.byteLength);
      raw.put(full, value);
      if (e.db === 'events') env.eventIds.put([shard, eventIdOf(value)], e.key as never);
      if (e.db === 'stream' && typeof e.key[1] === 'number') result.stream_high = Math.max(result.stream_high, e.key[1]);
      result.written++;
    }
    if (entries.some((e) => e.db === 'event_index' && e.value !== null)) markIndexedIfOnlyTenant(env, store, tenant);
  });
  store.forgetTenant(tenant);
  return result;
}

/**
 * Removes up to `limit` entries of `tenant` from `store`'s shard (every tenant-keyed db, with the
 * events' `event_ids`) in one durable transaction; answers how many went (0 = the range is empty).
 */
export async function deleteTenantChunk(env: WorkerEnv, store: ShardStore, tenant: string, limit: number, commit: Commit = defaultCommit(env)): Promise<number> {
  const shard = store.shard;
  const victims: { db: string; key: Key; value: Buffer }[] = [];
  for (const { name } of TENANT_KEYED_DBS) {
    if (victims.length >= limit) break;
    for (const entry of scanPrefix(env, name, shard, { prefix: [tenant] }, limit - victims.length)) victims.push({ db: name, ...entry });
  }
  if (victims.length === 0) return 0;
  // Read before the commit removes them: the seq the tenant's next stream entry here must follow.
  const streamLast = victims.some((v) => v.db === 'stream') ? store.lastStreamSeq(tenant) : 0;
  await commit(() => {
    if (streamLast > 0) store.queryMeta.put(streamFloorKey(tenant), streamLast);
    for (const v of victims) {
      if (v.db === 'events') forgetEventId(env, shard, v.key, v.value);
      env.rawDb(v.db).remove([shard, ...v.key]);
    }
  });
  store.forgetTenant(tenant);
  return victims.length;
}

/** Shards found holding events of other tenants without the index marker (asked once per process). */
const unindexedShards = new Set<number>();

/**
 * A shard that has never been written has no `event_index` marker (event-index.ts), and its first
 * write would index every event it holds inside that write's transaction: after a move into it,
 * the whole moved tenant, a stall of seconds for every write on the worker. The moved events
 * bring their index entries, so when the shard holds no events of any other tenant the marker's
 * promise ("every event of the shard is indexed") holds once the copy is complete — and the moved
 * tenant is read from here only after the flip, when it is. A shard with unindexed events of
 * other tenants keeps its whole-shard indexing.
 */
function markIndexedIfOnlyTenant(env: WorkerEnv, store: ShardStore, tenant: string): void {
  const shard = store.shard;
  if (unindexedShards.has(shard) || store.queryMeta.get(INDEX_READY) !== undefined) return;
  const events = env.rawDb('events');
  const all = events.getCount({ start: [shard], end: [shard + 1] });
  const mine = events.getCount({ start: [shard, tenant], end: [shard, tenant, ABOVE_ALL] });
  if (all === mine) store.queryMeta.put(INDEX_READY, 1);
  else unindexedShards.add(shard);
}

/** Drops an event's id entry, but only while it still points at this very event key. */
function forgetEventId(env: WorkerEnv, shard: number, key: Key, value: Buffer | undefined): void {
  if (value === undefined) return;
  let eventId: string;
  try {
    eventId = eventIdOf(value);
  } catch {
    return; // an unreadable record has no id to drop
  }
  const pointed = env.eventIds.get([shard, eventId]) as unknown as Key | undefined;
  if (pointed && sameKey(pointed, key)) env.eventIds.remove([shard, eventId]);
}

export function sameKey(a: readonly LmdbKey[], b: readonly LmdbKey[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

