/**
 * `dbx tenant list|stats|show` in every --format (format.ts). The tables are the original's, with
 * its `-` for a value not set and its combined cells (`3/10` for a quota, `500/s (burst 2000)`);
 * csv and lines carry the API's values one per column instead, so a script reads numbers, and
 * json prints what --json always printed (the API's objects; `stats` its `{ shard: count }` map).
 */
import type { TenantMetaEntry, TenantView, Wire } from '../client/index.js';
import { formatOf, printListing, type Column, type FormatFlags, type ListingSpec } from './format.js';
import { keyValues, printJson } from './output.js';

// Text, as the original's table has it (so a quota is not right-aligned like a number).
const dash = (v: unknown): string => (v === undefined || v === null ? '-' : String(v));

type MetaEntry = Wire<TenantMetaEntry>;

function metaSpec(table: boolean, withRate: boolean, shardCount: number): ListingSpec<MetaEntry> {
  const base: Column<MetaEntry>[] = [
    { name: 'tenant', value: (e) => e.tenant },
    { name: 'shard', value: (e) => e.shard ?? null, brief: (e) => dash(e.shard) },
    { name: 'quota', value: (e) => e.quota ?? null, brief: (e) => dash(e.quota) },
    { name: 'count', value: (e) => e.count ?? null, brief: (e) => dash(e.count) },
  ];
  const rate: Column<MetaEntry>[] = table
    ? withRate
      ? [{ name: 'writes', value: (e) => (e.writes_per_sec === undefined ? '-' : `${e.writes_per_sec}/s (burst ${e.burst})`) }]
      : []
    : [
        { name: 'writes_per_sec', value: (e) => e.writes_per_sec ?? null },
        { name: 'burst', value: (e) => e.burst ?? null },
      ];
  return {
    columns: [...base, ...rate],
    empty: `no tenant assignments or quotas found\ntenants will hash across ${shardCount} shards by default`,
    // Only what is set, like the API's object.
    line: (e) => keyValues(e),
  };
}

export async function printTenantMeta(flags: FormatFlags, items: MetaEntry[], shardCount: number): Promise<void> {
  const format = formatOf(flags);
  await printListing(flags, metaSpec(format === 'table', items.some((e) => e.writes_per_sec !== undefined), shardCount), items);
}

const STATS_LISTING: ListingSpec<[string, number]> = {
  columns: [
    { name: 'shard', value: ([shard]) => shard },
    { name: 'count', value: ([, count]) => count },
  ],
  empty: 'no explicit tenant assignments; shards fall back to hash-based placement',
};

export async function printTenantStats(flags: FormatFlags, shards: Record<string, number>): Promise<void> {
  if (formatOf(flags) === 'json') return printJson(shards);
  await printListing(flags, STATS_LISTING, Object.entries(shards));
}

type View = Wire<TenantView>;

/** The original's table. */
const VIEW_TABLE: ListingSpec<View> = {
  columns: [
    { name: 'tenant', value: (v) => v.tenant },
    { name: 'shard', value: (v) => v.shard ?? 'all' },
    { name: 'aggregates', value: (v) => v.aggregates },
    { name: 'events', value: (v) => v.events },
    { name: '~bytes', value: (v) => v.bytes },
    { name: 'quota', value: (v) => (v.quota ? `${v.quota.used}/${v.quota.max_aggregates}` : '-') },
    { name: 'writes', value: (v) => (v.rate_limit ? `${v.rate_limit.writes_per_sec}/s` : '-') },
    { name: 'plugin lag', value: (v) => (v.plugins.pending > 0 ? `${v.plugins.pending} (${Math.round(v.plugins.lag_ms / 100) / 10} s)` : '0') },
  ],
};

/** csv and lines: one value per column, empty (csv) where the API has null. */
const VIEW_DATA: ListingSpec<View> = {
  columns: [
    { name: 'tenant', value: (v) => v.tenant },
    { name: 'shard', value: (v) => v.shard },
    { name: 'aggregates', value: (v) => v.aggregates },
    { name: 'events', value: (v) => v.events },
    { name: 'bytes', value: (v) => v.bytes },
    { name: 'quota_used', value: (v) => v.quota?.used ?? null },
    { name: 'quota_max', value: (v) => v.quota?.max_aggregates ?? null },
    { name: 'writes_per_sec', value: (v) => v.rate_limit?.writes_per_sec ?? null },
    { name: 'burst', value: (v) => v.rate_limit?.burst ?? null },
    { name: 'plugins_pending', value: (v) => v.plugins.pending },
    { name: 'plugins_dead', value: (v) => v.plugins.dead },
    { name: 'plugins_lag_ms', value: (v) => v.plugins.lag_ms },
    { name: 'move', value: (v) => v.move?.phase ?? null },
  ],
};

/** One tenant (`one`: json prints its object, as --json did) or every tenant. */
export async function printTenantViews(flags: FormatFlags, views: View[], one: boolean): Promise<void> {
  const format = formatOf(flags);
  if (format === 'json' && one) return printJson(views[0]);
  await printListing(flags, format === 'table' ? VIEW_TABLE : VIEW_DATA, views);
}
