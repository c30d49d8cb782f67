/**
 * `GET /v1/events`: which rows a filter and sort read, and in what order (issue 13 items 3, 4).
 *
 * - lookup: `event_id = X` / `IN [...]` reads `event_ids` (one key per id, O(log n)).
 * - time:   `event_type`, `created_at` or `event_id` ranges, or a sort by created_at (or event_id
 *           while no import skewed ids and times) read `event_index` ranges, merged over event
 *           types and shards by (created_at, event_id); entries are checked against the key
 *           conditions before any event is read.
 * - key:    otherwise the `events` database in (type, id, version) order, narrowed to the types
 *           (and ids) an `aggregate_type` (`aggregate_id`) condition names; a full scan without.
 * A sort the plan's order does not give reads the plan's whole scope and keeps the top rows
 * (paged by keyset cursors). Events never change, so every order here is stable under writes.
 */
import { DbxError, type ArchiveScope, type EventRecord, type Page } from '../core/index.js';
import { compareEventIds, compareEventsBy, compileFilter, matchesEvent, parseSort, type FilterExpr, type FilterLimits, type SortKey } from '../core/filter.js';
import { constraintsOf, type IndexConstraints, type QueryExplain } from '../core/filter-plan.js';
import { KEY_MAX, compareIdParts, eventIdOfParts, eventIdParts, idTimeMs, type EventKey, type ShardStore } from '../shard-worker/index.js';
import {
  eventCursor,
  isSortedCursor,
  isTimeCursor,
  parseEventCursor,
  assertPosition,
  parseSortedCursor,
  parseTimeCursor,
  positionFields,
  type PositionKind,
  queryFingerprint,
  sortedCursor,
  splitCursor,
  timeCursor,
  wrongCursor,
  type EventCursor,
  type TimeCursor,
  assertCursorInTypes,
} from './cursor.js';
import { QueryTrace, type PlanExplain } from './explain.js';
import { compareStrings, mergeSorted, type ScanBounds } from './merge.js';
import { boundedPage, sortedPage, type Listing, type Row } from './paging.js';

export type AllowAggregate = (type: string, id: string) => boolean;

export interface EventListQuery {
  allow?: AllowAggregate;
  take: number;
  cursor?: string;
  filter?: string;
  sort?: string;
  scope: ArchiveScope;
  bounds: ScanBounds & { filter: FilterLimits };
  explain?: boolean;
}

export type ExplainedPage<T> = Page<T> & { explain?: QueryExplain };

const NATURAL = ['aggregate_type', 'aggregate_id', 'version'];
const EVENT_NARROWING =
  "list one aggregate's events (/v1/aggregates/{type}/{id}/events), filter on event_type or a created_at range (indexed), sort by created_at, or drop the sort and page with the cursor";
/** Event ids an `event_id IN [...]` reads one by one; a longer list is refused rather than slow. */
const LOOKUP_IDS_MAX = 10_000;

interface Ctx {
  tenant: string;
  stores: ShardStore[];
  query: EventListQuery;
  filter: FilterExpr | undefined;
  cons: IndexConstraints;
  trace: QueryTrace;
  /** `archived` when the caller already read it (the key plan reads it once per aggregate anyway). */
  visible: (store: ShardStore, type: string, id: string, archived?: boolean) => boolean;
}

export function listEventPage(tenant: string, stores: ShardStore[], query: EventListQuery): ExplainedPage<EventRecord> {
  const filter = query.filter !== undefined ? compileFilter(query.filter, 'event', query.bounds.filter) : undefined;
  const cons = constraintsOf(filter, 'event');
  const keys = query.sort !== undefined ? parseSort(query.sort, 'event') : undefined;
  const trace = new QueryTrace(query.explain === true, filter, 'event');
  const ctx: Ctx = { tenant, stores, query, filter, cons, trace, visible: visibility(tenant, query) };
  const { body, rejected } = query.cursor !== undefined ? splitCursor(query.cursor) : { body: undefined, rejected: 0 };
  const listing: Listing = { rejectedBefore: rejected, maxScan: filter ? query.bounds.max_scan : null, unindexed: cons.residual };
  const ready = stores.every((s) => s.eventIndexReady());
  const skew = ready ? Math.max(0, ...stores.map((s) => s.timeSkewMs(tenant))) : 0;
  const timeOrder = keys !== undefined ? servedByTime(keys, skew) : undefined;
  const fingerprint = queryFingerprint(['event', query.scope, keys, query.filter ?? '']);
  const sorted = (rows: Iterable<Row<EventRecord>>, sortKeys: SortKey[]) => sortedEvents(rows, sortKeys, body, fingerprint, query, trace);
  let plan: PlanExplain;
  let page: Page<EventRecord>;

  if (cons.eventIds !== undefined) {
    if (cons.eventIds.length > LOOKUP_IDS_MAX) throw new DbxError('invalid_input', `event_id IN [...] may name at most ${LOOKUP_IDS_MAX} ids`);
    plan = planOf(cons, 'index_lookup', 'event_ids (event_id → event)', cons.eventIds.map((id) => `event_id = ${id}`), 'sorted', 'top_k');
    page = sorted(lookupRows(ctx, cons.eventIds), keys ?? [{ field: 'event_id', descending: false }]);
  } else if (ready && (cons.eventTypes !== undefined || cons.timeMin !== undefined || cons.timeMax !== undefined || cons.idMin !== undefined || cons.idMax !== undefined || timeOrder !== undefined)) {
    const descending = timeOrder ?? false;
    const bounds = timeBounds(cons, skew);
    plan = planOf(cons, 'index_range', 'event_index (event_type, created_at, event_id)', timeRanges(cons, bounds, stores.length), `created_at${descending ? ' desc' : ''}, event_id`, keys === undefined ? 'none' : timeOrder !== undefined ? 'index' : 'top_k');
    if (skew > 0 && (cons.idMin !== undefined || cons.idMax !== undefined)) plan.notes = [`imported events have ids up to ${skew} ms away from their created_at: the id range reads that much more time`];
    if (keys === undefined || timeOrder !== undefined) {
      if (body !== undefined && !isTimeCursor(body)) throw wrongCursor('t:/td: (time order)');
      const cursor = body !== undefined ? parseTimeCursor(body) : undefined;
      if (cursor && cursor.descending !== descending) throw wrongCursor(descending ? 'td:' : 't:');
      page = boundedPage(timeRows(ctx, bounds, descending, cursor), query.take, query.bounds, trace, listing);
    } else {
      page = sorted(timeRows(ctx, bounds, false, undefined), keys);
    }
  } else {
    const served = keys === undefined || followsIndex(keys, NATURAL);
    plan = planOf(cons, cons.aggregateTypes !== undefined ? 'index_range' : 'full_scan', 'events (aggregate_type, aggregate_id, version)', keyRangeText(cons), 'aggregate_type, aggregate_id, version', keys === undefined ? 'none' : served ? 'index' : 'top_k');
    if (!ready && (cons.eventTypes !== undefined || cons.timeMin !== undefined || cons.timeMax !== undefined || cons.idMin !== undefined || cons.idMax !== undefined)) {
      plan.notes = ['event_index is not built for data written before it existed: it is built at the next write to each shard; until then this scans'];
    }
    if (served) {
      if (body !== undefined && (isTimeCursor(body) || isSortedCursor(body))) throw wrongCursor('a:/r: (key order)');
      const cursor = body !== undefined ? parseEventCursor(body) : undefined;
      assertCursorInTypes(cursor, cons.aggregateTypes);
      page = boundedPage(keyRows(ctx, cursor), query.take, query.bounds, trace, listing);
    } else {
      page = sorted(keyRows(ctx, undefined), keys);
    }
  }
  return query.explain ? { ...page, explain: trace.result(plan, { rejectedBefore: rejected, maxScan: listing.maxScan }) } : page;
}

/** The sort's order is the time index's: created_at first (ties go by id), or event_id while ids and times agree. */
function servedByTime(keys: SortKey[], skew: number): boolean | undefined {
  const first = keys[0];
  if (first?.field === 'created_at' || (first?.field === 'event_id' && skew === 0)) return first.descending;
  return undefined;
}

function followsIndex(keys: SortKey[], natural: string[]): boolean {
  return keys.every((key, i) => !key.descending && natural[i] === key.field);
}

function sortedEvents(rows: Iterable<Row<EventRecord>>, keys: SortKey[], body: string | undefined, fingerprint: string, query: EventListQuery, trace: QueryTrace): Page<EventRecord> {
  if (body !== undefined && !isSortedCursor(body)) throw wrongCursor('s: (sorted)');
  const position = body !== undefined ? parseSortedCursor(body, fingerprint).p : undefined;
  if (position) assertPosition(position, positionFields(keys, EVENT_POSITION, ['aggregate_type', 'aggregate_id', 'version']));
  const after = position as unknown as EventRecord | undefined;
  const probe = probeOf(keys);
  return sortedPage(rows, query.take, query.bounds, trace, {
    compare: compareEventsBy(keys),
    ...(after ? { after } : {}),
    project: (e) => e,
    cursorOf: (e) => sortedCursor({ q: fingerprint, p: probe(e) }),
    narrowing: EVENT_NARROWING,
  });
}

/** What each sortable event field is in a cursor's position (as `probeOf` writes it); time ties go by event id. */
const EVENT_POSITION: Record<string, Record<string, PositionKind>> = {
  aggregate_type: { aggregate_type: 'string' },
  aggregate_id: { aggregate_id: 'string' },
  version: { version: 'integer' },
  merkle_root: { merkle_root: 'string' },
  event_type: { event_type: 'string' },
  created_at: { 'metadata.created_at': 'string', 'metadata.event_id': 'string' },
  event_id: { 'metadata.event_id': 'string' },
  hash: { hash: 'string' },
};

/** The fields of an event the comparator reads: what a keyset cursor must carry. */
function probeOf(keys: SortKey[]): (e: EventRecord) => Record<string, unknown> {
  const wants = new Set(keys.map((k) => k.field));
  return (e) => ({
    aggregate_type: e.aggregate_type,
    aggregate_id: e.aggregate_id,
    version: e.version,
    ...(wants.has('event_type') ? { event_type: e.event_type } : {}),
    ...(wants.has('hash') ? { hash: e.hash } : {}),
    ...(wants.has('merkle_root') ? { merkle_root: e.merkle_root } : {}),
    metadata: { event_id: e.metadata.event_id, created_at: e.metadata.created_at },
  });
}

/** Scope (archived or not: once per aggregate, from its head) and the token's resources. */
function visibility(tenant: string, query: EventListQuery): Ctx['visible'] {
  const cache = new Map<string, boolean>();
  return (store, type, id, archived) => {
    const key = `${type}\u0000${id}`;
    let ok = cache.get(key);
    if (ok === undefined) {
      const inScope = query.scope === 'all' || (archived ?? store.getHeadMeta(tenant, type, id)?.archived ?? false) === (query.scope === 'archived');
      ok = inScope && (!query.allow || query.allow(type, id));
      // Bounded: a time range interleaves many aggregates.
      if (cache.size > 100_000) cache.clear();
      cache.set(key, ok);
    }
    return ok;
  };
}

/** A row for an event the plan located: scope, token, then the filter on the record itself. */
function eventRow(ctx: Ctx, store: ShardStore, event: EventRecord | undefined, cursor: () => string): Row<EventRecord> {
  if (event === undefined) return { item: undefined, cursor };
  ctx.trace.read(event);
  const ok = !ctx.filter || matchesEvent(ctx.filter, event);
  return { item: ok ? event : undefined, rejected: !ok, cursor };
}

function* lookupRows(ctx: Ctx, ids: string[]): Generator<Row<EventRecord>> {
  const none = () => '';
  for (const id of [...ids].sort(compareEventIds)) {
    for (const store of ctx.stores) {
      ctx.trace.entries += 1;
      const key = store.eventIds.get(id);
      if (!key || key[0] !== ctx.tenant || !ctx.visible(store, key[1], key[2])) continue;
      yield eventRow(ctx, store, store.getEvent(key), none);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Time plan (event_index)

interface TimeBounds {
  low: number;
  high: number;
  idMin?: [number, number];
  idMax?: [number, number];
}

/** created_at bounds, with an event_id range turned into times (widened by the tenant's skew). */
function timeBounds(cons: IndexConstraints, skew: number): TimeBounds {
  const bounds: TimeBounds = { low: cons.timeMin ?? -Infinity, high: cons.timeMax ?? Infinity };
  if (cons.idMin !== undefined) {
    bounds.idMin = eventIdParts(cons.idMin);
    bounds.low = Math.max(bounds.low, idTimeMs(bounds.idMin[0]) - skew);
  }
  if (cons.idMax !== undefined) {
    bounds.idMax = eventIdParts(cons.idMax);
    bounds.high = Math.min(bounds.high, idTimeMs(bounds.idMax[0]) + skew);
  }
  return bounds;
}

interface IndexEntry {
  store: ShardStore;
  ms: number;
  high: number;
  low: number;
  type: string;
  id: string;
  version: number;
}

function compareEntries(a: IndexEntry, b: IndexEntry): number {
  return a.ms - b.ms || compareIdParts(a.high, a.low, b.high, b.low) || compareStrings(a.type, b.type) || compareStrings(a.id, b.id) || a.version - b.version;
}

function entryOfCursor(c: TimeCursor): Omit<IndexEntry, 'store'> {
  const [high, low] = eventIdParts(c.eventId);
  return { ms: c.ms, high, low, type: c.type, id: c.id, version: c.version };
}

function* timeRows(ctx: Ctx, bounds: TimeBounds, descending: boolean, cursor: TimeCursor | undefined): Generator<Row<EventRecord>> {
  const { tenant, cons, trace } = ctx;
  let { low, high } = bounds;
  const from = cursor ? (entryOfCursor(cursor) as IndexEntry) : undefined;
  // Resume at the cursor's millisecond: the rows before it in this order are not read again.
  if (from) {
    if (descending) high = Math.min(high, from.ms);
    else low = Math.max(low, from.ms);
  }
  if (low > high) return;
  const order = descending ? (a: IndexEntry, b: IndexEntry) => compareEntries(b, a) : compareEntries;
  const sources = ctx.stores.flatMap((store) => {
    const types = cons.eventTypes ?? [...store.eventTypes(tenant)];
    if (cons.eventTypes === undefined) trace.entries += types.length;
    return types.map((eventType) => mapRange(store, store.eventIndexRange(tenant, eventType, low, high, descending)));
  });
  const types = cons.aggregateTypes;
  const ids = cons.aggregateIds;
  for (const entry of mergeSorted(sources, order)) {
    if (from && order(entry, from) <= 0) continue;
    trace.entries += 1;
    const eventId = () => eventIdOfParts(entry.high, entry.low);
    const at = () => timeCursor({ descending, ms: entry.ms, eventId: eventId(), type: entry.type, id: entry.id, version: entry.version });
    // Key conditions on the entry itself: no event is read for a row they refuse.
    const keyed =
      (types === undefined || types.includes(entry.type)) &&
      (ids === undefined || ids.includes(entry.id)) &&
      (bounds.idMin === undefined || compareIdParts(entry.high, entry.low, bounds.idMin[0], bounds.idMin[1]) >= 0) &&
      (bounds.idMax === undefined || compareIdParts(entry.high, entry.low, bounds.idMax[0], bounds.idMax[1]) <= 0);
    if (!keyed) {
      yield { item: undefined, rejected: true, cursor: at };
      continue;
    }
    if (!ctx.visible(entry.store, entry.type, entry.id)) {
      yield { item: undefined, cursor: at };
      continue;
    }
    yield eventRow(ctx, entry.store, entry.store.getEvent([tenant, entry.type, entry.id, entry.version]), at);
  }
}

function* mapRange(store: ShardStore, range: Iterable<{ key: [string, string, number, number, number]; value: [string, string, number] }>): Generator<IndexEntry> {
  for (const { key, value } of range) yield { store, ms: key[2], high: key[3], low: key[4], type: value[0], id: value[1], version: value[2] };
}

function timeRanges(cons: IndexConstraints, bounds: TimeBounds, shards: number): string[] {
  const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : ms < 0 ? '-∞' : '+∞');
  const time = `created_at ${iso(bounds.low)} .. ${iso(bounds.high)}`;
  if (cons.eventTypes === undefined) return [`every event type (one seek each, on ${shards} shard(s)), ${time}`];
  return cons.eventTypes.map((t) => `event_type = ${t}, ${time}`);
}

// ---------------------------------------------------------------------------------------------
// Key plan (events database)

/** The (type[, id]) prefixes to read, in key order; [] = the tenant's whole range. */
function keyPrefixes(cons: IndexConstraints): [string, string?][] {
  if (cons.aggregateTypes === undefined) return [];
  if (cons.aggregateIds === undefined) return cons.aggregateTypes.map((t): [string] => [t]);
  return cons.aggregateTypes.flatMap((t) => (cons.aggregateIds as string[]).map((id): [string, string] => [t, id]));
}

function keyRangeText(cons: IndexConstraints): string[] {
  if (cons.aggregateTypes === undefined) return ["the tenant's every event"];
  return keyPrefixes(cons).map(([t, id]) => `${t}/${id ?? '*'}`);
}

function* keyRows(ctx: Ctx, cursor: EventCursor | undefined): Generator<Row<EventRecord>> {
  const prefixes = keyPrefixes(ctx.cons);
  if (ctx.cons.aggregateTypes === undefined) yield* keyRange(ctx, [ctx.tenant, '', '', 0], [ctx.tenant, KEY_MAX, '', 0], cursor);
  for (const [type, id] of prefixes) {
    const start: EventKey = id === undefined ? [ctx.tenant, type, '', 0] : [ctx.tenant, type, id, 0];
    const end: EventKey = id === undefined ? [ctx.tenant, type, KEY_MAX, 0] : [ctx.tenant, type, id, Number.MAX_SAFE_INTEGER];
    // Ranges wholly before the cursor are done.
    if (cursor && (compareStrings(type, cursor.type) || (id !== undefined ? compareStrings(id, cursor.id) : 0)) < 0) continue;
    yield* keyRange(ctx, start, end, cursor);
  }
}

function* keyRange(ctx: Ctx, start: EventKey, end: EventKey, cursor: EventCursor | undefined): Generator<Row<EventRecord>> {
  const { tenant, trace } = ctx;
  const resume: EventKey | undefined = cursor ? [tenant, cursor.type, cursor.id, cursor.version + 1] : undefined;
  const from = resume && compareEventKeys(resume, start) > 0 ? resume : start;
  if (compareEventKeys(from, end) >= 0) return;
  const sources = ctx.stores.map((store) =>
    // Stored form: events of aggregates the caller may not see are skipped without decrypting.
    store.storedEvents.getRange({ start: from, end }).map(({ key, value }) => ({ store, key, value })),
  );
  let lastAggregate = '';
  let listed = false;
  let archived = false;
  for (const { store, key, value } of mergeSorted(sources, (a, b) => compareEventKeys(a.key, b.key))) {
    trace.entries += 1;
    const aggregateKey = `${key[1]}\u0000${key[2]}`;
    if (aggregateKey !== lastAggregate) {
      lastAggregate = aggregateKey;
      archived = store.getHeadMeta(tenant, key[1], key[2])?.archived ?? false;
      listed = ctx.visible(store, key[1], key[2], archived);
    }
    const flag = archived;
    const at = () => eventCursor(flag, key[1], key[2], key[3]);
    yield listed ? eventRow(ctx, store, store.openEvent(value), at) : { item: undefined, cursor: at };
  }
}

function compareEventKeys(a: EventKey, b: EventKey): number {
  return compareStrings(a[1], b[1]) || compareStrings(a[2], b[2]) || a[3] - b[3];
}

function planOf(cons: IndexConstraints, plan: PlanExplain['plan'], index: string, ranges: string[], order: string, sort: PlanExplain['sort']): PlanExplain {
  return { plan, index, ranges, order, sort, indexed_fields: cons.indexed, unindexed_fields: cons.residual };
}
