/**
 * Bulk import (POST /v1/import): a streamed NDJSON body of event records as the API returns them,
 * one per line. The body is read line by line (never buffered whole), each line is validated at the
 * edge, placed on its shard and gathered per worker into chunks of `[import] chunk_events`; a chunk
 * is one atomic sub-batch of one group commit in its worker (recomputed hashes, contiguous versions,
 * unique event ids), and a few chunks per worker are in flight so parsing here overlaps the
 * worker's commits.
 *
 * Atomic per chunk, resumable per file: when a line fails, its chunk writes nothing and no further
 * chunk is sent; chunks already sent commit or fail on their own, and the answer says how many
 * events were committed. Re-running the same file skips every version already stored with the same
 * hash, so it continues where the failed run stopped.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import {
  DbxError,
  globMatch,
  NAME_CHARS_MAX,
  aggregateIdSchema,
  aggregateTypeSchema,
  jsonTextProblem,
  noteSchema,
  parseInput,
  shardFor,
  writeSchemas,
  type Config,
  type PlacementSettings,
  type ValueCipher,
  type WriteLimits,
} from '../core/index.js';
import { precomputeImport, type ImportItem, type ImportRecord, type ShardResult } from '../shard-worker/index.js';
import { authorize, type Principal } from './auth.js';
import type { Metrics } from './metrics.js';
import type { SchemaVisibility } from './schema-visibility.js';
import { ndjsonLines } from './ndjson-lines.js';
import * as responses from './response-schemas.js';
import { defineRoute, queryBool, type RouteSpec } from './route-spec.js';
import type { ImportIdGuard } from './import-ids.js';
import type { ShardPool } from './shard-pool.js';
import type { ImportSession, TenantGate } from './tenant-gate.js';

/** The largest 63-bit Snowflake id. */
const SNOWFLAKE_MAX = (1n << 63n) - 1n;
/** ASCII digits only (\d in a JS regex without the u flag is [0-9]), no leading zero, ≤ 19 of them. */
const DECIMAL_ID = /^[1-9][0-9]{0,18}$/;

export const IMPORT_CONTENT_TYPE = 'application/x-ndjson';

const hex64 = (what: string) => z.string().regex(/^[0-9a-f]{64}$/, `${what} must be 64 lowercase hex digits`);

/**
 * One line: an event record as the API returns it (`hash` and `merkle_root` optional: they are
 * recomputed anyway). Names, ids, payload and metadata limits are the write routes' own; the event
 * type may be a lifecycle one (aggregate_archived / aggregate_restored), which writes cannot name.
 */
export function importLineSchema(limits: Pick<WriteLimits, 'jsonDepthMax' | 'jsonNodesMax'>) {
  const schemas = writeSchemas(limits);
  return z.strictObject({
    aggregate_type: aggregateTypeSchema,
    aggregate_id: aggregateIdSchema,
    event_type: z
      .string()
      .max(NAME_CHARS_MAX, `event_type cannot exceed ${NAME_CHARS_MAX} characters`)
      .regex(/^[a-z][a-z0-9_]*$/, 'event_type must be lowercase snake_case'),
    version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    payload: z.union([schemas.payload, schemas.patchBody.shape.patch]),
    extensions: schemas.metadata.default({}),
    metadata: z.strictObject({
      // A Snowflake is 63 bits (DESIGN §3): beyond 2^63 − 1 an id is no id this store can make.
      event_id: z
        .string()
        .regex(DECIMAL_ID, 'event_id must be a Snowflake id (a decimal string)')
        // zod runs a refinement even after the regex failed: BigInt('1.5') would throw out of it.
        .refine((id) => !DECIMAL_ID.test(id) || BigInt(id) <= SNOWFLAKE_MAX, 'event_id must be a Snowflake id (at most 2^63 - 1)'),
      created_at: z.iso.datetime(),
      issued_by: z.strictObject({ group: z.string().min(1).max(256), user: z.string().min(1).max(256) }).nullable(),
      note: noteSchema.optional(),
      // Exported events validated against a schema carry it; it is part of their hash.
      schema_version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    }),
    hash: hex64('hash').optional(),
    merkle_root: hex64('merkle_root').optional(),
  });
}

const importQuery = z.strictObject({
  /** Default true: a given hash or merkle_root that differs from the recomputed one refuses its chunk. */
  verify: queryBool.optional(),
});

export interface ImportSummary {
  /** Lines in the body (blank lines included), whether or not one failed: the body is read to its end. */
  lines: number;
  /** Events written by committed chunks. */
  imported: number;
  /** Lines whose version was already stored with the same hash. */
  skipped: number;
  /** Aggregates the committed chunks created. */
  aggregates_created: number;
}

interface Settings {
  chunkEvents: number;
  chunksInFlight: number;
  lineBytesMax: number;
}

/** Feeds placed lines to the workers in chunks, a bounded number in flight per worker. */
class ImportFeed {
  readonly summary: ImportSummary = { lines: 0, imported: 0, skipped: 0, aggregates_created: 0 };
  private readonly pending: ImportItem[][];
  private readonly inFlight: Set<Promise<void>>[];
  /** The failure with the lowest line number; once set, nothing more is sent. */
  failure: { line: number; error: DbxError } | undefined;
  /** Names this import to the workers: a worker refuses its chunks after one of them failed there. */
  private readonly importId = randomUUID();

  constructor(
    private readonly pool: ShardPool,
    private readonly settings: Settings,
    private readonly verify: boolean,
    private readonly importIds: ImportIdGuard | undefined,
    /** The tenant's write rate (tenant-gate.ts): waited on before each chunk is sent. */
    private readonly pace: ((events: number) => Promise<void>) | undefined,
  ) {
    this.pending = Array.from({ length: pool.workerCount }, () => []);
    this.inFlight = Array.from({ length: pool.workerCount }, () => new Set());
  }

  /** Queues a placed line; answers true when its worker's chunk is full (call `flush`). */
  add(worker: number, item: ImportItem): boolean {
    const list = this.pending[worker] as ImportItem[];
    list.push(item);
    return list.length >= this.settings.chunkEvents;
  }

  fail(line: number, error: DbxError): void {
    if (!this.failure || line < this.failure.line) this.failure = { line, error };
  }

  /** Sends the worker's chunk once fewer than chunks_in_flight of its chunks are unanswered. */
  async flush(worker: number): Promise<void> {
    const inFlight = this.inFlight[worker] as Set<Promise<void>>;
    while (inFlight.size >= this.settings.chunksInFlight) await Promise.race(inFlight);
    const items = this.pending[worker] as ImportItem[];
    this.pending[worker] = [];
    if (this.failure || items.length === 0) return;
    if (this.pace) await this.pace(items.length);
    if (this.failure) return;
    const sent = this.send(worker, items).then(
      (result) => this.count(result),
      (err: unknown) => this.fail(lineOf(err, items), err instanceof DbxError ? err : new DbxError('internal', 'import chunk failed', undefined, { cause: err })),
    );
    const tracked: Promise<void> = sent.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }

  /** Sends what is left (unless a line failed) and waits for every chunk's answer. */
  async finish(): Promise<void> {
    for (let w = 0; w < this.pending.length; w++) await this.flush(w);
    await Promise.all(this.inFlight.flatMap((set) => [...set]));
  }

  /** Waits for every chunk in flight (after a failed read too: their commits count). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inFlight.flatMap((set) => [...set]));
  }

  private send(worker: number, items: ImportItem[]): Promise<ShardResult> {
    if (this.importIds) return this.importIds.send(this.pool, worker, items, this.verify, this.importId);
    return this.pool.requestWorker(worker, { kind: 'import', commands: items, verify: this.verify, import_id: this.importId });
  }

  private count(result: ShardResult): void {
    if (result.kind !== 'import') throw new DbxError('internal', `shard answered ${result.kind} to import`);
    this.summary.imported += result.imported;
    this.summary.skipped += result.skipped;
    this.summary.aggregates_created += result.created;
  }
}

/** The worker names the failing line in `details.line`; else the chunk's first line. */
function lineOf(err: unknown, items: ImportItem[]): number {
  const line = (err as { details?: { line?: unknown } } | undefined)?.details?.line;
  return typeof line === 'number' ? line : (items[0]?.line ?? 0);
}

function withLine(err: unknown, line: number): DbxError {
  const error = err instanceof DbxError ? err : new DbxError('invalid_input', String(err));
  const details = Array.isArray(error.details) ? { errors: error.details } : ((error.details as object | undefined) ?? {});
  return new DbxError(error.code, `line ${line}: ${error.message}`, { line, ...details });
}

export interface ImportDeps {
  pool: ShardPool;
  placement: PlacementSettings;
  config: Config;
  limits: WriteLimits;
  metrics: Metrics;
  /** Tenant admission and aggregate quota (tenant-gate.ts); absent in tests that build routes alone. */
  tenantGate?: Pick<TenantGate, 'importSession'>;
  /** Hiding (schema-visibility.ts): an imported patch may not read a hidden field either. */
  visibility?: Pick<SchemaVisibility, 'assertPatchReadsVisible'>;
  /** Encryption at rest: the workers' cipher; events are sealed here (import-record.ts). */
  cipher?: ValueCipher | null;
  /** Event ids unique across workers (import-ids.ts); absent in tests that build routes alone. */
  importIds?: ImportIdGuard;
}

export function importRoutes(deps: ImportDeps): RouteSpec[] {
  const lineSchema = importLineSchema(deps.limits);
  const settings: Settings = {
    chunkEvents: deps.config.import.chunk_events,
    chunksInFlight: deps.config.import.chunks_in_flight,
    // A stored record is at most event_bytes_max (checked once parsed); the line adds hash and root,
    // and JSON may escape every character (`\u0001` is 6 bytes for 1; an emoji 12 for 4), as
    // Python's json.dumps does by default: the line bound only stops a line with no end in sight.
    lineBytesMax: deps.limits.eventBytesMax * 6 + 4096,
  };

  /** Validates, authorises and places one line; answers the worker whose chunk is now full, else -1 (a failure is recorded in the feed). */
  /**
   * `issued_by` is kept on import (history keeps its authors, and its hashes), so naming someone
   * else is for tokens that could act as anyone anyway: a server administrator (`*`), or a holder
   * of `token.admin` or `tenant.admin` (who can issue a token in any name). A token that only
   * imports writes history in its own name: a line naming another author is refused (403), so it
   * cannot extend a live aggregate under someone else's identity (issue 10 §4).
   */
  function assertMayAttribute(principal: Principal, issuedBy: { group: string; user: string } | null): void {
    const { claims } = principal;
    if (claims.actions.some((a) => a === '*' || a === '*.*' || globMatch(a, 'token.admin') || globMatch(a, 'tenant.admin'))) return;
    const own = { group: claims.group, user: claims.user };
    if (issuedBy !== null && issuedBy.group === own.group && issuedBy.user === own.user) return;
    throw new DbxError(
      'forbidden',
      `metadata.issued_by ${issuedBy ? `${issuedBy.group}:${issuedBy.user}` : 'null'} is not this token's identity (${own.group}:${own.user}): importing history in another's name needs a token with token.admin, tenant.admin or *`,
      { path: 'metadata.issued_by' },
    );
  }

  function accept(feed: ImportFeed, text: string, line: number, principal: Principal, tenant: string, session?: ImportSession): number {
    const problem = jsonTextProblem(text);
    if (problem) {
      feed.fail(line, new DbxError(problem.code, `line ${line}: ${problem.path}: ${problem.message}`, { line, path: problem.path }));
      return -1;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      feed.fail(line, new DbxError('invalid_input', `line ${line}: not valid JSON`, { line }));
      return -1;
    }
    let record: ImportRecord;
    try {
      record = parseInput(lineSchema, value, 'line') as ImportRecord;
      authorize(principal, 'aggregate.import', { type: record.aggregate_type, id: record.aggregate_id });
      assertMayAttribute(principal, record.metadata.issued_by);
      if (Array.isArray(record.payload)) deps.visibility?.assertPatchReadsVisible(tenant, record.aggregate_type, record.payload as { op: string; path: string; from?: string }[]);
      session?.line(record.aggregate_type, record.aggregate_id, record.version);
    } catch (err) {
      feed.fail(line, withLine(err, line));
      return -1;
    }
    const shard = shardFor(deps.placement, tenant, record.aggregate_type, record.aggregate_id);
    const worker = deps.pool.workerOf(shard);
    // The state-free part of the stored event, made here beside the worker's stateful work.
    const pre = precomputeImport(record, deps.cipher ?? null);
    return feed.add(worker, { shard, tenant, line, record, pre }) ? worker : -1;
  }

  return [
    defineRoute({
      method: 'POST',
      url: '/v1/import',
      operationId: 'importEvents',
      response: responses.ImportSummary,
      errors: [409],
      summary:
        'Bulk import: an NDJSON body (Content-Type: application/x-ndjson) of event records as the API returns them, one per line, each continuing its aggregate; atomic per chunk, re-runnable (versions stored with the same hash are skipped)',
      action: 'aggregate.import',
      status: 200,
      query: importQuery,
      stream: { contentType: IMPORT_CONTENT_TYPE, line: lineSchema },
      handler: async ({ request, query, principal, tenant, reply }) => {
        // An import's size is known only once it is read: it cannot be charged exactly to an allowance.
        if (principal.claims.limits.write_events !== null && principal.claims.limits.write_events !== undefined) {
          throw new DbxError('forbidden', 'bulk import needs a token without a write limit');
        }
        const body = request.body as Readable | undefined;
        if (!body || typeof (body as Partial<Readable>).setEncoding !== 'function') {
          throw new DbxError('invalid_input', `send the events one per line with Content-Type: ${IMPORT_CONTENT_TYPE}`);
        }
        const session = await deps.tenantGate?.importSession(tenant);
        // A client that went away stops the wait for the rate (its chunks are not sent).
        const gone = new AbortController();
        // (The response's close: before it is sent, only a connection that went.)
        reply.raw.once('close', () => gone.abort());
        const feed = new ImportFeed(deps.pool, settings, query?.verify ?? true, deps.importIds, session && ((events) => session.pace(events, gone.signal)));
        try {
          await readLines(body, settings.lineBytesMax, feed, (text, line) => accept(feed, text, line, principal, tenant, session));
          await feed.finish();
        } finally {
          // A body cut off mid-way (the client went) leaves chunks in flight: the quota count and
          // the tenant's admission end only once they are answered, so none commits after.
          await feed.settle();
          const lost = feed.failure !== undefined && feed.failure.error.status >= 500;
          session?.end(lost ? undefined : feed.summary.aggregates_created, feed.summary.imported);
        }
        deps.metrics.eventsAppended.inc(feed.summary.imported);
        if (feed.failure) {
          const { error } = feed.failure;
          // The body was read to its end, so the connection stays usable; still, say what stayed.
          const details = { ...((error.details as object | undefined) ?? {}), ...feed.summary, committed: 'chunks answered before the failure stay committed; re-run the file to continue' };
          reply.header('connection', 'close');
          throw new DbxError(error.code, error.message, details);
        }
        return feed.summary;
      },
    }),
  ];
}

/**
 * Splits the body into lines as it arrives and hands each to `onLine`, which answers a worker whose
 * chunk is full (or -1); only then does reading wait (back-pressure on the socket). After a
 * failure the rest of the body is read and dropped unparsed, so the answer follows the whole body.
 */
async function readLines(body: Readable, lineBytesMax: number, feed: ImportFeed, onLine: (text: string, line: number) => number): Promise<void> {
  for await (const item of ndjsonLines(body, lineBytesMax)) {
    // Every line of the body counts, after a failure too (the failing one is `details.line`).
    feed.summary.lines = item.line;
    if (feed.failure) continue;
    if (item.error) {
      feed.fail(item.line, item.error);
      continue;
    }
    if (item.text.trim().length === 0) continue;
    const full = onLine(item.text, item.line);
    if (full >= 0) await feed.flush(full);
  }
}
