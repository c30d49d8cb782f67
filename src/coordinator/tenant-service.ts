/**
 * Tenant administration (issue 12, reference §12.3): placement (assign / unassign), quotas, write
 * rates, and the per-tenant views. The HTTP routes (routes-tenants.ts) and, through them, the CLI
 * call only this.
 *
 * Placement changes. A tenant's placement is `assignment ?? murmurhash3(tenant) mod S` in
 * multi-tenant mode. Changing it while the tenant has data on its current shard would orphan that
 * data, so: the tenant's writes are paused (none in flight), and then
 * - no data on the current shard → the assignment is flipped at once (durable), writes resume;
 * - data → the registered `TenantMover` (tenant-move.ts, the live move) moves it and flips the
 *   assignment itself; with no mover registered the change is refused with 409
 *   `tenant_not_empty` and nothing changes.
 * In single-tenant mode a tenant's aggregates are hashed over every shard whatever the
 * assignment, so an assignment is only recorded (it takes effect if the store is ever made
 * multi-tenant, which needs an empty store).
 */
import { DbxError, parseShardId, shardName, shardsForTenant, tenantShard, type PlacementSettings, type TokenClaims } from '../core/index.js';
import type { PluginService } from './plugin-service.js';
import type { TenantAdmission, TenantRateLimits } from './tenant-gate.js';
import { burstOf } from './tenant-gate.js';
import type { TenantMeta, TenantRateLimit, TenantRecord } from './tenant-meta.js';
import type { TenantQuota } from './tenant-quota.js';
import type { TenantStats } from './tenant-stats.js';

/**
 * The live move (filled in by tenant-move.ts via `TenantService.registerMover`). Called with the
 * tenant's writes NOT paused (the mover pauses them itself for its flip). `from` is where the data
 * is now, `to` where placement will put it, `assignment` what tenant_meta's `shard` must become at
 * the flip (`to` for an assign, null for an unassign back to the hash shard). Resolves once the
 * data serves from `to` and the assignment is durable; answers what the move reports.
 */
export interface TenantMover {
  move(tenant: string, from: number, to: number, assignment: number | null): Promise<Record<string, unknown>>;
}

export interface PlacementChange {
  tenant: string;
  /** The tenant's shard now (multi-tenant mode), e.g. `shard-0003`. */
  shard: string;
  /** Whether anything changed (false: it was already so). */
  changed: boolean;
  /** What the live move reported, when data was moved. */
  move?: Record<string, unknown>;
  /** Single-tenant mode: the assignment is recorded but does not place anything. */
  note?: string;
}

export interface TenantMetaEntry {
  tenant: string;
  shard?: string;
  quota?: number;
  count?: number;
  writes_per_sec?: number;
  burst?: number;
}

export interface TenantView {
  tenant: string;
  /** Its shard (multi-tenant mode); null in single-tenant mode, where `shards` lists every one. */
  shard: string | null;
  shards: string[];
  /** Whether `shard` comes from an explicit assignment (else from the hash). */
  assigned: boolean;
  aggregates: number;
  events: number;
  /** Approximate stored bytes (see tenant-stats.ts). */
  bytes: number;
  quota: { max_aggregates: number; used: number } | null;
  rate_limit: { writes_per_sec: number; burst: number } | null;
  plugins: { pending: number; dead: number; lag_ms: number };
  move: { phase: string; from: string; to: string; started_at: string } | null;
  /** A removal that started and has not finished (a crash interrupted it; the server finishes it). */
  removing: { started_at: string } | null;
}

export interface TenantServiceDeps {
  meta: TenantMeta;
  placement: PlacementSettings;
  admission: TenantAdmission;
  quota: TenantQuota;
  rates: TenantRateLimits;
  stats: TenantStats;
  plugins?: PluginService;
}

/** GET /v1/tenants reuses one scan of every tenant for this long. */
const VIEWS_CACHE_MS = 2000;

export class TenantService {
  private mover: TenantMover | undefined;

  /** `deps` is public so the live move can share the same admission, meta and stats. */
  constructor(readonly deps: TenantServiceDeps) {}

  /** The live move hook: with one registered, assigning a tenant that has data moves it. */
  registerMover(mover: TenantMover): void {
    this.mover = mover;
  }

  get shardCount(): number {
    return this.deps.placement.shardCount;
  }

  async assign(tenant: string, shardInput: string): Promise<PlacementChange> {
    const target = parseShardId(shardInput, this.shardCount);
    if (this.deps.meta.get(tenant)?.shard === target) return { tenant, shard: shardName(target), changed: false };
    return this.changePlacement(tenant, target);
  }

  async unassign(tenant: string): Promise<PlacementChange> {
    if ((this.deps.meta.get(tenant)?.shard ?? null) === null) return { tenant, shard: shardName(this.hashShard(tenant)), changed: false };
    return this.changePlacement(tenant, null);
  }

  private hashShard(tenant: string): number {
    return tenantShard({ ...this.deps.placement, assignments: new Map() }, tenant);
  }

  private async changePlacement(tenant: string, assignment: number | null): Promise<PlacementChange> {
    const { meta, placement, admission, stats } = this.deps;
    refuseWhileRemoving(meta, tenant);
    if (!placement.multiTenant) {
      await meta.setShard(tenant, assignment);
      return {
        tenant,
        shard: shardName(assignment ?? this.hashShard(tenant)),
        changed: true,
        note: 'recorded; with [tenants] multi_tenant = false every tenant is hashed over all shards, so it places nothing',
      };
    }
    if (meta.get(tenant)?.move) throw new DbxError('tenant_not_empty', `tenant '${tenant}' is being moved; wait for the move to finish`);
    const to = assignment ?? this.hashShard(tenant);
    let resume: (() => void) | undefined = await admission.pause(tenant);
    try {
      refuseWhileRemoving(meta, tenant);
      const from = tenantShard(placement, tenant);
      if (from !== to && stats.hasData(tenant, from)) {
        if (!this.mover) {
          throw new DbxError(
            'tenant_not_empty',
            `tenant '${tenant}' has data on ${shardName(from)}: changing its placement to ${shardName(to)} would orphan it, and no live move is available`,
            { tenant, from: shardName(from), to: shardName(to) },
          );
        }
        // The mover copies while writes go on; it pauses the tenant itself for the flip.
        resume();
        resume = undefined;
        const move = await this.mover.move(tenant, from, to, assignment);
        return { tenant, shard: shardName(to), changed: true, move };
      }
      await meta.setShard(tenant, assignment);
      return { tenant, shard: shardName(to), changed: true };
    } finally {
      resume?.();
    }
  }

  /** Records with a shard, quota or rate, by tenant (optionally those assigned to one shard). */
  list(shardInput?: string): TenantMetaEntry[] {
    const only = shardInput === undefined ? undefined : parseShardId(shardInput, this.shardCount);
    const out: TenantMetaEntry[] = [];
    for (const r of this.deps.meta.list()) {
      if (r.shard === null && r.quota === null && r.rate === null) continue;
      if (only !== undefined && r.shard !== only) continue;
      out.push(entryOf(r, this.deps.quota.liveCount(r.tenant)));
    }
    return out;
  }

  /** Explicit assignments per shard (`{ "shard-0001": 2 }`). */
  stats(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const shard of [...this.deps.meta.assignments.values()].sort((a, b) => a - b)) {
      const name = shardName(shard);
      counts[name] = (counts[name] ?? 0) + 1;
    }
    return counts;
  }

  async setQuota(tenant: string, maxAggregates: number): Promise<TenantMetaEntry> {
    await this.deps.quota.configure(tenant, maxAggregates);
    return entryOf(this.deps.meta.get(tenant) as TenantRecord, this.deps.quota.liveCount(tenant));
  }

  async clearQuota(tenant: string): Promise<boolean> {
    if ((this.deps.meta.get(tenant)?.quota ?? null) === null) return false;
    await this.deps.quota.configure(tenant, null);
    return true;
  }

  async recalc(tenant: string): Promise<number> {
    return this.deps.quota.recalc(tenant);
  }

  async setLimit(tenant: string, rate: TenantRateLimit): Promise<TenantMetaEntry> {
    const record = await this.deps.meta.setRate(tenant, rate);
    return entryOf(record as TenantRecord, this.deps.quota.liveCount(tenant));
  }

  async clearLimit(tenant: string): Promise<boolean> {
    if ((this.deps.meta.get(tenant)?.rate ?? null) === null) return false;
    await this.deps.meta.setRate(tenant, null);
    return true;
  }

  async view(tenant: string): Promise<TenantView> {
    const shards = shardsForTenant(this.deps.placement, tenant);
    return this.viewOf(tenant, await this.deps.stats.usage(tenant, shards), this.pluginLag(tenant));
  }

  /** Every tenant with data or metadata that `claims` may see, by tenant. */
  async views(claims: TokenClaims, allows: (claims: TokenClaims, tenant: string) => boolean): Promise<TenantView[]> {
    const usage = await this.deps.stats.all(VIEWS_CACHE_MS);
    const names = new Set([...usage.keys(), ...this.deps.meta.list().map((r) => r.tenant)]);
    const lag = this.pluginLag();
    return [...names]
      .filter((t) => allows(claims, t))
      .sort()
      .map((t) => this.viewOf(t, usage.get(t) ?? { aggregates: 0, events: 0, bytes: 0 }, lag));
  }

  private viewOf(tenant: string, usage: { aggregates: number; events: number; bytes: number }, lag: Map<string, TenantView['plugins']>): TenantView {
    const { placement, meta, quota } = this.deps;
    const record = meta.get(tenant);
    const shards = shardsForTenant(placement, tenant);
    const limit = record?.quota ?? null;
    return {
      tenant,
      shard: placement.multiTenant ? shardName(tenantShard(placement, tenant)) : null,
      shards: shards.map(shardName),
      assigned: (record?.shard ?? null) !== null,
      ...usage,
      quota: limit === null ? null : { max_aggregates: limit, used: quota.liveCount(tenant) ?? usage.aggregates },
      rate_limit: record?.rate ? { writes_per_sec: record.rate.writes_per_sec, burst: burstOf(record.rate) } : null,
      plugins: lag.get(tenant) ?? { pending: 0, dead: 0, lag_ms: 0 },
      move: record?.move
        ? { phase: record.move.phase, from: shardName(record.move.from), to: shardName(record.move.to), started_at: record.move.started_at }
        : null,
      removing: record?.removing ? { started_at: record.removing.started_at } : null,
    };
  }

  /** Jobs not yet delivered per tenant (or of one tenant: only its jobs are read), and the age of its oldest undelivered event. */
  private pluginLag(tenant?: string, now = Date.now()): Map<string, TenantView['plugins']> {
    const out = new Map<string, TenantView['plugins']>();
    for (const job of this.deps.plugins?.dispatcher.openJobs(tenant === undefined ? {} : { tenant }) ?? []) {
      const entry = out.get(job.tenant) ?? { pending: 0, dead: 0, lag_ms: 0 };
      if (job.status === 'dead') entry.dead++;
      else if (job.status !== 'done') {
        entry.pending++;
        entry.lag_ms = Math.max(entry.lag_ms, now - job.committed_at);
      }
      out.set(job.tenant, entry);
    }
    return out;
  }
}

function entryOf(r: TenantRecord, liveCount: number | undefined): TenantMetaEntry {
  const count = liveCount ?? r.count;
  return {
    tenant: r.tenant,
    ...(r.shard !== null ? { shard: shardName(r.shard) } : {}),
    ...(r.quota !== null ? { quota: r.quota } : {}),
    ...(count !== null ? { count } : {}),
    ...(r.rate ? { writes_per_sec: r.rate.writes_per_sec, burst: burstOf(r.rate) } : {}),
  };
}

/** A placement change in the middle of a removal would leave the removal deleting the wrong shard. */
function refuseWhileRemoving(meta: TenantMeta, tenant: string): void {
  if (meta.removing(tenant)) throw new DbxError('tenant_busy', `tenant '${tenant}' is being removed; wait for the removal to finish`, { tenant });
}
