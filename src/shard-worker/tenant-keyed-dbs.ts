/**
 * The catalogue of databases keyed `[shard, tenant, …]` (TENANT_KEYED_DBS) and the key ranges a
 * tenant move, removal or count walks in them (tenant-range.ts, coordinator/tenant-move.ts).
 */
import type { Key as LmdbKey } from 'lmdb';
import { eventIdParts, idTimeMs } from './event-index.js';

type Key = LmdbKey[];

/**
 * A named database whose keys are `[shard, tenant, …]`. Tenant moves, removals and range counts
 * (tenant-range.ts, coordinator/tenant-move.ts) walk these ranges generically, copying stored bytes
 * as they are (sealed values stay sealed: every shard uses the same data key).
 */
export interface TenantKeyedDb {
  name: string;
  /**
   * The key ranges (local keys, after the shard) that hold one aggregate's entries. A move's
   * catch-up then re-reads only the aggregates whose head changed (every write rewrites its head),
   * and for versioned keys only versions `fromVersion..throughVersion` (what lies below the copied
   * head is immutable; what lies above the head being copied belongs to the next pass).
   */
  aggregateRanges?: (tenant: string, type: string, id: string, fromVersion: number, throughVersion: number) => KeyPrefixRange[];
  /** Entries are only appended, in key order (a commit sequence): the catch-up copies past the target's last key. */
  appendOnly?: boolean;
  /**
   * One entry per event, never changed or removed (an event index): the local keys one event
   * contributes. The catch-up syncs exactly these for the events it copies.
   */
  eventKeys?: (tenant: string, event: IndexedEvent) => Key[];
  // None of the three: the catch-up compares the tenant's whole range of this db (correct, but
  // O(range) per pass, the final one inside the write pause: for small per-tenant dbs only).
}

/** What `TenantKeyedDb.eventKeys` gets of an event (all readable in a sealed record). */
export interface IndexedEvent {
  aggregate_type: string;
  aggregate_id: string;
  version: number;
  event_type: string;
  event_id: string;
  created_at: string;
}

/**
 * Every key that starts with `prefix`, from `from` (default: the prefix itself). A prefix scan, not
 * an end key: an end such as `[…, KEY_MAX]` misses segments above U+FFFF (an idempotency key may
 * hold an emoji), while a shorter array sorts before all its extensions, so a prefix is exact.
 * `throughVersion`: the segment right after the prefix is a version; the scan stops past it.
 */
export interface KeyPrefixRange {
  prefix: Key;
  from?: Key;
  throughVersion?: number;
}

const whole = (prefix: Key): KeyPrefixRange[] => [{ prefix }];
const versions = (prefix: Key, from: number, through: number): KeyPrefixRange[] => [{ prefix, from: [...prefix, from], throughVersion: through }];

/**
 * EVERY database keyed `[shard, tenant, …]`, in one place: a db missing here would be left behind
 * by a tenant move and survive a tenant removal. Whoever adds such a db adds it here, with the
 * shape that lets a move's catch-up stay cheap (see TenantKeyedDb). `heads` comes first: a move
 * copies a head before the entries it describes, so a copied head is never newer than the copies
 * of its events (the catch-up relies on it). `event_ids` is keyed `[shard, event_id]` (no tenant)
 * and follows the tenant's events (tenant-range.ts).
 */
export const TENANT_KEYED_DBS: readonly TenantKeyedDb[] = [
  { name: 'heads', aggregateRanges: (t, type, id) => whole([t, type, id]) },
  // [tenant, type, id, version]
  { name: 'events', aggregateRanges: (t, type, id, from, through) => versions([t, type, id], from, through) },
  { name: 'snapshots', aggregateRanges: (t, type, id, from, through) => versions([t, type, id], from, through) },
  // [tenant, type, id, idempotency key]: not versioned, so the aggregate's whole range.
  { name: 'idempotency', aggregateRanges: (t, type, id) => whole([t, type, id]) },
  // [tenant, 'a' | 'r', type, id]
  { name: 'aggregate_index', aggregateRanges: (t, type, id) => [{ prefix: [t, 'a', type, id] }, { prefix: [t, 'r', type, id] }] },
  // [tenant, seq]: gapless per (shard, tenant); copied with its seqs so stream positions survive a move.
  { name: 'stream', appendOnly: true },
  // [tenant, event_type, created_ms, id_high, id_low] (event-index.ts): one entry per event.
  {
    name: 'event_index',
    eventKeys: (t, e) => {
      const [high, low] = eventIdParts(e.event_id);
      const created = Date.parse(e.created_at);
      return [[t, e.event_type, Number.isFinite(created) ? created : idTimeMs(high), high, low]];
    },
  },
  // [tenant, name] (the tenant's time skew): a handful of entries, compared whole.
  { name: 'query_meta' },
];

/** True when `key` starts with every segment of `prefix`. */
export function keyHasPrefix(key: readonly LmdbKey[], prefix: readonly LmdbKey[]): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}
