/** Read routes (DESIGN §6), served from LMDB read transactions in the coordinator. */
import { z } from 'zod';
import { DbxError, SELECT_FIELDS_MAX, allowsResource, notFound, type ArchiveScope, type Config } from '../core/index.js';
import type { Principal } from './auth.js';
import type { QueryBounds, Reader } from './reader.js';
import * as responses from './response-schemas.js';
import { defineRoute, queryBool, queryInt, type RouteSpec } from './route-spec.js';
import { aggregateParams } from './routes-writes.js';
import { SchemaVisibility } from './schema-visibility.js';

type AggregateParams = z.infer<typeof aggregateParams>;
const resource = (p: AggregateParams) => ({ type: p.type, id: p.id });

const scopeFields = {
  include_archived: queryBool.optional(),
  archived_only: queryBool.optional(),
};
/** The filter's length is checked by the parser against `[query] filter_chars_max`, with its own message. */
const pageFields = {
  take: queryInt().optional(),
  // Sorted-list cursors carry the last row's sort values (keyset paging): up to ~600 characters.
  cursor: z.string().max(1024).optional(),
  filter: z.string().optional(),
  /** Adds `explain` to the answer: the index or scan used, and what this request read. */
  explain: queryBool.optional(),
};

function scopeOf(q: { include_archived?: boolean | undefined; archived_only?: boolean | undefined }): ArchiveScope {
  if (q.include_archived && q.archived_only) throw new DbxError('validation_failed', 'include_archived and archived_only cannot be combined', [{ path: 'query.archived_only', message: 'cannot be combined with include_archived' }]);
  return q.archived_only ? 'archived' : q.include_archived ? 'all' : 'active';
}

/**
 * Rows of a list are filtered to the aggregates the token covers (none filtered for `*`). Such a
 * token may not ask for `explain`: its counters (index entries read, rows scanned) count every
 * row the query touched, those it may not see too, so bisecting a filter would reveal them.
 */
function allowFor(principal: Principal, query: { explain?: boolean | undefined } = {}): { allow?: (type: string, id: string) => boolean } {
  const { resources } = principal.claims;
  if (resources.length === 0 || resources.includes('*') || resources.includes('*.*')) return {};
  if (query.explain === true) throw new DbxError('forbidden', 'explain=true counts rows outside this token\'s resources: it needs a token not limited to some aggregates');
  return { allow: (type, id) => allowsResource(principal.claims, type, id) };
}

export interface PageLimits {
  list_page_size: number;
  page_limit: number;
  query: Config['query'];
}

/** `visibility` applies the schemas' hidden / hidden_fields to every answer (schema-visibility.ts). */
export function readRoutes(reader: Reader, limits: PageLimits, visibility = new SchemaVisibility()): RouteSpec[] {
  const take = (requested: number | undefined, fallback: number): number => Math.min(requested ?? fallback, limits.page_limit);
  const { filter_chars_max, filter_depth_max, ...scan } = limits.query;
  const bounds: QueryBounds = { ...scan, filter: { chars_max: filter_chars_max, depth_max: filter_depth_max } };
  const listQuery = z.strictObject({ ...pageFields, sort: z.string().max(512).optional(), ...scopeFields });
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/aggregates',
      operationId: 'listAggregates',
      response: responses.AggregatePage,
      summary: 'List aggregates of every type, merged across shards in (type, id) order',
      action: 'aggregate.read',
      query: listQuery,
      handler: ({ query, tenant, principal }) => {
        visibility.assertFilterVisible(tenant, undefined, 'aggregate', query.filter, bounds.filter);
        visibility.assertExplainVisible(tenant, query.explain);
        return visibility.views(
          tenant,
          reader.listAggregates(tenant, { ...optional(query), ...visibility.allow(tenant, allowFor(principal, query).allow), take: take(query.take, limits.list_page_size), scope: scopeOf(query), bounds }),
        );
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/aggregates/:type',
      operationId: 'listAggregatesOfType',
      response: responses.AggregatePage,
      summary: 'List aggregates of one type',
      action: 'aggregate.read',
      resource: (p: { type: string }) => ({ type: p.type }),
      params: aggregateParams.pick({ type: true }),
      query: listQuery,
      handler: ({ query, params, tenant, principal }) => {
        // A hidden type lists as a type with no aggregates (its scan is not even started).
        if (visibility.hiddenType(tenant, params.type)) return { items: [], next_cursor: null };
        visibility.assertFilterVisible(tenant, params.type, 'aggregate', query.filter, bounds.filter);
        return visibility.views(
          tenant,
          reader.listAggregates(tenant, {
            ...optional(query),
            ...allowFor(principal, query),
            type: params.type,
            take: take(query.take, limits.list_page_size),
            scope: scopeOf(query),
            bounds,
          }),
        );
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/aggregates/:type/:id',
      operationId: 'getAggregate',
      response: responses.AggregateView,
      errors: [404, 500],
      summary: 'Get an aggregate (optionally as of an older version, rebuilt from the nearest snapshot)',
      action: 'aggregate.read',
      resource,
      params: aggregateParams,
      query: z.strictObject({ version: queryInt().optional(), include_events: queryBool.optional() }),
      handler: ({ query, params, tenant }) => {
        visibility.assertVisible(tenant, params.type, params.id);
        return visibility.view(
          tenant,
          reader.getAggregate(tenant, params.type, params.id, {
            ...(query.version !== undefined ? { version: query.version } : {}),
            includeEvents: query.include_events ?? false,
            eventsMax: limits.page_limit,
          }),
        );
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/aggregates/:type/:id/select',
      operationId: 'selectFields',
      response: responses.SelectResult,
      errors: [404, 500],
      summary: 'Select fields of the state by dot path (missing → null)',
      action: 'aggregate.read',
      resource,
      params: aggregateParams,
      query: z.strictObject({
        fields: z
          .string()
          .min(1)
          .transform((v) => v.split(',').map((f) => f.trim()).filter((f) => f.length > 0))
          .pipe(z.array(z.string().max(512)).min(1, 'name at least one field').max(SELECT_FIELDS_MAX)),
      }),
      handler: ({ query, params, tenant }) => {
        visibility.assertVisible(tenant, params.type, params.id);
        return visibility.select(tenant, params.type, reader.select(tenant, params.type, params.id, query.fields));
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/aggregates/:type/:id/events',
      operationId: 'listAggregateEvents',
      response: responses.EventPage,
      errors: [404],
      summary: "An aggregate's events in version order",
      action: 'aggregate.read',
      resource,
      params: aggregateParams,
      query: z.strictObject(pageFields),
      handler: ({ query, params, tenant }) => {
        visibility.assertVisible(tenant, params.type, params.id);
        visibility.assertFilterVisible(tenant, params.type, 'event', query.filter, bounds.filter);
        return visibility.events(tenant, reader.aggregateEvents(tenant, params.type, params.id, { ...optional(query), take: take(query.take, limits.list_page_size), bounds }));
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/aggregates/:type/:id/verify',
      operationId: 'verifyAggregate',
      response: responses.VerifyResult,
      errors: [404],
      summary: 'Recompute every hash and the Merkle root from the stored events',
      action: 'aggregate.read',
      resource,
      params: aggregateParams,
      handler: ({ params, tenant }) => {
        visibility.assertVisible(tenant, params.type, params.id);
        return reader.verify(tenant, params.type, params.id);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/aggregates/:type/:id/proof',
      operationId: 'getProof',
      response: responses.ProofResult,
      errors: [404],
      summary: 'RFC 6962 inclusion proof (?version&size) or consistency proof (?from_size&to_size)',
      action: 'aggregate.read',
      resource,
      params: aggregateParams,
      query: z.strictObject({
        version: queryInt(1).optional(),
        size: queryInt(1).optional(),
        from_size: queryInt(1).optional(),
        to_size: queryInt(1).optional(),
      }),
      handler: ({ query, params, tenant }) => {
        visibility.assertVisible(tenant, params.type, params.id);
        // One kind of proof per request: a parameter of the other kind would be silently ignored.
        const inclusion = query.version !== undefined || query.size !== undefined;
        const consistency = query.from_size !== undefined || query.to_size !== undefined;
        if (inclusion && consistency) {
          const message = 'give version&size (inclusion proof) or from_size&to_size (consistency proof), not both';
          throw new DbxError('validation_failed', message, [{ path: 'query', message }]);
        }
        for (const [given, lead] of [['size', 'version'], ['to_size', 'from_size']] as const) {
          if (query[given] !== undefined && query[lead] === undefined) {
            throw new DbxError('validation_failed', `${given} needs ${lead}`, [{ path: `query.${lead}`, message: `${given} needs ${lead}` }]);
          }
        }
        if (query.from_size !== undefined) return reader.consistencyProof(tenant, params.type, params.id, query.from_size, query.to_size);
        if (query.version !== undefined) return reader.inclusionProof(tenant, params.type, params.id, query.version, query.size);
        throw new DbxError('validation_failed', 'give version (inclusion proof) or from_size (consistency proof)', [{ path: 'query.version', message: 'give version (inclusion proof) or from_size (consistency proof)' }]);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/aggregates/:type/:id/snapshots',
      operationId: 'listSnapshots',
      response: responses.SnapshotPage,
      errors: [404],
      summary: "An aggregate's snapshots",
      action: 'aggregate.read',
      resource,
      params: aggregateParams,
      // Paged like every list (each snapshot carries a whole state; a snapshot_threshold of 1
      // makes one per event): the cursor is the last version returned.
      query: z.strictObject({ take: queryInt().optional(), cursor: z.string().regex(/^\d{1,15}$/, 'must be a version number').optional() }),
      handler: ({ query, params, tenant }) => {
        visibility.assertVisible(tenant, params.type, params.id);
        const limit = take(query.take, limits.list_page_size);
        const found = limit === 0 ? [] : reader.snapshots(tenant, params.type, params.id, { after: query.cursor !== undefined ? Number(query.cursor) : 0, take: limit + 1 });
        const page = found.slice(0, limit);
        return { items: page.map((s) => visibility.snapshot(tenant, s)), next_cursor: found.length > limit ? String(page.at(-1)?.version) : null };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/events',
      operationId: 'listEvents',
      response: responses.EventPage,
      summary: 'Events of every aggregate, in (type, id, version) order unless sorted',
      action: 'events.read',
      query: z.strictObject({ ...pageFields, sort: z.string().max(512).optional(), ...scopeFields }),
      handler: ({ query, tenant, principal }) => {
        visibility.assertFilterVisible(tenant, undefined, 'event', query.filter, bounds.filter);
        visibility.assertExplainVisible(tenant, query.explain);
        return visibility.events(
          tenant,
          reader.listEvents(tenant, { ...optional(query), ...visibility.allow(tenant, allowFor(principal, query).allow), take: take(query.take, limits.list_page_size), scope: scopeOf(query), bounds }),
        );
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/events/:event_id',
      operationId: 'getEvent',
      response: responses.EventRecord,
      errors: [404],
      summary: 'One event by its Snowflake id',
      action: 'events.read',
      params: z.strictObject({ event_id: z.string().regex(/^\d{1,20}$/, 'event_id must be a decimal Snowflake id') }),
      handler: ({ params, tenant, principal }) => {
        const event = reader.getEvent(tenant, params.event_id);
        // Outside the token's resources the answer is the absent one, byte for byte: a 403 here
        // would tell the caller that the id exists (and whose it is).
        if (!allowsResource(principal.claims, event.aggregate_type, event.aggregate_id)) throw notFound(`event ${params.event_id}`);
        if (visibility.hiddenType(tenant, event.aggregate_type)) throw notFound(`event ${params.event_id}`);
        return visibility.event(tenant, event);
      },
    }),
  ];
}

/** Drops undefined optional fields (exactOptionalPropertyTypes-friendly spreading). */
function optional(q: { cursor?: string | undefined; filter?: string | undefined; sort?: string | undefined; explain?: boolean | undefined }): {
  cursor?: string;
  filter?: string;
  sort?: string;
  explain?: boolean;
} {
  return {
    ...(q.explain === true ? { explain: true } : {}),
    ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
    ...(q.filter !== undefined ? { filter: q.filter } : {}),
    ...(q.sort !== undefined ? { sort: q.sort } : {}),
  };
}
