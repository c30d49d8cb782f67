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
import { compareAggregatesBy, compareEventsBy, matchesAggregate, matchesEvent, mentionsField, parseFilter, parseSort, type FilterExpr } from '../core/filter.js';
import { ShardStore, type EventKey, type Head, type IndexKey, type StoredHead } from '../shard-worker/index.js';
import { aggregateCursor, eventCursor, parseAggregateCursor, parseEventCursor } from './cursor.js';
import { compareStrings, mergeSorted } from './merge.js';

/** Which aggregates the caller's token covers; absent = all of them. */
export type AllowAggregate = (type: string, id: string) => boolean;

export interface ListAggregatesQuery {
  allow?: AllowAggregate;
  type?: string;
  take: number;
  cursor?: string;
  filter?: string;
  sort?: string;
  scope: ArchiveScope;
}

export interface ListEventsQuery {
  allow?: AllowAggregate;
  take: number;
  cursor?: string;
  filter?: string;
  sort?: string;
  scope: ArchiveScope;
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

  getAggregate(tenant: string, type: string, id: string, options: { version?: number; includeEvents?: boolean; eventsMax: number }): AggregateView {
    const store = this.storeFor(tenant, type, id);
    const head = this.requireHead(store, tenant, type, id);
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
      for (const json of store.eventJsonRange(tenant, type, id, base?.version ?? 0, target - (base?.version ?? 0))) {
        last = JSON.parse(json) as EventRecord;
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
    for (const json of store.eventJsonRange(tenant, type, id, 0, Math.min(version, max))) out.push(JSON.parse(json) as EventRecord);
    return out;
  }

  select(tenant: string, type: string, id: string, fields: string[]): Record<string, unknown> {
    const store = this.storeFor(tenant, type, id);
    this.requireHead(store, tenant, type, id);
    const state = store.getState(tenant, type, id) ?? {};
    const out: Record<string, unknown> = {};
    for (const field of fields) out[field] = selectPath(state, field);
    return out;
  }

  aggregateEvents(tenant: string, type: string, id: string, query: { take: number; cursor?: string; filter?: string }): Page<EventRecord> {
    const store = this.storeFor(tenant, type, id);
    const head = this.requireHead(store, tenant, type, id);
    let after = 0;
    if (query.cursor !== undefined) {
      const cursor = parseEventCursor(query.cursor);
      if (cursor.type !== type || cursor.id !== id) throw new DbxError('invalid_input', 'invalid cursor: cursor does not match the requested event scope');
      after = cursor.version;
    }
    const filter = query.filter ? parseFilter(query.filter) : undefined;
    const items: EventRecord[] = [];
    if (query.take === 0) return { items, next_cursor: null };
    for (const json of store.eventJsonRange(tenant, type, id, after)) {
      const event = JSON.parse(json) as EventRecord;
      if (filter && !matchesEvent(filter, event)) continue;
      items.push(event);
      if (items.length === query.take) break;
    }
    const last = items[items.length - 1];
    const full = items.length === query.take && last !== undefined && last.version < head.version;
    return { items, next_cursor: full && last ? eventCursor(head.archived, type, id, last.version) : null };
  }

  listAggregates(tenant: string, query: ListAggregatesQuery): Page<AggregateView> {
    const filter = query.filter ? parseFilter(query.filter) : undefined;
    let scope = query.scope;
    if (filter && scope === 'active' && mentionsField(filter, 'archived')) scope = 'all';
    if (query.sort !== undefined) {
      if (query.cursor !== undefined) throw new DbxError('invalid_input', '--cursor cannot be combined with --sort');
      const keys = parseSort(query.sort, 'aggregate');
      const all = [...this.aggregatesInScope(tenant, query.type, scope, undefined, filter, query.allow)];
      all.sort(compareAggregatesBy(keys));
      return { items: all.slice(0, query.take), next_cursor: null };
    }
    const cursor = query.cursor !== undefined ? parseAggregateCursor(query.cursor) : undefined;
    if (cursor && scope === 'archived' && !cursor.archived) throw new DbxError('invalid_input', 'invalid cursor: archived listings require archived cursor values');
    if (cursor && scope === 'active' && cursor.archived) throw new DbxError('invalid_input', 'invalid cursor: cursor points to archived aggregates but scope uses active records');
    const items: AggregateView[] = [];
    if (query.take > 0) {
      for (const view of this.aggregatesInScope(tenant, query.type, scope, cursor, filter, query.allow)) {
        items.push(view);
        if (items.length === query.take) break;
      }
    }
    const last = items[items.length - 1];
    return { items, next_cursor: last && items.length === query.take ? aggregateCursor(last.archived, last.aggregate_type, last.aggregate_id) : null };
  }

  private *aggregatesInScope(
    tenant: string,
    type: string | undefined,
    scope: ArchiveScope,
    cursor: { archived: boolean; type: string; id: string } | undefined,
    filter: FilterExpr | undefined,
    allow: AllowAggregate | undefined,
  ): Generator<AggregateView> {
    const statuses: ('a' | 'r')[] = scope === 'active' ? ['a'] : scope === 'archived' ? ['r'] : ['a', 'r'];
    for (const status of statuses) {
      // An archived cursor in an "all" listing means the active part is already done.
      if (cursor && cursor.archived && status === 'a') continue;
      const after = cursor && cursor.archived === (status === 'r') ? ([cursor.type, cursor.id] as [string, string]) : undefined;
      const stores = this.tenantStores(tenant);
      const sources = stores.map((store) => tagged(store, store.indexRange(tenant, status, type, after)));
      for (const { store, key } of mergeSorted(sources, compareIndexEntries)) {
        if (allow && !allow(key[2], key[3])) continue;
        const head = store.getHead(tenant, key[2], key[3]);
        if (!head) continue;
        const view = this.view(key[2], key[3], head);
        if (filter && !matchesAggregate(filter, view)) continue;
        yield view;
      }
    }
  }

  listEvents(tenant: string, query: ListEventsQuery): Page<EventRecord> {
    const filter = query.filter ? parseFilter(query.filter) : undefined;
    if (query.sort !== undefined) {
      if (query.cursor !== undefined) throw new DbxError('invalid_input', '--cursor cannot be combined with --sort');
      const keys = parseSort(query.sort, 'event');
      const all = [...this.eventsInScope(tenant, query.scope, undefined, filter, query.allow)].map((e) => e.event);
      all.sort(compareEventsBy(keys));
      return { items: all.slice(0, query.take), next_cursor: null };
    }
    const cursor = query.cursor !== undefined ? parseEventCursor(query.cursor) : undefined;
    const items: { event: EventRecord; archived: boolean }[] = [];
    if (query.take > 0) {
      for (const item of this.eventsInScope(tenant, query.scope, cursor, filter, query.allow)) {
        items.push(item);
        if (items.length === query.take) break;
      }
    }
    const last = items[items.length - 1];
    return {
      items: items.map((i) => i.event),
      next_cursor:
        last && items.length === query.take ? eventCursor(last.archived, last.event.aggregate_type, last.event.aggregate_id, last.event.version) : null,
    };
  }

  private *eventsInScope(
    tenant: string,
    scope: ArchiveScope,
    cursor: { type: string; id: string; version: number } | undefined,
    filter: FilterExpr | undefined,
    allow: AllowAggregate | undefined,
  ): Generator<{ event: EventRecord; archived: boolean }> {
    const stores = this.tenantStores(tenant);
    const sources = stores.map((store) => {
      const start: EventKey = cursor ? [tenant, cursor.type, cursor.id, cursor.version + 1] : [tenant, '', '', 0];
      return store.events.getRange({ start, end: [tenant, '\uffff', '', 0] as unknown as EventKey }).map(({ key, value }) => ({ store, key, value }));
    });
    let lastAggregate = '';
    let lastArchived = false;
    for (const { store, key, value } of mergeSorted(sources, (a, b) => compareEventKeys(a.key, b.key))) {
      const aggregateKey = `${key[1]}\u0000${key[2]}`;
      if (aggregateKey !== lastAggregate) {
        lastAggregate = aggregateKey;
        lastArchived = store.getHead(tenant, key[1], key[2])?.archived ?? false;
      }
      if (allow && !allow(key[1], key[2])) continue;
      if (scope === 'active' && lastArchived) continue;
      if (scope === 'archived' && !lastArchived) continue;
      const event = JSON.parse(value) as EventRecord;
      if (filter && !matchesEvent(filter, event)) continue;
      yield { event, archived: lastArchived };
    }
  }

  getEvent(tenant: string, eventId: string): EventRecord {
    for (const store of this.tenantStores(tenant)) {
      const key = store.eventIds.get(eventId);
      if (!key || key[0] !== tenant) continue;
      const json = store.getEventJson(key);
      if (json !== undefined) return JSON.parse(json) as EventRecord;
    }
    throw notFound(`event ${eventId}`);
  }

  /** Recomputes every leaf and root from the stored events and compares with what is stored. */
  verify(tenant: string, type: string, id: string): VerifyResult {
    const store = this.storeFor(tenant, type, id);
    const head = this.requireHead(store, tenant, type, id);
    let frontier: string[] = [];
    let expected = 1;
    let firstInvalid: number | undefined;
    for (const json of store.eventJsonRange(tenant, type, id, 0)) {
      let valid = false;
      try {
        const { hash, merkle_root, ...body } = JSON.parse(json) as EventRecord;
        const leaf = leafHash(canonicalize(body));
        frontier = appendLeaf(frontier, expected - 1, leaf);
        valid = body.version === expected && leaf === hash && frontierRoot(frontier) === merkle_root;
      } catch {
        valid = false;
      }
      if (!valid) {
        firstInvalid = expected;
        break;
      }
      expected++;
    }
    if (firstInvalid === undefined && (expected - 1 !== head.version || frontierRoot(frontier) !== head.merkle_root)) firstInvalid = expected;
    return {
      aggregate_type: type,
      aggregate_id: id,
      version: head.version,
      merkle_root: head.merkle_root,
      valid: firstInvalid === undefined,
      ...(firstInvalid !== undefined ? { first_invalid_version: firstInvalid } : {}),
    };
  }

  private leaves(store: ShardStore, tenant: string, type: string, id: string, count: number): string[] {
    const out: string[] = [];
    for (const json of store.eventJsonRange(tenant, type, id, 0, count)) out.push((JSON.parse(json) as EventRecord).hash);
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

function* tagged(store: ShardStore, keys: Iterable<IndexKey>): Generator<{ store: ShardStore; key: IndexKey }> {
  for (const key of keys) yield { store, key };
}

function compareIndexEntries(a: { key: IndexKey }, b: { key: IndexKey }): number {
  return compareStrings(a.key[2], b.key[2]) || compareStrings(a.key[3], b.key[3]);
}

function compareEventKeys(a: EventKey, b: EventKey): number {
  return compareStrings(a[1], b[1]) || compareStrings(a[2], b[2]) || a[3] - b[3];
}
