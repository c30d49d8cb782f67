/**
 * The read side, served in the coordinator straight from LMDB read transactions: readers never
 * block a shard's writer, an acknowledged write is already committed, and this spares each get the
 * ~250 µs wake-up of a worker thread. Cross-shard lists merge the shards' key-ordered ranges.
 */
import {
  ARCHIVE_EVENT,
  DbxError,
  RESTORE_EVENT,
  applyEventToState,
  consistencyProof,
  inclusionProof,
  notFound,
  rootOf,
  selectPath,
  shardFor,
  shardsForTenant,
  type AggregateView,
  type EventRecord,
  type JsonObject,
  type PlacementSettings,
  type SnapshotRecord,
  type VerifyResult,
} from '../core/index.js';
import { compileFilter, fieldsOf, matchesEvent, type FilterLimits } from '../core/filter.js';
import { ShardStore, type Head, type StoredHead } from '../shard-worker/index.js';
import { listAggregatePage, type AggregateListQuery } from './aggregate-lists.js';
import { eventCursor, parseEventCursor } from './cursor.js';
import { listEventPage, type EventListQuery, type ExplainedPage } from './event-lists.js';
import { QueryTrace, type PlanExplain } from './explain.js';
import { assertHeadIntact, verifyAggregate } from './verify.js';
import { ScanBudget, type ScanBounds } from './merge.js';
import { countInSteps } from './tenant-stats.js';

export type { AllowAggregate, ExplainedPage } from './event-lists.js';

/** `[query]` of config.toml: how much one list request may scan, and how big a filter may be. */
export interface QueryBounds extends ScanBounds {
  filter: FilterLimits;
}

export type ListAggregatesQuery = AggregateListQuery;
export type ListEventsQuery = EventListQuery;

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
    // The flag as of `target`: the last archive or restore event up to it decides.
    let archived: boolean | undefined;
    if (target > 0) {
      for (const event of store.eventRange(tenant, type, id, base?.version ?? 0, target - (base?.version ?? 0))) {
        last = event;
        state = applyEventToState(state, last.event_type, last.payload);
        if (last.event_type === ARCHIVE_EVENT) archived = true;
        else if (last.event_type === RESTORE_EVENT) archived = false;
      }
    }
    // None among the replayed events: the snapshot's flag, or (a snapshot written before snapshots
    // carried it) the last archive or restore event at or before the snapshot.
    archived ??= base?.snapshot.archived ?? store.archivedAt(tenant, type, id, base?.version ?? 0);
    return {
      aggregate_type: type,
      aggregate_id: id,
      version: target,
      state,
      merkle_root: last?.merkle_root ?? base?.snapshot.merkle_root ?? rootOf([]),
      archived,
      created_at: head.created_at,
      // The time of version `target`'s event, whether or not a snapshot sits there: a manual
      // snapshot's created_at is when it was taken, a time that version never had.
      updated_at: (last ?? (base ? store.getEvent([tenant, type, id, base.version]) : undefined))?.metadata.created_at ?? base?.snapshot.created_at ?? head.created_at,
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

  aggregateEvents(tenant: string, type: string, id: string, query: { take: number; cursor?: string; filter?: string; bounds: QueryBounds; explain?: boolean }): ExplainedPage<EventRecord> {
    const store = this.storeFor(tenant, type, id);
    const head = this.requireHead(store, tenant, type, id);
    let after = 0;
    if (query.cursor !== undefined) {
      const cursor = parseEventCursor(query.cursor);
      if (cursor.type !== type || cursor.id !== id) throw new DbxError('invalid_input', 'invalid cursor: cursor does not match the requested event scope');
      after = cursor.version;
    }
    const filter = query.filter !== undefined ? compileFilter(query.filter, 'event', query.bounds.filter) : undefined;
    const trace = new QueryTrace(query.explain === true, filter, 'event');
    const items: EventRecord[] = [];
    // A filter may skip most of a long history: past the scan budget the page ends early, with a
    // cursor after the last event read (not the last one returned). The scope is one aggregate's
    // history, whose length is known: max_scan does not apply.
    const budget = new ScanBudget(query.bounds.scan_rows_max, query.bounds.scan_time_max_ms);
    let stop: number | undefined;
    if (query.take > 0) {
      for (const event of store.eventRange(tenant, type, id, after)) {
        trace.entries += 1;
        trace.read(event);
        if (!filter || matchesEvent(filter, event)) items.push(event);
        else trace.rejected += 1;
        if (items.length === query.take || budget.spend() !== undefined) {
          stop = event.version;
          break;
        }
      }
    }
    const page = { items, next_cursor: stop !== undefined && stop < head.version ? eventCursor(head.archived, type, id, stop) : null };
    if (!query.explain) return page;
    const plan: PlanExplain = {
      plan: 'index_range',
      index: 'events (aggregate_type, aggregate_id, version)',
      ranges: [`${type}/${id} versions ${after + 1}..${head.version}`],
      order: 'version',
      indexed_fields: [],
      unindexed_fields: filter ? [...new Set(fieldsOf(filter))] : [],
      sort: 'none',
    };
    return { ...page, explain: trace.result(plan, { rejectedBefore: 0, maxScan: null }) };
  }

  listAggregates(tenant: string, query: ListAggregatesQuery): ExplainedPage<AggregateView> {
    return listAggregatePage(tenant, this.tenantStores(tenant), query, (type, id, head) => this.view(type, id, head));
  }

  listEvents(tenant: string, query: ListEventsQuery): ExplainedPage<EventRecord> {
    return listEventPage(tenant, this.tenantStores(tenant), query);
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

  /** The snapshots after version `after` (default: all), at most `take`, in version order. */
  snapshots(tenant: string, type: string, id: string, page: { after?: number; take?: number } = {}): SnapshotRecord[] {
    const store = this.storeFor(tenant, type, id);
    this.requireHead(store, tenant, type, id);
    return store.listSnapshots(tenant, type, id, page.after, page.take).map(({ version, snapshot }) => ({
      aggregate_type: type,
      aggregate_id: id,
      version,
      state: snapshot.state,
      merkle_root: snapshot.merkle_root,
      created_at: snapshot.created_at,
      comment: snapshot.comment,
    }));
  }

  /**
   * Aggregates per shard, as committed now, counted in steps with yields between them
   * (tenant-stats.ts): one count of a 1M-aggregate shard at once stalled every request ~150 ms.
   */
  async aggregateCounts(): Promise<number[]> {
    const counts: number[] = [];
    for (const store of this.stores) {
      store.env.resetReadTxn();
      counts.push(await countInSteps(store.worker.heads, { start: [store.shard], end: [store.shard + 1] }, undefined));
    }
    return counts;
  }
}
