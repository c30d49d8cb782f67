/**
 * `/v1/tenants/{tenant}/export`, `…/import` and `DELETE /v1/tenants/{tenant}` (issue 12 item 6):
 * a tenant's data as one NDJSON file, loaded back into an empty tenant, or removed. A token holding
 * `tenant.admin` that is valid for the tenant exports and imports it; removal destroys data and is
 * the hosting operator's: it needs a token valid for every tenant, like placement changes.
 */
import { Readable } from 'node:stream';
import { z } from 'zod';
import { DbxError, allowsTenant, tenantSchema, type TokenClaims } from '../core/index.js';
import { defineRoute, queryBool, type RouteSpec } from './route-spec.js';
import { IMPORT_CONTENT_TYPE, importLineSchema } from './routes-import.js';
import { isServerAdmin } from './routes-system.js';
import { importTenant, prepareTenantExport, type TenantDataDeps } from './tenant-export.js';
import { removeTenant, type TenantRemoveDeps } from './tenant-remove.js';

const tenantParams = z.strictObject({ tenant: tenantSchema });
const count = z.number().int().min(0);

const ImportAnswer = z.object({ tenant: z.string(), lines: count, imported: count, skipped: count, aggregates_created: count, aggregates: count });
const RemovalAnswer = z.object({
  tenant: z.string(),
  shards: z.array(z.string()),
  removed: z.record(z.string(), count).describe('entries removed per database'),
  aggregates: count,
  events: count,
  jobs_dropped: count,
  metadata_removed: z.boolean(),
});
const ExportLines = z.string().describe('NDJSON: every event of every aggregate of the tenant, one EventRecord per line, grouped by aggregate in version order (what POST /v1/import reads)');

function visible(claims: TokenClaims, tenant: string): void {
  if (!allowsTenant(claims, tenant)) throw new DbxError('forbidden', `token is not valid for tenant '${tenant}'`);
}

export function tenantDataRoutes(deps: TenantDataDeps & TenantRemoveDeps): RouteSpec[] {
  const common = { action: 'tenant.admin', tenantScope: 'none' as const, params: tenantParams };
  return [
    defineRoute({
      ...common,
      method: 'GET',
      url: '/v1/tenants/:tenant/export',
      operationId: 'exportTenant',
      response: { contentType: IMPORT_CONTENT_TYPE, schema: ExportLines },
      errors: [409],
      summary:
        'Every aggregate of the tenant with its whole history, streamed as NDJSON (one event record per line with hash and merkle_root): the format POST /v1/import reads and `dbx tenant check` verifies offline. Headers X-EventDBX-Aggregates and X-EventDBX-Events give the counts',
      handler: async ({ params, principal, reply }) => {
        visible(principal.claims, params.tenant);
        const prepared = await prepareTenantExport(deps, params.tenant);
        reply
          .header('content-type', IMPORT_CONTENT_TYPE)
          .header('content-disposition', `attachment; filename="${params.tenant}.ndjson"`)
          .header('cache-control', 'no-store')
          .header('x-eventdbx-aggregates', String(prepared.aggregates))
          .header('x-eventdbx-events', String(prepared.events));
        const stream = Readable.from(prepared.chunks(), { objectMode: false, highWaterMark: 64 * 1024 });
        stream.once('close', () => prepared.release());
        return stream;
      },
    }),
    defineRoute({
      ...common,
      method: 'POST',
      url: '/v1/tenants/:tenant/import',
      operationId: 'importTenant',
      response: ImportAnswer,
      errors: [409],
      stream: { contentType: IMPORT_CONTENT_TYPE, line: importLineSchema(deps.limits) },
      query: z.strictObject({
        /** A re-run after a failed import: the tenant may hold what the failed run committed. */
        resume: queryBool.optional(),
      }),
      summary:
        'Load a tenant export (NDJSON, Content-Type: application/x-ndjson) into an empty tenant (409 tenant_not_empty otherwise; `?resume=true` re-runs a failed import): every line needs hash and merkle_root, and both are recomputed and compared',
      handler: async ({ params, query, principal, request, reply }) => {
        visible(principal.claims, params.tenant);
        if (principal.claims.limits.write_events !== null && principal.claims.limits.write_events !== undefined) {
          throw new DbxError('forbidden', 'a tenant import needs a token without a write limit');
        }
        const body = request.body as Readable | undefined;
        if (!body || typeof (body as Partial<Readable>).setEncoding !== 'function') {
          throw new DbxError('invalid_input', `send the export with Content-Type: ${IMPORT_CONTENT_TYPE}`);
        }
        try {
          return await importTenant(deps, params.tenant, body, { resume: query?.resume ?? false });
        } catch (err) {
          // Whatever of the body is unread stays unread: the connection is not reused.
          reply.header('connection', 'close');
          throw err;
        }
      },
    }),
    defineRoute({
      ...common,
      method: 'DELETE',
      url: '/v1/tenants/:tenant',
      operationId: 'removeTenant',
      response: RemovalAnswer,
      errors: [409],
      query: z.strictObject({ force: queryBool.optional() }),
      summary:
        "Remove the tenant: every data range on every shard, its assignment, quota and rate limit (schemas and tokens stay). Refused 409 tenant_busy while it has undelivered plugin jobs unless `?force=true` (which drops them), or while a move, export or import holds it. Needs a token valid for every tenant",
      handler: ({ params, query, principal }) => {
        if (!isServerAdmin(principal.claims) && !principal.claims.tenants.includes('*')) {
          throw new DbxError('forbidden', "removing a tenant needs a token valid for every tenant (--tenant '*')");
        }
        return removeTenant(deps, params.tenant, { force: query?.force ?? false });
      },
    }),
  ];
}
