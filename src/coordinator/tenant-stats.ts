/**
 * What a tenant holds (issue 12 views and /metrics), read from the committed shard data. The
 * coordinator may read it directly (DESIGN §1): LMDB readers never block the shard's writer.
 *
 * - aggregates: the tenant's heads, counted exactly (an LMDB key count over its key range).
 * - events: its event keys, counted exactly the same way.
 * - bytes: approximate — events × the mean stored size (sealed text, as on disk) of up to
 *   BYTES_SAMPLE of its events on that shard, plus heads × their mean stored size likewise.
 *   Indexes, snapshots and LMDB's page overhead are not counted; reading every value would make a
 *   view cost as much as an export.
 *
 * A scan of every tenant (GET /v1/tenants, the storage series of /metrics) finds the tenants by
 * skipping from one tenant's first head to the next (one seek per tenant, not per aggregate) and
 * yields to the event loop between tenants, so a large store never stalls requests; its result is
 * cached for `cacheMs`.
 */
import { KEY_MAX, type ShardStore } from '../shard-worker/index.js';

const BYTES_SAMPLE = 32;

export interface TenantUsage {
  aggregates: number;
  events: number;
  bytes: number;
}

type Key = (string | number)[];

export class TenantStats {
  private cached: { at: number; value: Map<string, TenantUsage> } | undefined;
  private scanning: Promise<Map<string, TenantUsage>> | undefined;

  constructor(private readonly stores: readonly ShardStore[]) {}

  /** One tenant on the given shards (exact counts, approximate bytes). */
  usage(tenant: string, shards: readonly number[]): TenantUsage {
    const total: TenantUsage = { aggregates: 0, events: 0, bytes: 0 };
    for (const s of shards) {
      const store = this.stores[s];
      if (!store) continue;
      const u = usageOn(store, tenant);
      total.aggregates += u.aggregates;
      total.events += u.events;
      total.bytes += u.bytes;
    }
    return total;
  }

  /** Heads of `tenant` on the given shards, as committed now. */
  countAggregates(tenant: string, shards: readonly number[]): number {
    let n = 0;
    for (const s of shards) {
      const store = this.stores[s];
      if (!store) continue;
      // Fresh snapshot: a quota count must see every commit acknowledged so far.
      store.env.resetReadTxn();
      n += store.worker.heads.getCount(range(s, tenant));
    }
    return n;
  }

  /** Whether `tenant` has any aggregate on shard `s`. */
  hasData(tenant: string, s: number): boolean {
    const store = this.stores[s];
    if (!store) return false;
    store.env.resetReadTxn();
    for (const _ of store.worker.heads.getKeys({ ...range(s, tenant), limit: 1 })) return true;
    return false;
  }

  /** Every tenant with data, with its usage; at most one scan at a time, reused for `cacheMs`. */
  async all(cacheMs: number): Promise<Map<string, TenantUsage>> {
    if (this.cached && Date.now() - this.cached.at <= cacheMs) return this.cached.value;
    this.scanning ??= this.scan().then(
      (value) => {
        this.cached = { at: Date.now(), value };
        this.scanning = undefined;
        return value;
      },
      (err: unknown) => {
        this.scanning = undefined;
        throw err;
      },
    );
    return this.scanning;
  }

  private async scan(): Promise<Map<string, TenantUsage>> {
    const out = new Map<string, TenantUsage>();
    for (const store of this.stores) {
      // Fresh snapshot: what is committed now.
      store.env.resetReadTxn();
      let start: Key = [store.shard];
      for (;;) {
        const tenant = nextTenant(store, start);
        if (tenant === undefined) break;
        const u = usageOn(store, tenant);
        const sum = out.get(tenant) ?? { aggregates: 0, events: 0, bytes: 0 };
        sum.aggregates += u.aggregates;
        sum.events += u.events;
        sum.bytes += u.bytes;
        out.set(tenant, sum);
        start = [store.shard, tenant, KEY_MAX];
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    return out;
  }
}

/** A fresh object per call: lmdb's getCount marks the options object it is given as count-only. */
function range(shard: number, tenant: string): { start: Key; end: Key } {
  return { start: [shard, tenant], end: [shard, tenant, KEY_MAX] };
}

function nextTenant(store: ShardStore, start: Key): string | undefined {
  for (const key of store.worker.heads.getKeys({ start, end: [store.shard + 1], limit: 1 })) {
    const k = key as Key;
    return k[0] === store.shard && typeof k[1] === 'string' ? k[1] : undefined;
  }
  return undefined;
}

function usageOn(store: ShardStore, tenant: string): TenantUsage {
  const aggregates = store.worker.heads.getCount(range(store.shard, tenant));
  if (aggregates === 0) return { aggregates: 0, events: 0, bytes: 0 };
  const events = store.worker.events.getCount(range(store.shard, tenant));
  const bytes = events * meanBytes(store, 'events', range(store.shard, tenant)) + aggregates * meanBytes(store, 'heads', range(store.shard, tenant));
  return { aggregates, events, bytes: Math.round(bytes) };
}

/** Mean stored size of up to BYTES_SAMPLE values of the range (raw bytes: nothing is decoded). */
function meanBytes(store: ShardStore, db: 'events' | 'heads', r: { start: Key; end: Key }): number {
  let n = 0;
  let bytes = 0;
  for (const { value } of store.worker.rawDb(db).getRange({ ...r, limit: BYTES_SAMPLE })) {
    bytes += (value as Uint8Array).length;
    n++;
  }
  return n === 0 ? 0 : bytes / n;
}
