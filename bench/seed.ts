/**
 * Seeding through POST /v1/batch (1000 events per request, a few requests in flight), and the one
 * long aggregate for the "append cost does not grow with history" measurement.
 *
 * Seeding is resumable: each seed event carries expected_version 0 ("must not exist yet") and a
 * batch is all-or-nothing, so a batch answered 409 version_conflict was committed by an earlier,
 * interrupted run and is skipped.
 */
import { BATCH_EVENTS_MAX } from '../src/core/limits.js';
import type { HttpApi } from './client.js';
import { nowUs } from './stats.js';
import { AGGREGATE_TYPE, idOf, seedPayload } from './workload.js';

export interface SeedResult {
  seeded: boolean;
  aggregates: number;
  seconds: number;
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
    log: (line: string) => void;
  },
): Promise<SeedResult> {
  const t0 = nowUs();
  if (await isSeeded(api, size)) return { seeded: false, aggregates: size, seconds: 0 };
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
  return { seeded: true, aggregates: size, seconds: Math.round((nowUs() - t0) / 1e4) / 100 };
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
