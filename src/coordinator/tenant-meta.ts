/**
 * Tenant metadata (issue 12, DESIGN §2, reference §12.2): one LMDB environment at
 * `<data_dir>/tenant_meta` holding, per tenant, its explicit shard assignment, aggregate quota, last
 * known aggregate count, write rate limit and the state of a live move.
 *
 * API (stable; other modules, the tenant mover included, use only this):
 *
 *   const meta = new TenantMeta(dataDir, { mapSizeMib? });   // opens or creates the environment
 *   meta.assignments: ReadonlyMap<string, number>             // LIVE tenant → shard index map: hand
 *                                                             // it to PlacementSettings.assignments;
 *                                                             // every change below updates it in place
 *   meta.get(tenant): TenantRecord | undefined
 *   meta.list(): TenantRecord[]                               // sorted by tenant
 *   meta.update(tenant, fn): Promise<TenantRecord | undefined>
 *       // one durable read-modify-write transaction: `fn(current)` gets the stored record (or an
 *       // empty one) and returns the next record, or null to delete it. A record whose shard,
 *       // quota, count, rate and move are all null is deleted (like the original). Throw inside
 *       // `fn` to refuse: nothing is written. Resolves once the change is on disk, after
 *       // `assignments` and the onChange listeners have seen it.
 *   meta.setShard(tenant, shard | null)                       // explicit assignment (no data moved!)
 *   meta.setQuota(tenant, maxAggregates | null)
 *   meta.setCount(tenant, count | null)                       // informational (listings); see tenant-quota.ts
 *   meta.setRate(tenant, { writes_per_sec, burst } | null)
 *   meta.setMove(tenant, TenantMove | null)                   // the mover's durable progress marker
 *   meta.removing(tenant): boolean                            // a removal started and not finished
 *                                                             // (its marker: TenantRecord.removing)
 *   meta.onChange((tenant, record | undefined) => void): () => void   // in-process listeners
 *   meta.watch()                                              // a server calls it once: changes made
 *                                                             // by another process are picked up
 *                                                             // within TENANT_META_REFRESH_MS
 *   meta.close(): Promise<void>
 *
 * Shard indexes here are 0-based numbers (`shardName(3)` = `shard-0003`); parse user input with
 * `parseShardId` (core/placement.ts), which also refuses shards beyond `shard_count`.
 *
 * Values are stored in plaintext, unlike the token ledger's records: they are shard numbers,
 * counts and rates (nothing a person wrote), placement must be decidable by any opener of the data
 * dir, and the tenant ids they are keyed by already appear unsealed in every shard key.
 *
 * Commits are plain synchronous LMDB commits (no overlapping sync), the same options as the token
 * ledger: a change is on disk when its promise resolves, so an assignment acknowledged to an
 * operator survives a crash, and a move's phase marker is durable before the step it announces.
 */
import { fsyncDirectory, mkdirDurably } from '../core/durable-file.js';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';

export const TENANT_META_DIR = 'tenant_meta';

/** How often a watching server renews its read snapshot to see changes made by other processes. */
export const TENANT_META_REFRESH_MS = 250;

/** A per-tenant write rate (token bucket): events per second, and how many may come at once. */
export interface TenantRateLimit {
  writes_per_sec: number;
  /** Events accepted at once after idling; null = one second's worth. */
  burst: number | null;
}

export type TenantMovePhase = 'copying' | 'verifying' | 'flipping' | 'deleting';

/**
 * A live move in progress (written by the mover before each step; null when none). `progress` is
 * the mover's own resumption data (say, the last copied key), opaque to everyone else.
 */
export interface TenantMove {
  from: number;
  to: number;
  phase: TenantMovePhase;
  started_at: string;
  progress?: Record<string, unknown>;
}

/**
 * A removal in progress (tenant-remove.ts): written, durably, before its first range chunk goes,
 * so a crash part-way leaves a record the next start finishes, and the tenant's writes stay
 * refused until then (a write into a half-removed tenant would build on its leftovers).
 */
export interface TenantRemoving {
  started_at: string;
  /** The removal was forced: the tenant's queued plugin jobs go too. */
  force: boolean;
}

export interface TenantRecord {
  tenant: string;
  /** Explicit shard assignment (0-based index); null = `murmurhash3(tenant) mod S`. */
  shard: number | null;
  /** Most aggregates the tenant may hold; null = unlimited. */
  quota: number | null;
  /** Aggregate count last recorded (listings; the live, exact count is TenantQuota's). */
  count: number | null;
  rate: TenantRateLimit | null;
  move: TenantMove | null;
  removing: TenantRemoving | null;
  updated_at: string;
}

type Stored = Omit<TenantRecord, 'tenant'>;

const VERSION_KEY = 0;

export type TenantChangeListener = (tenant: string, record: TenantRecord | undefined) => void;

export class TenantMeta {
  private readonly env: RootDatabase;
  private readonly records: Database<Stored, string>;
  /** A counter bumped by every change: a watcher reloads only when it moved. */
  private readonly version: Database<number, number>;
  private readonly live = new Map<string, number>();
  private readonly removals = new Set<string>();
  private readonly listeners = new Set<TenantChangeListener>();
  private loadedVersion = -1;
  private refreshTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(dataDir: string, options: { mapSizeMib?: number; readOnly?: boolean } = {}) {
    const path = join(dataDir, TENANT_META_DIR);
    if (!options.readOnly) mkdirDurably(path);
    // noMemInit off: a freed page must not keep an old record's bytes. readOnly: direct reads (see TokenLedger).
    this.env = open({ path, maxDbs: 4, mapSize: (options.mapSizeMib ?? 256) * 1024 * 1024, readOnly: options.readOnly ?? false, overlappingSync: false, noMemInit: false });
    if (!options.readOnly) fsyncDirectory(path); // data.mdb's entry, made by open, is durable before any commit counts
    this.records = this.env.openDB<Stored, string>({ name: 'tenants' });
    this.version = this.env.openDB<number, number>({ name: 'version' });
    this.reload();
  }

  /** tenant → shard index for every explicit assignment; the same Map object for the life of this. */
  get assignments(): ReadonlyMap<string, number> {
    return this.live;
  }

  get(tenant: string): TenantRecord | undefined {
    const stored = this.records.get(tenant);
    return stored === undefined ? undefined : { tenant, ...normalise(stored) };
  }

  /** Whether a removal of `tenant` started and has not finished (a Set lookup: on every write). */
  removing(tenant: string): boolean {
    return this.removals.has(tenant);
  }

  list(): TenantRecord[] {
    const out: TenantRecord[] = [];
    for (const { key, value } of this.records.getRange()) out.push({ tenant: key, ...normalise(value) });
    return out;
  }

  async update(tenant: string, fn: (current: TenantRecord) => TenantRecord | null): Promise<TenantRecord | undefined> {
    let next: TenantRecord | undefined;
    let failure: unknown;
    let written = -1;
    await this.env.transaction(() => {
      try {
        const stored = this.records.get(tenant);
        const current: TenantRecord = stored === undefined ? empty(tenant) : { tenant, ...normalise(stored) };
        const result = fn(current);
        next = result === null || isEmpty(result) ? undefined : { ...result, tenant, updated_at: new Date().toISOString() };
        if (next === undefined) this.records.remove(tenant);
        else {
          const { tenant: _t, ...rest } = next;
          this.records.put(tenant, rest);
        }
        written = (this.version.get(VERSION_KEY) ?? 0) + 1;
        this.version.put(VERSION_KEY, written);
      } catch (err) {
        failure = err;
        return; // nothing put: the transaction commits no change of ours
      }
    });
    if (failure !== undefined) throw failure;
    // No change by another process in between: the watcher need not reload for this one.
    if (written === this.loadedVersion + 1) this.loadedVersion = written;
    this.applyLocal(tenant, next);
    return next;
  }

  setShard(tenant: string, shard: number | null): Promise<TenantRecord | undefined> {
    return this.update(tenant, (r) => ({ ...r, shard }));
  }

  setQuota(tenant: string, quota: number | null): Promise<TenantRecord | undefined> {
    return this.update(tenant, (r) => ({ ...r, quota }));
  }

  setCount(tenant: string, count: number | null): Promise<TenantRecord | undefined> {
    return this.update(tenant, (r) => ({ ...r, count }));
  }

  setRate(tenant: string, rate: TenantRateLimit | null): Promise<TenantRecord | undefined> {
    return this.update(tenant, (r) => ({ ...r, rate }));
  }

  setMove(tenant: string, move: TenantMove | null): Promise<TenantRecord | undefined> {
    return this.update(tenant, (r) => ({ ...r, move }));
  }

  onChange(listener: TenantChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  watch(): void {
    this.refreshTimer ??= setInterval(() => {
      this.env.resetReadTxn();
      if ((this.version.get(VERSION_KEY) ?? 0) !== this.loadedVersion) this.reload(true);
    }, TENANT_META_REFRESH_MS);
    this.refreshTimer.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    await this.env.close();
  }

  /** Rebuilds the live map from disk; `notify` tells listeners about every tenant that changed. */
  private reload(notify = false): void {
    this.loadedVersion = this.version.get(VERSION_KEY) ?? 0;
    const seen = new Set<string>();
    for (const record of this.list()) {
      seen.add(record.tenant);
      this.applyLocal(record.tenant, record, notify);
    }
    for (const tenant of [...this.live.keys()]) if (!seen.has(tenant)) this.applyLocal(tenant, undefined, notify);
  }

  private applyLocal(tenant: string, record: TenantRecord | undefined, notify = true): void {
    if (record?.shard !== null && record?.shard !== undefined) this.live.set(tenant, record.shard);
    else this.live.delete(tenant);
    if (record?.removing) this.removals.add(tenant);
    else this.removals.delete(tenant);
    if (!notify) return;
    for (const listener of this.listeners) {
      try {
        listener(tenant, record);
      } catch (err) {
        console.error('tenant_meta listener failed', err);
      }
    }
  }
}

function empty(tenant: string): TenantRecord {
  return { tenant, shard: null, quota: null, count: null, rate: null, move: null, removing: null, updated_at: new Date(0).toISOString() };
}

function isEmpty(r: TenantRecord): boolean {
  return r.shard === null && r.quota === null && r.count === null && r.rate === null && r.move === null && r.removing === null;
}

/** Fills fields a record written by an older version lacks. */
function normalise(stored: Partial<Stored>): Stored {
  return {
    shard: stored.shard ?? null,
    quota: stored.quota ?? null,
    count: stored.count ?? null,
    rate: stored.rate ?? null,
    move: stored.move ?? null,
    removing: stored.removing ?? null,
    updated_at: stored.updated_at ?? new Date(0).toISOString(),
  };
}
