/**
 * Removing a tenant (issue 12 item 6, `dbx tenant remove <t> --yes`): every tenant-keyed range of
 * it on every shard it may hold data on (TENANT_KEYED_DBS, with the events' `event_ids`), then its
 * tenant_meta record (assignment, quota, count, rate limit). Its schemas and tokens are kept: they
 * are not tenant data ranges, and revoking tokens is its own decision (`dbx token revoke`).
 *
 * Refused (409 tenant_busy) while the tenant is being moved, exported or imported, and while it has
 * undelivered plugin jobs — queued jobs not yet done (dead ones included) or committed events an
 * enabled plugin has not been handed yet — unless `force`, which also drops its queued jobs (their
 * events are gone). The tenant's writes are paused while its ranges go (each chunk is one bounded
 * durable transaction in the shard's worker), so nothing is written into a half-removed tenant;
 * writes after the removal start a new, empty tenant. A durable marker in tenant_meta, written
 * before the first chunk and removed with the record, makes a crash part-way safe: the tenant's
 * writes stay refused and the next start finishes the removal (finishInterruptedRemovals).
 */
import { DbxError, shardName, shardsForTenant, type PlacementSettings } from '../core/index.js';
import { countTenantRange, countTenantRangeYielding, type ShardStore } from '../shard-worker/index.js';
import type { PluginService } from './plugin-service.js';
import type { ShardPool } from './shard-pool.js';
import type { TenantBusy } from './tenant-export.js';
import type { TenantAdmission } from './tenant-gate.js';
import type { TenantMeta } from './tenant-meta.js';

/** Entries per removal transaction. */
const REMOVE_CHUNK_ENTRIES = 2000;

/**
 * Test hooks, honoured only with NODE_ENV=test: `EVENTDBX_FAULT_TENANT_REMOVE=deleting` SIGKILLs
 * the process after a removal's first chunk (chunks are then 100 entries, so a removal spans
 * several), and `EVENTDBX_TEST_REMOVE_HOLD_MS=<ms>` holds a resumed removal that long before it
 * deletes (so a test can watch the refused writes in between).
 */
const testing = (): boolean => process.env.NODE_ENV === 'test';
const faultDeleting = (): boolean => testing() && process.env.EVENTDBX_FAULT_TENANT_REMOVE === 'deleting';
function resumeHoldMs(): number {
  const raw = process.env.EVENTDBX_TEST_REMOVE_HOLD_MS;
  return testing() && raw !== undefined && /^\d{1,6}$/.test(raw) ? Number(raw) : 0;
}
/** How long a removal waits for the dispatcher to hand committed events to the queue before it counts them. */
const OUTBOX_SETTLE_MS = 2000;
/** Outbox entries looked at, at most, when counting those not yet in the queue. */
const OUTBOX_SCAN_MAX = 100_000;

export interface TenantRemoveDeps {
  stores: readonly ShardStore[];
  placement: PlacementSettings;
  pool: ShardPool;
  meta: TenantMeta;
  admission: TenantAdmission;
  busy: TenantBusy;
  plugins: PluginService;
}

export interface TenantRemoval {
  tenant: string;
  shards: string[];
  /** Entries removed, per database. */
  removed: Record<string, number>;
  aggregates: number;
  events: number;
  /** Queued plugin jobs dropped (only with force). */
  jobs_dropped: number;
  /** Whether a tenant_meta record (assignment, quota, limit) was removed. */
  metadata_removed: boolean;
}

interface Undelivered {
  jobs: number;
  /** Committed events of the tenant an enabled plugin has not been handed yet. */
  outbox: number;
}

export async function removeTenant(deps: TenantRemoveDeps, tenant: string, options: { force: boolean }): Promise<TenantRemoval> {
  const { busy, meta, admission } = deps;
  busy.refuseIfBusy(tenant, (meta.get(tenant)?.move ?? null) !== null, 'remove it');
  const release = busy.begin(tenant, 'remove');
  try {
    if (!options.force) refuseUndelivered(tenant, undelivered(deps, tenant));
    const resume = await admission.pause(tenant);
    try {
      if (!options.force) {
        // Writes acknowledged before the pause may not be in the queue yet: give the dispatcher a moment.
        await settleOutbox(deps, tenant);
        refuseUndelivered(tenant, undelivered(deps, tenant));
      }
      const before = meta.get(tenant);
      const hadRecord = before !== undefined && before.removing === null;
      // The marker before the first chunk: from here a crash leaves a record the next start
      // finishes (finishInterruptedRemovals), and the tenant's writes are refused until then.
      await meta.update(tenant, (r) => ({ ...r, removing: r.removing ?? { started_at: new Date().toISOString(), force: options.force } }));
      return { ...(await removeRanges(deps, tenant, options.force || (before?.removing?.force ?? false))), metadata_removed: hadRecord };
    } finally {
      resume();
    }
  } finally {
    release();
  }
}

/**
 * At start, once the server listens (before any request is read): every removal a crash interrupted (its marker is still in
 * tenant_meta) is finished in the background. The marker keeps the tenant's writes refused (503)
 * meanwhile; reads show what is left until the ranges are gone.
 */
export function finishInterruptedRemovals(
  deps: TenantRemoveDeps,
  log: (level: 'info' | 'warn' | 'error', message: string, extra?: Record<string, unknown>) => void,
  /** True once the server stops: the removal ends at its next chunk; its marker stays for the next start. */
  stopping: () => boolean = () => false,
): Promise<void>[] {
  return deps.meta
    .list()
    .filter((r) => r.removing !== null)
    .map(async (r) => {
      const release = deps.busy.begin(r.tenant, 'remove');
      try {
        log('warn', 'finishing an interrupted tenant removal', { tenant: r.tenant, started_at: r.removing?.started_at });
        const hold = resumeHoldMs();
        if (hold > 0) await new Promise((resolve) => setTimeout(resolve, hold));
        const done = await removeRanges(deps, r.tenant, r.removing?.force ?? false, stopping);
        log('info', 'tenant removed', { tenant: r.tenant, aggregates: done.aggregates, events: done.events, jobs_dropped: done.jobs_dropped });
      } catch (err) {
        if (err instanceof RemovalStopped) return log('info', 'an interrupted tenant removal was paused by the stop; the next start finishes it', { tenant: r.tenant });
        // The marker stays: writes stay refused, and the next start tries again.
        log('error', 'finishing an interrupted tenant removal failed', { tenant: r.tenant, err });
      } finally {
        release();
      }
    });
}

/** Deletes every range of the tenant, its jobs when forced, and last its record (marker included). */
class RemovalStopped extends Error {}

async function removeRanges(deps: TenantRemoveDeps, tenant: string, force: boolean, stopping: () => boolean = () => false): Promise<Omit<TenantRemoval, 'metadata_removed'>> {
  const shards = shardsForTenant(deps.placement, tenant);
  const removed: Record<string, number> = {};
  for (const s of shards) {
    const store = deps.stores[s] as ShardStore;
    store.env.resetReadTxn();
    for (const [db, n] of Object.entries(await countTenantRangeYielding(store.worker, s, tenant))) removed[db] = (removed[db] ?? 0) + n;
    const control = deps.pool.control(deps.pool.workerOf(s));
    const chunk = faultDeleting() ? 100 : REMOVE_CHUNK_ENTRIES;
    while ((await control.tenantDelete(s, tenant, chunk)) > 0) {
      if (faultDeleting()) process.kill(process.pid, 'SIGKILL');
      if (stopping()) throw new RemovalStopped();
    }
    store.env.resetReadTxn();
    const left = Object.entries(countTenantRange(store.worker, s, tenant)).filter(([, n]) => n > 0);
    if (left.length > 0) throw new DbxError('internal', `removing tenant '${tenant}' left entries on ${shardName(s)}: ${left.map(([db, n]) => `${db}=${n}`).join(', ')}`);
  }
  const jobsDropped = force ? await dropJobs(deps, tenant) : 0;
  await deps.meta.update(tenant, () => null);
  return {
    tenant,
    shards: shards.map(shardName),
    removed,
    aggregates: removed.heads ?? 0,
    events: removed.events ?? 0,
    jobs_dropped: jobsDropped,
  };
}

function refuseUndelivered(tenant: string, u: Undelivered): void {
  if (u.jobs === 0 && u.outbox === 0) return;
  throw new DbxError(
    'tenant_busy',
    `tenant '${tenant}' has ${u.jobs + u.outbox} undelivered plugin job(s) (${u.jobs} queued, ${u.outbox} not yet queued): let them deliver, clear the dead ones (dbx queue clear), or remove with --force`,
    { tenant, queued_jobs: u.jobs, unqueued_events: u.outbox },
  );
}

function wantsTenant(deps: TenantRemoveDeps, tenant: string): boolean {
  return deps.plugins.list().some((p) => p.enabled && (p.tenants.length === 0 || p.tenants.includes(tenant)));
}

function undelivered(deps: TenantRemoveDeps, tenant: string): Undelivered {
  const jobs = deps.plugins.dispatcher.openJobs({ tenant }).length;
  if (!wantsTenant(deps, tenant)) return { jobs, outbox: 0 };
  let outbox = 0;
  for (const s of shardsForTenant(deps.placement, tenant)) {
    const store = deps.stores[s] as ShardStore;
    store.env.resetReadTxn();
    let seen = 0;
    for (const { value: key } of store.outbox.getRange({ start: deps.plugins.queue.position(s) + 1 })) {
      if (++seen > OUTBOX_SCAN_MAX) break;
      if (key[0] === tenant) outbox++;
    }
  }
  return { jobs, outbox };
}

/** Waits (bounded) until the queue has taken every outbox entry committed so far on the tenant's shards. */
async function settleOutbox(deps: TenantRemoveDeps, tenant: string): Promise<void> {
  if (!wantsTenant(deps, tenant)) return;
  const shards = shardsForTenant(deps.placement, tenant);
  const targets = shards.map((s) => {
    const store = deps.stores[s] as ShardStore;
    store.env.resetReadTxn();
    return store.outboxHigh();
  });
  const deadline = Date.now() + OUTBOX_SETTLE_MS;
  while (shards.some((s, i) => deps.plugins.queue.position(s) < (targets[i] as number)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Drops the tenant's queued jobs (their events are gone), those being delivered right now too: their
 * outcome finds them gone and they are neither retried nor written back (Dispatcher.forget).
 */
async function dropJobs(deps: TenantRemoveDeps, tenant: string): Promise<number> {
  await deps.plugins.dispatcher.settle();
  const jobs = deps.plugins.dispatcher.openJobs({ tenant });
  if (jobs.length === 0) return 0;
  await deps.plugins.queue.removeJobs(jobs.map((j) => [j.plugin, j.event_id] as [string, string]));
  deps.plugins.dispatcher.forget(jobs);
  deps.plugins.dispatcher.schedule();
  return jobs.length;
}
