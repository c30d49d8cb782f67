/**
 * The TypeScript client (DESIGN §10: the original client's method names over our HTTP API).
 * Every method throws `EventDbxError` carrying the API's code; results are the API's JSON as is.
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { EventDbxError } from './errors.js';
import { Transport, type Query } from './transport.js';
import type {
  AggregateView,
  BatchEvent,
  ClientOptions,
  CreateOptions,
  EventOptions,
  EventRecord,
  GetOptions,
  ImportOptions,
  ImportSummary,
  LifecycleOptions,
  ListOptions,
  Page,
  PageOptions,
  PatchOperation,
  SchemaInput,
  SchemaRecord,
  SchemaValidation,
  SchemaVersion,
  SchemaWriteOptions,
  Selection,
  ServerStatus,
  TokenInfo,
  TokenIssueInput,
  IssuedToken,
  KeyRotation,
  SnapshotRecord,
  VerifyResult,
  WriteOptions,
  PluginConfigInput,
  PluginDefinition,
  PluginInfo,
  PluginReplayInput,
  PluginTestResult,
  QueueStatus,
} from './types.js';

const DEFAULT_RETRY = { attempts: 3, initialDelayMs: 100, maxDelayMs: 1_000 };

export function createClient(options: ClientOptions = {}): EventDbxClient {
  return new EventDbxClient(options);
}

function resolveUrl(options: ClientOptions): URL {
  const env = process.env;
  let text = options.url;
  if (text === undefined && (options.ip !== undefined || options.port !== undefined)) {
    text = `http://${options.ip ?? '127.0.0.1'}:${options.port ?? 7070}`;
  }
  text ??= env.EVENTDBX_URL || `http://${env.EVENTDBX_HOST || '127.0.0.1'}:${env.EVENTDBX_PORT || '7070'}`;
  try {
    const url = new URL(text);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
    return url;
  } catch {
    throw new EventDbxError('invalid_input', `invalid server URL '${text}' (expected http://host:port)`);
  }
}

/** The CA to trust for https://: `ca`, else the file `caFile` or $EVENTDBX_CA_FILE names, else the system roots. */
function resolveCa(options: ClientOptions): ClientOptions['ca'] {
  if (options.ca !== undefined) return options.ca;
  const file = options.caFile ?? (process.env.EVENTDBX_CA_FILE || undefined);
  if (file === undefined) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new EventDbxError('invalid_input', `cannot read the CA file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

const seg = (value: string): string => encodeURIComponent(value);
const aggregatePath = (type: string, id: string): string => `/v1/aggregates/${seg(type)}/${seg(id)}`;
const schemaPath = (aggregate: string): string => `/v1/schemas/${seg(aggregate)}`;
const pluginPath = (name: string): string => `/v1/plugins/${seg(name)}`;
const expectedQuery = (options: SchemaWriteOptions): Query => ({ expected_version: options.expectedVersion });

function writeFields(options: WriteOptions): Record<string, unknown> {
  return {
    ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
    ...(options.note !== undefined ? { note: options.note } : {}),
    ...(options.expectedVersion !== undefined ? { expected_version: options.expectedVersion } : {}),
    ...(options.idempotencyKey !== undefined ? { idempotency_key: options.idempotencyKey } : {}),
  };
}

function listQuery(options: ListOptions): Query {
  return {
    take: options.take,
    cursor: options.cursor,
    filter: options.filter,
    sort: options.sort,
    include_archived: options.includeArchived || undefined,
    archived_only: options.archivedOnly || undefined,
  };
}

/** Follows `next_cursor` until the last page. */
export async function* paginate<T>(fetchPage: (cursor: string | undefined) => Promise<Page<T>>, cursor?: string): AsyncGenerator<Page<T>> {
  let next: string | undefined = cursor;
  for (;;) {
    const page = await fetchPage(next);
    yield page;
    // A page cut short by the server's scan bound may be empty yet have a next cursor: only a null
    // cursor (or one that does not move) ends the listing.
    if (!page.next_cursor || page.next_cursor === next) return;
    next = page.next_cursor;
  }
}

export class EventDbxClient {
  private readonly transport: Transport;
  readonly tenant: string;

  constructor(options: ClientOptions = {}) {
    this.tenant = options.tenant || options.tenantId || process.env.EVENTDBX_TENANT_ID || 'default';
    const token = options.token || process.env.EVENTDBX_TOKEN;
    const ca = resolveCa(options);
    this.transport = new Transport({
      url: resolveUrl(options),
      ...(ca !== undefined ? { ca } : {}),
      ...(token ? { token } : {}),
      tenant: this.tenant,
      retry: { ...DEFAULT_RETRY, ...options.retry },
      timeoutMs: options.timeoutMs ?? 30_000,
      connections: options.connections ?? 8,
    });
  }

  /** The server's base URL. */
  get url(): string {
    return this.transport.origin;
  }

  private read<T>(path: string, query?: Query): Promise<T> {
    return this.transport.request<T>({ method: 'GET', path, ...(query ? { query } : {}), idempotent: true });
  }

  private send<T>(path: string, body: Record<string, unknown>): Promise<T> {
    return this.transport.request<T>({ method: 'POST', path, body, idempotent: typeof body.idempotency_key === 'string' });
  }

  /** Checks the server answers and the token is valid; returns the server's status. */
  async connect(): Promise<ServerStatus> {
    await this.health();
    return this.status();
  }

  /** Closes the pooled connections; in-flight calls finish first. */
  close(): Promise<void> {
    return this.transport.close();
  }

  /** The original client's name for `close`. */
  disconnect(): Promise<void> {
    return this.close();
  }

  health(): Promise<{ status: string }> {
    return this.read('/health');
  }

  status(): Promise<ServerStatus> {
    return this.read('/v1/status');
  }

  create(type: string, id: string, eventType: string, options: CreateOptions = {}): Promise<AggregateView> {
    return this.send(aggregatePath(type, id), { event_type: eventType, payload: options.payload ?? {}, ...writeFields(options) });
  }

  apply(type: string, id: string, eventType: string, options: EventOptions = {}): Promise<EventRecord> {
    return this.send(`${aggregatePath(type, id)}/events`, { event_type: eventType, payload: options.payload ?? {}, ...writeFields(options) });
  }

  patch(type: string, id: string, eventType: string, operations: PatchOperation[], options: WriteOptions = {}): Promise<EventRecord> {
    return this.send(`${aggregatePath(type, id)}/patch`, { event_type: eventType, patch: operations, ...writeFields(options) });
  }

  archive(type: string, id: string, options: LifecycleOptions = {}): Promise<AggregateView> {
    return this.send(`${aggregatePath(type, id)}/archive`, { ...(options.comment !== undefined ? { comment: options.comment } : {}), ...writeFields(options) });
  }

  restore(type: string, id: string, options: LifecycleOptions = {}): Promise<AggregateView> {
    return this.send(`${aggregatePath(type, id)}/restore`, { ...(options.comment !== undefined ? { comment: options.comment } : {}), ...writeFields(options) });
  }

  /** All or nothing, across aggregates and shards; events come back in the order given. */
  async batch(events: BatchEvent[]): Promise<EventRecord[]> {
    const body = {
      events: events.map((e) => ({
        aggregate_type: e.aggregateType,
        aggregate_id: e.aggregateId,
        event_type: e.eventType,
        ...(e.patch !== undefined ? { patch: e.patch } : { payload: e.payload ?? {} }),
        ...writeFields(e),
      })),
    };
    // A batch is idempotent only if every event carries a key.
    const idempotent = body.events.length > 0 && body.events.every((e) => typeof (e as { idempotency_key?: unknown }).idempotency_key === 'string');
    const result = await this.transport.request<{ events: EventRecord[] }>({ method: 'POST', path: '/v1/batch', body, idempotent });
    return result.events;
  }

  /**
   * Bulk import: `lines` is NDJSON text (or chunks of it), one event record per line as the API
   * returns them. Atomic per server chunk; a failure throws with `details.line` (within this call's
   * body) and the counts already committed. Re-running skips versions stored with the same hash.
   */
  importEvents(lines: string | AsyncIterable<string | Uint8Array>, options: ImportOptions = {}): Promise<ImportSummary> {
    return this.transport.request<ImportSummary>({
      method: 'POST',
      path: '/v1/import',
      ...(options.verify === false ? { query: { verify: false } } : {}),
      raw: { contentType: 'application/x-ndjson', body: typeof lines === 'string' ? lines : Readable.from(lines) },
      idempotent: false,
    });
  }

  get(type: string, id: string, options: GetOptions = {}): Promise<AggregateView> {
    return this.read<AggregateView>(aggregatePath(type, id), { version: options.version, include_events: options.includeEvents || undefined });
  }

  select(type: string, id: string, fields: string[]): Promise<Selection> {
    return this.read(`${aggregatePath(type, id)}/select`, { fields: fields.join(',') });
  }

  /** An aggregate's events in version order. */
  events(type: string, id: string, options: PageOptions = {}): Promise<Page<EventRecord>> {
    return this.read(`${aggregatePath(type, id)}/events`, { take: options.take, cursor: options.cursor, filter: options.filter });
  }

  /** Events of every aggregate of the tenant. */
  listEvents(options: ListOptions = {}): Promise<Page<EventRecord>> {
    return this.read('/v1/events', listQuery(options));
  }

  event(eventId: string): Promise<EventRecord> {
    return this.read(`/v1/events/${seg(eventId)}`);
  }

  /** Aggregates of one type, or of every type when `type` is undefined. */
  list(type?: string, options: ListOptions = {}): Promise<Page<AggregateView>> {
    return this.read(type === undefined ? '/v1/aggregates' : `/v1/aggregates/${seg(type)}`, listQuery(options));
  }

  /** Every matching aggregate, page after page. */
  async *listAll(type?: string, options: Omit<ListOptions, 'cursor' | 'sort'> = {}): AsyncGenerator<AggregateView> {
    for await (const page of paginate((cursor) => this.list(type, { ...options, ...(cursor ? { cursor } : {}) }))) yield* page.items;
  }

  verify(type: string, id: string): Promise<VerifyResult> {
    return this.read(`${aggregatePath(type, id)}/verify`);
  }

  /** RFC 6962 inclusion proof of `version` in the tree of `size` events (default: current). */
  inclusionProof(type: string, id: string, version: number, size?: number): Promise<Record<string, unknown>> {
    return this.read(`${aggregatePath(type, id)}/proof`, { version, size });
  }

  /** RFC 6962 consistency proof between tree sizes `fromSize` and `toSize` (default: current). */
  consistencyProof(type: string, id: string, fromSize: number, toSize?: number): Promise<Record<string, unknown>> {
    return this.read(`${aggregatePath(type, id)}/proof`, { from_size: fromSize, to_size: toSize });
  }

  snapshot(type: string, id: string, options: { comment?: string } = {}): Promise<SnapshotRecord> {
    return this.send(`${aggregatePath(type, id)}/snapshots`, { ...(options.comment !== undefined ? { comment: options.comment } : {}) });
  }

  async snapshots(type: string, id: string): Promise<SnapshotRecord[]> {
    return (await this.read<{ items: SnapshotRecord[] }>(`${aggregatePath(type, id)}/snapshots`)).items;
  }

  /** One page of the tenant's schemas in force, by aggregate name. */
  schemas(options: { take?: number; cursor?: string } = {}): Promise<Page<SchemaRecord>> {
    return this.read('/v1/schemas', { take: options.take, cursor: options.cursor });
  }

  /** Every schema in force for the tenant. */
  async listSchemas(): Promise<SchemaRecord[]> {
    const out: SchemaRecord[] = [];
    // The server caps take at page_limit, so asking for 1000 gets the largest page it allows.
    for await (const page of paginate((cursor) => this.schemas({ take: 1000, ...(cursor ? { cursor } : {}) }))) out.push(...page.items);
    return out;
  }

  getSchema(aggregate: string): Promise<SchemaRecord> {
    return this.read(schemaPath(aggregate));
  }

  /** Creates or replaces the whole schema (a new version unless nothing changed). */
  putSchema(aggregate: string, schema: SchemaInput, options: SchemaWriteOptions = {}): Promise<SchemaRecord> {
    // Idempotent: the same schema again is not a change, so a lost answer may be retried.
    return this.transport.request({ method: 'PUT', path: schemaPath(aggregate), query: expectedQuery(options), body: schema, idempotent: true });
  }

  /** Creates a schema; `already_exists` if the aggregate has one. */
  createSchema(schema: SchemaInput & { aggregate: string }): Promise<SchemaRecord> {
    return this.send('/v1/schemas', schema);
  }

  /** Removes the schema (its history stays, ending with a tombstone version). */
  deleteSchema(aggregate: string, options: SchemaWriteOptions = {}): Promise<SchemaVersion> {
    return this.transport.request({ method: 'DELETE', path: schemaPath(aggregate), query: expectedQuery(options), idempotent: false });
  }

  /** One page of a schema's history, oldest first. */
  schemaVersions(aggregate: string, options: { take?: number; cursor?: string } = {}): Promise<Page<SchemaVersion>> {
    return this.read(`${schemaPath(aggregate)}/versions`, { take: options.take, cursor: options.cursor });
  }

  schemaVersion(aggregate: string, version: number): Promise<SchemaVersion> {
    return this.read(`${schemaPath(aggregate)}/versions/${version}`);
  }

  /** Tokens in the ledger (a `token.admin` token; others' tenants are left out). */
  async tokens(): Promise<TokenInfo[]> {
    return (await this.read<{ items: TokenInfo[] }>('/v1/tokens')).items;
  }

  issueToken(input: TokenIssueInput): Promise<IssuedToken> {
    return this.send('/v1/tokens', { ...input });
  }

  revokeToken(jti: string, reason?: string): Promise<TokenInfo> {
    return this.send(`/v1/tokens/${encodeURIComponent(jti)}/revoke`, reason !== undefined ? { reason } : {});
  }

  refreshToken(jti: string, options: { expiration_secs?: number; write_limit?: number } = {}): Promise<IssuedToken> {
    return this.send(`/v1/tokens/${encodeURIComponent(jti)}/refresh`, { ...options });
  }

  /** Replaces the server's signing keys: every token (this one too) stops working. */
  rotateSigningKeys(): Promise<KeyRotation> {
    return this.send('/v1/tokens/rotate-keys', {});
  }

  /** JSON Schema 2020-12 documents, one per event type. */
  jsonSchema(aggregate: string): Promise<Record<string, unknown>> {
    return this.read(`${schemaPath(aggregate)}/json-schema`);
  }

  /** Checks a payload against the schema in force without writing anything. */
  validateSchema(aggregate: string, eventType: string, payload: Record<string, unknown>): Promise<SchemaValidation> {
    return this.transport.request({ method: 'POST', path: `${schemaPath(aggregate)}/validate`, body: { event_type: eventType, payload }, idempotent: true });
  }

  // ---- plugins and the delivery queue (a `plugin.admin` token; the queue needs a server administrator) ----

  /** Configured plugins with their queue counts and lag. */
  async plugins(): Promise<PluginInfo[]> {
    return (await this.read<{ items: PluginInfo[] }>('/v1/plugins')).items;
  }

  plugin(name: string): Promise<PluginDefinition> {
    return this.read(pluginPath(name));
  }

  /**
   * Creates or replaces a plugin (the whole definition; the server fills defaults). An enabled
   * plugin is checked for connectivity first: refused with 503 `unavailable` and the reason.
   */
  configurePlugin(name: string, definition: PluginConfigInput): Promise<PluginDefinition> {
    // Not retried: a 503 here is a refused connectivity check, and asking again only doubles the wait.
    return this.transport.request({ method: 'PUT', path: pluginPath(name), body: definition, idempotent: false });
  }

  /** Enables a plugin after a connectivity check (503 `unavailable` with the reason when it fails). */
  enablePlugin(name: string): Promise<PluginDefinition> {
    return this.send(`${pluginPath(name)}/enable`, {});
  }

  /** Disables a plugin: its jobs wait in the queue until it is enabled again. */
  disablePlugin(name: string): Promise<PluginDefinition> {
    return this.send(`${pluginPath(name)}/disable`, {});
  }

  /** Removes a disabled plugin and its jobs (an enabled one is refused). */
  removePlugin(name: string): Promise<{ removed: string }> {
    return this.transport.request({ method: 'DELETE', path: pluginPath(name), idempotent: false });
  }

  /** Sends a synthetic event through the plugin now (not queued); a failure is `ok: false`, not a throw. */
  testPlugin(name: string): Promise<PluginTestResult> {
    return this.send(`${pluginPath(name)}/test`, {});
  }

  /** Queues the stored events of an aggregate type (or one aggregate) of this client's tenant again for one plugin. */
  replayPlugin(name: string, input: PluginReplayInput): Promise<{ queued: number }> {
    return this.send(`${pluginPath(name)}/replay`, { ...input });
  }

  /** Queue counts per plugin and the jobs not yet done, with their last errors. */
  queue(): Promise<QueueStatus> {
    return this.read('/v1/queue');
  }

  /** Dead jobs (all, or the one of this event id) back to pending now. */
  retryQueue(eventId?: string): Promise<{ retried: number; still_dead: number }> {
    return this.send('/v1/queue/retry', eventId !== undefined ? { event_id: eventId } : {});
  }

  /** Removes dead jobs (all, or one plugin's). */
  clearQueue(plugin?: string): Promise<{ cleared: number }> {
    return this.send('/v1/queue/clear', plugin !== undefined ? { plugin } : {});
  }
}
