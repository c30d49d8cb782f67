/** Public types of the client: options in camelCase, results exactly as the API returns them. */
import type { AggregateView, EventRecord, JsonObject, Page, SnapshotRecord, VerifyResult } from '../core/types.js';

export type { AggregateView, EventRecord, JsonObject, Page, SnapshotRecord, VerifyResult };
import type { AggregateSchema, ColumnSettings, EventSchema, SchemaRecord, Violation } from '../core/schema/api.js';

export type { AggregateSchema, ColumnSettings, EventSchema, SchemaRecord, Violation };
import type { z } from 'zod';
import type { KindOptions, PayloadMode, PluginDefinition, PluginKind, pluginDefinition } from '../plugins/types.js';

export type { KindOptions as PluginOptions, PayloadMode as PluginPayloadMode, PluginDefinition, PluginKind };

/** One entry of a schema's history (`deleted`: the tombstone a delete leaves). */
export interface SchemaVersion extends SchemaRecord {
  deleted: boolean;
  recorded_at: string;
}

/** The answer of a dry-run validation (`schema_version` null: no schema, so anything is valid). */
export interface SchemaValidation {
  valid: boolean;
  violations: Violation[];
  payload: Record<string, unknown>;
  schema_version: number | null;
}

/** The schema JSON a client sends: what the server stores, timestamps optional (the server sets them). */
export type SchemaInput = Partial<Omit<AggregateSchema, 'column_types'>> & {
  column_types?: Record<string, ColumnSettings | string>;
};

export interface SchemaWriteOptions {
  /** Refuse (409 version_conflict) unless the schema is at this version (0 = none yet). */
  expectedVersion?: number;
}

export interface RetryOptions {
  /** Total tries for an idempotent call (GETs, writes with an idempotency key). Default 3. */
  attempts?: number;
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
  /** Per request: headers and body must arrive within this. Default 30 s. */
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
}

export interface WriteOptions {
  metadata?: Record<string, unknown>;
  note?: string;
  expectedVersion?: number;
  /** Makes the write safe to retry: a replay returns the original result. */
  idempotencyKey?: string;
}

export interface EventOptions extends WriteOptions {
  payload?: Record<string, unknown>;
}

export type CreateOptions = Omit<EventOptions, 'expectedVersion'>;

export interface LifecycleOptions extends WriteOptions {
  comment?: string;
}

export type PatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; path: string; from: string };

export interface GetOptions {
  version?: number;
  includeEvents?: boolean;
}

export interface PageOptions {
  take?: number;
  cursor?: string;
  filter?: string;
}

export interface ListOptions extends PageOptions {
  sort?: string;
  includeArchived?: boolean;
  archivedOnly?: boolean;
}

export interface BatchEvent extends EventOptions {
  aggregateType: string;
  aggregateId: string;
  eventType: string;
  /** RFC 6902 operations: the event is a patch (applied after the batch's earlier events) instead of `payload`. */
  patch?: PatchOperation[];
}

export interface ServerStatus {
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
  plugins?: StatusPlugin[];
}

export type Selection = Record<string, unknown>;

export interface ImportOptions {
  /** Default true: a given hash or merkle_root that differs from the recomputed one refuses its chunk. */
  verify?: boolean;
}

/** What `POST /v1/import` answers. */
export interface ImportSummary {
  lines: number;
  imported: number;
  skipped: number;
  aggregates_created: number;
}

/** A token as the ledger records it (never its value). */
export interface TokenInfo {
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

export interface TokenIssueInput {
  group: string;
  user: string;
  subject?: string;
  actions: string[];
  resources?: string[];
  tenants?: string[];
  expiration_secs?: number;
  write_limit?: number;
  keep_alive?: boolean;
}

export interface IssuedToken {
  token: string;
  record: TokenInfo;
}

export interface KeyRotation {
  public_key: string;
  key_id: string;
  revoked: number;
  rotated_at: string;
}

/**
 * Plugins (`/v1/plugins…`, a `plugin.admin` token). The definition types come from the server's
 * own zod schema, so the client cannot drift from what the server accepts.
 */

/** What `configurePlugin` sends: a definition without its name (the path names it), defaults filled by the server. */
export type PluginConfigInput = Omit<z.input<typeof pluginDefinition>, 'name'>;

/** One plugin's jobs by state; `lag_ms` is the age of its oldest job not yet done (0 when none). */
export interface PluginCounts {
  plugin: string;
  enabled: boolean;
  pending: number;
  processing: number;
  done: number;
  dead: number;
  lag_ms: number;
}

/** A configured plugin as `GET /v1/plugins` lists it (counts absent until the dispatcher knows it). */
export type PluginInfo = PluginDefinition & { counts?: PluginCounts };

/** The outcome of `POST /v1/plugins/{name}/test`: the synthetic body and whether the plugin took it. */
export interface PluginTestResult {
  ok: boolean;
  error?: string;
  ms: number;
  body: Record<string, unknown>;
}

export interface PluginReplayInput {
  aggregate_type: string;
  aggregate_id?: string;
  /** Must be the plugin's own mode (the server refuses another); omit it. */
  payload_mode?: PayloadMode;
}

/** A job not yet done (one event for one plugin); times are epoch ms. */
export interface QueueJob {
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

/** `GET /v1/queue`: counts per plugin, and the open jobs (the first 1000 of `jobs_total`). */
export interface QueueStatus {
  plugins: PluginCounts[];
  jobs: QueueJob[];
  jobs_total: number;
}

/** Delivery per plugin as `GET /v1/status` reports it to a server administrator. */
export interface StatusPlugin {
  name: string;
  enabled: boolean;
  pending: number;
  dead: number;
  lag_secs: number;
}
