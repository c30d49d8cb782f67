/**
 * Streamed reads (issue 13 items 5 and 6): exports of a type (`GET /v1/export`), the types an
 * export can name (`GET /v1/export/types`) and one aggregate's events from a version on
 * (`GET /v1/aggregates/{type}/{id}/replay`). Bodies are produced chunk by chunk as the socket
 * drains (a Readable over a generator: backpressure, never the whole answer in memory), so their
 * size is bounded by the store, not by `page_limit`.
 *
 * An error found before the first byte (bad query, 403, a CSV with too many columns) is an answer
 * in the error model; one found mid-stream (a forged head) aborts the chunked response without its
 * last chunk, which every HTTP client reports as a failed transfer, never as a short file.
 */
import { Readable } from 'node:stream';
import { z } from 'zod';
import { aggregateIdSchema, aggregateTypeSchema, allowsResource, notFound, shardFor, type EventRecord, type PlacementSettings } from '../core/index.js';
import type { ShardStore } from '../shard-worker/index.js';
import { authorize, type Principal } from './auth.js';
import { exportTypes, prepareExport, type ExportSource } from './export.js';
import * as responses from './response-schemas.js';
import { defineRoute, queryBool, queryInt, type RouteSpec } from './route-spec.js';

export const REPLAY_CONTENT_TYPE = 'application/x-ndjson';
const CHUNK_BYTES = 64 * 1024;
const aggregateParams = z.strictObject({ type: aggregateTypeSchema, id: aggregateIdSchema });

/** Rows of an export are limited to the aggregates the token covers (none left out for `*`). */
function allowFor(principal: Principal): ((type: string, id: string) => boolean) | undefined {
  const { resources } = principal.claims;
  if (resources.length === 0 || resources.includes('*') || resources.includes('*.*')) return undefined;
  return (type, id) => allowsResource(principal.claims, type, id);
}

/** A byte stream over string chunks; `onClose` runs once however the stream ends. */
function streamOf(chunks: AsyncIterable<string>, onClose: () => void): Readable {
  const stream = Readable.from(chunks, { objectMode: false, highWaterMark: CHUNK_BYTES });
  stream.once('close', onClose);
  return stream;
}

/** One aggregate's events after `skip`, at most `take`, one JSON record per line. */
async function* replayLines(events: Iterable<EventRecord>, shown: (e: EventRecord) => EventRecord): AsyncGenerator<string> {
  let chunk = '';
  for (const event of events) {
    chunk += `${JSON.stringify(shown(event))}\n`;
    if (chunk.length >= CHUNK_BYTES) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

export function exportRoutes(source: ExportSource & { placement: PlacementSettings }): RouteSpec[] {
  const { visibility } = source;
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/export',
      operationId: 'exportAggregates',
      response: [
        { contentType: 'text/csv', schema: responses.ExportCsv },
        { contentType: 'application/json', schema: responses.ExportJson },
      ],
      summary:
        'Export the active aggregates of one type as one document, streamed (chunked): text/csv (`__aggregate_id`, the schema columns, then every other state key) or application/json (an array of `{ __aggregate_type, __aggregate_id, __version, __merkle_root, …state }`), sorted by id, from one point-in-time snapshot',
      action: 'aggregate.read',
      query: z.strictObject({
        type: aggregateTypeSchema,
        format: z.enum(['csv', 'json']).optional(),
        pretty: queryBool.optional(),
      }),
      handler: async ({ query, tenant, principal, reply }) => {
        authorize(principal, 'aggregate.read', { type: query.type });
        const allow = allowFor(principal);
        const prepared = await prepareExport(source, {
          tenant,
          type: query.type,
          format: query.format ?? 'csv',
          pretty: query.pretty ?? false,
          ...(allow ? { allow } : {}),
        });
        reply
          .header('content-type', prepared.contentType)
          .header('content-disposition', `attachment; filename="${prepared.filename}"`)
          .header('cache-control', 'no-store');
        return streamOf(prepared.chunks(), () => prepared.release());
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/export/types',
      operationId: 'listExportTypes',
      response: responses.ExportTypes,
      summary: 'The aggregate types an export can name, with their active aggregates that the token may read → { items: [{ aggregate_type, aggregates }] }',
      action: 'aggregate.read',
      query: z.strictObject({ type: aggregateTypeSchema.optional() }),
      handler: async ({ query, tenant, principal }) => {
        const allow = allowFor(principal);
        const items = await exportTypes(source, tenant, {
          ...(query.type !== undefined ? { type: query.type } : {}),
          allowType: (type) => allowsResource(principal.claims, type),
          ...(allow ? { allow } : {}),
        });
        return { items };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/aggregates/:type/:id/replay',
      operationId: 'replayAggregateEvents',
      response: { contentType: REPLAY_CONTENT_TYPE, schema: responses.EventLines },
      errors: [404],
      summary:
        "An aggregate's events in version order after `skip`, at most `take` (default: all), streamed as application/x-ndjson (one event record per line, the format POST /v1/import reads)",
      action: 'aggregate.read',
      resource: (p: { type: string; id: string }) => ({ type: p.type, id: p.id }),
      params: aggregateParams,
      query: z.strictObject({ skip: queryInt().optional(), take: queryInt().optional() }),
      handler: ({ params, query, tenant, reply }) => {
        visibility.assertVisible(tenant, params.type, params.id);
        const store = source.stores[shardFor(source.placement, tenant, params.type, params.id)] as ShardStore;
        if (!store.getHeadMeta(tenant, params.type, params.id)) throw notFound(`aggregate ${params.type}/${params.id}`);
        const skip = query.skip ?? 0;
        if (query.take === 0) {
          reply.header('content-type', REPLAY_CONTENT_TYPE);
          return '';
        }
        // One range = one LMDB snapshot: versions skip+1 … skip+take, found by key (O(log n), not a scan).
        const events = store.eventRange(tenant, params.type, params.id, skip, query.take);
        reply.header('content-type', REPLAY_CONTENT_TYPE).header('cache-control', 'no-store');
        return streamOf(replayLines(events, (e) => visibility.event(tenant, e)), () => {});
      },
    }),
  ];
}
