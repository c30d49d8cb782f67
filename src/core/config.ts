/**
 * config.toml: schema, defaults, load and save. Every limit lives here with a default (TigerStyle:
 * put a limit on everything). A malformed file is refused with one line naming the key and what it
 * expects; the file is never rewritten when it fails to parse.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { z } from 'zod';
import { WORKER_ID_MAX } from './snowflake.js';
import { EVENT_BYTES_MAX_DEFAULT, JSON_DEPTH_MAX_CEILING, JSON_DEPTH_MAX_DEFAULT, JSON_NODES_MAX_DEFAULT, STATE_BYTES_MAX_DEFAULT } from './limits.js';

/** A listen address as `dbx config --host` and config.toml may give it: an IP literal or a DNS name (RFC 1123 labels). */
function isHostSyntax(host: string): boolean {
  if (isIP(host) !== 0 || (host.startsWith('[') && host.endsWith(']') && isIP(host.slice(1, -1)) === 6)) return true;
  return host.length <= 253 && /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/.test(host);
}
import { writeFileDurably, mkdirDurably } from './durable-file.js';
import { tenantSchema } from './validation.js';
import { parseRestrictMode } from './schema/restrict.js';

export const CONFIG_FILE = 'config.toml';
export const DEFAULT_PORT = 7070;

export function defaultDataDir(): string {
  return resolve(process.env.EVENTDBX_DATA_DIR ?? join(homedir(), '.eventdbx'));
}

const storageSchema = z.strictObject({
  durability: z.enum(['sync', 'async']).default('sync'),
  flush_interval_ms: z.number().int().min(1).max(60_000).default(100),
  /** Shard worker threads, one LMDB environment each; 0 = automatic (see effectiveWorkers). */
  workers: z.number().int().min(0).max(64).default(0),
  /**
   * Group commits a worker hands to LMDB before the first of them is durable: while one flushes the
   * next is prepared and written. 1 (default, measured faster on the reference VM) = no overlap: a
   * group commits on the worker's own thread (shard-worker/worker.ts commitGroup).
   */
  commits_in_flight_max: z.number().int().min(1).max(64).default(1),
  /** Commands gathered into one LMDB commit at most (group commit bound). */
  batch_commands_max: z.number().int().min(1).max(100_000).default(2048),
  /**
   * A request to a shard worker that has no answer after this long fails with 503 (a lost reply
   * never hangs a caller); a prepared cross-worker batch is released after twice this.
   */
  worker_reply_timeout_ms: z.number().int().min(100).max(600_000).default(30_000),
  /** LMDB map size per worker environment, in MiB (a ceiling, not an allocation). */
  map_size_mib: z.number().int().min(64).max(16 * 1024 * 1024).default(64 * 1024),
});

const tenantsSchema = z.strictObject({
  multi_tenant: z.boolean().default(false),
  shard_count: z.number().int().min(1).max(1024).default(4),
  /** `/metrics` labels per-tenant series with the N busiest tenants; the rest add up under `other`. */
  metrics_top_n: z.number().int().min(0).max(1000).default(20),
  /**
   * A write to a tenant whose writes are paused (placement change, live move) waits this long at
   * most, then is answered 503 `unavailable` with Retry-After (nothing written).
   */
  write_pause_max_ms: z.number().int().min(0).max(600_000).default(5000),
  /**
   * A write refused for the tenant's rate (`dbx tenant limit`) while the tenant was already told
   * Retry-After is held this long at most (never past that Retry-After) before its 429: a client
   * that ignores Retry-After then makes one request per connection per hold instead of thousands a
   * second. 0 = answer every 429 at once.
   */
  rate_limit_hold_max_ms: z.number().int().min(0).max(10_000).default(1000),
  /** Refused writes held at once per tenant; beyond, the 429 is sent at once with `Connection: close`. */
  rate_limit_held_max: z.number().int().min(1).max(100_000).default(256),
  /**
   * Refused writes held at once over all tenants (bounds the requests kept waiting; each held one
   * costs its request objects on top of the connection the client holds open anyway).
   */
  rate_limit_held_total_max: z.number().int().min(1).max(1_000_000).default(4096),
});

const authSchema = z.strictObject({
  issuer: z.string().min(1).default('eventdbx://self'),
  audience: z.string().min(1).default('eventdbx-clients'),
  private_key: z.string().default(''),
  public_key: z.string().default(''),
  key_id: z.string().default(''),
  default_ttl_secs: z.number().int().min(60).default(3600),
  clock_skew_secs: z.number().int().min(0).max(300).default(30),
  /** Verified tokens kept in memory so signature checks stay off the hot path. */
  verified_cache_max: z.number().int().min(0).max(1_000_000).default(10_000),
});

/** Cross-origin requests from browsers: off unless enabled, and then only from the listed origins. */
const corsSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** Exact origins (`https://app.example.com`), or `"*"` for any. */
  origins: z.array(z.string().min(1).max(256)).max(256).default([]),
  /** How long a browser may cache a preflight answer. */
  max_age_secs: z.number().int().min(0).max(86_400).default(600),
});

/** Requests per second per token (its `jti`), refused with 429 and Retry-After beyond; 0 = off. */
const rateLimitSchema = z.strictObject({
  per_token_per_sec: z.number().min(0).max(1_000_000).default(0),
  /** Requests a token may make at once after being idle; 0 = one second's worth. */
  burst: z.number().int().min(0).max(10_000_000).default(0),
  /** Tokens tracked at once (least recently seen forgotten first): bounds the limiter's memory. */
  tokens_tracked_max: z.number().int().min(1).max(10_000_000).default(100_000),
});

const httpSchema = z
  .strictObject({
    /** Loopback by default (like PostgreSQL and Redis); "0.0.0.0" or "::" listens on every interface. */
    host: z.string().min(1).refine(isHostSyntax, 'must be a host name or an IP address (e.g. 127.0.0.1, 0.0.0.0, ::, localhost)').default('127.0.0.1'),
    /** PEM certificate chain and private key: both set = HTTPS only on `port`. */
    tls_cert_file: z.string().min(1).optional(),
    tls_key_file: z.string().min(1).optional(),
    /** PEM CA that signed tls_cert_file: what the CLI on this machine trusts when it calls this server. */
    tls_ca_file: z.string().min(1).optional(),
    body_limit_bytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
    /** Request line plus all headers (Node's maxHeaderSize); beyond: 431. */
    header_bytes_max: z.number().int().min(1024).max(1024 * 1024).default(32 * 1024),
    /** Path plus query string; beyond: 414. */
    url_bytes_max: z.number().int().min(256).max(1024 * 1024).default(16 * 1024),
    request_timeout_ms: z.number().int().min(100).max(600_000).default(30_000),
    slow_request_ms: z.number().int().min(1).max(600_000).default(500),
    cors: corsSchema.prefault({}),
    rate_limit: rateLimitSchema.prefault({}),
  })
  .refine((http) => (http.tls_cert_file === undefined) === (http.tls_key_file === undefined), {
    message: 'tls_cert_file and tls_key_file must be set together',
    path: ['tls_cert_file'],
  });

const metricsSchema = z.strictObject({ public: z.boolean().default(false) });

/** pino's levels; `EVENTDBX_LOG_LEVEL` / `EVENTDBX_LOG_FORMAT` override these for one run. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['auto', 'pretty', 'json'] as const;
const logSchema = z.strictObject({
  level: z.enum(LOG_LEVELS).default('info'),
  /** auto: pretty and coloured on a terminal, one JSON object a line otherwise (files, pipes, the daemon's log). */
  format: z.enum(LOG_FORMATS).default('auto'),
});

/** Bounds on what one write may carry and produce (see limits.ts; refusals are 400 or 413). */
const limitsSchema = z.strictObject({
  json_depth_max: z.number().int().min(1).max(JSON_DEPTH_MAX_CEILING).default(JSON_DEPTH_MAX_DEFAULT),
  json_nodes_max: z.number().int().min(1).max(10_000_000).default(JSON_NODES_MAX_DEFAULT),
  state_bytes_max: z.number().int().min(1024).max(1024 * 1024 * 1024).default(STATE_BYTES_MAX_DEFAULT),
  event_bytes_max: z.number().int().min(1024).max(1024 * 1024 * 1024).default(EVENT_BYTES_MAX_DEFAULT),
});

/** Bounds on list queries: each runs on the coordinator's main thread, so each must stop early. */
const querySchema = z.strictObject({
  /** Rows an unsorted list (or one aggregate's events) reads per request before it answers a partial page. */
  scan_rows_max: z.number().int().min(1).max(100_000_000).default(100_000),
  /** Time a list may scan per request; an unsorted list answers a partial page, a sort a 400. */
  scan_time_max_ms: z.number().int().min(1).max(600_000).default(500),
  /** Rows a sorted list may read (it must see every row in scope before answering); beyond: 400. */
  sort_scan_max: z.number().int().min(1).max(100_000_000).default(100_000),
  /**
   * Rows a filter may reject over all the pages of one listing (counted in its cursors) before the
   * listing is a 400: a filter no index serves stops rather than scanning for minutes.
   */
  max_scan: z.number().int().min(1).max(10_000_000_000).default(1_000_000),
  filter_chars_max: z.number().int().min(16).max(65_536).default(4096),
  /** Parentheses and NOTs nested; the parser and evaluator recurse once per level. */
  filter_depth_max: z.number().int().min(1).max(256).default(64),
});

/** Bulk import (POST /v1/import, `dbx import`): how the coordinator feeds the shard workers. */
const importSchema = z.strictObject({
  /** Events per request to a worker: one atomic sub-batch of one group commit (one LMDB transaction). */
  chunk_events: z.number().int().min(1).max(100_000).default(1000),
  /** Chunks sent to one worker and not yet answered, at most: parsing overlaps the worker's commits. */
  chunks_in_flight: z.number().int().min(1).max(64).default(3),
});

/** Plugin delivery (DESIGN §8): the dispatcher and the piscina delivery pool. */
const pluginsSchema = z.strictObject({
  /** A job that used up plugin_max_attempts: later jobs of its aggregate wait behind it ("block"), or pass it ("skip"). */
  on_dead: z.enum(['block', 'skip']).default('block'),
  /** Delivery worker threads (piscina). */
  pool_threads: z.number().int().min(1).max(64).default(2),
  /** Deliveries of one plugin in flight at once (one per aggregate at most: order is per aggregate). */
  in_flight_max: z.number().int().min(1).max(10_000).default(64),
  /** A delivery that has not answered after this long fails (kinds have their own, shorter timeouts). */
  job_timeout_ms: z.number().int().min(100).max(600_000).default(30_000),
  /** First retry delay; doubles per attempt, with full jitter, up to retry_max_ms. */
  retry_base_ms: z.number().int().min(1).max(600_000).default(500),
  retry_max_ms: z.number().int().min(1).max(3_600_000).default(60_000),
  /** How often the dispatcher looks for new events in the shards' outboxes. */
  poll_ms: z.number().int().min(1).max(10_000).default(50),
  /** How often job state changes (processing, done, retries) are committed, batched; a crash loses at most this much of them, which means redeliveries, never lost jobs. */
  state_flush_ms: z.number().int().min(1).max(10_000).default(100),
  /** Outbox entries moved into the queue per shard per pass. */
  batch_max: z.number().int().min(1).max(100_000).default(1000),
  /** Open jobs one plugin holds in memory (~300 B each); beyond it they wait in the queue on disk and are loaded back as deliveries free room. */
  jobs_in_memory_max: z.number().int().min(1).max(10_000_000).default(100_000),
});

/** The global ordered stream (GET /v1/stream) and its live (SSE) subscribers. */
const streamSchema = z.strictObject({
  /** A heartbeat (with the current position) goes to each live subscriber this often; the token is re-checked then. */
  heartbeat_ms: z.number().int().min(100).max(300_000).default(15_000),
  /** Events queued for a live subscriber whose socket is not draining; beyond, it is cut (event: error, slow_consumer). */
  max_buffered_events: z.number().int().min(1).max(1_000_000).default(1000),
  /** The same bound in bytes of queued SSE text. */
  max_buffered_bytes: z.number().int().min(4096).max(1024 * 1024 * 1024).default(8 * 1024 * 1024),
  /** Stream entries read per pass (a catch-up page, a live fan-out pass) before the event loop gets a turn. */
  read_batch_max: z.number().int().min(1).max(100_000).default(512),
  /** Live subscribers at once (beyond: 503); each costs a socket and at most its buffer. */
  subscribers_max: z.number().int().min(1).max(100_000).default(1024),
  /** Fallback look for new commits when no commit notice arrived (notices wake readers at once). */
  poll_ms: z.number().int().min(10).max(60_000).default(1000),
});

const pluginQueueSchema = z.strictObject({
  prune: z
    .strictObject({
      done_ttl_secs: z.number().int().min(0).default(86_400),
      interval_secs: z.number().int().min(60).default(300),
      max_done_jobs: z.number().int().min(0).optional(),
    })
    .prefault({}),
});

function restrictOnRead(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 'default' : 'off';
  if (typeof value !== 'string') return value;
  try {
    return parseRestrictMode(value);
  } catch {
    return 'default';
  }
}

export const configSchema = z.strictObject({
  port: z.number().int().min(0).max(65_535).default(DEFAULT_PORT),
  data_dir: z.string().min(1).optional(),
  // The tenant the CLI and unscoped requests use: it must be a valid tenant id (DESIGN §3).
  domain: tenantSchema.default('default'),
  // Read as the original reads it (reference §2.1): booleans and its aliases (`true`, `prod`, `dev`…)
  // map to a mode, an unknown spelling to `default`; what is written back is the canonical name.
  restrict: z.preprocess(restrictOnRead, z.enum(['off', 'default', 'strict'])).default('default'),
  cache_threshold: z.number().int().min(0).max(10_000_000).default(10_000),
  snapshot_threshold: z.number().int().min(0).max(1_000_000_000).default(100),
  list_page_size: z.number().int().min(1).max(100_000).default(10),
  page_limit: z.number().int().min(1).max(100_000).default(1000),
  plugin_max_attempts: z.number().int().min(1).max(255).default(10),
  verbose_responses: z.boolean().default(true),
  snowflake_worker_id: z.number().int().min(0).max(WORKER_ID_MAX).default(0),
  /** Encryption at rest (encryption.ts). false: no DEK is generated or used (refused once values are sealed). */
  encryption_at_rest: z.boolean().default(true),
  /** Base64 32-byte DEK; generated at first start when no key is configured. */
  data_encryption_key: z.string().default(''),
  /** A file holding the DEK(s), one base64 key a line (first = active): keeps the key out of the data dir. */
  data_encryption_key_file: z.string().default(''),
  /** Keys rotated out by `dbx config --rotate-dek`: they open old values, never seal new ones. */
  data_encryption_keys_retired: z.array(z.string()).max(64).default([]),
  created_at: z.string().optional(),
  updated_at: z.string().optional(),
  storage: storageSchema.prefault({}),
  tenants: tenantsSchema.prefault({}),
  auth: authSchema.prefault({}),
  http: httpSchema.prefault({}),
  metrics: metricsSchema.prefault({}),
  log: logSchema.prefault({}),
  limits: limitsSchema.prefault({}),
  query: querySchema.prefault({}),
  import: importSchema.prefault({}),
  plugins: pluginsSchema.prefault({}),
  plugin_queue: pluginQueueSchema.prefault({}),
  stream: streamSchema.prefault({}),
});

export type Config = z.output<typeof configSchema>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.map(String).join('.') || '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const prefix = issue.path.length ? `${issue.path.join('.')}.` : '';
    return `unknown key ${issue.keys.map((k) => prefix + k).join(', ')}`;
  }
  return `${key}: ${issue.message}`;
}

export function parseConfig(raw: unknown, origin: string): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const first = result.error.issues[0];
    throw new ConfigError(`invalid ${origin}: ${first ? describeIssue(first) : 'invalid configuration'}`);
  }
  return result.data;
}

export function configPath(dataDir: string): string {
  return join(dataDir, CONFIG_FILE);
}

/** Reads `<dataDir>/config.toml`, or returns defaults when it does not exist (nothing is written). */
export function readConfig(dataDir: string): { config: Config; exists: boolean } {
  const path = configPath(dataDir);
  if (!existsSync(path)) return { config: parseConfig({}, path), exists: false };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ConfigError(`invalid ${path}: not valid TOML (${reason})`);
  }
  return { config: parseConfig(raw, path), exists: true };
}

/** Writes durably (temp file, fsync, rename, dir fsync) so a crash or power cut never leaves half a config. */
export function writeConfig(dataDir: string, config: Config): void {
  // Parents like `mkdir -p` (the umask decides); the data dir itself private from its creation,
  // as `dbx start` makes it: it holds the signing key and, once started, every event.
  mkdirDurably(dirname(resolve(dataDir)), 0o777);
  mkdirDurably(dataDir);
  const { data_dir: _ignored, ...rest } = config;
  writeFileDurably(configPath(dataDir), stringifyToml(stripUndefined(rest)) + '\n', 0o600);
}

function stripUndefined(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    out[key] = v !== null && typeof v === 'object' && !Array.isArray(v) ? stripUndefined(v as Record<string, unknown>) : v;
  }
  return out;
}

/**
 * Shard worker threads for a new data dir (an existing one keeps its recorded layout). Automatic
 * is one: every worker owns an LMDB environment, every environment pays its own flushes, and on
 * one disk one environment committing bigger groups beat two (measured; see config.example.toml).
 */
export function effectiveWorkers(config: Config, _cpuCount: number): number {
  const wanted = config.storage.workers > 0 ? config.storage.workers : 1;
  return Math.max(1, Math.min(wanted, config.tenants.shard_count));
}
