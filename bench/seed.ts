/**
 * Seeding. EventDBX is seeded through POST /v1/import (bulk import: NDJSON event records, large
 * transactions in the shard workers), which makes a 10M-aggregate dataset practical; a store
 * without /v1/import (the PostgreSQL comparison server) is seeded through POST /v1/batch (1000 events
 * per request, a few requests in flight). Both print their rate in events/s.
 *
 * Seeding is resumable. Import lines are deterministic (event ids and times derive from the index),
 * so a re-run skips every event an interrupted run committed (same version, same hash). A batch
 * carries expected_version 0 ("must not exist yet") and is all-or-nothing, so a batch answered 409
 * version_conflict was committed by an earlier run and is skipped.
 */
import { BATCH_EVENTS_MAX } from '../src/core/limits.js';
import { SNOWFLAKE_EPOCH_MS } from '../src/core/snowflake.js';
import type { HttpApi } from './client.js';
import { nowUs } from './stats.js';
import { AGGREGATE_TYPE, idOf, seedPayload } from './workload.js';

export interface SeedResult {
  seeded: boolean;
  aggregates: number;
  seconds: number;
  /** How it was seeded and how fast (absent when the dataset was already there). */
  via?: 'import' | 'batch';
  events_per_sec?: number;
}

/** Seed event times start here; one millisecond per 4096 events (the Snowflake sequence). */
const SEED_TIME_MS = Date.UTC(2025, 0, 1);
/** Snowflake worker id of seed events: the server's own ids (worker id 0 by default) never collide. */
const SEED_WORKER_ID = 1023n;

/** The seed event of dataset index i as an import line: the same text every run. */
export function seedLine(i: number): string {
  const ms = SEED_TIME_MS + Math.floor(i / 4096);
  const eventId = (BigInt(ms - SNOWFLAKE_EPOCH_MS) << 22n) | (SEED_WORKER_ID << 12n) | BigInt(i % 4096);
  const createdAt = new Date(ms).toISOString();
  return JSON.stringify({
    aggregate_type: AGGREGATE_TYPE,
    aggregate_id: idOf(i),
    event_type: 'created',
    version: 1,
    payload: { ...seedPayload(i), createdAt },
    extensions: {},
    metadata: { event_id: eventId.toString(), created_at: createdAt, issued_by: { group: 'bench', user: 'seed' } },
  });
}

/** NDJSON of indices [from, to], in blocks of ~1000 lines (one socket write each, not one per line). */
export async function* seedLines(from: number, to: number): AsyncGenerator<string> {
  let block: string[] = [];
  for (let i = from; i <= to; i++) {
    block.push(seedLine(i));
    if (block.length === 1000) {
      yield block.join('\n') + '\n';
      block = [];
    }
  }
  if (block.length) yield block.join('\n') + '\n';
}

/** A server with bulk import answers an empty import with 200; others have no such route. */
export async function supportsImport(api: HttpApi): Promise<boolean> {
  const res = await api.postStream('/v1/import', 'application/x-ndjson', '');
  return res.status === 200;
}

export async function isSeeded(api: HttpApi, size: number): Promise<boolean> {
  const probe = await api.probe(`/v1/aggregates/${AGGREGATE_TYPE}/${idOf(size)}`);
  if (probe.status === 200) return true;
  if (probe.status === 404) return false;
  throw new Error(`seed probe answered ${probe.status}: ${JSON.stringify(probe.body)}`);
}

export async function seedDataset(
  api: HttpApi,
  size: number,
  options: {
    batchSize: number;
    inFlight: number;
    resumable: boolean;
    /** When known, batches hold one shard's aggregates only: no cross-shard two-phase commit. */
    shardOf?: (id: string) => number;
    /** Default: /v1/import when the server has it, else /v1/batch. */
    via?: 'import' | 'batch';
    /** Events per POST /v1/import (default 200,000; each must arrive within request_timeout_ms). */
    importRequestEvents?: number;
    log: (line: string) => void;
  },
): Promise<SeedResult> {
  const t0 = nowUs();
  if (await isSeeded(api, size)) return { seeded: false, aggregates: size, seconds: 0 };
  if (options.via !== 'batch' && (options.via === 'import' || (await supportsImport(api)))) return importDataset(api, size, options);
  const batchSize = Math.min(options.batchSize, BATCH_EVENTS_MAX);
  const batches = planBatches(size, batchSize, options.shardOf);
  let next = 0;
  let done = 0;
  let lastLog = t0;
  const sendBatch = async (b: number): Promise<void> => {
    const events = [];
    for (const i of batches[b] as number[]) {
      events.push({
        aggregate_type: AGGREGATE_TYPE,
        aggregate_id: idOf(i),
        event_type: 'created',
        payload: seedPayload(i),
        ...(options.resumable ? { expected_version: 0 } : {}),
      });
    }
    const res = await api.postRaw('/v1/batch', { events });
    const alreadyThere = res.status === 409 && res.body?.error?.code === 'version_conflict' && options.resumable;
    if (res.status !== 201 && !alreadyThere) throw new Error(`seed batch ${b} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`);
    done++;
    const now = nowUs();
    if (now - lastLog > 5e6) {
      lastLog = now;
      const rate = (done * batchSize) / ((now - t0) / 1e6);
      options.log(`  seeding ${size}: ${done}/${batches.length} batches, ${Math.round(rate)} aggregates/s`);
    }
  };
  const worker = async (): Promise<void> => {
    while (next < batches.length - 1) await sendBatch(next++);
  };
  await Promise.all(Array.from({ length: options.inFlight }, () => worker()));
  // The last batch goes alone, after all others: its last id is the "already seeded" marker, so
  // it must not become visible while an earlier batch could still be missing.
  await sendBatch(batches.length - 1);
  if (!(await isSeeded(api, size))) throw new Error(`seeding ${size} finished but ${idOf(size)} is missing`);
  const seconds = (nowUs() - t0) / 1e6;
  const rate = Math.round(size / seconds);
  options.log(`  seeded ${size} via /v1/batch: ${rate} events/s`);
  return { seeded: true, aggregates: size, seconds: Math.round(seconds * 100) / 100, via: 'batch', events_per_sec: rate };
}

/**
 * Bulk import in requests of `importRequestEvents` lines, up to two in flight (one parsed while the
 * other's last chunks commit). The request holding the last id goes last, alone: that id is the
 * "already seeded" marker.
 */
async function importDataset(api: HttpApi, size: number, options: { inFlight: number; importRequestEvents?: number; log: (line: string) => void }): Promise<SeedResult> {
  const t0 = nowUs();
  const per = Math.max(1, options.importRequestEvents ?? 200_000);
  const requests = Math.ceil(size / per);
  let next = 0;
  let imported = 0;
  let skipped = 0;
  let lastLog = t0;
  const send = async (r: number): Promise<void> => {
    const from = r * per + 1;
    const to = Math.min(size, from + per - 1);
    const res = await api.postStream('/v1/import', 'application/x-ndjson', seedLines(from, to));
    if (res.status !== 200) throw new Error(`seed import of ${from}..${to} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`);
    imported += res.body.imported as number;
    skipped += res.body.skipped as number;
    const now = nowUs();
    if (now - lastLog > 5e6) {
      lastLog = now;
      options.log(`  seeding ${size} via /v1/import: ${imported + skipped}/${size} events, ${Math.round((imported + skipped) / ((now - t0) / 1e6))} events/s`);
    }
  };
  const worker = async (): Promise<void> => {
    while (next < requests - 1) await send(next++);
  };
  await Promise.all(Array.from({ length: Math.min(2, Math.max(1, options.inFlight)) }, () => worker()));
  await send(requests - 1);
  if (!(await isSeeded(api, size))) throw new Error(`seeding ${size} finished but ${idOf(size)} is missing`);
  const seconds = (nowUs() - t0) / 1e6;
  const rate = Math.round(size / seconds);
  options.log(`  seeded ${size} via /v1/import: ${imported} imported, ${skipped} already there, ${rate} events/s`);
  return { seeded: true, aggregates: size, seconds: Math.round(seconds * 100) / 100, via: 'import', events_per_sec: rate };
}

/**
 * Dataset indices grouped into batches, the same every time for the same arguments (resuming
 * relies on it). With a placement, each batch holds one shard's aggregates and consecutive batches
 * rotate over the shards so every worker stays busy. The batch holding the last id comes last.
 */
function planBatches(size: number, batchSize: number, shardOf: ((id: string) => number) | undefined): number[][] {
  const buckets: number[][] = [];
  for (let i = 1; i <= size; i++) {
    const shard = shardOf ? shardOf(idOf(i)) : 0;
    (buckets[shard] ??= []).push(i);
  }
  const perShard = buckets
    .filter((b) => b !== undefined)
    .map((b) => {
      const chunks: number[][] = [];
      for (let k = 0; k < b.length; k += batchSize) chunks.push(b.slice(k, k + batchSize));
      return chunks;
    });
  const total = perShard.reduce((n, c) => n + c.length, 0);
  const plan: number[][] = [];
  for (let round = 0; plan.length < total; round++) {
    for (const chunks of perShard) if (round < chunks.length) plan.push(chunks[round] as number[]);
  }
  const last = plan.findIndex((batch) => batch[batch.length - 1] === size);
  plan.push(...plan.splice(last, 1));
  return plan;
}

export const LONG_TYPE = 'bench_long';

/** One aggregate with `events` events, appended in batches of 1000 on that aggregate alone. */
export async function seedLongAggregate(api: HttpApi, events: number, log: (line: string) => void): Promise<{ id: string; version: number; seconds: number }> {
  const t0 = nowUs();
  const id = `long-${events}`;
  const probe = await api.probe(`/v1/aggregates/${LONG_TYPE}/${id}`);
  if (probe.status !== 200 && probe.status !== 404) throw new Error(`long aggregate probe answered ${probe.status}`);
  let version = probe.status === 200 ? (probe.body.version as number) : 0;
  let lastLog = t0;
  while (version < events) {
    const count = Math.min(BATCH_EVENTS_MAX, events - version);
    const batch = Array.from({ length: count }, (_, k) => ({
      aggregate_type: LONG_TYPE,
      aggregate_id: id,
      event_type: 'long_appended',
      payload: { i: version + k + 1 },
      // Guards against two runs appending to the same aggregate at once.
      ...(k === 0 ? { expected_version: version } : {}),
    }));
    await api.post('/v1/batch', { events: batch }, 201);
    version += count;
    if (nowUs() - lastLog > 5e6) {
      lastLog = nowUs();
      log(`  long aggregate: ${version}/${events} events`);
    }
  }
  return { id, version, seconds: Math.round((nowUs() - t0) / 1e4) / 100 };
}
