/**
 * `/v1/tenants…` and `/v1/tenant-meta…` (issue 12): tenant placement, quotas, write rates and
 * views, for a token holding `tenant.admin`.
 *
 * Reading (views, listings) is scoped like every tenant check: a token sees the tenants it is valid
 * for. Changing placement, quotas or rates is the hosting operator's: it needs a token valid for
 * every tenant (`--tenant '*'`, or a root token) — a tenant's own admin must not lift its quota.
 *
 * The listings live under `/v1/tenant-meta`, not `/v1/tenants/<word>`, because any word there is
 * also a valid tenant id.
 */
import { z } from 'zod';
import { DbxError, allowsTenant, tenantSchema, type TokenClaims } from '../core/index.js';
import { defineRoute, type RouteSpec } from './route-spec.js';
import { isServerAdmin } from './routes-system.js';
import type { TenantService } from './tenant-service.js';

const tenantParams = z.strictObject({ tenant: tenantSchema });
const shardText = z.union([z.string().min(1).max(32), z.number().int().min(0).max(1_000_000).transform(String)]);
const assignBody = z.strictObject({ shard: shardText });
const quotaBody = z.strictObject({ max_aggregates: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });
const limitBody = z.strictObject({
  writes_per_sec: z.number().positive().max(10_000_000),
  burst: z.number().int().min(1).max(100_000_000).optional(),
});
const listQuery = z.strictObject({ shard: z.string().min(1).max(32).optional() });

// What the routes answer (RouteSpec.response: /openapi.json publishes them; never used to serialise).
const count = z.number().int().min(0);
const shardId = z.string().regex(/^shard-\d{4,}$/);
const TenantViewAnswer = z.object({
  tenant: z.string(),
  shard: shardId.nullable().describe('its shard in multi-tenant mode; null when tenants are hashed over every shard'),
  shards: z.array(shardId),
  assigned: z.boolean(),
  aggregates: count,
  events: count,
  bytes: count.describe('approximate: events × the mean stored size of a sample of them, plus heads likewise'),
  quota: z.object({ max_aggregates: count, used: count }).nullable(),
  rate_limit: z.object({ writes_per_sec: z.number(), burst: count }).nullable(),
  plugins: z.object({ pending: count, dead: count, lag_ms: count }),
  move: z.object({ phase: z.string(), from: shardId, to: shardId, started_at: z.string() }).nullable(),
  removing: z.object({ started_at: z.string() }).nullable().describe('set while a removal of the tenant is under way (it resumes at the next start)'),
});
const MetaEntryAnswer = z.object({
  tenant: z.string(),
  shard: shardId.optional(),
  quota: count.optional(),
  count: count.optional(),
  writes_per_sec: z.number().optional(),
  burst: count.optional(),
});
const PlacementAnswer = z.object({
  tenant: z.string(),
  shard: shardId,
  changed: z.boolean(),
  move: z.record(z.string(), z.unknown()).optional().describe('what the live move reported, when data was moved'),
  note: z.string().optional(),
});
const ClearedAnswer = z.object({ tenant: z.string(), cleared: z.boolean() });

function operatorOnly(claims: TokenClaims): void {
  if (isServerAdmin(claims) || claims.tenants.includes('*')) return;
  throw new DbxError('forbidden', "changing tenant placement, quotas or rates needs a token valid for every tenant (--tenant '*')");
}

function visible(claims: TokenClaims, tenant: string): void {
  if (!allowsTenant(claims, tenant)) throw new DbxError('forbidden', `token is not valid for tenant '${tenant}'`);
}

export function tenantRoutes(service: TenantService): RouteSpec[] {
  const common = { action: 'tenant.admin', tenantScope: 'none' as const };
  return [
    defineRoute({
      ...common,
      method: 'GET',
      url: '/v1/tenants',
      operationId: 'listTenants',
      response: z.object({ items: z.array(TenantViewAnswer) }),
      summary: 'Every tenant this token may see: shard, aggregates, events, approximate bytes, quota, write rate, plugin lag',
      handler: async ({ principal }) => ({ items: await service.views(principal.claims, allowsTenant) }),
    }),
    defineRoute({
      ...common,
      method: 'GET',
      url: '/v1/tenants/:tenant',
      operationId: 'getTenant',
      response: TenantViewAnswer,
      summary: 'One tenant: shard, aggregates, events, approximate bytes, quota, write rate, plugin lag',
      params: tenantParams,
      handler: ({ params, principal }) => {
        visible(principal.claims, params.tenant);
        return service.view(params.tenant);
      },
    }),
    defineRoute({
      ...common,
      method: 'GET',
      url: '/v1/tenant-meta',
      operationId: 'listTenantMeta',
      response: z.object({ items: z.array(MetaEntryAnswer), shard_count: count }),
      summary: 'Tenants with an explicit shard, quota or write rate (`dbx tenant list`), optionally those on one shard',
      query: listQuery,
      handler: ({ query, principal }) => ({
        items: service.list(query?.shard).filter((e) => allowsTenant(principal.claims, e.tenant)),
        shard_count: service.shardCount,
      }),
    }),
    defineRoute({
      ...common,
      method: 'GET',
      url: '/v1/tenant-meta/stats',
      operationId: 'getTenantShardStats',
      response: z.object({ shards: z.record(z.string(), count), shard_count: count }),
      summary: 'Explicit tenant assignments per shard (`dbx tenant stats`)',
      authorize: operatorOnly,
      handler: () => {
        return { shards: service.stats(), shard_count: service.shardCount };
      },
    }),
    defineRoute({
      ...common,
      method: 'PUT',
      url: '/v1/tenants/:tenant/shard',
      operationId: 'assignTenantShard',
      response: PlacementAnswer,
      errors: [409],
      summary: 'Assign the tenant to a shard (`shard-0003` or 3); a tenant with data is moved live, or refused 409 tenant_not_empty',
      params: tenantParams,
      body: assignBody,
      authorize: operatorOnly,
      handler: ({ params, body }) => {
        return service.assign(params.tenant, body.shard);
      },
    }),
    defineRoute({
      ...common,
      method: 'DELETE',
      url: '/v1/tenants/:tenant/shard',
      operationId: 'unassignTenantShard',
      response: PlacementAnswer,
      errors: [409],
      summary: 'Remove the explicit assignment (hashing applies again; a tenant with data is moved, or refused 409)',
      params: tenantParams,
      authorize: operatorOnly,
      handler: ({ params }) => {
        return service.unassign(params.tenant);
      },
    }),
    defineRoute({
      ...common,
      method: 'PUT',
      url: '/v1/tenants/:tenant/quota',
      operationId: 'setTenantQuota',
      response: MetaEntryAnswer,
      summary: 'Set the most aggregates the tenant may hold (creating one more is 403 quota_exceeded)',
      params: tenantParams,
      body: quotaBody,
      authorize: operatorOnly,
      handler: ({ params, body }) => {
        return service.setQuota(params.tenant, body.max_aggregates);
      },
    }),
    defineRoute({
      ...common,
      method: 'DELETE',
      url: '/v1/tenants/:tenant/quota',
      operationId: 'clearTenantQuota',
      response: ClearedAnswer,
      summary: "Clear the tenant's aggregate quota",
      params: tenantParams,
      authorize: operatorOnly,
      handler: async ({ params }) => {
        return { tenant: params.tenant, cleared: await service.clearQuota(params.tenant) };
      },
    }),
    defineRoute({
      ...common,
      method: 'POST',
      url: '/v1/tenants/:tenant/quota/recalc',
      operationId: 'recalcTenantQuota',
      response: z.object({ tenant: z.string(), count }),
      summary: "Recount the tenant's aggregates from the stored heads",
      params: tenantParams,
      authorize: operatorOnly,
      handler: async ({ params }) => {
        return { tenant: params.tenant, count: await service.recalc(params.tenant) };
      },
    }),
    defineRoute({
      ...common,
      method: 'PUT',
      url: '/v1/tenants/:tenant/limit',
      operationId: 'setTenantLimit',
      response: MetaEntryAnswer,
      summary: "Limit the tenant's writes (events per second, burst); beyond is 429 rate_limited with Retry-After",
      params: tenantParams,
      body: limitBody,
      authorize: operatorOnly,
      handler: ({ params, body }) => {
        return service.setLimit(params.tenant, { writes_per_sec: body.writes_per_sec, burst: body.burst ?? null });
      },
    }),
    defineRoute({
      ...common,
      method: 'DELETE',
      url: '/v1/tenants/:tenant/limit',
      operationId: 'clearTenantLimit',
      response: ClearedAnswer,
      summary: "Clear the tenant's write rate limit",
      params: tenantParams,
      authorize: operatorOnly,
      handler: async ({ params }) => {
        return { tenant: params.tenant, cleared: await service.clearLimit(params.tenant) };
      },
    }),
  ];
}
