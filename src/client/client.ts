/**
 * The TypeScript client (DESIGN §10: the original client's method names over our HTTP API).
 * Options and results are camelCase; the transport renames them at the edge (mapper.ts), payloads
 * and states are passed as they are and typed by the caller (`get<State>()`, `events<Payload>()`).
 * Every method takes `signal` and `timeoutMs` (in its options, or a last `call` argument) and
 * rejects with an `EventDbxError` subclass (errors.ts).
 */
import type { Query } from './transport.js';
import { fromWire } from './mapper.js';
import { ClientAdmin } from './client-admin.js';
import { seg } from './client-base.js';
import { ndjsonLines, type ExportOptions, type ExportTypeCount, type OpenedStream, type ReplayOptions } from './stream.js';
import { Subscription, type StreamPage, type StreamReadOptions, type SubscribeOptions } from './subscribe.js';
import type {
  AggregateView,
  BatchEvent,
  CallOptions,
  ClientOptions,
  ConsistencyProof,
  CreateOptions,
  EventOptions,
  EventRecord,
  GetOptions,
  ImportOptions,
  ImportSummary,
  InclusionProof,
  JsonObject,
  LifecycleOptions,
  ListOptions,
  Page,
  PageOptions,
  PatchOperation,
  Receipt,
  SchemaInput,
  SchemaRecord,
  SchemaValidation,
  SchemaVersion,
  SchemaWriteOptions,
  Selection,
  ServerStatus,
  SnapshotRecord,
  VerifyResult,
  WriteOptions,
} from './types.js';

export function createClient(options: ClientOptions = {}): EventDbxClient {
  return new EventDbxClient(options);
}

const aggregatePath = (type: string, id: string): string => `/v1/aggregates/${seg(type)}/${seg(id)}`;
const schemaPath = (aggregate: string): string => `/v1/schemas/${seg(aggregate)}`;

/** The fields of a write every write route takes (camelCase; the transport renames them). */
function writeFields(options: WriteOptions): Record<string, unknown> {
  return { metadata: options.metadata, note: options.note, expectedVersion: options.expectedVersion, idempotencyKey: options.idempotencyKey };
}

function listQuery(options: ListOptions): Query {
  return {
    take: options.take,
    cursor: options.cursor,
    filter: options.filter,
    sort: options.sort,
    includeArchived: options.includeArchived || undefined,
    archivedOnly: options.archivedOnly || undefined,
    explain: options.explain || undefined,
  };
}

/** Follows `nextCursor` until the last page. */
export async function* paginate<T>(fetchPage: (cursor: string | undefined) => Promise<Page<T>>, cursor?: string): AsyncGenerator<Page<T>> {
  let next: string | undefined = cursor;
  for (;;) {
    const page = await fetchPage(next);
    yield page;
    // A page cut short by the server's scan bound may be empty yet have a next cursor: only a null
    // cursor (or one that does not move) ends the listing.
    if (!page.nextCursor || page.nextCursor === next) return;
    next = page.nextCursor;
  }
}

/**
 * The client: the data methods here, the administrative ones (tokens, plugins, queue, tenants)
 * inherited from client-admin.ts, the transport from client-base.ts.
 */
export class EventDbxClient extends ClientAdmin {
  /** Checks the server answers and the token is valid; returns the server's status. */
  async connect(call?: CallOptions): Promise<ServerStatus> {
    await this.health(call);
    return this.status(call);
  }

  /** Closes the pooled connections; in-flight calls finish first. */
  async close(): Promise<void> {
    await Promise.all([this.transport.close(), this.streams?.close()]);
  }

  /** The original client's name for `close`. */
  disconnect(): Promise<void> {
    return this.close();
  }

  health(call?: CallOptions): Promise<{ status: string }> {
    return this.read('/health', undefined, call);
  }

  status(call?: CallOptions): Promise<ServerStatus> {
    return this.read('/v1/status', undefined, call);
  }

  /** Prometheus metrics as text (`GET /metrics`: a token with `metrics.read`, or none when `[metrics] public = true`). */
  metrics(): Promise<string> {
    return this.opener().text('/metrics', {}, 'text/plain');
  }

  /** The server's OpenAPI 3.1 document (`GET /openapi.json`), as it sends it. */
  async openapi(): Promise<Record<string, unknown>> {
    return (await this.opener().json('/openapi.json')) as Record<string, unknown>;
  }

  // ---- writes ----

  /** `S` types the state it answers (the first payload is any object). */
  create<S = JsonObject>(type: string, id: string, eventType: string, options: CreateOptions<object> = {}): Promise<AggregateView<S>> {
    return this.send(aggregatePath(type, id), { eventType, payload: options.payload ?? {}, ...writeFields(options) }, options);
  }

  /** `P` (inferred from `payload`, or given) types the payload of the event it answers. */
  apply<P extends object = Record<string, unknown>>(type: string, id: string, eventType: string, options: EventOptions<P> = {}): Promise<EventRecord<P>> {
    return this.send(`${aggregatePath(type, id)}/events`, { eventType, payload: options.payload ?? {}, ...writeFields(options) }, options);
  }

  /** The stored event's payload is the operations. */
  patch(type: string, id: string, eventType: string, operations: PatchOperation[], options: WriteOptions = {}): Promise<EventRecord<PatchOperation[]>> {
    return this.send(`${aggregatePath(type, id)}/patch`, { eventType, patch: operations, ...writeFields(options) }, options);
  }

  archive<S = JsonObject>(type: string, id: string, options: LifecycleOptions = {}): Promise<Receipt<AggregateView<S>>> {
    return this.send(`${aggregatePath(type, id)}/archive`, { comment: options.comment, ...writeFields(options) }, options);
  }

  restore<S = JsonObject>(type: string, id: string, options: LifecycleOptions = {}): Promise<Receipt<AggregateView<S>>> {
    return this.send(`${aggregatePath(type, id)}/restore`, { comment: options.comment, ...writeFields(options) }, options);
  }

  /**
   * All or nothing, across aggregates and shards; events come back in the order given. A refused
   * item rejects the whole batch with the error's `index` naming it.
   */
  async batch<P extends object = Record<string, unknown>>(events: BatchEvent<P>[], call?: CallOptions): Promise<EventRecord<P>[]> {
    // A batch is idempotent only if every event carries a key.
    const idempotent = events.length > 0 && events.every((e) => typeof e.idempotencyKey === 'string');
    const result = await this.call<{ events: EventRecord<P>[] }>({ method: 'POST', path: '/v1/batch', body: batchBody(events), idempotent }, call);
    return result.events;
  }

  /**
   * Checks a batch as `batch` would (schemas, restrict mode, versions, patches on the state they
   * meet) and writes nothing: resolves when it would be accepted, else throws the error it would get.
   */
  async checkBatch<P extends object = Record<string, unknown>>(events: BatchEvent<P>[], call?: CallOptions): Promise<void> {
    await this.call<{ valid: true }>({ method: 'POST', path: '/v1/batch/check', body: batchBody(events), idempotent: true }, call);
  }

  /**
   * Bulk import: `lines` is NDJSON text (or chunks of it), one event record per line as the API
   * returns them (snake_case). Atomic per server chunk; a failure throws with `details.line` (within
   * this call's body) and the counts already committed. Re-running skips versions stored with the
   * same hash. No deadline unless `timeoutMs` is given (the body streams).
   */
  importEvents(lines: string | AsyncIterable<string | Uint8Array>, options: ImportOptions = {}): Promise<ImportSummary> {
    return this.upload('/v1/import', options.verify === false ? { verify: false } : undefined, lines, options);
  }

  // ---- reads ----

  get<S = JsonObject, P = JsonObject>(type: string, id: string, options: GetOptions = {}): Promise<AggregateView<S, P>> {
    return this.read(aggregatePath(type, id), { version: options.version, includeEvents: options.includeEvents || undefined }, options);
  }

  /** The state's values at these dot paths, keyed by the paths as given (missing → null). */
  select(type: string, id: string, fields: string[], call?: CallOptions): Promise<Selection> {
    return this.call({ method: 'GET', path: `${aggregatePath(type, id)}/select`, query: { fields: fields.join(',') }, idempotent: true, verbatim: true }, call);
  }

  /** An aggregate's events in version order. */
  events<P = JsonObject>(type: string, id: string, options: PageOptions = {}): Promise<Page<EventRecord<P>>> {
    return this.read(`${aggregatePath(type, id)}/events`, { take: options.take, cursor: options.cursor, filter: options.filter, explain: options.explain || undefined }, options);
  }

  /** Events of every aggregate of the tenant. */
  listEvents<P = JsonObject>(options: ListOptions = {}): Promise<Page<EventRecord<P>>> {
    return this.read('/v1/events', listQuery(options), options);
  }

  /** One page of the tenant's global stream in commit order, after `after` (a position, `start` or `end`). */
  readStream<P = JsonObject>(options: StreamReadOptions = {}): Promise<StreamPage<P>> {
    return this.read('/v1/stream', { after: options.after, take: options.take, filter: options.filter }, options);
  }

  /**
   * Follows the tenant's global stream live: `for await (const { event, position } of db.subscribe({ from }))`.
   * Reconnects with back-off and resumes from the last position; abort `signal` (or `close()`) to stop.
   */
  subscribe<P = JsonObject>(options: SubscribeOptions = {}): Subscription<P> {
    return new Subscription<P>(this.streamAt, options);
  }

  event<P = JsonObject>(eventId: string, call?: CallOptions): Promise<EventRecord<P>> {
    return this.read(`/v1/events/${seg(eventId)}`, undefined, call);
  }

  /** Aggregates of one type, or of every type when `type` is undefined. */
  list<S = JsonObject>(type?: string, options: ListOptions = {}): Promise<Page<AggregateView<S>>> {
    return this.read(type === undefined ? '/v1/aggregates' : `/v1/aggregates/${seg(type)}`, listQuery(options), options);
  }

  /** Every matching aggregate, page after page. */
  async *listAll<S = JsonObject>(type?: string, options: Omit<ListOptions, 'cursor' | 'sort'> = {}): AsyncGenerator<AggregateView<S>> {
    for await (const page of paginate((cursor) => this.list<S>(type, { ...options, ...(cursor ? { cursor } : {}) }))) yield* page.items;
  }

  verify(type: string, id: string, call?: CallOptions): Promise<VerifyResult> {
    return this.read(`${aggregatePath(type, id)}/verify`, undefined, call);
  }

  /** RFC 6962 inclusion proof of `version` in the tree of `size` events (default: current). */
  inclusionProof(type: string, id: string, version: number, size?: number, call?: CallOptions): Promise<InclusionProof> {
    return this.read(`${aggregatePath(type, id)}/proof`, { version, size }, call);
  }

  /** RFC 6962 consistency proof between tree sizes `fromSize` and `toSize` (default: current). */
  consistencyProof(type: string, id: string, fromSize: number, toSize?: number, call?: CallOptions): Promise<ConsistencyProof> {
    return this.read(`${aggregatePath(type, id)}/proof`, { fromSize, toSize }, call);
  }

  /**
   * An aggregate's events in version order after `skip`, at most `take`, streamed: memory stays
   * flat whatever the length of the history (`GET …/replay`). Break out of the loop to stop early.
   */
  async *replay(type: string, id: string, options: ReplayOptions = {}): AsyncGenerator<EventRecord> {
    const { body } = await this.opener().open(`${aggregatePath(type, id)}/replay`, { skip: options.skip, take: options.take }, 'application/x-ndjson');
    try {
      for await (const line of ndjsonLines(body)) yield fromWire(line) as unknown as EventRecord;
    } finally {
      body.destroy();
    }
  }

  /**
   * The active aggregates of one type as one CSV or JSON document (`GET /v1/export`), streamed
   * from one snapshot: pipe `body` to a file, or iterate it. The bytes are the server's, as sent.
   */
  exportAggregates(type: string, options: ExportOptions = {}): Promise<OpenedStream> {
    const accept = options.format === 'json' ? 'application/json' : 'text/csv';
    return this.opener().open('/v1/export', { type, format: options.format, pretty: options.pretty || undefined }, accept);
  }

  /** The types an export can name, with the active aggregates this token may read. */
  async exportTypes(options: { type?: string } = {}): Promise<{ aggregateType: string; aggregates: number }[]> {
    const { items } = (await this.opener().json('/v1/export/types', { type: options.type })) as { items: ExportTypeCount[] };
    return items.map((t) => ({ aggregateType: t.aggregate_type, aggregates: t.aggregates }));
  }

  snapshot<S = JsonObject>(type: string, id: string, options: { comment?: string } & CallOptions = {}): Promise<Receipt<SnapshotRecord<S>>> {
    return this.send(`${aggregatePath(type, id)}/snapshots`, { comment: options.comment }, options);
  }

  /** Every snapshot of the aggregate, oldest first (the server pages them; this follows its cursors). */
  async snapshots<S = JsonObject>(type: string, id: string, call?: CallOptions): Promise<SnapshotRecord<S>[]> {
    const out: SnapshotRecord<S>[] = [];
    const page = (cursor: string | undefined) => this.read<Page<SnapshotRecord<S>>>(`${aggregatePath(type, id)}/snapshots`, { take: 1000, cursor }, call);
    for await (const p of paginate(page)) out.push(...p.items);
    return out;
  }

  // ---- schemas ----

  /** One page of the tenant's schemas in force, by aggregate name. */
  schemas(options: { take?: number; cursor?: string } & CallOptions = {}): Promise<Page<SchemaRecord>> {
    return this.read('/v1/schemas', { take: options.take, cursor: options.cursor }, options);
  }

  /** Every schema in force for the tenant. */
  async listSchemas(call?: CallOptions): Promise<SchemaRecord[]> {
    const out: SchemaRecord[] = [];
    // The server caps take at page_limit, so asking for 1000 gets the largest page it allows.
    for await (const page of paginate((cursor) => this.schemas({ take: 1000, ...(cursor ? { cursor } : {}), ...call }))) out.push(...page.items);
    return out;
  }

  getSchema(aggregate: string, call?: CallOptions): Promise<SchemaRecord> {
    return this.read(schemaPath(aggregate), undefined, call);
  }

  /** Creates or replaces the whole schema (a new version unless nothing changed). */
  putSchema(aggregate: string, schema: SchemaInput, options: SchemaWriteOptions = {}): Promise<SchemaRecord> {
    // Idempotent: the same schema again is not a change, so a lost answer may be retried.
    return this.call({ method: 'PUT', path: schemaPath(aggregate), query: { expectedVersion: options.expectedVersion }, body: schema, idempotent: true }, options);
  }

  /** Creates a schema; `AlreadyExistsError` if the aggregate has one. */
  createSchema(schema: SchemaInput & { aggregate: string }, call?: CallOptions): Promise<SchemaRecord> {
    return this.send('/v1/schemas', schema, call);
  }

  /** Removes the schema (its history stays, ending with a tombstone version). */
  deleteSchema(aggregate: string, options: SchemaWriteOptions = {}): Promise<SchemaVersion> {
    return this.call({ method: 'DELETE', path: schemaPath(aggregate), query: { expectedVersion: options.expectedVersion }, idempotent: false }, options);
  }

  /** One page of a schema's history, oldest first. */
  schemaVersions(aggregate: string, options: { take?: number; cursor?: string } & CallOptions = {}): Promise<Page<SchemaVersion>> {
    return this.read(`${schemaPath(aggregate)}/versions`, { take: options.take, cursor: options.cursor }, options);
  }

  schemaVersion(aggregate: string, version: number, call?: CallOptions): Promise<SchemaVersion> {
    return this.read(`${schemaPath(aggregate)}/versions/${version}`, undefined, call);
  }

  /** JSON Schema 2020-12 documents by event type (standard documents: returned as sent). */
  jsonSchema(aggregate: string, call?: CallOptions): Promise<Record<string, Record<string, unknown>>> {
    return this.call({ method: 'GET', path: `${schemaPath(aggregate)}/json-schema`, idempotent: true, verbatim: true }, call);
  }

  /** Checks a payload against the schema in force without writing anything. */
  validateSchema<P = Record<string, unknown>>(aggregate: string, eventType: string, payload: P, call?: CallOptions): Promise<SchemaValidation<P>> {
    return this.call({ method: 'POST', path: `${schemaPath(aggregate)}/validate`, body: { eventType, payload }, idempotent: true }, call);
  }
}

function batchBody<P extends object>(events: BatchEvent<P>[]): { events: Record<string, unknown>[] } {
  return {
    events: events.map((e) => ({
      aggregateType: e.aggregateType,
      aggregateId: e.aggregateId,
      eventType: e.eventType,
      ...(e.patch !== undefined ? { patch: e.patch } : { payload: e.payload ?? {} }),
      ...writeFields(e),
    })),
  };
}
