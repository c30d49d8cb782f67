/**
 * The read side, served in the coordinator straight from LMDB read transactions: readers never
 * block a shard's writer, an acknowledged write is already committed, and this spares each get the
 * ~250 µs wake-up of a worker thread. Cross-shard lists merge the shards' key-ordered ranges.
 */
import {
  DbxError,
  appendLeaf,
  applyEventToState,
  canonicalize,
  consistencyProof,
  frontierRoot,
  inclusionProof,
  leafHash,
  notFound,
  rootOf,
  selectPath,
  shardFor,
  shardsForTenant,
  type AggregateView,
  type ArchiveScope,
  type EventRecord,
  type JsonObject,
  type Page,
  type PlacementSettings,
  type SnapshotRecord,
  type VerifyResult,
} from '../core/index.js';
import {
  compareAggregatesBy,
  compareEventsBy,
  matchesAggregate,
  matchesEvent,
  mentionsField,
  parseFilter,
  parseSort,
  type FilterExpr,
  type FilterLimits,
  type SortKey,
} from '../core/filter.js';
import { ShardStore, type EventKey, type Head, type IndexKey, type StoredHead } from '../shard-worker/index.js';
import { aggregateCursor, eventCursor, parseAggregateCursor, parseEventCursor } from './cursor.js';
import { assertHeadIntact, verifyAggregate } from './verify.js';
import { ScanBudget, TopK, compareStrings, mergeSorted, type ScanBounds, type ScanLimit } from './merge.js';

/** Which aggregates the caller's token covers; absent = all of them. */
export type AllowAggregate = (type: string, id: string) => boolean;

/** `[query]` of config.toml: how much one list request may scan, and how big a filter may be. */
export interface QueryBounds extends ScanBounds {
  filter: FilterLimits;
}

export interface ListAggregatesQuery {
  allow?: AllowAggregate;
  type?: string;
  take: number;
  cursor?: string;
  filter?: string;
  sort?: string;
  scope: ArchiveScope;
  bounds: QueryBounds;
}

export interface ListEventsQuery {
  allow?: AllowAggregate;
  take: number;
  cursor?: string;
  filter?: string;
  sort?: string;
  scope: ArchiveScope;
  bounds: QueryBounds;
}

/** One index entry (or event key) a list visited; `item` is set when it is in the answer. */
interface Scanned<T> {
  item: T | undefined;
  cursor: () => string;
}

export class Reader {
  constructor(
    private readonly stores: ShardStore[],
    private readonly placement: PlacementSettings,
  ) {}

  private storeFor(tenant: string, type: string, id: string): ShardStore {
    return this.stores[shardFor(this.placement, tenant, type, id)] as ShardStore;
  }

  private tenantStores(tenant: string): ShardStore[] {
    return shardsForTenant(this.placement, tenant).map((s) => this.stores[s] as ShardStore);
  }

  private requireHead(store: ShardStore, tenant: string, type: string, id: string): StoredHead {
    const head = store.getHead(tenant, type, id);
    if (!head) throw notFound(`aggregate ${type}/${id}`);
    return head;
  }

  private view(type: string, id: string, head: StoredHead): AggregateView {
    return {
      aggregate_type: type,
      aggregate_id: id,
      version: head.version,
      state: head.state,
      merkle_root: head.merkle_root,
      archived: head.archived,
      created_at: head.created_at,
      updated_at: head.updated_at,
      ...(head.snapshot_version !== undefined ? { snapshot_version: head.snapshot_version } : {}),
    };
  }

  /** One stored event by version (the plugin dispatcher builds deliveries from it). */
  eventAt(tenant: string, type: string, id: string, version: number): EventRecord | undefined {
    for (const event of this.storeFor(tenant, type, id).eventRange(tenant, type, id, version - 1, 1)) return event;
    return undefined;
  }

  /** Every stored event of one aggregate, or of every aggregate of a type (active and archived), in order. */
  *eventsOf(tenant: string, type: string, id?: string): Generator<EventRecord> {
    if (id !== undefined) {
      yield* this.storeFor(tenant, type, id).eventRange(tenant, type, id, 0);
      return;
    }
    for (const store of this.tenantStores(tenant)) {
      for (const status of ['a', 'r'] as const) {
        for (const key of store.indexRange(tenant, status, type)) yield* store.eventRange(tenant, type, key[3], 0);
      }
    }
  }

  getAggregate(tenant: string, type: string, id: string, options: { version?: number; includeEvents?: boolean; eventsMax: number }): AggregateView {
    const store = this.storeFor(tenant, type, id);
    const head = this.requireHead(store, tenant, type, id);
    assertHeadIntact(type, id, head);
    const target = options.version === undefined ? head.version : Math.min(options.version, head.version);
    const view = target === head.version ? this.view(type, id, head) : this.rebuild(store, tenant, type, id, head, target);
    if (options.includeEvents) view.events = this.eventsUpTo(store, tenant, type, id, target, options.eventsMax);
    return view;
  }

  /** State at an older version: nearest snapshot ≤ target, then replay the events after it. */
  private rebuild(store: ShardStore, tenant: string, type: string, id: string, head: Head, target: number): AggregateView {
    const base = target > 0 ? store.nearestSnapshot(tenant, type, id, target) : undefined;
    let state: JsonObject = base?.snapshot.state ?? {};
    let last: EventRecord | undefined;
    if (target > 0) {
      for (const event of store.eventRange(tenant, type, id, base?.version ?? 0, target - (base?.version ?? 0))) {
        last = event;
        state = applyEventToState(state, last.event_type, last.payload);
      }
    }
    return {
      aggregate_type: type,
      aggregate_id: id,
      version: target,
      state,
      merkle_root: last?.merkle_root ?? base?.snapshot.merkle_root ?? rootOf([]),
      archived: head.archived,
      created_at: head.created_at,
      updated_at: last?.metadata.created_at ?? base?.snapshot.created_at ?? head.created_at,
      ...(base ? { snapshot_version: base.version } : {}),
    };
  }

  private eventsUpTo(store: ShardStore, tenant: string, type: string, id: string, version: number, max: number): EventRecord[] {
    const out: EventRecord[] = [];
    for (const event of store.eventRange(tenant, type, id, 0, Math.min(version, max))) out.push(event);
    return out;
  }

  select(tenant: string, type: string, id: string, fields: string[]): Record<string, unknown> {
    const store = this.storeFor(tenant, type, id);
    assertHeadIntact(type, id, this.requireHead(store, tenant, type, id));
    const state = store.getState(tenant, type, id) ?? {};
    // fromEntries defines own properties: a field named `__proto__` is answered like any other
    // (an assignment would hit the prototype setter and drop it).
    return Object.fromEntries(fields.map((field) => [field, selectPath(state, field)]));
  }

  aggregateEvents(tenant: string, type: string, id: string, query: { take: number; cursor?: string; filter?: string; bounds: QueryBounds }): Page<EventRecord> {
    const store = this.storeFor(tenant, type, id);
    const head = this.requireHead(store, tenant, type, id);
    let after = 0;
    if (query.cursor !== undefined) {
      const cursor = parseEventCursor(query.cursor);
      if (cursor.type !== type || cursor.id !== id) throw new DbxError('invalid_input', 'invalid cursor: cursor does not match the requested event scope');
      after = cursor.version;
    }
    const filter = query.filter ? parseFilter(query.filter, query.bounds.filter) : undefined;
    const items: EventRecord[] = [];
    if (query.take === 0) return { items, next_cursor: null };
    // A filter may skip most of a long history: past the scan budget the page ends early, with a
    // cursor after the last event read (not the last one returned).
    const budget = new ScanBudget(query.bounds.scan_rows_max, query.bounds.scan_time_max_ms);
    let stop: number | undefined;
    for (const event of store.eventRange(tenant, type, id, after)) {
      if (!filter || matchesEvent(filter, event)) items.push(event);
      if (items.length === query.take || budget.spend() !== undefined) {
        stop = event.version;
        break;
      }
    }
    return { items, next_cursor: stop !== undefined && stop < head.version ? eventCursor(head.archived, type, id, stop) : null };
  }

  listAggregates(tenant: string, query: ListAggregatesQuery): Page<AggregateView> {
    const filter = query.filter ? parseFilter(query.filter, query.bounds.filter) : undefined;
    let scope = query.scope;
    if (filter && scope === 'active' && mentionsField(filter, 'archived')) scope = 'all';
    if (query.sort !== undefined) {
      const keys = parseSort(query.sort, 'aggregate');
      // One archive status is listed in (type, id) order straight from the index: a sort in that
      // order is served (and paged) as the unsorted list. "All" lists active, then archived.
      const typed = query.type !== undefined;
      const indexed = scope !== 'all' && followsIndex(keys, typed ? ['aggregate_id'] : ['aggregate_type', 'aggregate_id'], typed ? ['aggregate_type'] : []);
      if (!indexed) {
        if (query.cursor !== undefined) throw new DbxError('invalid_input', '--cursor cannot be combined with --sort');
        const rows = this.aggregatesInScope(tenant, query.type, scope, undefined, filter, query.allow);
        return sortedPage(rows, compareAggregatesBy(keys), query.take, query.bounds, AGGREGATE_NARROWING);
      }
    }
    const cursor = query.cursor !== undefined ? parseAggregateCursor(query.cursor) : undefined;
    if (cursor && scope === 'archived' && !cursor.archived) throw new DbxError('invalid_input', 'invalid cursor: archived listings require archived cursor values');
    if (cursor && scope === 'active' && cursor.archived) throw new DbxError('invalid_input', 'invalid cursor: cursor points to archived aggregates but scope uses active records');
    return boundedPage(this.aggregatesInScope(tenant, query.type, scope, cursor, filter, query.allow), query.take, query.bounds);
  }

  /** Every index entry in scope, in (status, type, id) order, with the view when it is listed. */
  private *aggregatesInScope(
    tenant: string,
    type: string | undefined,
    scope: ArchiveScope,
    cursor: { archived: boolean; type: string; id: string } | undefined,
    filter: FilterExpr | undefined,
    allow: AllowAggregate | undefined,
  ): Generator<Scanned<AggregateView>> {
    const statuses: ('a' | 'r')[] = scope === 'active' ? ['a'] : scope === 'archived' ? ['r'] : ['a', 'r'];
    for (const status of statuses) {
      // An archived cursor in an "all" listing means the active part is already done.
      if (cursor && cursor.archived && status === 'a') continue;
      const after = cursor && cursor.archived === (status === 'r') ? ([cursor.type, cursor.id] as [string, string]) : undefined;
      const stores = this.tenantStores(tenant);
      const sources = stores.map((store) => tagged(store, store.indexRange(tenant, status, type, after)));
      for (const { store, key } of mergeSorted(sources, compareIndexEntries)) {
        const at = () => aggregateCursor(status === 'r', key[2], key[3]);
        const head = !allow || allow(key[2], key[3]) ? store.getHead(tenant, key[2], key[3]) : undefined;
        const view = head ? this.view(key[2], key[3], head) : undefined;
        yield { item: view && (!filter || matchesAggregate(filter, view)) ? view : undefined, cursor: at };
      }
    }
  }

  listEvents(tenant: string, query: ListEventsQuery): Page<EventRecord> {
    const filter = query.filter ? parseFilter(query.filter, query.bounds.filter) : undefined;
    if (query.sort !== undefined) {
      const keys = parseSort(query.sort, 'event');
      // Events are scanned in (type, id, version) order: a sort in that order is the unsorted list.
      if (!followsIndex(keys, ['aggregate_type', 'aggregate_id', 'version'], [])) {
        if (query.cursor !== undefined) throw new DbxError('invalid_input', '--cursor cannot be combined with --sort');
        const rows = this.eventsInScope(tenant, query.scope, undefined, filter, query.allow);
        return sortedPage(rows, compareEventsBy(keys), query.take, query.bounds, EVENT_NARROWING);
      }
    }
    const cursor = query.cursor !== undefined ? parseEventCursor(query.cursor) : undefined;
    return boundedPage(this.eventsInScope(tenant, query.scope, cursor, filter, query.allow), query.take, query.bounds);
  }

  /** Every stored event of the tenant after the cursor, in key order, with the record when listed. */
  private *eventsInScope(
    tenant: string,
    scope: ArchiveScope,
    cursor: { type: string; id: string; version: number } | undefined,
    filter: FilterExpr | undefined,
    allow: AllowAggregate | undefined,
  ): Generator<Scanned<EventRecord>> {
    const stores = this.tenantStores(tenant);
    const sources = stores.map((store) => {
      const start: EventKey = cursor ? [tenant, cursor.type, cursor.id, cursor.version + 1] : [tenant, '', '', 0];
      // Stored form: events of aggregates the caller may not see are skipped without decrypting.
      return store.storedEvents.getRange({ start, end: [tenant, '\uffff', '', 0] as unknown as EventKey }).map(({ key, value }) => ({ store, key, value }));
    });
    let lastAggregate = '';
    let archived = false;
    let listed = false;
    for (const { store, key, value } of mergeSorted(sources, (a, b) => compareEventKeys(a.key, b.key))) {
      const aggregateKey = `${key[1]}\u0000${key[2]}`;
      if (aggregateKey !== lastAggregate) {
        // Once per aggregate, not per event: the token's resource globs and the head lookup.
        lastAggregate = aggregateKey;
        archived = store.getHeadMeta(tenant, key[1], key[2])?.archived ?? false;
        listed = (!allow || allow(key[1], key[2])) && (scope === 'all' || (scope === 'archived') === archived);
      }
      const flag = archived;
      const at = () => eventCursor(flag, key[1], key[2], key[3]);
      if (!listed) {
        yield { item: undefined, cursor: at };
        continue;
      }
      const event = store.openEvent(value);
      yield { item: !filter || matchesEvent(filter, event) ? event : undefined, cursor: at };
    }
  }

  getEvent(tenant: string, eventId: string): EventRecord {
    for (const store of this.tenantStores(tenant)) {
      const key = store.eventIds.get(eventId);
      if (!key || key[0] !== tenant) continue;
      const event = store.getEvent(key);
      if (event !== undefined) return event;
    }
    throw notFound(`event ${eventId}`);
  }

  /** Replays the stored history and compares it with every stored derivative (see verify.ts). */
  verify(tenant: string, type: string, id: string): Promise<VerifyResult> {
    const store = this.storeFor(tenant, type, id);
    return verifyAggregate(store, tenant, type, id, this.requireHead(store, tenant, type, id));
  }

  private leaves(store: ShardStore, tenant: string, type: string, id: string, count: number): string[] {
    const out: string[] = [];
    // Leaf hashes stay readable in the stored form: proofs need no key and decrypt nothing.
    for (const json of store.storedEventRange(tenant, type, id, 0, count)) out.push((JSON.parse(json) as EventRecord).hash);
    return out;
  }

  inclusionProof(tenant: string, type: string, id: string, version: number, size?: number): Record<string, unknown> {
    const store = this.storeFor(tenant, type, id);
    const head = this.requireHead(store, tenant, type, id);
    const treeSize = size ?? head.version;
    if (treeSize > head.version || version < 1 || version > treeSize) throw new DbxError('invalid_input', `version must be within 1..size and size within 1..${head.version}`);
    const leaves = this.leaves(store, tenant, type, id, treeSize);
    return {
      aggregate_type: type,
      aggregate_id: id,
      version,
      tree_size: treeSize,
      leaf_hash: leaves[version - 1],
      root: rootOf(leaves),
      proof: inclusionProof(leaves, version - 1),
    };
  }

  consistencyProof(tenant: string, type: string, id: string, fromSize: number, toSize?: number): Record<string, unknown> {
    const store = this.storeFor(tenant, type, id);
    const head = this.requireHead(store, tenant, type, id);
    const to = toSize ?? head.version;
    if (to > head.version || fromSize < 1 || fromSize > to) throw new DbxError('invalid_input', `need 1 <= from_size <= to_size <= ${head.version}`);
    const leaves = this.leaves(store, tenant, type, id, to);
    return {
      aggregate_type: type,
      aggregate_id: id,
      from_size: fromSize,
      to_size: to,
      from_root: rootOf(leaves.slice(0, fromSize)),
      to_root: rootOf(leaves),
      proof: consistencyProof(leaves, fromSize),
    };
  }

  snapshots(tenant: string, type: string, id: string): SnapshotRecord[] {
    const store = this.storeFor(tenant, type, id);
    this.requireHead(store, tenant, type, id);
    return store.listSnapshots(tenant, type, id).map(({ version, snapshot }) => ({
      aggregate_type: type,
      aggregate_id: id,
      version,
      state: snapshot.state,
      merkle_root: snapshot.merkle_root,
      created_at: snapshot.created_at,
      comment: snapshot.comment,
    }));
  }

  aggregateCounts(): number[] {
    return this.stores.map((s) => s.countAggregates());
  }
}

/**
 * An unsorted page: up to `take` listed rows. A scan that reaches the budget first answers what it
 * found (maybe nothing) with a cursor after the last row read: a partial page the caller continues,
 * rather than an error or a stalled event loop. So a short page no longer means the end; only a
 * null `next_cursor` does.
 */
function boundedPage<T>(rows: Iterable<Scanned<T>>, take: number, bounds: ScanBounds): Page<T> {
  const items: T[] = [];
  if (take === 0) return { items, next_cursor: null };
  const budget = new ScanBudget(bounds.scan_rows_max, bounds.scan_time_max_ms);
  for (const row of rows) {
    if (row.item !== undefined) items.push(row.item);
    if (items.length === take || budget.spend() !== undefined) return { items, next_cursor: row.cursor() };
  }
  return { items, next_cursor: null };
}

/**
 * A sorted page must see every row in scope before it can answer, so a partial answer would be
 * wrong: past `sort_scan_max` rows (or the time budget) it is a 400 naming how to narrow the query
 * and which key to raise. Memory is O(take) whatever the scan (TopK).
 */
function sortedPage<T>(rows: Iterable<Scanned<T>>, compare: (a: T, b: T) => number, take: number, bounds: ScanBounds, narrowing: string): Page<T> {
  if (take === 0) return { items: [], next_cursor: null };
  const top = new TopK(compare, take);
  const budget = new ScanBudget(bounds.sort_scan_max, bounds.scan_time_max_ms);
  let limit: ScanLimit | undefined;
  for (const row of rows) {
    // Checked on the next row, so a scope of exactly sort_scan_max rows still sorts.
    if (limit !== undefined) throw sortTooLarge(limit, bounds, narrowing);
    if (row.item !== undefined) top.add(row.item);
    limit = budget.spend();
  }
  return { items: top.result(), next_cursor: null };
}

const AGGREGATE_NARROWING =
  'list one type (/v1/aggregates/{type}) or one archive status, sort in index order (aggregate_type, aggregate_id ascending), or drop the sort and page with the cursor';
const EVENT_NARROWING =
  "list one aggregate's events (/v1/aggregates/{type}/{id}/events), sort in index order (aggregate_type, aggregate_id, version ascending), or drop the sort and page with the cursor";

function sortTooLarge(limit: ScanLimit, bounds: ScanBounds, narrowing: string): DbxError {
  const reason =
    limit === 'rows'
      ? { what: `would read more than ${bounds.sort_scan_max} rows`, key: 'sort_scan_max' }
      : { what: `did not finish within ${bounds.scan_time_max_ms} ms`, key: 'scan_time_max_ms' };
  return new DbxError('invalid_input', `sort ${reason.what} ([query] ${reason.key}): narrow the query (${narrowing}) or raise [query] ${reason.key}`);
}

/**
 * True when sorting by `keys` gives the index order `natural` (ascending): the keys, minus fields
 * that are constant in the listing, are a prefix of it. Ties fall back to the natural order, so a
 * prefix sorts exactly as the index does.
 */
function followsIndex(keys: SortKey[], natural: string[], constant: string[]): boolean {
  const rest = keys.filter((key) => !constant.includes(key.field));
  return rest.every((key, i) => !key.descending && natural[i] === key.field);
}

function* tagged(store: ShardStore, keys: Iterable<IndexKey>): Generator<{ store: ShardStore; key: IndexKey }> {
  for (const key of keys) yield { store, key };
}

function compareIndexEntries(a: { key: IndexKey }, b: { key: IndexKey }): number {
  return compareStrings(a.key[2], b.key[2]) || compareStrings(a.key[3], b.key[3]);
}

function compareEventKeys(a: EventKey, b: EventKey): number {
  return compareStrings(a[1], b[1]) || compareStrings(a[2], b[2]) || a[3] - b[3];
}
