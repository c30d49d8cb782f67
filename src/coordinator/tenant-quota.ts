/**
 * Exact aggregate quotas per tenant (issue 12, reference §12.3: `dbx tenant quota set <t>
 * --max-aggregates N`).
 *
 * Where the check lives, and why there. Whether a write creates an aggregate is decided in the
 * shard worker (it alone knows, at commit, whether the head exists). In multi-tenant mode a tenant
 * sits on one shard, so the worker could count alone; in single-tenant mode a tenant is hashed over
 * every shard and every worker, so no worker sees the whole count. Rather than two mechanisms, the
 * coordinator — the one process that accepts writes — decides for both modes, like the token write
 * limits (write-allowance.ts), and the worker enforces the one thing only it can see:
 *
 * - The count is exact in memory: `count` = aggregates that exist (initialised by counting the
 *   tenant's heads while its writes are paused, so nothing is in flight), `reserved` = creations
 *   in flight. A write that may create (create, or apply/batch to an id with no head in the
 *   committed store) reserves one per new aggregate; one that cannot reserve within the quota is
 *   refused 403 `quota_exceeded` — or, when in-flight reservations might still fail and free room,
 *   waits for them to settle and decides again, so twenty racing creates for five slots get
 *   exactly five, and a reservation that ends in `already_exists` never refuses someone else.
 * - A command for an aggregate whose head existed when checked carries `no_create`: should the
 *   head vanish before it commits (a tenant removal or move in between), the worker refuses to
 *   create instead of slipping past the count.
 * - Nothing durable is needed for exactness: after a restart or a crash the count is rebuilt from
 *   the heads (what is committed is what exists). A write whose outcome is unknown (503/500) is
 *   counted as created (so the quota is never exceeded), and the next write recounts first. Recounting is paid once per tenant with a quota per
 *   process (and costs O(its aggregates), bounded by about the quota). The count is also written
 *   to tenant_meta (coalesced, off the write path) for `dbx tenant list`.
 * - Bulk import (`POST /v1/import`) reserves one per version-1 line of an aggregate with no head,
 *   without waiting (an import is not retried line by line): a line beyond the quota fails the
 *   import at that line like any other bad line.
 */
import { DbxError } from '../core/index.js';
import type { TenantAdmission } from './tenant-gate.js';
import type { TenantMeta } from './tenant-meta.js';

/** How stale the count recorded in tenant_meta may be (a listing of a running server). */
const NOTE_COUNT_MS = 200;

interface Tracked {
  limit: number;
  count: number;
  reserved: number;
  /** A write's outcome was unknown and counted as created: recount before the next decision. */
  stale: boolean;
  /** Woken whenever `reserved` drops or the limit changes. */
  waiters: (() => void)[];
  noting: boolean;
}

export interface Reservation {
  tenant: string;
  need: number;
  tracked: Tracked;
}

export class TenantQuota {
  private readonly limits = new Map<string, number>();
  private readonly tracked = new Map<string, Tracked>();
  private readonly initialising = new Map<string, Promise<void>>();

  constructor(
    private readonly meta: TenantMeta,
    private readonly admission: TenantAdmission,
    /** The tenant's aggregates (heads) as committed now, counted across its shards. */
    private readonly countHeads: (tenant: string) => number,
  ) {
    for (const r of meta.list()) if (r.quota !== null) this.limits.set(r.tenant, r.quota);
    meta.onChange((tenant, record) => {
      const limit = record?.quota ?? null;
      if (limit === null) {
        this.limits.delete(tenant);
        const t = this.tracked.get(tenant);
        this.tracked.delete(tenant);
        if (t) wake(t);
        return;
      }
      this.limits.set(tenant, limit);
      const t = this.tracked.get(tenant);
      if (t && t.limit !== limit) {
        t.limit = limit;
        wake(t);
      }
    });
  }

  limitOf(tenant: string): number | undefined {
    return this.limits.get(tenant);
  }

  /** The live count (exact) of a tenant with a quota, when this process has counted it. */
  liveCount(tenant: string): number | undefined {
    return this.tracked.get(tenant)?.count;
  }

  /**
   * Called before a write of `tenant` is admitted (not yet in flight): counts the tenant's
   * aggregates once, with its writes paused, if it has a quota and is not counted yet.
   */
  ready(tenant: string): Promise<void> | undefined {
    if (!this.limits.has(tenant)) return undefined;
    const t = this.tracked.get(tenant);
    if (t && !t.stale) return undefined;
    let pending = this.initialising.get(tenant);
    if (!pending) {
      pending = this.recount(tenant).finally(() => this.initialising.delete(tenant));
      this.initialising.set(tenant, pending);
    }
    return pending.then(() => undefined);
  }

  /**
   * In flight: reserves room for `need()` new aggregates (re-evaluated after each wait, since
   * heads may have appeared meanwhile). Undefined when the tenant has no quota or needs nothing.
   */
  async reserve(tenant: string, need: () => number, wait = true): Promise<Reservation | undefined> {
    for (;;) {
      const limit = this.limits.get(tenant);
      if (limit === undefined) return undefined;
      const t = this.tracked.get(tenant);
      // The quota appeared while this write was already admitted (set by another process): the
      // count is not known yet, so no creation can be decided exactly.
      if (!t) throw new DbxError('unavailable', `tenant '${tenant}' quota is being counted; retry`, { retry_after_secs: 1 });
      const n = need();
      if (n === 0) return undefined;
      if (t.count + n > t.limit) throw quotaError(tenant, t.limit, t.count, n);
      if (t.count + t.reserved + n <= t.limit) {
        t.reserved += n;
        return { tenant, need: n, tracked: t };
      }
      if (!wait) throw quotaError(tenant, t.limit, t.count + t.reserved, n);
      await new Promise<void>((resolve) => t.waiters.push(resolve));
    }
  }

  /**
   * Reserves `n` more at once or throws (no waiting: bulk import), adding to `into` when given.
   * Undefined when the tenant has no quota.
   */
  reserveNow(tenant: string, n: number, into?: Reservation): Reservation | undefined {
    if (!this.limits.has(tenant)) return into;
    const t = this.tracked.get(tenant);
    if (!t) throw new DbxError('unavailable', `tenant '${tenant}' quota is being counted; retry`, { retry_after_secs: 1 });
    if (t.count + t.reserved + n > t.limit) throw quotaError(tenant, t.limit, t.count + t.reserved, n);
    t.reserved += n;
    if (into && into.tracked === t) {
      into.need += n;
      return into;
    }
    return { tenant, need: n, tracked: t };
  }

  /**
   * The reserved write is over: `created` aggregates now exist. Undefined = outcome unknown: it is
   * counted as if it created all it reserved (never more than the quota), and the tenant is
   * recounted from its heads before the next write is admitted.
   */
  settle(reservation: Reservation | undefined, tenant: string, created: number | undefined): void {
    const t = reservation?.tracked ?? this.tracked.get(tenant);
    if (!t) return;
    if (reservation) t.reserved -= reservation.need;
    if (created === undefined) {
      t.count += reservation?.need ?? 0;
      t.stale = true;
    } else if (created > 0) {
      t.count += created;
      this.noteCount(tenant, t);
    }
    wake(t);
  }

  /**
   * Sets (or clears, null) the tenant's quota with its writes paused, and counts its aggregates in
   * the same pause: no write is ever admitted under a quota whose count is not known.
   */
  async configure(tenant: string, limit: number | null): Promise<void> {
    await this.recount(tenant, async () => {
      await this.meta.setQuota(tenant, limit);
    });
  }

  /** Counts the tenant's aggregates now (writes paused meanwhile) and records it; answers the count. */
  async recalc(tenant: string): Promise<number> {
    await this.recount(tenant);
    const count = this.tracked.get(tenant)?.count ?? this.countHeads(tenant);
    await this.meta.setCount(tenant, count);
    return count;
  }

  /**
   * The tenant's data changed outside the write path (a removal): its count is rebuilt from the
   * heads before the next write is admitted.
   */
  invalidate(tenant: string): void {
    const t = this.tracked.get(tenant);
    if (t) t.stale = true;
  }

  /** With the tenant's writes paused (none in flight): `during`, then the count from the heads. */
  private async recount(tenant: string, during?: () => Promise<void>): Promise<void> {
    const resume = await this.admission.pause(tenant);
    try {
      if (during) await during();
      const previous = this.tracked.get(tenant);
      const count = this.countHeads(tenant);
      const limit = this.limits.get(tenant);
      if (limit === undefined) {
        this.tracked.delete(tenant);
      } else {
        // Paused: nothing is in flight, so nothing is reserved either.
        const t: Tracked = { limit, count, reserved: 0, stale: false, waiters: previous?.waiters ?? [], noting: false };
        this.tracked.set(tenant, t);
        wake(t);
      }
    } finally {
      resume();
    }
  }

  /** Records the count for listings, coalesced to one commit per tenant per NOTE_COUNT_MS. */
  private noteCount(tenant: string, t: Tracked): void {
    if (t.noting) return;
    t.noting = true;
    const timer = setTimeout(() => {
      t.noting = false;
      if (this.tracked.get(tenant) !== t) return;
      this.meta.update(tenant, (r) => (r.quota === null ? r : { ...r, count: t.count })).catch(() => undefined);
    }, NOTE_COUNT_MS);
    timer.unref();
  }

  /** Records every tracked count now (at stop). */
  async flush(): Promise<void> {
    for (const [tenant, t] of this.tracked) {
      await this.meta.update(tenant, (r) => (r.quota === null ? r : { ...r, count: t.count })).catch(() => undefined);
    }
  }
}

function wake(t: Tracked): void {
  const waiters = t.waiters.splice(0);
  for (const w of waiters) w();
}

export function quotaError(tenant: string, limit: number, count: number, need: number): DbxError {
  return new DbxError(
    'quota_exceeded',
    `tenant quota exceeded: tenant '${tenant}' reached aggregate quota (${limit})${need > 1 ? `; this write would create ${need} aggregates` : ''}`,
    { tenant, quota: limit, aggregates: count, would_create: need },
  );
}
