/**
 * A tenant's data as one file and back (issue 12 item 6): `GET /v1/tenants/{t}/export` streams
 * every aggregate of the tenant (active and archived) with its whole history, one event record per
 * line exactly as the API returns it (hash and merkle_root included) — the NDJSON that
 * `POST /v1/import` and `dbx import` read, and that `dbx tenant check` verifies offline.
 * `POST /v1/tenants/{t}/import` loads such a file into an empty tenant, every given hash and root
 * recomputed and compared (a line that differs fails its chunk).
 *
 * Export consistency is per aggregate: its head is read first and its events 1..version follow
 * (appends landing meanwhile are past that version and left out), and the last event's root must
 * be the head's, so every aggregate in the file is one committed state. Memory is one chunk.
 * Hidden fields are NOT removed: this is the tenant's full-fidelity copy for its administrator
 * (hashes cover every field).
 */
import type { Readable } from 'node:stream';
import type { Key as LmdbKey } from 'lmdb';
import { DbxError, jsonTextProblem, parseInput, shardFor, shardName, shardsForTenant, type Config, type PlacementSettings, type WriteLimits } from '../core/index.js';
import { countTenantRangeYielding, scanPrefix, type ImportItem, type ImportRecord, type ShardResult, type ShardStore } from '../shard-worker/index.js';
import { importLineSchema, type ImportSummary } from './routes-import.js';
import { ndjsonLines } from './ndjson-lines.js';
import type { ImportIdGuard } from './import-ids.js';
import type { ShardPool } from './shard-pool.js';
import type { ImportSession } from './tenant-gate.js';

type Key = LmdbKey[];

/** Bytes gathered before a chunk goes to the socket. */
const CHUNK_BYTES = 64 * 1024;

export type TenantOperation = 'export' | 'import' | 'remove' | 'move';

/**
 * Tenant-wide operations in progress in this process. A move does not delete its source range
 * while an export of the tenant reads it, and export, import, removal and moves refuse each other
 * (they would read or write a range another one is changing).
 */
export class TenantBusy {
  private readonly ops = new Map<string, Map<TenantOperation, number>>();

  begin(tenant: string, op: TenantOperation): () => void {
    const ops = this.ops.get(tenant) ?? new Map<TenantOperation, number>();
    ops.set(op, (ops.get(op) ?? 0) + 1);
    this.ops.set(tenant, ops);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const n = (ops.get(op) ?? 1) - 1;
      if (n > 0) ops.set(op, n);
      else ops.delete(op);
      if (ops.size === 0) this.ops.delete(tenant);
    };
  }

  has(tenant: string, op?: TenantOperation): boolean {
    const ops = this.ops.get(tenant);
    return ops !== undefined && (op === undefined || ops.has(op));
  }

  /** Refuses (409 tenant_busy) when any other operation, or a recorded move, holds the tenant. */
  refuseIfBusy(tenant: string, moving: boolean, what: string): void {
    if (moving) throw new DbxError('tenant_busy', `tenant '${tenant}' is being moved to another shard; ${what} once the move has finished`, { tenant, retry_after_secs: 5 });
    const ops = this.ops.get(tenant);
    if (ops && ops.size > 0) throw new DbxError('tenant_busy', `tenant '${tenant}' has a ${[...ops.keys()].join(' and ')} in progress; ${what} once it has finished`, { tenant, retry_after_secs: 5 });
  }
}

export interface TenantDataDeps {
  stores: readonly ShardStore[];
  placement: PlacementSettings;
  pool: ShardPool;
  config: Config;
  limits: WriteLimits;
  busy: TenantBusy;
  /** Whether a move of the tenant is recorded (tenant_meta). */
  moving: (tenant: string) => boolean;
  /** Quota reservations and admission for an import (tenant-gate.ts). */
  importSession: (tenant: string) => Promise<ImportSession>;
  /** Event ids unique across workers (import-ids.ts). */
  importIds?: ImportIdGuard;
}

/** Aggregates and events of `tenant` on its shards (exact key counts). */
export async function tenantCounts(deps: Pick<TenantDataDeps, 'stores' | 'placement'>, tenant: string): Promise<{ aggregates: number; events: number }> {
  let aggregates = 0;
  let events = 0;
  for (const s of shardsForTenant(deps.placement, tenant)) {
    const store = deps.stores[s] as ShardStore;
    store.env.resetReadTxn();
    const counts = await countTenantRangeYielding(store.worker, s, tenant);
    aggregates += counts.heads ?? 0;
    events += counts.events ?? 0;
  }
  return { aggregates, events };
}

export interface PreparedExport {
  aggregates: number;
  events: number;
  chunks(): AsyncGenerator<string>;
  /** Runs once however the response ends (end, client gone, error). */
  release(): void;
}

/** Starts an export of `tenant` (refused while a move, an import or a removal holds it). */
export async function prepareTenantExport(deps: TenantDataDeps, tenant: string): Promise<PreparedExport> {
  deps.busy.refuseIfBusy(tenant, deps.moving(tenant), 'export it');
  const release = deps.busy.begin(tenant, 'export');
  try {
    const counts = await tenantCounts(deps, tenant);
    return { ...counts, chunks: () => exportChunks(deps, tenant), release };
  } catch (err) {
    release();
    throw err;
  }
}

async function* exportChunks(deps: TenantDataDeps, tenant: string): AsyncGenerator<string> {
  let chunk = '';
  for (const s of shardsForTenant(deps.placement, tenant)) {
    const store = deps.stores[s] as ShardStore;
    for (let after: Key | undefined; ; ) {
      // Head keys a page at a time: the generator pauses between chunks (the socket drains), and an
      // LMDB range must not stay open across those turns.
      const keys = scanPrefix(store.worker, 'heads', s, { prefix: [tenant] }, 512, after).map((e) => e.key);
      if (keys.length === 0) break;
      after = keys[keys.length - 1];
      for (const key of keys) {
        const type = key[1] as string;
        const id = key[2] as string;
        const head = store.getHeadMeta(tenant, type, id);
        if (!head) continue;
        let version = 0;
        let root = '';
        for (const event of store.eventRange(tenant, type, id, 0, head.version)) {
          if (event.version !== version + 1) throw new DbxError('integrity_failed', `export of ${type}/${id} on ${shardName(s)}: event ${version + 1} is missing`);
          version = event.version;
          root = event.merkle_root;
          chunk += `${JSON.stringify(event)}\n`;
          if (chunk.length >= CHUNK_BYTES) {
            yield chunk;
            chunk = '';
          }
        }
        // Asserted after reading: the file must hold the head's whole committed history.
        if (version !== head.version || root !== head.merkle_root) {
          throw new DbxError('integrity_failed', `export of ${type}/${id} on ${shardName(s)}: the events do not lead to the head (v${head.version})`);
        }
      }
    }
  }
  if (chunk) yield chunk;
}

export interface TenantImportSummary extends ImportSummary {
  tenant: string;
  /** Aggregates whose every line's hash and root were recomputed and matched. */
  aggregates: number;
}

/**
 * Loads an export into `tenant`: refused (409 tenant_not_empty) when the tenant holds any
 * aggregate, unless `resume` (a re-run after a failure: versions already stored with the same hash
 * are skipped). Lines must carry `hash` and `merkle_root`, and each is recomputed and compared.
 * Chunks go one at a time; a failing line stops the import, and the answer says what committed.
 */
export async function importTenant(deps: TenantDataDeps, tenant: string, body: Readable, options: { resume: boolean }): Promise<TenantImportSummary> {
  deps.busy.refuseIfBusy(tenant, deps.moving(tenant), 'import into it');
  const release = deps.busy.begin(tenant, 'import');
  try {
    const held = await tenantCounts(deps, tenant);
    if (!options.resume && held.aggregates > 0) {
      throw new DbxError('tenant_not_empty', `tenant '${tenant}' already holds ${held.aggregates} aggregate(s): an import goes into an empty tenant (remove it first, or re-run a failed import with resume)`, {
        tenant,
        aggregates: held.aggregates,
      });
    }
    return await feed(deps, tenant, body);
  } finally {
    release();
  }
}

async function feed(deps: TenantDataDeps, tenant: string, body: Readable): Promise<TenantImportSummary> {
  const schema = importLineSchema(deps.limits);
  const lineBytesMax = deps.limits.eventBytesMax + 4096;
  const chunkEvents = deps.config.import.chunk_events;
  const summary: TenantImportSummary = { tenant, lines: 0, imported: 0, skipped: 0, aggregates_created: 0, aggregates: 0 };
  const pending = new Map<number, ImportItem[]>();
  const seen = new Map<string, number>();
  const session = await deps.importSession(tenant);
  let lost = false;
  const flush = async (worker: number): Promise<void> => {
    const items = pending.get(worker);
    if (!items || items.length === 0) return;
    pending.delete(worker);
    let result: ShardResult;
    try {
      result = deps.importIds ? await deps.importIds.send(deps.pool, worker, items, true) : await deps.pool.requestWorker(worker, { kind: 'import', commands: items, verify: true });
    } catch (err) {
      if (!(err instanceof DbxError) || err.status >= 500) lost = true;
      throw committedSoFar(err, summary);
    }
    if (result.kind !== 'import') throw new DbxError('internal', `shard answered ${result.kind} to import`);
    summary.imported += result.imported;
    summary.skipped += result.skipped;
    summary.aggregates_created += result.created;
  };
  try {
    for await (const item of ndjsonLines(body, lineBytesMax)) {
      summary.lines = item.line;
      if (item.error) throw item.error;
      const text = item.text;
      if (text.trim().length === 0) continue;
      const record = parseLine(schema, text, summary.lines);
      const key = `${record.aggregate_type}\u0000${record.aggregate_id}`;
      const last = seen.get(key) ?? 0;
      if (record.version !== last + 1) {
        throw new DbxError('invalid_input', `line ${summary.lines}: ${record.aggregate_type}/${record.aggregate_id} version ${record.version} follows version ${last} (an export lists each history in order from 1)`, { line: summary.lines });
      }
      if (last === 0) summary.aggregates++;
      seen.set(key, record.version);
      try {
        session.line(record.aggregate_type, record.aggregate_id, record.version);
      } catch (err) {
        throw atLine(err, summary.lines);
      }
      const shard = shardFor(deps.placement, tenant, record.aggregate_type, record.aggregate_id);
      const worker = deps.pool.workerOf(shard);
      const items = pending.get(worker) ?? [];
      items.push({ shard, tenant, line: summary.lines, record });
      pending.set(worker, items);
      if (items.length >= chunkEvents) await flush(worker);
    }
    for (const worker of [...pending.keys()]) await flush(worker);
    return summary;
  } finally {
    // An operator's restore: not paced to the tenant's write rate, counted in its traffic.
    session.end(lost ? undefined : summary.aggregates_created, summary.imported);
  }
}

function parseLine(schema: ReturnType<typeof importLineSchema>, text: string, line: number): ImportRecord {
  const problem = jsonTextProblem(text);
  if (problem) throw new DbxError(problem.code, `line ${line}: ${problem.path}: ${problem.message}`, { line, path: problem.path });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new DbxError('invalid_input', `line ${line}: not valid JSON`, { line });
  }
  let record: ImportRecord;
  try {
    record = parseInput(schema, value, 'line') as ImportRecord;
  } catch (err) {
    throw atLine(err, line);
  }
  // An export carries both: they are what the import re-verifies.
  if (record.hash === undefined || record.merkle_root === undefined) {
    throw new DbxError('invalid_input', `line ${line}: a tenant import needs each event's hash and merkle_root (a line of dbx tenant export)`, { line });
  }
  return record;
}

function atLine(err: unknown, line: number): DbxError {
  const error = err instanceof DbxError ? err : new DbxError('invalid_input', String(err));
  if (/^line \d+: /.test(error.message)) return error;
  const details = Array.isArray(error.details) ? { errors: error.details } : ((error.details as object | undefined) ?? {});
  return new DbxError(error.code, `line ${line}: ${error.message}`, { line, ...details });
}

/** The failure, with what the chunks answered before it committed. */
function committedSoFar(err: unknown, summary: TenantImportSummary): DbxError {
  const error = err instanceof DbxError ? err : new DbxError('internal', 'tenant import chunk failed', undefined, { cause: err });
  const details = (error.details as object | undefined) ?? {};
  return new DbxError(error.code, error.message, { ...details, imported: summary.imported, skipped: summary.skipped, committed: 'chunks answered before this one stay committed; re-run with resume to continue' });
}
