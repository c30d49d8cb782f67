/**
 * The plugin model (DESIGN §8, reference §10): plugin definitions, payload modes and what one
 * delivery carries. Plugin kinds implement `Deliverer`; the delivery pool (piscina workers) builds
 * one per plugin definition and calls `deliver` once per job.
 */
import { z } from 'zod';
import { aggregateTypeSchema, tenantSchema, type EventRecord, type JsonObject } from '../core/index.js';

export const PAYLOAD_MODES = ['all', 'event-only', 'state-only', 'schema-only', 'event-and-schema', 'extensions-only'] as const;
export type PayloadMode = (typeof PAYLOAD_MODES)[number];

const pluginName = z
  .string()
  .trim()
  .min(1, 'plugin name cannot be empty')
  .max(64)
  .regex(/^[A-Za-z0-9_.-]+$/, 'plugin names use letters, digits, _ . -');
/** Headers an http deliverer sets on every delivery (kinds/http.ts): receivers rely on them, configured ones cannot replace them. */
export const DELIVERY_HEADERS: readonly string[] = ['idempotency-key', 'x-eventdbx-event-id', 'x-eventdbx-job-id', 'x-eventdbx-attempt'];
const headerMap = z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'not an HTTP header name'), z.string().max(8192)).default({});
const port = z.number().int().min(1).max(65_535);
const timeoutMs = z.number().int().min(100).max(600_000);

/** The original's rule: an endpoint without a scheme gets `https://` when `https`, else `http://`. */
export function endpointUrl(endpoint: string, https: boolean): URL {
  const withScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(endpoint) ? endpoint : `${https ? 'https' : 'http'}://${endpoint}`;
  const url = new URL(withScheme);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('http plugin endpoint must be http:// or https://');
  return url;
}

export const httpOptions = z.strictObject({
  kind: z.literal('http'),
  /** URL; without a scheme `https://` when `https`, else `http://` (like the original). */
  endpoint: z.string().min(1).max(2048),
  headers: headerMap,
  https: z.boolean().default(false),
  /** PEM file of a CA to trust for an https endpoint. */
  ca_file: z.string().min(1).optional(),
  timeout_ms: timeoutMs.default(5000),
});
export const tcpOptions = z.strictObject({
  kind: z.literal('tcp'),
  host: z.string().min(1).max(255),
  port,
  timeout_ms: timeoutMs.default(5000),
});
export const logOptions = z.strictObject({
  kind: z.literal('log'),
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  /** `{aggregate}`, `{id}`, `{event}` are substituted (the original's template). */
  template: z.string().max(4096).optional(),
  /** Where lines go: a file (appended), or the server's stderr when absent. */
  file: z.string().min(1).optional(),
});
export const processOptions = z.strictObject({
  kind: z.literal('process'),
  /** The program to run (absolute path or on PATH). */
  command: z.string().min(1).max(4096),
  args: z.array(z.string().max(4096)).max(256).default([]),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
  working_dir: z.string().min(1).optional(),
  timeout_ms: timeoutMs.default(10_000),
});
export const postgresOptions = z.strictObject({
  kind: z.literal('postgres'),
  /** postgres://user@host:port/db */
  url: z.string().min(1).max(2048),
  /** Tables are `<table_prefix><aggregate_type>`. */
  table_prefix: z.string().regex(/^[a-z_][a-z0-9_]*$/).max(32).default('edbx_'),
  pg_schema: z.string().regex(/^[a-z_][a-z0-9_]*$/).max(63).default('public'),
});
export const natsOptions = z.strictObject({
  kind: z.literal('nats'),
  servers: z.array(z.string().min(1)).min(1).max(16),
  /** Subject; `{tenant}`, `{aggregate}`, `{event}` substituted. */
  subject: z.string().min(1).max(512).default('eventdbx.{tenant}.{aggregate}.{event}'),
  /** JetStream stream to create when missing (covering the subject's prefix), or none. */
  stream: z.string().regex(/^[A-Za-z0-9_-]+$/).max(64).optional(),
  timeout_ms: timeoutMs.default(5000),
});
export const csvOptions = z.strictObject({
  kind: z.literal('csv'),
  /** Directory: one `<aggregate_type>.csv` per type. */
  dir: z.string().min(1),
});
export const jsonOptions = z.strictObject({
  kind: z.literal('json'),
  /** Directory: one `<aggregate_type>.jsonl` per type. */
  dir: z.string().min(1),
  pretty: z.boolean().default(false),
});

export const kindOptions = z.discriminatedUnion('kind', [httpOptions, tcpOptions, logOptions, processOptions, postgresOptions, natsOptions, csvOptions, jsonOptions]);
export type KindOptions = z.output<typeof kindOptions>;
export type PluginKind = KindOptions['kind'];
export const PLUGIN_KINDS: readonly PluginKind[] = ['http', 'tcp', 'log', 'process', 'postgres', 'nats', 'csv', 'json'];

export const pluginDefinition = z.strictObject({
  name: pluginName,
  enabled: z.boolean().default(true),
  payload_mode: z.enum(PAYLOAD_MODES).default('all'),
  /** Add the event's RFC 6962 inclusion proof, tree size and root to each delivery. */
  with_proof: z.boolean().default(false),
  /** Only these tenants' events (empty = every tenant). */
  tenants: z.array(tenantSchema).max(1024).default([]),
  /** Only these aggregate types (empty = every type). */
  aggregate_types: z.array(aggregateTypeSchema).max(1024).default([]),
  options: kindOptions,
});
export type PluginDefinition = z.output<typeof pluginDefinition>;

/** RFC 6962 inclusion proof of the event (leaf index version−1) in the tree of `tree_size` leaves. */
export interface DeliveryProof {
  leaf_hash: string;
  leaf_index: number;
  tree_size: number;
  root: string;
  /** Sibling hashes, bottom up (RFC 6962 §2.1.1 audit path). */
  path: string[];
}

/**
 * What a plugin receives for one job, built for its payload mode: the parts that mode includes
 * (reference §10.2), always the ids (so a receiver can deduplicate on `event_id`).
 */
export interface DeliveryBody {
  event_id: string;
  tenant: string;
  aggregate_type: string;
  aggregate_id: string;
  version: number;
  event_type: string;
  /** The event record as the API returns it; `payload` null in `extensions-only`. */
  event?: EventRecord | (Omit<EventRecord, 'payload'> & { payload: null });
  /** The aggregate state after this event. */
  state?: JsonObject | null;
  /** The schema in force for the aggregate type, or null when none. */
  schema?: unknown;
  proof?: DeliveryProof;
}

/** One delivery attempt of one job. */
export interface Delivery {
  job_id: string;
  plugin: string;
  attempt: number;
  body: DeliveryBody;
}

/** A plugin kind's delivery side; `deliver` throws (an Error with a short message) on failure. */
export interface Deliverer {
  deliver(delivery: Delivery): Promise<void>;
  /** Connectivity check before `enable` (and `plugin test`); throws with the reason. */
  check(): Promise<void>;
  close(): Promise<void>;
}
