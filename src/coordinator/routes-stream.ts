/**
 * GET /v1/stream (issue 13): the tenant's events in commit order after a position. Without
 * `Accept: text/event-stream` it answers one page, `{ items, next_position }`; with it, a live
 * Server-Sent Events stream (stream-session.ts) that resumes from `Last-Event-ID`.
 *
 * The rules of GET /v1/events hold: action `events.read`, rows limited to the token's resource
 * patterns, hidden types left out, hidden fields stripped, a filter on a hidden field refused.
 */
import { z } from 'zod';
import { DbxError, allowsResource, type Config, type EventRecord as EventRecordType, type TokenClaims } from '../core/index.js';
import { matchesEvent, parseFilter, type FilterLimits } from '../core/filter.js';
import { authorize, type Principal } from './auth.js';
import { EventRecord, StreamEvents } from './response-schemas.js';
import { defineRoute, queryInt, type RouteSpec } from './route-spec.js';
import type { SchemaVisibility } from './schema-visibility.js';
import type { StreamHub } from './stream.js';
import { POSITION_CHARS_MAX } from './stream-position.js';
import { StreamSession } from './stream-session.js';

export interface StreamRouteDeps {
  hub: StreamHub;
  limits: { list_page_size: number; page_limit: number; query: Config['query'] };
  visibility: SchemaVisibility;
  /** Verifies the request's token again (revocation, expiry): live sessions re-check on each heartbeat. */
  authenticate: (header: string | undefined) => TokenClaims;
}

const StreamPage = z
  .object({
    items: z.array(EventRecord),
    next_position: z.string().describe('Position after the last entry read: pass it as `after` to continue (equal to `after` at the head)'),
  })
  .describe('Events in commit order, as GET /v1/events/{event_id} returns them');

export function streamRoutes(deps: StreamRouteDeps): RouteSpec[] {
  const { hub, limits, visibility } = deps;
  const filterLimits: FilterLimits = { chars_max: limits.query.filter_chars_max, depth_max: limits.query.filter_depth_max };
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/stream',
      operationId: 'readStream',
      summary:
        "The tenant's events in commit order after a position (`after`: a token, `start` or `end`): one page `{ items, next_position }`, or live Server-Sent Events with `Accept: text/event-stream` (each `id:` is the position after its event; resume with `Last-Event-ID`)",
      action: 'events.read',
      query: z.strictObject({
        after: z.string().min(1).max(POSITION_CHARS_MAX).optional(),
        take: queryInt().optional(),
        filter: z.string().optional(),
      }),
      response: [
        { contentType: 'application/json', schema: StreamPage },
        { contentType: 'text/event-stream', schema: StreamEvents },
      ],
      handler: async ({ query, tenant, principal, request, reply }) => {
        visibility.assertFilterVisible(tenant, undefined, 'event', query.filter, filterLimits);
        const filter = query.filter !== undefined ? parseFilter(query.filter, filterLimits) : undefined;
        const matches = (event: EventRecordType): boolean => !filter || matchesEvent(filter, event);
        const allow = allowOf(principal, visibility, tenant);
        const live = (request.headers.accept ?? '').includes('text/event-stream');
        if (!live) {
          const from = await hub.resolve(tenant, query.after, 'query.after');
          return page(hub, tenant, from.seqs, Math.min(query.take ?? limits.list_page_size, limits.page_limit), limits.query, allow, matches, (e) => visibility.event(tenant, e));
        }
        if (query.take !== undefined) throw new DbxError('invalid_input', 'take applies to a page read; a live stream (Accept: text/event-stream) has no end');
        if (hub.sessionCount >= hub.settings.subscribers_max) {
          throw new DbxError('unavailable', `too many live subscribers (${hub.settings.subscribers_max}, [stream] subscribers_max); retry later`);
        }
        // An EventSource that reconnects sends the last id it got: that wins over the URL's `after`.
        const lastEventId = request.headers['last-event-id'];
        const resumeAt = typeof lastEventId === 'string' && lastEventId.length > 0 ? { text: lastEventId, where: 'header.last-event-id' } : { text: query.after, where: 'query.after' };
        const from = await hub.resolve(tenant, resumeAt.text, resumeAt.where);
        const header = request.headers.authorization;
        reply.hijack();
        let unregister = (): void => {};
        const session = new StreamSession(
          reply.raw,
          {
            hub,
            tenant,
            seqs: from.seqs,
            allow,
            matches,
            present: (e) => visibility.event(tenant, e),
            recheck: () => authorize({ claims: deps.authenticate(header), tenant }, 'events.read'),
          },
          () => unregister(),
        );
        unregister = hub.register(session);
        session.start();
        return reply;
      },
    }),
  ];
}

/** Which aggregates the caller sees: the token's resource patterns, minus hidden types. */
function allowOf(principal: Principal, visibility: SchemaVisibility, tenant: string): (type: string, id: string) => boolean {
  const { resources } = principal.claims;
  const all = resources.length === 0 || resources.includes('*') || resources.includes('*.*');
  const own = all ? undefined : (type: string, id: string) => allowsResource(principal.claims, type, id);
  return visibility.allow(tenant, own).allow ?? (() => true);
}

/**
 * One page: up to `take` visible events after `from`, reading at most `[query] scan_rows_max`
 * entries or `scan_time_max_ms`. `next_position` is after the last entry *read* (skipped ones
 * included), so a page cut short by the scan bound continues where it stopped.
 */
async function page(
  hub: StreamHub,
  tenant: string,
  from: number[],
  take: number,
  query: Config['query'],
  allow: (type: string, id: string) => boolean,
  matches: (event: EventRecordType) => boolean,
  present: (event: EventRecordType) => EventRecordType,
): Promise<{ items: EventRecordType[]; next_position: string }> {
  const next = [...from];
  const items: EventRecordType[] = [];
  if (take > 0) {
    const bounds = await hub.bounds(tenant);
    hub.scan(tenant, next, bounds, query.scan_rows_max, query.scan_time_max_ms, (i, seq, value) => {
      next[i] = seq;
      if (!allow(value[0], value[1])) return true;
      const event = hub.event(tenant, i, value);
      if (event !== undefined && matches(event)) items.push(present(event));
      return items.length < take;
    });
  }
  return { items, next_position: hub.encode(tenant, next) };
}
