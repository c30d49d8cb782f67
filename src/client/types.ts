/**
 * Public types of the client, in camelCase. Result types are derived from the API's own record
 * types (snake_case, the server's src/core types or the `Api*` shapes below) through `Camel`, the
 * type-level twin of the mapper that renames them at run time (mapper.ts), so the two cannot drift.
 * Payloads and states are user data: typed by the caller (`get<State>()`, `events<Payload>()`),
 * never re-cased.
 */
import type { z } from 'zod';
import type * as core from '../core/types.js';
import type * as schemaApi from '../core/schema/api.js';
import type { QueryExplain as ApiQueryExplain } from '../core/filter-plan.js';
import type { KindOptions, PayloadMode, PluginKind, pluginDefinition, PluginDefinition as ApiPluginDefinition } from '../plugins/types.js';
import type { Camel } from './mapper.js';
import type { RequestDispatcher } from './transport.js';

export type { Camel, Wire } from './mapper.js';
export type JsonValue = core.JsonValue;
export type JsonObject = core.JsonObject;
export type { PayloadMode as PluginPayloadMode, PluginKind };

// ---- options every call takes ----

export interface CallOptions {
  /** Aborts the call: it rejects with `AbortError` (code `aborted`). */
  signal?: AbortSignal;
  /**
   * The whole call (retries and their back-off included) must settle within this, else it rejects
   * with `TimeoutError` (code `timeout`). Default: the client's `timeoutMs`; 0 = no deadline.
   */
  timeoutMs?: number;
}

export interface RetryOptions {
  /** Total tries of an idempotent call (reads, writes with an idempotency key) after a connection error or a 502/503/504. Default 3; 1 = no retry. */
  attempts?: number;
  /** Back-off before try n+1: random in [0, min(maxDelayMs, initialDelayMs · 2^(n-1))] (full jitter). */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

export interface ClientOptions {
  /** Base URL, e.g. http://127.0.0.1:7070. Else ip + port, else $EVENTDBX_URL, else $EVENTDBX_HOST/$EVENTDBX_PORT. */
  url?: string;
  ip?: string;
  port?: number;
  /** Bearer token (else $EVENTDBX_TOKEN). */
  token?: string;
  /** X-Tenant-Id (else $EVENTDBX_TENANT_ID, else "default"). `tenantId` is the original client's name. */
  tenant?: string;
  tenantId?: string;
  retry?: RetryOptions;
  /** Default deadline of every call (a call's own `timeoutMs` wins). Default 30 s; 0 = none. */
  timeoutMs?: number;
  /** Keep-alive connections kept open to the server. Default 8. */
  connections?: number;
  /**
   * For an https:// URL: the PEM certificate(s) of the CA to trust instead of the system's roots
   * (a private CA, or a self-signed server certificate). `caFile` reads them from a file (else
   * $EVENTDBX_CA_FILE); `ca` gives them directly and wins over both.
   */
  ca?: string | Buffer | (string | Buffer)[];
  caFile?: string;
  /**
   * Send the JSON calls through this instead of the client's own keep-alive pool: an undici
   * `Agent`, `ProxyAgent` or `MockPool`, or any object with undici's `request` and `close`
   * (dbx answers its direct reads in-process this way). The client never closes it. Streams
   * (exports, replays, subscribe) keep their own connections.
   */
  dispatcher?: RequestDispatcher;
}

// ---- records ----

/** An event as the API returns it; `payload` is typed by the caller (a patch event's payload is its operations). */
export interface EventRecord<P = JsonObject | JsonValue[]> extends Omit<Camel<core.EventRecord>, 'payload'> {
  payload: P;
}
export type EventMetadata = Camel<core.EventMetadata>;

export interface AggregateView<S = JsonObject, P = JsonObject | JsonValue[]> extends Omit<Camel<core.AggregateView>, 'state' | 'events'> {
  state: S;
  /** With `includeEvents`: the events up to this version. */
  events?: EventRecord<P>[];
}

export interface SnapshotRecord<S = JsonObject> extends Omit<Camel<core.SnapshotRecord>, 'state'> {
  state: S;
}

/** What archive, restore and snapshot answer: `state` only when the token may read the aggregate (and its type is not hidden). */
export type Receipt<T extends { state: unknown }> = Omit<T, 'state'> & { state?: T['state'] };

export type VerifyResult = Camel<core.VerifyResult>;

export interface Page<T> {
  items: T[];
  /** Give it as `cursor` for the next page; null on the last. */
  nextCursor: string | null;
  /** With `explain: true`: the index or scan the server used and what it read for this page. */
  explain?: QueryExplain;
}

/** `explain` of a list answer (see the README's *Queries*): plan, ranges, records read, missing fields. */
export type QueryExplain = Camel<ApiQueryExplain>;

/** `select`: the requested dot paths as given (user names, not re-cased); missing → null. */
export type Selection = Record<string, unknown>;

interface ApiInclusionProof {
  aggregate_type: string;
  aggregate_id: string;
  version: number;
  tree_size: number;
  leaf_hash: string;
  root: string;
  /** Sibling hashes, bottom up (RFC 6962 audit path). */
  proof: string[];
}
export type InclusionProof = Camel<ApiInclusionProof>;

interface ApiConsistencyProof {
  aggregate_type: string;
  aggregate_id: string;
  from_size: number;
  to_size: number;
  from_root: string;
  to_root: string;
  proof: string[];
}
export type ConsistencyProof = Camel<ApiConsistencyProof>;

// ---- write options ----

export interface WriteOptions extends CallOptions {
  /** Extensions: keys start with `@` (user data, sent as given). */
  metadata?: Record<string, unknown>;
  note?: string;
  expectedVersion?: number;
  /** Makes the write safe to retry: a replay returns the original result. */
  idempotencyKey?: string;
}

export interface EventOptions<P = Record<string, unknown>> extends WriteOptions {
  payload?: P;
}

export type CreateOptions<P = Record<string, unknown>> = Omit<EventOptions<P>, 'expectedVersion'>;

export interface LifecycleOptions extends WriteOptions {
  comment?: string;
}

export type PatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; path: string; from: string };

export interface BatchEvent<P = Record<string, unknown>> extends Omit<EventOptions<P>, keyof CallOptions> {
  aggregateType: string;
  aggregateId: string;
  eventType: string;
  /** RFC 6902 operations: the event is a patch (applied after the batch's earlier events) instead of `payload`. */
  patch?: PatchOperation[];
}

// ---- read options ----

export interface GetOptions extends CallOptions {
  version?: number;
  includeEvents?: boolean;
}

export interface PageOptions extends CallOptions {
  take?: number;
  cursor?: string;
  filter?: string;
  /** Ask the server how it served the page (`page.explain`). */
  explain?: boolean;
}

export interface ListOptions extends PageOptions {
  sort?: string;
  includeArchived?: boolean;
  archivedOnly?: boolean;
}

export interface ImportOptions extends CallOptions {
  /** Default true: a given hash or merkle_root that differs from the recomputed one refuses its chunk. */
  verify?: boolean;
}

// ---- server ----

interface ApiStatusPlugin {
  name: string;
  enabled: boolean;
  pending: number;
  dead: number;
  lag_secs: number;
}
/** Delivery per plugin as `status()` reports it to a server administrator. */
export type StatusPlugin = Camel<ApiStatusPlugin>;

interface ApiServerStatus {
  pid: number;
  port: number;
  uptime_secs: number;
  started_at: string;
  restrict: string;
  shards: number;
  workers: number;
  durability: string;
  data_dir: string;
  aggregates: number;
  /** Server administrators only: delivery per configured plugin. */
  plugins?: ApiStatusPlugin[];
}
export type ServerStatus = Camel<ApiServerStatus>;

interface ApiImportSummary {
  lines: number;
  imported: number;
  skipped: number;
  aggregates_created: number;
}
/** What a bulk import answers. */
export type ImportSummary = Camel<ApiImportSummary>;

// ---- schemas ----

export type AggregateSchema = Camel<schemaApi.AggregateSchema>;
export type ColumnSettings = Camel<schemaApi.ColumnSettings>;
export type EventSchema = Camel<schemaApi.EventSchema>;
export type SchemaRecord = Camel<schemaApi.SchemaRecord>;
/** A schema rule a payload broke: `field` is its dotted path ("" = the whole payload). */
export type Violation = schemaApi.Violation;

/** One entry of a schema's history (`deleted`: the tombstone a delete leaves). */
export type SchemaVersion = Camel<schemaApi.SchemaRecord & { deleted: boolean; recorded_at: string }>;

/** The answer of a dry-run validation (`schemaVersion` null: no schema, so anything is valid). */
export interface SchemaValidation<P = Record<string, unknown>> {
  valid: boolean;
  violations: Violation[];
  /** The payload as it would be stored (declared types normalised). */
  payload: P;
  schemaVersion: number | null;
}

/** A schema a client sends: what the server stores, timestamps optional (the server sets them). */
export type SchemaInput = Partial<Omit<AggregateSchema, 'columnTypes'>> & {
  /** By field name: the column's settings, or just its type name. */
  columnTypes?: Record<string, ColumnSettings | string>;
};

export interface SchemaWriteOptions extends CallOptions {
  /** Refuse (409 version_conflict) unless the schema is at this version (0 = none yet). */
  expectedVersion?: number;
}

// ---- tokens ----

interface ApiTokenInfo {
  jti: string;
  subject: string;
  group: string;
  user: string;
  actions: string[];
  resources: string[];
  tenants: string[];
  issued_by: string;
  issued_at: string;
  not_before: string | null;
  expires_at: string | null;
  status: 'active' | 'revoked';
  revoked_at: string | null;
  revoke_reason: string | null;
  replaced_by: string | null;
  limits: { write_events: number | null; keep_alive: boolean };
  expired: boolean;
  writes_used: number;
  writes_remaining: number | null;
}
/** A token as the ledger records it (never its value). */
export type TokenInfo = Camel<ApiTokenInfo>;

export interface TokenIssueInput extends CallOptions {
  group: string;
  user: string;
  subject?: string;
  actions: string[];
  resources?: string[];
  tenants?: string[];
  expirationSecs?: number;
  writeLimit?: number;
  keepAlive?: boolean;
}

export interface TokenRefreshOptions extends CallOptions {
  expirationSecs?: number;
  writeLimit?: number;
}

export interface IssuedToken {
  token: string;
  record: TokenInfo;
}

interface ApiKeyRotation {
  public_key: string;
  key_id: string;
  revoked: number;
  rotated_at: string;
}
export type KeyRotation = Camel<ApiKeyRotation>;

// ---- plugins and the queue ----

/** A plugin as configured (kind options in `options`; `headers`/`env` are sent as given). */
export type PluginDefinition = Camel<ApiPluginDefinition>;
export type PluginOptions = Camel<KindOptions>;

/** What `configurePlugin` sends: a definition without its name (the path names it), defaults filled by the server. */
export type PluginConfigInput = Camel<Omit<z.input<typeof pluginDefinition>, 'name'>>;

interface ApiPluginCounts {
  plugin: string;
  enabled: boolean;
  pending: number;
  processing: number;
  done: number;
  dead: number;
  /** Age of its oldest job not yet done (0 when none). */
  lag_ms: number;
}
export type PluginCounts = Camel<ApiPluginCounts>;

/** A configured plugin as `plugins()` lists it (counts absent until the dispatcher knows it). */
export type PluginInfo = PluginDefinition & { counts?: PluginCounts };

/** The outcome of a plugin test: the synthetic delivery `body` (as the plugin received it, snake_case) and whether the plugin took it. */
export interface PluginTestResult {
  ok: boolean;
  error?: string;
  ms: number;
  body: Record<string, unknown>;
}

export interface PluginReplayInput extends CallOptions {
  aggregateType: string;
  aggregateId?: string;
  /** Must be the plugin's own mode (the server refuses another); omit it. */
  payloadMode?: PayloadMode;
}

interface ApiQueueJob {
  plugin: string;
  event_id: string;
  tenant: string;
  aggregate_type: string;
  aggregate_id: string;
  version: number;
  status: 'pending' | 'processing' | 'done' | 'dead';
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  committed_at: number;
  updated_at: number;
}
/** A job not yet done (one event for one plugin); times are epoch ms. */
export type QueueJob = Camel<ApiQueueJob>;

interface ApiQueueStatus {
  plugins: ApiPluginCounts[];
  jobs: ApiQueueJob[];
  jobs_total: number;
}
/** Counts per plugin, and the open jobs (the first 1000 of `jobsTotal`). */
export type QueueStatus = Camel<ApiQueueStatus>;
