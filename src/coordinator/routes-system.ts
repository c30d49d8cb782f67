/** Health, metrics and status. */
import { DbxError, allowsTenant, parseInput, tenantSchema, type Config, type TokenClaims } from '../core/index.js';
import type { Metrics } from './metrics.js';
import type { PluginService } from './plugin-service.js';
import type { Reader } from './reader.js';
import * as responses from './response-schemas.js';
import { OTHER_TENANTS } from './tenant-metrics.js';
import { defineRoute, type RouteSpec } from './route-spec.js';

/** What `/v1/status` reports; the port is only known once the listener is up. */
export interface StatusSource {
  config: Config;
  dataDir: string;
  workers: number;
  port: () => number;
  /** Throws `unauthorized` unless the header carries a valid token (no action needed). */
  authenticate: (authorization: string | undefined) => TokenClaims;
}

/**
 * The full status (pid, data dir, every tenant's aggregate count) is for a server administrator:
 * a token holding the `*` action for every tenant (an empty tenant list with `*` covers them all,
 * DESIGN §7), like the CLI's own `cli.token`. `tenant.admin` is not enough: it administers one
 * tenant and must not learn about the others or the host.
 */
export function isServerAdmin(claims: TokenClaims): boolean {
  const root = claims.actions.some((a) => a === '*' || a === '*.*');
  return root && (claims.tenants.length === 0 || claims.tenants.includes('*'));
}

/** Routes that need a valid token but no particular action (they declare `action: null`). */
export const ANY_TOKEN_ROUTES: ReadonlySet<string> = new Set(['GET /v1/status']);

export function systemRoutes(deps: { metrics: Metrics; reader: Reader; startedAt: string; status: StatusSource; plugins?: PluginService }): RouteSpec[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/health',
      operationId: 'getHealth',
      response: responses.Health,
      summary: 'Liveness: answers once the server accepts writes',
      action: null,
      handler: () => ({ status: 'ok' }),
    }),
    defineRoute({
      method: 'GET',
      url: '/metrics',
      operationId: 'getMetrics',
      response: { contentType: 'text/plain', schema: responses.MetricsText },
      summary: 'Prometheus metrics (token with metrics.read, or open when [metrics] public = true)',
      action: 'metrics.read',
      handler: async ({ reply, principal }) => {
        (await deps.reader.aggregateCounts()).forEach((count, shard) => deps.metrics.aggregatesPerShard.set({ shard: String(shard) }, count));
        deps.metrics.uptime.set((Date.now() - Date.parse(deps.startedAt)) / 1000);
        deps.plugins?.updateGauges();
        reply.header('content-type', deps.metrics.registry.contentType);
        const text = await deps.metrics.registry.metrics();
        // Open metrics ([metrics] public = true, no token) must not name tenants: a caller without a
        // token learns nothing about who is hosted here. Per-tenant series need `metrics.read`.
        // A token of some tenants sees theirs only (not the rollup, which sums others).
        const claims = principal.claims;
        const plugins = deps.plugins?.list() ?? [];
        // Open metrics name only server-wide plugins: a tenant's plugin's name may carry its tenant's.
        if (claims.jti === 'anonymous') {
          const serverWide = new Set(plugins.filter((d) => d.tenants.length === 0).map((d) => d.name));
          return tenantSeriesOnly(text, () => false, (plugin) => serverWide.has(plugin));
        }
        if (isServerAdmin(claims)) return text;
        // Plugins too: only those bound to its tenants (as GET /v1/plugins lists them).
        const own = new Set(plugins.filter((d) => d.tenants.length > 0 && d.tenants.every((t) => allowsTenant(claims, t))).map((d) => d.name));
        // A token that names its tenants is a tenant's scraper: the server-wide series (requests,
        // commits, memory of the process…) describe every tenant's traffic, so it gets only samples
        // labelled with its tenants or its plugins. A token without a tenant list is the operator's.
        const tenantScoped = claims.tenants.length > 0 && !claims.tenants.includes('*');
        const filtered = tenantSeriesOnly(text, (tenant) => allowsTenant(claims, tenant), (plugin) => own.has(plugin), tenantScoped);
        return tenantScoped ? await withOwnTenantSamples(filtered, claims.tenants, deps.metrics) : filtered;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/status',
      operationId: 'getStatus',
      response: responses.Status,
      summary: 'Server status for `dbx status`: pid, port, uptime, restriction, shards, workers (a `*` token); other tokens get the tenant view without pid, paths or counts',
      action: null,
      handler: async ({ request }) => {
        const { config, dataDir, workers, port, authenticate } = deps.status;
        const claims = authenticate(request.headers.authorization);
        const common = {
          port: port(),
          uptime_secs: Math.max(0, Math.floor((Date.now() - Date.parse(deps.startedAt)) / 1000)),
          started_at: deps.startedAt,
          restrict: config.restrict,
          durability: config.storage.durability,
        };
        if (!isServerAdmin(claims)) {
          // Any other token sees what a client of its tenant may rely on, and nothing of the host or
          // of other tenants. Its tenant is checked like on every route (403 outside the token).
          const raw = request.headers['x-tenant-id'];
          const tenant = parseInput(tenantSchema, typeof raw === 'string' && raw.length > 0 ? raw : 'default', 'header.x-tenant-id');
          if (!allowsTenant(claims, tenant)) throw new DbxError('forbidden', `token is not valid for tenant '${tenant}'`);
          return { scope: 'tenant', tenant, ...common };
        }
        return {
          scope: 'server',
          pid: process.pid,
          ...common,
          shards: config.tenants.shard_count,
          workers,
          data_dir: dataDir,
          // Every tenant's aggregates: `dbx config --shard-count` refuses a non-empty store.
          aggregates: (await deps.reader.aggregateCounts()).reduce((a, b) => a + b, 0),
          // Delivery lag per plugin (`dbx status` shows it): how far read models are behind.
          plugins: (deps.plugins?.counts() ?? []).map((c) => ({ name: c.plugin, enabled: c.enabled, pending: c.pending, dead: c.dead, lag_secs: Math.round(c.lag_ms / 100) / 10 })),
        };
      },
    }),
  ];
}

/**
 * A tenant's scraper sees its own tenant-labelled series even when its tenant is not among the
 * `metrics_top_n` (then summed into `_other`, which it is not shown): the missing samples are
 * added, exact, inside their families (the exposition format wants a family's samples together).
 */
async function withOwnTenantSamples(text: string, tenants: readonly string[], metrics: Metrics): Promise<string> {
  const source = metrics.tenantSource;
  if (!source) return text;
  const has = (family: string, labels: string): boolean => text.includes(`${family}{${labels}}`);
  const exact = await source.exact(tenants);
  const additions = new Map<string, string[]>();
  const add = (family: string, labels: string, value: number): void => {
    if (has(family, labels)) return;
    const lines = additions.get(family) ?? [];
    lines.push(`${family}{${labels}} ${value}`);
    additions.set(family, lines);
  };
  for (const tenant of tenants) {
    const label = `tenant="${tenant}"`;
    add('eventdbx_tenant_events_appended_total', label, exact.appended.get(tenant) ?? 0);
    for (const kind of ['aggregates', 'events', 'bytes'] as const) {
      const value = exact.storage[kind].get(tenant);
      if (value !== undefined) add('eventdbx_tenant_storage', `${label},kind="${kind}"`, value);
    }
  }
  if (additions.size === 0) return text;
  const lines = text.split('\n');
  for (const [family, samples] of additions) {
    const type = lines.findIndex((l) => l.startsWith(`# TYPE ${family} `));
    if (type < 0) continue;
    let at = type + 1;
    while (at < lines.length && (lines[at]?.startsWith(`${family}{`) || lines[at]?.startsWith(`${family} `))) at++;
    lines.splice(at, 0, ...samples);
  }
  return lines.join('\n');
}

/**
 * The metrics text without the samples whose tenant `keep` (or plugin `keepPlugin`) refuses, nor the
 * tenant rollup (HELP/TYPE lines stay); with `labelledOnly`, without samples that carry neither label.
 */
export function tenantSeriesOnly(text: string, keep: (tenant: string) => boolean, keepPlugin: (plugin: string) => boolean = () => true, labelledOnly = false): string {
  return text
    .split('\n')
    .filter((line) => {
      if (line.startsWith('#')) return true;
      const tenant = /[{,]tenant="([^"]*)"/.exec(line);
      if (tenant && (tenant[1] === OTHER_TENANTS || !keep(tenant[1] as string))) return false;
      const plugin = /[{,]plugin="([^"]*)"/.exec(line);
      if (plugin) return keepPlugin(plugin[1] as string);
      return tenant !== null || !labelledOnly || line.length === 0;
    })
    .join('\n');
}
