/**
 * The TypeScript client (DESIGN §10: the original client's method names over our HTTP API).
 * Options and results are camelCase; the transport renames them at the edge (mapper.ts), payloads
 * and states are passed as they are and typed by the caller (`get<State>()`, `events<Payload>()`).
 * Every method takes `signal` and `timeoutMs` (in its options, or a last `call` argument) and
 * rejects with an `EventDbxError` subclass (errors.ts).
 */
import { Readable } from 'node:stream';
import { Transport, type Query, type Request } from './transport.js';
import { fromWire } from './mapper.js';
import { StreamOpener, ndjsonLines, type ExportOptions, type ExportTypeCount, type OpenedStream, type ReplayOptions } from './stream.js';
import { Subscription, type StreamPage, type StreamReadOptions, type SubscribeOptions, type SubscribeSettings } from './subscribe.js';
import { checkTimeout, DEFAULT_RETRY, DEFAULT_TIMEOUT_MS, resolveCa, resolveUrl } from './settings.js';
import type { TenantImportSummary, TenantMetaEntry, TenantMetaList, TenantPlacementChange, TenantRateInput, TenantRemoval, TenantShardStats, TenantView } from './tenant-types.js';
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
  IssuedToken,
  JsonObject,
  KeyRotation,
  LifecycleOptions,
  ListOptions,
  Page,
  PageOptions,
  PatchOperation,
  PluginConfigInput,
  PluginDefinition,
  PluginInfo,
  PluginReplayInput,
  PluginTestResult,
  QueueStatus,
  SchemaInput,
  SchemaRecord,
  SchemaValidation,
  SchemaVersion,
  SchemaWriteOptions,
  Selection,
  ServerStatus,
  SnapshotRecord,
  TokenInfo,
  TokenIssueInput,
  TokenRefreshOptions,
  VerifyResult,
  WriteOptions,
} from './types.js';

export function createClient(options: ClientOptions = {}): EventDbxClient {
  return new EventDbxClient(options);
}

const seg = (value: string): string => encodeURIComponent(value);
const aggregatePath = (type: string, id: string): string => `/v1/aggregates/${seg(type)}/${seg(id)}`;
const schemaPath = (aggregate: string): string => `/v1/schemas/${seg(aggregate)}`;
const pluginPath = (name: string): string => `/v1/plugins/${seg(name)}`;
const tenantPath = (tenant: string): string => `/v1/tenants/${seg(tenant)}`;

/** The per-call part of an options object (never sent to the server). */
function callOf(options: CallOptions | undefined): CallOptions {
  if (options === undefined) return {};
  checkTimeout(options.timeoutMs, 'timeoutMs');
  return {
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  };
}

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

export class EventDbxClient {
  private readonly transport: Transport;
  /** Where `subscribe()` connects (its own connection, beside the pool). */
  private readonly streamAt: SubscribeSettings;
  /** Streamed answers (replay, exports) on their own small pool, opened on first use (stream.ts). */
  private streams: StreamOpener | undefined;
  readonly tenant: string;

  constructor(options: ClientOptions = {}) {
    this.tenant = options.tenant || options.tenantId || process.env.EVENTDBX_TENANT_ID || 'default';
    const token = options.token || process.env.EVENTDBX_TOKEN;
    const ca = resolveCa(options);
    checkTimeout(options.timeoutMs, 'timeoutMs');
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.transport = new Transport({
      url: resolveUrl(options),
      ...(ca !== undefined ? { ca } : {}),
      ...(token ? { token } : {}),
      tenant: this.tenant,
      retry: { ...DEFAULT_RETRY, ...options.retry },
      timeoutMs,
      // A second past the default deadline, so that deadline (a clean TimeoutError) ends a call first.
      stallMs: (timeoutMs > 0 ? timeoutMs : DEFAULT_TIMEOUT_MS) + 1000,
      connections: options.connections ?? 8,
    });
    this.streamAt = { url: resolveUrl(options), tenant: this.tenant, ...(token ? { token } : {}), ...(ca !== undefined ? { ca } : {}) };
  }

  /** The server's base URL. */
  get url(): string {
    return this.transport.origin;
  }

  private call<T>(request: Omit<Request, keyof CallOptions>, options: CallOptions | undefined): Promise<T> {
    return this.transport.request<T>({ ...request, ...callOf(options) });
  }

  private read<T>(path: string, query: Query | undefined, options: CallOptions | undefined): Promise<T> {
    return this.call<T>({ method: 'GET', path, ...(query ? { query } : {}), idempotent: true }, options);
  }

  /** A POST; safe to retry only when it carries an idempotency key (the server replays it). */
  private send<T>(path: string, body: Record<string, unknown>, options: CallOptions | undefined): Promise<T> {
    return this.call<T>({ method: 'POST', path, body, idempotent: typeof body.idempotencyKey === 'string' }, options);
  }

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

  archive<S = JsonObject>(type: string, id: string, options: LifecycleOptions = {}): Promise<AggregateView<S>> {
    return this.send(`${aggregatePath(type, id)}/archive`, { comment: options.comment, ...writeFields(options) }, options);
  }

  restore<S = JsonObject>(type: string, id: string, options: LifecycleOptions = {}): Promise<AggregateView<S>> {
    return this.send(`${aggregatePath(type, id)}/restore`, { comment: options.comment, ...writeFields(options) }, options);
  }

  /**
   * All or nothing, across aggregates and shards; events come back in the order given. A refused
   * item rejects the whole batch with the error's `index` naming it.
   */
  async batch<P extends object = Record<string, unknown>>(events: BatchEvent<P>[], call?: CallOptions): Promise<EventRecord<P>[]> {
    const body = {
      events: events.map((e) => ({
        aggregateType: e.aggregateType,
        aggregateId: e.aggregateId,
        eventType: e.eventType,
        ...(e.patch !== undefined ? { patch: e.patch } : { payload: e.payload ?? {} }),
        ...writeFields(e),
      })),
    };
    // A batch is idempotent only if every event carries a key.
    const idempotent = events.length > 0 && events.every((e) => typeof e.idempotencyKey === 'string');
    const result = await this.call<{ events: EventRecord<P>[] }>({ method: 'POST', path: '/v1/batch', body, idempotent }, call);
    return result.events;
  }

  /**
   * Bulk import: `lines` is NDJSON text (or chunks of it), one event record per line as the API
   * returns them (snake_case). Atomic per server chunk; a failure throws with `details.line` (within
   * this call's body) and the counts already committed. Re-running skips versions stored with the
   * same hash. No deadline unless `timeoutMs` is given (the body streams).
   */
  importEvents(lines: string | AsyncIterable<string | Uint8Array>, options: ImportOptions = {}): Promise<ImportSummary> {
    return this.call<ImportSummary>(
      {
        method: 'POST',
        path: '/v1/import',
        ...(options.verify === false ? { query: { verify: false } } : {}),
        raw: { contentType: 'application/x-ndjson', body: typeof lines === 'string' ? lines : Readable.from(lines) },
        idempotent: false,
      },
      { timeoutMs: 0, ...callOf(options) },
    );
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

  private opener(): StreamOpener {
    this.streams ??= new StreamOpener({ ...this.streamAt, timeoutMs: DEFAULT_TIMEOUT_MS });
    return this.streams;
  }

  /**
   * An aggregate's events in version order after `skip`, at most `take`, streamed: memory stays
   * flat whatever the length of the history (`GET …/replay`). Break out of the loop to stop early.
   */
  async *replay(type: string, id: string, options: ReplayOptions = {}): AsyncGenerator<EventRecord> {
    const { body } = await this.opener().open(`/v1/aggregates/${encodeURIComponent(type)}/${encodeURIComponent(id)}/replay`, { skip: options.skip, take: options.take }, 'application/x-ndjson');
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

  snapshot<S = JsonObject>(type: string, id: string, options: { comment?: string } & CallOptions = {}): Promise<SnapshotRecord<S>> {
    return this.send(`${aggregatePath(type, id)}/snapshots`, { comment: options.comment }, options);
  }

  async snapshots<S = JsonObject>(type: string, id: string, call?: CallOptions): Promise<SnapshotRecord<S>[]> {
    return (await this.read<{ items: SnapshotRecord<S>[] }>(`${aggregatePath(type, id)}/snapshots`, undefined, call)).items;
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

  // ---- tokens (a `token.admin` token) ----

  /** Tokens in the ledger (others' tenants are left out). */
  async tokens(call?: CallOptions): Promise<TokenInfo[]> {
    return (await this.read<{ items: TokenInfo[] }>('/v1/tokens', undefined, call)).items;
  }

  issueToken(input: TokenIssueInput): Promise<IssuedToken> {
    const { signal: _s, timeoutMs: _t, ...fields } = input;
    return this.send('/v1/tokens', fields, input);
  }

  revokeToken(jti: string, reason?: string, call?: CallOptions): Promise<TokenInfo> {
    return this.send(`/v1/tokens/${seg(jti)}/revoke`, { reason }, call);
  }

  refreshToken(jti: string, options: TokenRefreshOptions = {}): Promise<IssuedToken> {
    return this.send(`/v1/tokens/${seg(jti)}/refresh`, { expirationSecs: options.expirationSecs, writeLimit: options.writeLimit }, options);
  }

  /** Replaces the server's signing keys: every token (this one too) stops working. */
  rotateSigningKeys(call?: CallOptions): Promise<KeyRotation> {
    return this.send('/v1/tokens/rotate-keys', {}, call);
  }

  // ---- plugins and the delivery queue (a `plugin.admin` token; the queue needs a server administrator) ----

  /** Configured plugins with their queue counts and lag. */
  async plugins(call?: CallOptions): Promise<PluginInfo[]> {
    return (await this.read<{ items: PluginInfo[] }>('/v1/plugins', undefined, call)).items;
  }

  plugin(name: string, call?: CallOptions): Promise<PluginDefinition> {
    return this.read(pluginPath(name), undefined, call);
  }

  /**
   * Creates or replaces a plugin (the whole definition; the server fills defaults). An enabled
   * plugin is checked for connectivity first: refused with 503 `unavailable` and the reason.
   */
  configurePlugin(name: string, definition: PluginConfigInput, call?: CallOptions): Promise<PluginDefinition> {
    // Not retried: a 503 here is a refused connectivity check, and asking again only doubles the wait.
    return this.call({ method: 'PUT', path: pluginPath(name), body: definition, idempotent: false }, call);
  }

  /** Enables a plugin after a connectivity check (503 `unavailable` with the reason when it fails). */
  enablePlugin(name: string, call?: CallOptions): Promise<PluginDefinition> {
    return this.send(`${pluginPath(name)}/enable`, {}, call);
  }

  /** Disables a plugin: its jobs wait in the queue until it is enabled again. */
  disablePlugin(name: string, call?: CallOptions): Promise<PluginDefinition> {
    return this.send(`${pluginPath(name)}/disable`, {}, call);
  }

  /** Removes a disabled plugin and its jobs (an enabled one is refused). */
  removePlugin(name: string, call?: CallOptions): Promise<{ removed: string }> {
    return this.call({ method: 'DELETE', path: pluginPath(name), idempotent: false }, call);
  }

  /** Sends a synthetic event through the plugin now (not queued); a failure is `ok: false`, not a throw. */
  testPlugin(name: string, call?: CallOptions): Promise<PluginTestResult> {
    return this.send(`${pluginPath(name)}/test`, {}, call);
  }

  /** Queues the stored events of an aggregate type (or one aggregate) of this client's tenant again for one plugin. */
  replayPlugin(name: string, input: PluginReplayInput): Promise<{ queued: number }> {
    return this.send(`${pluginPath(name)}/replay`, { aggregateType: input.aggregateType, aggregateId: input.aggregateId, payloadMode: input.payloadMode }, input);
  }

  /** Queue counts per plugin and the jobs not yet done, with their last errors. */
  queue(call?: CallOptions): Promise<QueueStatus> {
    return this.read('/v1/queue', undefined, call);
  }

  /** Dead jobs (all, or the one of this event id) back to pending now. */
  retryQueue(eventId?: string, call?: CallOptions): Promise<{ retried: number; stillDead: number }> {
    return this.send('/v1/queue/retry', { eventId }, call);
  }

  /** Removes dead jobs (all, or one plugin's). */
  clearQueue(plugin?: string, call?: CallOptions): Promise<{ cleared: number }> {
    return this.send('/v1/queue/clear', { plugin }, call);
  }

  // ---- tenants (a `tenant.admin` token; changes need one valid for every tenant) ----

  /** Every tenant the token may see, with shard, usage, quota, write rate and plugin lag. */
  async tenants(call?: CallOptions): Promise<TenantView[]> {
    return (await this.read<{ items: TenantView[] }>('/v1/tenants', undefined, call)).items;
  }

  tenantView(tenant: string, call?: CallOptions): Promise<TenantView> {
    return this.read(tenantPath(tenant), undefined, call);
  }

  /** Tenants with an explicit shard, quota or write rate (optionally those on one shard). */
  tenantMeta(options: { shard?: string } & CallOptions = {}): Promise<TenantMetaList> {
    return this.read('/v1/tenant-meta', options.shard !== undefined ? { shard: options.shard } : undefined, options);
  }

  tenantStats(call?: CallOptions): Promise<TenantShardStats> {
    return this.read('/v1/tenant-meta/stats', undefined, call);
  }

  /** Pins the tenant to a shard (`shard-0003` or `3`); a tenant with data is moved (or refused 409 `tenant_not_empty`). */
  assignTenant(tenant: string, shard: string, call?: CallOptions): Promise<TenantPlacementChange> {
    return this.call({ method: 'PUT', path: `${tenantPath(tenant)}/shard`, body: { shard }, idempotent: true }, call);
  }

  unassignTenant(tenant: string, call?: CallOptions): Promise<TenantPlacementChange> {
    return this.call({ method: 'DELETE', path: `${tenantPath(tenant)}/shard`, idempotent: true }, call);
  }

  setTenantQuota(tenant: string, maxAggregates: number, call?: CallOptions): Promise<TenantMetaEntry> {
    return this.call({ method: 'PUT', path: `${tenantPath(tenant)}/quota`, body: { maxAggregates }, idempotent: true }, call);
  }

  clearTenantQuota(tenant: string, call?: CallOptions): Promise<{ tenant: string; cleared: boolean }> {
    return this.call({ method: 'DELETE', path: `${tenantPath(tenant)}/quota`, idempotent: true }, call);
  }

  recalcTenantQuota(tenant: string, call?: CallOptions): Promise<{ tenant: string; count: number }> {
    return this.send(`${tenantPath(tenant)}/quota/recalc`, {}, call);
  }

  setTenantLimit(tenant: string, rate: TenantRateInput, call?: CallOptions): Promise<TenantMetaEntry> {
    return this.call({ method: 'PUT', path: `${tenantPath(tenant)}/limit`, body: { writesPerSec: rate.writesPerSec, burst: rate.burst }, idempotent: true }, call);
  }

  clearTenantLimit(tenant: string, call?: CallOptions): Promise<{ tenant: string; cleared: boolean }> {
    return this.call({ method: 'DELETE', path: `${tenantPath(tenant)}/limit`, idempotent: true }, call);
  }

  /**
   * Loads a tenant export (NDJSON lines as `GET /v1/tenants/{t}/export` streams them) into an empty
   * tenant; every hash and root is recomputed and compared. `resume`: re-run after a failed import.
   */
  importTenant(tenant: string, lines: string | AsyncIterable<string | Uint8Array>, options: { resume?: boolean } & CallOptions = {}): Promise<TenantImportSummary> {
    return this.call<TenantImportSummary>(
      {
        method: 'POST',
        path: `${tenantPath(tenant)}/import`,
        ...(options.resume ? { query: { resume: true } } : {}),
        raw: { contentType: 'application/x-ndjson', body: typeof lines === 'string' ? lines : Readable.from(lines) },
        idempotent: false,
      },
      { timeoutMs: 0, ...callOf(options) },
    );
  }

  /** Removes every data range of the tenant, its assignment, quota and limit (`force`: even with undelivered plugin jobs). */
  removeTenant(tenant: string, options: { force?: boolean } & CallOptions = {}): Promise<TenantRemoval> {
    return this.call({ method: 'DELETE', path: tenantPath(tenant), ...(options.force ? { query: { force: true } } : {}), idempotent: true }, options);
  }
}
