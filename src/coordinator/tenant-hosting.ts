/**
 * Multi-tenant hosting wired together (issue 12), so the server adds it in a few lines: the write
 * gate (rate, pauses, quota) on the Writer, the admin service and its routes, and the per-tenant
 * series of /metrics.
 */
import { DbxError, shardsForTenant, type Config, type PlacementSettings } from '../core/index.js';
import type { ShardStore } from '../shard-worker/index.js';
import type { Metrics } from './metrics.js';
import type { PluginService } from './plugin-service.js';
import { TenantAdmission, TenantGate, TenantRateLimits, TenantTraffic } from './tenant-gate.js';
import type { TenantMeta } from './tenant-meta.js';
import { topTenants } from './tenant-metrics.js';
import { TenantQuota } from './tenant-quota.js';
import { TenantService } from './tenant-service.js';
import { TenantStats } from './tenant-stats.js';
import type { Writer } from './writes.js';

/** The storage series of /metrics rescan the store at most this often (a scan reads every tenant's key range). */
const STORAGE_SCAN_MS = 5_000;

/** Write routes whose tenant's empty bucket is refused before the body is read. */
const WRITE_ROUTES = new Set([
  'POST /v1/aggregates/:type/:id',
  'POST /v1/aggregates/:type/:id/events',
  'POST /v1/events',
  'POST /v1/aggregates/:type/:id/patch',
  'POST /v1/aggregates/:type/:id/archive',
  'POST /v1/aggregates/:type/:id/restore',
  'POST /v1/batch',
  // Paced to the rate as it is read (tenant-gate.ts importSession); an empty bucket waits for no body.
  'POST /v1/import',
]);

export interface TenantHosting {
  service: TenantService;
  /**
   * A `preParsing` check (after authentication, before the body is read): a write of a tenant whose
   * rate bucket is empty is refused 429 here, at once or, when the tenant ignores Retry-After, after
   * a hold (the promise; see TenantRateLimits). The exact charge (events per request) is the gate's.
   */
  refuseEarly(method: string, route: string | undefined, tenant: string, reply: { header(name: string, value: string): unknown }): Promise<never> | undefined;
  quota: TenantQuota;
  admission: TenantAdmission;
  gate: TenantGate;
  close(): Promise<void>;
}

export function createTenantHosting(deps: {
  meta: TenantMeta;
  config: Config;
  placement: PlacementSettings;
  stores: readonly ShardStore[];
  writer: Writer;
  metrics: Metrics;
  plugins?: PluginService;
}): TenantHosting {
  const { meta, config, placement, stores } = deps;
  const admission = new TenantAdmission(config.tenants.write_pause_max_ms);
  admission.refuseWhen((tenant) =>
    meta.removing(tenant) ? new DbxError('unavailable', `tenant '${tenant}' is being removed; writes start a new, empty tenant once that finishes (nothing was written)`, { retry_after_secs: 1 }) : undefined,
  );
  const stats = new TenantStats(stores);
  const quota = new TenantQuota(meta, admission, (tenant) => stats.countAggregates(tenant, shardsForTenant(placement, tenant)));
  const rates = new TenantRateLimits(meta, {
    holdMaxMs: config.tenants.rate_limit_hold_max_ms,
    heldMax: config.tenants.rate_limit_held_max,
    heldTotalMax: config.tenants.rate_limit_held_total_max,
  });
  const traffic = new TenantTraffic();
  const gate = new TenantGate({
    placement,
    admission,
    rates,
    quota,
    traffic,
    headExists: (shard, tenant, type, id) => stores[shard]?.getHeadMeta(tenant, type, id) !== undefined,
  });
  deps.writer.gate = gate;
  const service = new TenantService({ meta, placement, admission, quota, rates, stats, ...(deps.plugins ? { plugins: deps.plugins } : {}) });
  const topN = config.tenants.metrics_top_n;
  deps.metrics.tenantSource = {
    appended: () => topTenants(traffic.appended, topN),
    storage: async () => {
      const usage = await stats.all(STORAGE_SCAN_MS);
      const pick = (field: 'aggregates' | 'events' | 'bytes') => topTenants(new Map([...usage].map(([t, u]) => [t, u[field]])), topN);
      return { aggregates: pick('aggregates'), events: pick('events'), bytes: pick('bytes') };
    },
    exact: async (tenants) => {
      const usage = await stats.all(STORAGE_SCAN_MS);
      const only = (value: (tenant: string) => number | undefined) => new Map(tenants.flatMap((t) => (value(t) !== undefined ? [[t, value(t) as number] as const] : [])));
      return {
        appended: new Map(tenants.map((t) => [t, traffic.appended.get(t) ?? 0])),
        storage: { aggregates: only((t) => usage.get(t)?.aggregates), events: only((t) => usage.get(t)?.events), bytes: only((t) => usage.get(t)?.bytes) },
      };
    },
  };
  meta.watch();
  return {
    service,
    refuseEarly: (method, route, tenant, reply) => {
      if (route === undefined || !WRITE_ROUTES.has(`${method} ${route}`)) return undefined;
      const refusal = rates.refuseIfEmpty(tenant);
      if (!refusal) return undefined;
      // The hold is full: a client with more connections than it may park pays a reconnect per 429.
      if (refusal.close) reply.header('connection', 'close');
      if (!refusal.held) throw refusal.error();
      return refusal.held.then(() => Promise.reject(refusal.error()));
    },
    quota,
    admission,
    gate,
    close: async () => {
      await quota.flush();
      await meta.close();
    },
  };
}
