/**
 * The `event_index` database: every event once more, keyed so that filters on `event_type`,
 * `created_at` ranges and `event_id` ranges read key ranges instead of the whole store
 * (issue 13 item 3). One put per event, written by `ShardStore.applyWriteSet` with the event.
 *
 *   key   [shard, tenant, event_type, created_ms, id_high, id_low]  →  value [type, id, version]
 *
 * - `event_type` first: one event type is one range; a time range without a type reads one range
 *   per event type present (a skip scan: one seek each) and merges them by time.
 * - `created_ms` next: the event's own created_at, so time ranges are exact even for imported
 *   events whose created_at has nothing to do with their id.
 * - The id as two numbers (`id >> 22`, `id & (2^22 − 1)`), because decimal strings of different
 *   lengths do not sort numerically as LMDB keys ("9" > "10"), and a 64-bit id does not fit a
 *   double. Both halves are exact doubles, and (high, low) sorts as the id does.
 * - The tenant right after the shard, so a tenant's entries are one contiguous range (moves).
 *
 * Event-id ranges are served through the time ranges: an event written here has created_at = the
 * time inside its id (one clock read), so `id ≥ X` means `created_ms ≥ time(X)`. An import may
 * bring ids whose time differs from created_at; the largest such difference per (shard, tenant) is
 * kept in `query_meta` (the "skew"), and id ranges are widened by it (exact ids are checked on the
 * key, so the answer stays exact; only the range read grows).
 */
import { SNOWFLAKE_EPOCH_MS } from '../core/index.js';

export type EventIndexKey = [tenant: string, eventType: string, createdMs: number, idHigh: number, idLow: number];
export type EventIndexValue = [type: string, id: string, version: number];

/** `query_meta` keys (after the shard): `[tenant, name]`; tenant '' = the shard itself. */
export type QueryMetaKey = [tenant: string, name: string];
/** Present once every event of the shard is in `event_index` (new shards: from their first write). */
export const INDEX_READY: QueryMetaKey = ['', 'event_index_v1'];
export const SKEW = 'time_skew_ms';
/**
 * The last stream seq a tenant had on this shard before its range was deleted (a tenant removal,
 * or the source side of a move): kept outside every tenant's key range (tenant '' like
 * INDEX_READY), so the deletion that empties the range leaves it, and the tenant's next stream
 * entry here continues after it. Positions saved before then stay valid (they point at or below
 * it): restarting at 1 would make them point past the new head and skip the first new events.
 */
export function streamFloorKey(tenant: string): QueryMetaKey {
  return ['', `stream_floor\u0000${tenant}`];
}

const LOW_BITS = 22n;
const LOW_MASK = (1n << LOW_BITS) - 1n;

/** The two exact halves of a decimal event id (up to 20 digits). */
export function eventIdParts(id: string): [high: number, low: number] {
  const n = BigInt(id);
  return [Number(n >> LOW_BITS), Number(n & LOW_MASK)];
}

export function eventIdOfParts(high: number, low: number): string {
  return ((BigInt(high) << LOW_BITS) | BigInt(low)).toString();
}

/** Numeric order of ids given as parts. */
export function compareIdParts(aHigh: number, aLow: number, bHigh: number, bLow: number): number {
  return aHigh !== bHigh ? Math.sign(aHigh - bHigh) : Math.sign(aLow - bLow);
}

/** The time (epoch ms) inside an id's high half: what a native id's created_at is. */
export function idTimeMs(high: number): number {
  return high + SNOWFLAKE_EPOCH_MS;
}
