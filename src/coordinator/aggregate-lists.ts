/**
 * `GET /v1/aggregates[/{type}]`: rows in (status, type, id) order from the aggregate index,
 * narrowed to the types an `aggregate_type` condition names (one range each) and, with ids too, to
 * point lookups. A sort the index order does not give reads the whole scope and keeps the top rows,
 * paged by keyset cursors (issue 13 item 4).
 *
 * Stable sorted pages: version, updated_at, merkle_root and archived change as events are appended,
 * so a keyset cursor over current values would repeat or skip an aggregate that moved between two
 * pages. Rows are therefore positioned by their values as of the listing's start, which never
 * change afterwards; the answer still shows each aggregate as it is now. The start is exact, not a
 * clock reading: the first page records each shard's global-stream sequence (gapless, assigned in
 * commit order inside the write transaction) in the same read snapshot as the heads it sorts, and
 * the cursor carries it. A later page reads the stream entries committed since (the cost: the
 * events appended while the listing pages) and positions each aggregate they touched by its
 * version before the first of them; one created since by its first version.
 */
import { ARCHIVE_EVENT, DbxError, RESTORE_EVENT, type AggregateView, type ArchiveScope, type Page } from '../core/index.js';
import { compareAggregatesBy, compileFilter, matchesAggregate, mentionsField, parseSort, type FilterExpr, type FilterLimits, type SortKey } from '../core/filter.js';
import { constraintsOf } from '../core/filter-plan.js';
import type { IndexKey, ShardStore, StoredHead } from '../shard-worker/index.js';
import {
  aggregateCursor,
  isSortedCursor,
  parseAggregateCursor,
  assertPosition,
  parseSortedCursor,
  positionFields,
  queryFingerprint,
  type PositionKind,
  sortedCursor,
  splitCursor,
  wrongCursor,
  type AggregateCursor,
  assertCursorInTypes,
} from './cursor.js';
import type { AllowAggregate, ExplainedPage } from './event-lists.js';
import { QueryTrace, type PlanExplain } from './explain.js';
import { compareStrings, mergeSorted, type ScanBounds } from './merge.js';
import { boundedPage, sortedPage, type Listing, type Row } from './paging.js';

export interface AggregateListQuery {
  allow?: AllowAggregate;
  type?: string;
  take: number;
  cursor?: string;
  filter?: string;
  sort?: string;
  scope: ArchiveScope;
  bounds: ScanBounds & { filter: FilterLimits };
  explain?: boolean;
}

const AGGREGATE_NARROWING =
  'list one type (/v1/aggregates/{type}) or one archive status, sort in index order (aggregate_type, aggregate_id ascending), or drop the sort and page with the cursor';

type View = (type: string, id: string, head: StoredHead) => AggregateView;

interface Ctx {
  tenant: string;
  stores: ShardStore[];
  filter: FilterExpr | undefined;
  trace: QueryTrace;
  allow: AllowAggregate | undefined;
  view: View;
}

/** A listed aggregate and the store it lives in (a sorted page reads its history there). */
interface Listed {
  view: AggregateView;
  store: ShardStore;
}

export function listAggregatePage(tenant: string, stores: ShardStore[], query: AggregateListQuery, view: View): ExplainedPage<AggregateView> {
  const filter = query.filter !== undefined ? compileFilter(query.filter, 'aggregate', query.bounds.filter) : undefined;
  let scope = query.scope;
  if (filter && scope === 'active' && mentionsField(filter, 'archived')) scope = 'all';
  const cons = constraintsOf(filter, 'aggregate');
  const types = query.type === undefined ? cons.aggregateTypes : cons.aggregateTypes === undefined || cons.aggregateTypes.includes(query.type) ? [query.type] : [];
  const trace = new QueryTrace(query.explain === true, filter, 'aggregate');
  const ctx: Ctx = { tenant, stores, filter, trace, allow: query.allow, view };
  const { body, rejected } = query.cursor !== undefined ? splitCursor(query.cursor) : { body: undefined, rejected: 0 };
  const listing: Listing = { rejectedBefore: rejected, maxScan: filter ? query.bounds.max_scan : null, unindexed: cons.residual };
  const keys = query.sort !== undefined ? parseSort(query.sort, 'aggregate') : undefined;
  // One archive status is listed in (type, id) order straight from the index: a sort in that order
  // is served (and paged) as the unsorted list. "All" lists active, then archived.
  const typed = query.type !== undefined;
  const served = keys === undefined || (scope !== 'all' && followsIndex(keys, typed ? ['aggregate_id'] : ['aggregate_type', 'aggregate_id'], typed ? ['aggregate_type'] : []));
  const lookups = types !== undefined && cons.aggregateIds !== undefined;
  const plan: PlanExplain = {
    plan: lookups ? 'index_lookup' : types !== undefined ? 'index_range' : 'full_scan',
    index: 'aggregate_index (status, aggregate_type, aggregate_id)',
    ranges: rangeText(scope, types, lookups ? cons.aggregateIds : undefined),
    order: scope === 'all' ? 'active first, then archived; each by aggregate_type, aggregate_id' : 'aggregate_type, aggregate_id',
    indexed_fields: query.type !== undefined ? ['aggregate_type (path)', ...cons.indexed] : cons.indexed,
    unindexed_fields: cons.residual,
    sort: keys === undefined ? 'none' : served ? 'index' : 'top_k',
  };
  let page: Page<AggregateView>;
  if (served) {
    if (body !== undefined && isSortedCursor(body)) throw wrongCursor('a:/r: (key order)');
    const cursor = body !== undefined ? parseAggregateCursor(body) : undefined;
    assertCursorInTypes(cursor, types);
    if (cursor && scope === 'archived' && !cursor.archived) throw new DbxError('invalid_input', 'invalid cursor: archived listings require archived cursor values');
    if (cursor && scope === 'active' && cursor.archived) throw new DbxError('invalid_input', 'invalid cursor: cursor points to archived aggregates but scope uses active records');
    const rows = mapRows(aggregateRows(ctx, scope, types, lookups ? cons.aggregateIds : undefined, cursor), (l) => l.view);
    page = boundedPage(rows, query.take, query.bounds, trace, listing);
  } else {
    page = sortedAggregates(ctx, keys as SortKey[], aggregateRows(ctx, scope, types, lookups ? cons.aggregateIds : undefined, undefined), body, query, [scope, query.type ?? null]);
  }
  return query.explain ? { ...page, explain: trace.result(plan, { rejectedBefore: rejected, maxScan: listing.maxScan }) } : page;
}

/**
 * True when sorting by `keys` gives the index order `natural` (ascending): the keys, minus fields
 * that are constant in the listing, are a prefix of it. Ties fall back to the natural order.
 */
function followsIndex(keys: SortKey[], natural: string[], constant: string[]): boolean {
  const rest = keys.filter((key) => !constant.includes(key.field));
  return rest.every((key, i) => !key.descending && natural[i] === key.field);
}

interface AsOfRow {
  sort: AggregateView;
  view: AggregateView;
}

function sortedAggregates(ctx: Ctx, keys: SortKey[], rows: Iterable<Row<Listed>>, body: string | undefined, query: AggregateListQuery, scope: unknown[]): Page<AggregateView> {
  if (body !== undefined && !isSortedCursor(body)) throw wrongCursor('s: (sorted)');
  const fingerprint = queryFingerprint(['aggregate', ...scope, keys, query.filter ?? '']);
  const cursor = body !== undefined ? parseSortedCursor(body, fingerprint) : undefined;
  if (cursor) assertPosition(cursor.p, positionFields(keys, AGGREGATE_POSITION, ['aggregate_type', 'aggregate_id']));
  // First page: the stream's position per shard, read before the heads (one snapshot: nothing
  // committed between the two reads).
  const marks = cursor?.m ?? Object.fromEntries(ctx.stores.map((store) => [String(store.shard), store.lastStreamSeq(ctx.tenant)]));
  const since = cursor ? changedSince(ctx, marks) : new Map<string, number>();
  const compare = compareAggregatesBy(keys);
  const wantsRoot = keys.some((k) => k.field === 'merkle_root');
  const positioned = mapRows(rows, (l): AsOfRow => ({ sort: valuesAtStart(ctx, l, since), view: l.view }));
  return sortedPage(positioned, query.take, query.bounds, ctx.trace, {
    compare: (a, b) => compare(a.sort, b.sort),
    ...(cursor ? { after: { sort: cursor.p as unknown as AggregateView, view: cursor.p as unknown as AggregateView } } : {}),
    project: (r) => r.view,
    cursorOf: (r) => {
      const { state: _state, snapshot_version: _snapshot, events: _events, ...values } = r.sort;
      if (!wantsRoot) delete (values as Partial<AggregateView>).merkle_root;
      return sortedCursor({ q: fingerprint, m: marks, p: values as unknown as Record<string, unknown> });
    },
    narrowing: AGGREGATE_NARROWING,
  });
}

/** What each sortable aggregate field is in a cursor's position (as `cursorOf` writes it). */
const AGGREGATE_POSITION: Record<string, Record<string, PositionKind>> = {
  aggregate_type: { aggregate_type: 'string' },
  aggregate_id: { aggregate_id: 'string' },
  version: { version: 'integer' },
  merkle_root: { merkle_root: 'string' },
  archived: { archived: 'boolean' },
  created_at: { created_at: 'string' },
  updated_at: { updated_at: 'string' },
};

/** Per aggregate touched since the marks: the first version committed after them. */
function changedSince(ctx: Ctx, marks: Record<string, number>): Map<string, number> {
  const first = new Map<string, number>();
  for (const store of ctx.stores) {
    const mark = marks[String(store.shard)];
    if (mark === undefined) throw new DbxError('invalid_input', 'invalid cursor: it was taken with another shard layout');
    for (const { value } of store.streamRange(ctx.tenant, mark)) {
      ctx.trace.entries += 1;
      const key = `${store.shard}\u0000${value[0]}\u0000${value[1]}`;
      const known = first.get(key);
      if (known === undefined || value[2] < known) first.set(key, value[2]);
    }
  }
  return first;
}

/** The aggregate's sort values at the listing's start (see the file comment); the view itself when untouched since. */
function valuesAtStart(ctx: Ctx, listed: Listed, since: Map<string, number>): AggregateView {
  const { view, store } = listed;
  const { aggregate_type: type, aggregate_id: id } = view;
  const firstNew = since.get(`${store.shard}\u0000${type}\u0000${id}`);
  if (firstNew === undefined || firstNew > view.version) return view;
  // Walking back over the events committed since: before an archive it was active, before a restore archived.
  let archived = view.archived;
  const newer = store.storedEvents.getRange({ start: [ctx.tenant, type, id, view.version], end: [ctx.tenant, type, id, firstNew - 1], reverse: true });
  for (const { value } of newer) {
    ctx.trace.records += 1;
    const event = JSON.parse(value) as StoredEventHead;
    if (event.event_type === ARCHIVE_EVENT) archived = false;
    else if (event.event_type === RESTORE_EVENT) archived = true;
  }
  // Created since the start: positioned by its first version (it was in no earlier page).
  const at = Math.max(1, firstNew - 1);
  const stored = store.storedEvents.get([ctx.tenant, type, id, at]);
  if (stored === undefined) return view;
  ctx.trace.records += 1;
  const event = JSON.parse(stored) as StoredEventHead;
  return { ...view, version: event.version, merkle_root: event.merkle_root, updated_at: event.metadata.created_at, archived: firstNew === 1 ? false : archived };
}

interface StoredEventHead {
  version: number;
  event_type: string;
  merkle_root: string;
  metadata: { created_at: string };
}

function* mapRows<A, B>(rows: Iterable<Row<A>>, map: (a: A) => B): Generator<Row<B>> {
  for (const row of rows) yield row.item === undefined ? (row as unknown as Row<B>) : { ...row, item: map(row.item) };
}

/** Every index entry in scope, in (status, type, id) order, with the aggregate when it is listed. */
function* aggregateRows(ctx: Ctx, scope: ArchiveScope, types: string[] | undefined, ids: string[] | undefined, cursor: AggregateCursor | undefined): Generator<Row<Listed>> {
  const statuses: ('a' | 'r')[] = scope === 'active' ? ['a'] : scope === 'archived' ? ['r'] : ['a', 'r'];
  for (const status of statuses) {
    // An archived cursor in an "all" listing means the active part is already done.
    if (cursor && cursor.archived && status === 'a') continue;
    const after = cursor && cursor.archived === (status === 'r') ? ([cursor.type, cursor.id] as [string, string]) : undefined;
    const keys = ids !== undefined ? lookupKeys(ctx, status, types as string[], ids, after) : types !== undefined ? typeRanges(ctx, status, types, after) : allKeys(ctx, status, after);
    for (const { store, key } of keys) {
      ctx.trace.entries += 1;
      const at = () => aggregateCursor(status === 'r', key[2], key[3]);
      const head = !ctx.allow || ctx.allow(key[2], key[3]) ? store.getHead(ctx.tenant, key[2], key[3]) : undefined;
      if (!head) {
        yield { item: undefined, cursor: at };
        continue;
      }
      const view = ctx.view(key[2], key[3], head);
      ctx.trace.read(view);
      const ok = !ctx.filter || matchesAggregate(ctx.filter, view);
      yield { item: ok ? { view, store } : undefined, rejected: !ok, cursor: at };
    }
  }
}

type Tagged = { store: ShardStore; key: IndexKey };

function allKeys(ctx: Ctx, status: 'a' | 'r', after: [string, string] | undefined): Iterable<Tagged> {
  return mergeSorted(
    ctx.stores.map((store) => tagged(store, store.indexRange(ctx.tenant, status, undefined, after))),
    compareIndexEntries,
  );
}

function* typeRanges(ctx: Ctx, status: 'a' | 'r', types: string[], after: [string, string] | undefined): Generator<Tagged> {
  for (const type of types) {
    if (after && compareStrings(type, after[0]) < 0) continue;
    const from = after && after[0] === type ? after : undefined;
    yield* mergeSorted(
      ctx.stores.map((store) => tagged(store, store.indexRange(ctx.tenant, status, type, from))),
      compareIndexEntries,
    );
  }
}

function* lookupKeys(ctx: Ctx, status: 'a' | 'r', types: string[], ids: string[], after: [string, string] | undefined): Generator<Tagged> {
  for (const type of types) {
    for (const id of ids) {
      if (after && (compareStrings(type, after[0]) || compareStrings(id, after[1])) <= 0) continue;
      const key: IndexKey = [ctx.tenant, status, type, id];
      for (const store of ctx.stores) if (store.index.get(key) !== undefined) yield { store, key };
    }
  }
}

function* tagged(store: ShardStore, keys: Iterable<IndexKey>): Generator<Tagged> {
  for (const key of keys) yield { store, key };
}

function compareIndexEntries(a: { key: IndexKey }, b: { key: IndexKey }): number {
  return compareStrings(a.key[2], b.key[2]) || compareStrings(a.key[3], b.key[3]);
}

function rangeText(scope: ArchiveScope, types: string[] | undefined, ids: string[] | undefined): string[] {
  const statuses = scope === 'all' ? ['active', 'archived'] : [scope];
  const parts = types === undefined ? ['every type'] : ids === undefined ? types.map((t) => `${t}/*`) : types.flatMap((t) => ids.map((id) => `${t}/${id}`));
  return statuses.flatMap((s) => parts.map((p) => `${s}: ${p}`));
}
