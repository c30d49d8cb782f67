/**
 * What the API answers, as zod schemas: each route declares its success answer with one of these
 * (RouteSpec.response) and /openapi.json publishes them as named components, so generated clients
 * get real types instead of `unknown`. They describe; they never serialise (a zod response schema
 * doubles the cost of JSON.stringify on hot routes). test/openapi-complete.test.ts checks real
 * answers against them, so a field added to an answer without its schema fails there.
 *
 * Objects are closed (`additionalProperties: false` in the document): the description says exactly
 * what is sent today; `state`, `payload` and `extensions` are the caller's own JSON.
 */
import { z } from 'zod';
import { ERROR_CATALOGUE } from '../core/index.js';
import { PAYLOAD_MODES, pluginDefinition } from '../plugins/types.js';

/** Every named schema, in the order the document lists them (openapi.ts turns each into a component). */
export const NAMED_RESPONSE_SCHEMAS = new Map<string, z.ZodType>();

function named<T extends z.ZodType>(id: string, schema: T, description?: string): T {
  if (NAMED_RESPONSE_SCHEMAS.has(id)) throw new Error(`response schema ${id} is declared twice`);
  const described = (description ? schema.describe(description) : schema) as T;
  NAMED_RESPONSE_SCHEMAS.set(id, described);
  return described;
}

const int = z.number().int();
const count = z.number().int().min(0);
const hash = z.string().regex(/^[0-9a-f]{64}$/).describe('64 lowercase hex digits (SHA-256)');
const timestamp = z.iso.datetime({ offset: true });
const json = z.record(z.string(), z.unknown());

export const ErrorBody = named(
  'Error',
  z.object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_CATALOGUE) as [keyof typeof ERROR_CATALOGUE, ...(keyof typeof ERROR_CATALOGUE)[]]),
      message: z.string().describe('for a person; never a stack or an internal path'),
      details: z.unknown().optional().describe('per code: the failed fields of validation_failed, current_version of version_conflict, …'),
    }),
  }),
  'Every error: { error: { code, message, details? } }',
);

// ---- events and aggregates ----

export const EventRecord = named(
  'EventRecord',
  z.object({
    aggregate_type: z.string(),
    aggregate_id: z.string(),
    event_type: z.string(),
    version: int.min(1),
    payload: z.union([json, z.array(z.unknown())]).describe('the event payload; for a patch event, the RFC 6902 operations'),
    extensions: json.describe('the `@`-keyed metadata sent with the write'),
    metadata: z.object({
      event_id: z.string().regex(/^\d{1,20}$/).describe('Snowflake id, a decimal string'),
      created_at: timestamp,
      issued_by: z.object({ group: z.string(), user: z.string() }).nullable(),
      note: z.string().optional(),
      schema_version: int.min(1).optional().describe('the schema registry version the payload was validated against'),
    }),
    hash: hash.describe('RFC 6962 leaf hash of the canonical event without hash and merkle_root'),
    merkle_root: hash.describe('root of the Merkle tree of events 1..version'),
  }),
  'An event as stored (hidden schema fields left out of the payload)',
);

export const AggregateView = named(
  'AggregateView',
  z.object({
    aggregate_type: z.string(),
    aggregate_id: z.string(),
    version: count,
    state: json,
    merkle_root: hash,
    archived: z.boolean(),
    created_at: timestamp,
    updated_at: timestamp,
    snapshot_version: int.min(1).optional().describe('the snapshot an older version was rebuilt from'),
    events: z.array(EventRecord).optional().describe('with include_events=true, in version order'),
  }),
  'An aggregate: its state folded from its events, and its Merkle root',
);

export const QueryExplain = named(
  'QueryExplain',
  z.object({
    plan: z.enum(['index_range', 'index_lookup', 'full_scan']),
    index: z.string().describe('the database read (and its key order)'),
    ranges: z.array(z.string()).describe('the key ranges (or keys) read, as a person reads them'),
    order: z.string(),
    indexed_fields: z.array(z.string()),
    unindexed_fields: z.array(z.string()),
    sort: z.enum(['none', 'index', 'top_k']),
    index_entries_read: count,
    records_read: count,
    rows_rejected: count,
    rows_rejected_listing: count,
    max_scan: count.nullable(),
    missing_fields: z.array(z.string()).describe('filter fields that no record read has (a misspelt field matches nothing)'),
    notes: z.array(z.string()),
  }),
  'With ?explain=true: how the list was read (index or scan) and what this request read',
);

const page = <T extends z.ZodType>(id: string, item: T, what: string, explained = false) =>
  named(
    id,
    z.object({
      items: z.array(item),
      next_cursor: z.string().nullable().describe('null: the listing is complete (a short page is not the end)'),
      ...(explained ? { explain: QueryExplain.optional() } : {}),
    }),
    `A page of ${what}; pass next_cursor as ?cursor= for the next`,
  );

export const AggregatePage = page('AggregatePage', AggregateView, 'aggregates', true);
export const EventPage = page('EventPage', EventRecord, 'events', true);

export const BatchResult = named('BatchResult', z.object({ events: z.array(EventRecord) }), 'The appended events, in the order sent');
export const BatchCheck = named('BatchCheck', z.object({ valid: z.literal(true), events: z.number().int() }), 'The batch would be accepted as sent (nothing was written)');

export const SelectResult = named('SelectResult', json, 'Each requested dot path → its value in the state (null when missing)');

export const SnapshotRecord = named('SnapshotRecord', z.object({
  aggregate_type: z.string(),
  aggregate_id: z.string(),
  version: int.min(1),
  state: json,
  merkle_root: hash,
  created_at: timestamp,
  comment: z.string().nullable(),
}));
export const SnapshotPage = page('SnapshotPage', SnapshotRecord, 'snapshots');
/**
 * The answers of archive, restore and POST …/snapshots: the aggregate (or snapshot) with its
 * state left out for a caller that may not read the aggregate, and for a hidden type.
 */
export const AggregateReceipt = named(
  'AggregateReceipt',
  AggregateView.omit({ state: true, events: true }).extend({ state: json.optional().describe('absent for a caller that may not read the aggregate, and for a hidden type') }),
  'An aggregate after an archive or restore (its state only for a caller that may read it)',
);
export const SnapshotReceipt = named(
  'SnapshotReceipt',
  SnapshotRecord.omit({ state: true }).extend({ state: json.optional().describe('absent for a caller that may not read the aggregate, and for a hidden type') }),
  'The snapshot just taken (its state only for a caller that may read it)',
);

const VERIFY_PROBLEM_KINDS = [
  'event_unreadable',
  'event_missing',
  'event_key',
  'event_hash',
  'event_root',
  'event_fold',
  'head_version',
  'head_frontier',
  'head_root',
  'head_state',
  'head_archived',
  'snapshot_state',
  'snapshot_root',
  'snapshot_orphan',
] as const;

export const VerifyResult = named(
  'VerifyResult',
  z.object({
    aggregate_type: z.string(),
    aggregate_id: z.string(),
    version: count,
    merkle_root: hash,
    valid: z.boolean(),
    first_invalid_version: int.min(1).optional(),
    problems: z.array(z.object({ kind: z.enum(VERIFY_PROBLEM_KINDS), version: int.min(0).optional(), message: z.string() })).optional().describe('when invalid: every failed check'),
  }),
  'Every hash and root recomputed from the stored events',
);

export const InclusionProof = named(
  'InclusionProof',
  z.object({
    aggregate_type: z.string(),
    aggregate_id: z.string(),
    version: int.min(1),
    tree_size: int.min(1),
    leaf_hash: hash,
    root: hash,
    proof: z.array(hash).describe('RFC 6962 audit path, bottom up'),
  }),
  'RFC 6962 inclusion proof of event `version` in the tree of `tree_size` events',
);

export const ConsistencyProof = named(
  'ConsistencyProof',
  z.object({
    aggregate_type: z.string(),
    aggregate_id: z.string(),
    from_size: int.min(1),
    to_size: int.min(1),
    from_root: hash,
    to_root: hash,
    proof: z.array(hash),
  }),
  'RFC 6962 consistency proof: the tree of from_size events is a prefix of the tree of to_size',
);

export const ProofResult = named('ProofResult', z.union([InclusionProof, ConsistencyProof]), 'An inclusion proof (?version) or a consistency proof (?from_size)');

export const ImportSummary = named('ImportSummary', z.object({ lines: count, imported: count, skipped: count, aggregates_created: count }));

// ---- system ----

export const Health = named('Health', z.object({ status: z.literal('ok') }));
export const StreamEvents = named(
  'StreamEvents',
  z.string(),
  'Server-Sent Events (with `Accept: text/event-stream`): `retry: 1000` first; each event is `id: <position after it>` + `data: <the event record as JSON, as GET /v1/events/{event_id} answers it>`; at the start and while idle, `event: heartbeat` frames carry the position as `id:` and `data: {"position": …}`; a cut session ends with `event: error` + `data: {"error": {"code", "message"}}` (`slow_consumer`; `unauthorized` once the token is revoked or expired). Reconnect with `Last-Event-ID` to resume.',
);
export const MetricsText = named('MetricsText', z.string(), 'Prometheus text exposition format 0.0.4');
export const OpenApiDocument = named('OpenApiDocument', json, 'This OpenAPI 3.1 document');

const statusCommon = {
  port: int,
  uptime_secs: count,
  started_at: timestamp,
  restrict: z.enum(['off', 'default', 'strict']),
  durability: z.enum(['sync', 'async']),
};
export const ServerStatus = named(
  'ServerStatus',
  z.object({
    scope: z.literal('server'),
    pid: int,
    ...statusCommon,
    shards: int,
    workers: int,
    data_dir: z.string(),
    aggregates: count,
    plugins: z.array(z.object({ name: z.string(), enabled: z.boolean(), pending: count, dead: count, lag_secs: z.number().min(0) })),
  }),
  'What a server administrator token sees',
);
export const TenantStatus = named('TenantStatus', z.object({ scope: z.literal('tenant'), tenant: z.string(), ...statusCommon }), 'What any other token sees');
export const Status = named('Status', z.discriminatedUnion('scope', [ServerStatus, TenantStatus]));

// ---- schemas ----

interface ColumnSettingsShape {
  type: string;
  required?: boolean | undefined;
  contains?: string[] | undefined;
  does_not_contain?: string[] | undefined;
  regex?: string[] | undefined;
  length?: { min?: number | undefined; max?: number | undefined } | undefined;
  range?: { min?: string | undefined; max?: string | undefined } | undefined;
  format?: string | undefined;
  properties?: Record<string, ColumnSettingsShape> | undefined;
}
export const ColumnSettings: z.ZodType<ColumnSettingsShape> = named(
  'ColumnSettings',
  z.object({
    type: z.string().describe('canonical: integer, float, decimal(p,s), boolean, text, timestamp, date, json, binary, object'),
    required: z.boolean().optional(),
    contains: z.array(z.string()).optional(),
    does_not_contain: z.array(z.string()).optional(),
    regex: z.array(z.string()).optional(),
    length: z.object({ min: count.optional(), max: count.optional() }).optional(),
    range: z.object({ min: z.string().optional(), max: z.string().optional() }).optional(),
    format: z.string().optional(),
    get properties() {
      return z.record(z.string(), ColumnSettings).optional();
    },
  }),
);

export const AggregateSchema = named(
  'AggregateSchema',
  z.object({
    aggregate: z.string(),
    snapshot_threshold: count.nullable(),
    locked: z.boolean(),
    field_locks: z.array(z.string()),
    hidden: z.boolean(),
    hidden_fields: z.array(z.string()),
    column_types: z.record(z.string(), ColumnSettings),
    events: z.record(z.string(), z.object({ fields: z.array(z.string()), notes: z.string().optional() })),
    created_at: timestamp,
    updated_at: timestamp,
  }),
  'A schema as stored (canonical column types)',
);
export const SchemaRecord = named('SchemaRecord', z.object({ tenant: z.string(), version: int.min(1), schema: AggregateSchema }), 'The schema in force and its registry version');
export const SchemaVersionRecord = named(
  'SchemaVersionRecord',
  z.object({ tenant: z.string(), version: int.min(1), schema: AggregateSchema, deleted: z.boolean().describe('a tombstone: the schema was removed at this version'), recorded_at: timestamp }),
  'One version of a schema history',
);
export const SchemaPage = page('SchemaPage', SchemaRecord, 'schemas in force');
export const SchemaVersionPage = page('SchemaVersionPage', SchemaVersionRecord, 'schema versions, oldest first');
export const JsonSchemaDocuments = named('JsonSchemaDocuments', z.record(z.string(), json), 'Event type → its JSON Schema 2020-12 document');
export const Violation = named('Violation', z.object({ field: z.string(), rule: z.string(), message: z.string() }));
export const PayloadValidation = named(
  'PayloadValidation',
  z.object({ valid: z.boolean(), violations: z.array(Violation), payload: json.describe('normalised when valid'), schema_version: int.min(1).nullable() }),
);

// ---- tokens ----

export const TokenView = named(
  'TokenView',
  z.object({
    jti: z.string(),
    subject: z.string(),
    group: z.string(),
    user: z.string(),
    actions: z.array(z.string()),
    resources: z.array(z.string()),
    tenants: z.array(z.string()),
    issued_by: z.string(),
    issued_at: timestamp,
    not_before: timestamp.nullable(),
    expires_at: timestamp.nullable(),
    status: z.enum(['active', 'revoked']),
    revoked_at: timestamp.nullable(),
    revoke_reason: z.string().nullable(),
    replaced_by: z.string().nullable(),
    limits: z.object({ write_events: count.nullable(), keep_alive: z.boolean() }),
    expired: z.boolean(),
    writes_used: count,
    writes_remaining: count.nullable(),
  }),
  'A ledger record: grants and live state, never the token value',
);
export const TokenList = named('TokenList', z.object({ items: z.array(TokenView) }));
export const IssuedToken = named('IssuedToken', z.object({ token: z.string().describe('the JWT: shown once, never stored'), record: TokenView }));
export const KeyRotation = named('KeyRotation', z.object({ public_key: z.string(), key_id: z.string(), revoked: count, rotated_at: timestamp }));

// ---- plugins and the queue ----

export const PluginCounts = named(
  'PluginCounts',
  z.object({ plugin: z.string(), enabled: z.boolean(), pending: count, processing: count, done: count, dead: count, lag_ms: z.number().min(0) }),
);
export const PluginDefinition = named('PluginDefinition', pluginDefinition, 'A plugin as configured');
export const PluginList = named('PluginList', z.object({ items: z.array(pluginDefinition.extend({ counts: PluginCounts.optional() })) }));
export const PluginRemoved = named('PluginRemoved', z.object({ removed: z.string() }));
export const PluginTestOutcome = named(
  'PluginTestOutcome',
  z.object({ ok: z.boolean(), error: z.string().optional(), ms: z.number().min(0), body: json.describe('the synthetic delivery body that was sent') }),
);
export const PluginReplay = named('PluginReplay', z.object({ queued: count }));
export const QueueJob = named(
  'QueueJob',
  z.object({
    plugin: z.string(),
    event_id: z.string(),
    tenant: z.string(),
    aggregate_type: z.string(),
    aggregate_id: z.string(),
    version: int.min(1),
    status: z.enum(['pending', 'processing', 'done', 'dead']),
    attempts: count,
    next_attempt_at: count.describe('epoch ms; 0 = now'),
    last_error: z.string().nullable(),
    created_at: count.describe('epoch ms'),
    committed_at: count.describe('epoch ms'),
    updated_at: count.describe('epoch ms'),
    payload_mode: z.enum(PAYLOAD_MODES).optional(),
  }),
);
export const QueueState = named('QueueState', z.object({ plugins: z.array(PluginCounts), jobs: z.array(QueueJob).describe('the first 1000 not yet done'), jobs_total: count }));
export const QueueRetry = named('QueueRetry', z.object({ retried: count, still_dead: count }));
export const QueueClear = named('QueueClear', z.object({ cleared: count }));

// ---- exports (streamed) ----

export const ExportCsv = named('ExportCsv', z.string(), 'CSV: `__aggregate_id`, the schema columns, then every other state key; one row per active aggregate, sorted by id');
export const ExportJson = named(
  'ExportJson',
  z.array(z.looseObject({ __aggregate_type: z.string(), __aggregate_id: z.string(), __version: int.min(1), __merkle_root: hash })),
  'One object per active aggregate, sorted by id: the four `__` fields, then its state keys',
);
export const ExportTypes = named('ExportTypes', z.object({ items: z.array(z.object({ aggregate_type: z.string(), aggregates: count })) }));
export const EventLines = named('EventLines', z.string(), 'NDJSON: one EventRecord per line, in version order (what POST /v1/import reads)');
