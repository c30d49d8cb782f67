/**
 * The original perf harness's operation mix (reference §16.2), fixed: snake_case event names, select
 * asks for real state keys (`field1`, not `state.field1`), and every error aborts the run. The same
 * mix runs against EventDBX and the PostgreSQL comparison server, which serve the same HTTP paths.
 */
import { randomUUID } from 'node:crypto';
import type { HttpApi } from './client.js';
import { runTimed, type OpStats } from './stats.js';

export const AGGREGATE_TYPE = 'account';
export const READ_OPS = ['list', 'get', 'select', 'events'] as const;
/** Order matters: archive then restore, so restore undoes every archive before anything else runs. */
export const WRITE_OPS = ['apply', 'create', 'patch', 'archive', 'restore'] as const;
export const ALL_OPS = [...READ_OPS, ...WRITE_OPS] as const;
export type OpName = (typeof ALL_OPS)[number];

/** Dataset ids are 1..size, zero-padded to 16 digits like the original harness. */
export function idOf(i: number): string {
  return String(i).padStart(16, '0');
}

export function seedPayload(i: number): Record<string, unknown> {
  return { name: `account ${i}`, field1: `value-${i}`, field2: i, archived: false, benchDataset: true, createdAt: new Date().toISOString() };
}

const base = `/v1/aggregates/${AGGREGATE_TYPE}`;

export interface MixOptions {
  size: number;
  concurrency: number;
  durationMs: number;
  warmupMs: number;
}

interface Op {
  run(worker: number): Promise<void>;
  /** Supply-limited operations (archive has one per aggregate; restore one per archive). */
  maxOps?(): number;
  untilExhausted?: boolean;
  noWarmup?: boolean;
}

/** Builds the operations for one dataset; state (cursors, archived ids) is shared across calls. */
export function createMix(api: HttpApi, size: number): Record<OpName, Op> {
  let rr = 0;
  const nextRoundRobin = (): number => (rr++ % size) + 1;
  const randomId = (): string => idOf(1 + Math.floor(Math.random() * size));
  const listCursors = new Map<number, string | null>();
  const eventCursors = new Map<number, { id: string; cursor: string | null }>();
  let archiveNext = 0;
  const archived: string[] = [];
  let marker = 0;

  return {
    list: {
      async run(worker) {
        const cursor = listCursors.get(worker);
        const page = await api.get(`${base}?take=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        listCursors.set(worker, page.next_cursor ?? null);
      },
    },
    get: {
      async run() {
        await api.get(`${base}/${idOf(nextRoundRobin())}`);
      },
    },
    select: {
      async run() {
        await api.get(`${base}/${idOf(nextRoundRobin())}/select?fields=field1,field2`);
      },
    },
    events: {
      async run(worker) {
        const at = eventCursors.get(worker) ?? { id: idOf(nextRoundRobin()), cursor: null };
        const page = await api.get(`${base}/${at.id}/events?take=100${at.cursor ? `&cursor=${encodeURIComponent(at.cursor)}` : ''}`);
        // Rolling cursor: page through this aggregate's history, then move to the next one.
        eventCursors.set(worker, page.next_cursor ? { id: at.id, cursor: page.next_cursor } : { id: idOf(nextRoundRobin()), cursor: null });
      },
    },
    apply: {
      async run() {
        await api.post(`${base}/${randomId()}/events`, { event_type: 'bench_applied', payload: { marker: ++marker, at: Date.now() } }, 201);
      },
    },
    create: {
      async run() {
        const id = `bench-${randomUUID()}`;
        await api.post(`${base}/${id}`, { event_type: 'created', payload: { ...seedPayload(0), name: id, benchDataset: false } }, 201);
      },
    },
    patch: {
      async run() {
        await api.post(
          `${base}/${randomId()}/patch`,
          { event_type: 'patched', patch: [{ op: 'replace', path: '/name', value: `patched ${++marker}` }], note: 'bench patch' },
          201,
        );
      },
    },
    archive: {
      maxOps: () => size,
      noWarmup: true,
      async run() {
        const id = idOf(++archiveNext);
        await api.post(`${base}/${id}/archive`, { comment: 'bench archive' }, 200);
        archived.push(id);
      },
    },
    restore: {
      maxOps: () => archived.length,
      untilExhausted: true,
      noWarmup: true,
      async run() {
        const id = archived.shift();
        if (id === undefined) return;
        await api.post(`${base}/${id}/restore`, { comment: 'bench restore' }, 200);
        if (archived.length === 0) archiveNext = 0;
      },
    },
  };
}

export async function runOp(mix: Record<OpName, Op>, name: OpName, options: Omit<MixOptions, 'size'>, onWindowOpen?: () => void): Promise<OpStats> {
  const op = mix[name];
  const maxOps = op.maxOps?.();
  return runTimed(
    {
      concurrency: options.concurrency,
      durationMs: options.durationMs,
      warmupMs: op.noWarmup ? 0 : options.warmupMs,
      ...(maxOps !== undefined ? { maxOps } : {}),
      ...(op.untilExhausted ? { untilExhausted: true } : {}),
      ...(onWindowOpen ? { onWindowOpen } : {}),
    },
    (worker) => op.run(worker),
  );
}

/** Restores aggregates a previous, interrupted run left archived, so apply and patch never hit one. */
export async function restoreLeftovers(api: HttpApi): Promise<number> {
  let restored = 0;
  for (;;) {
    const page = await api.get(`${base}?archived_only=true&take=1000`);
    const items = page.items as { aggregate_id: string }[];
    if (items.length === 0) return restored;
    for (const item of items) {
      await api.post(`${base}/${item.aggregate_id}/restore`, { comment: 'bench cleanup' }, 200);
      restored++;
    }
  }
}

/**
 * `--schema`: apply with 20-field payloads, measured with a 20-field schema in force and without
 * one (issue 9: the schema must cost ≤ 10% of apply throughput at 32 clients). The schema declares
 * every field with a type and most with a rule, so each payload is fully validated and normalised.
 */
export const WIDE_TYPE = 'wide';
export const WIDE_EVENT = 'wide_applied';

export function wideSchema(): Record<string, unknown> {
  const columns: Record<string, unknown> = {};
  for (let f = 0; f < 20; f++) {
    const kind = f % 5;
    columns[`f${f}`] =
      kind === 0
        ? { type: 'integer', range: { min: '0', max: '1000000000' } }
        : kind === 1
          ? { type: 'text', length: { min: 1, max: 64 } }
          : kind === 2
            ? { type: 'boolean' }
            : kind === 3
              ? { type: 'float', range: { min: '-1e9', max: '1e9' } }
              : { type: 'timestamp' };
  }
  return { column_types: columns, events: { [WIDE_EVENT]: { fields: [] } } };
}

export function widePayload(i: number): Record<string, unknown> {
  const payload: Record<string, unknown> = {};
  const at = new Date(1_700_000_000_000 + i * 1000).toISOString();
  for (let f = 0; f < 20; f++) {
    const kind = f % 5;
    payload[`f${f}`] = kind === 0 ? i + f : kind === 1 ? `text-${i}-${f}` : kind === 2 ? (i + f) % 2 === 0 : kind === 3 ? (i + f) / 7 : at;
  }
  return payload;
}

/** One apply of a 20-field payload to one of `ids` aggregates (created by the first apply). */
export function wideApply(api: HttpApi, ids: number): (worker: number) => Promise<void> {
  let marker = 0;
  return async () => {
    const id = idOf(1 + Math.floor(Math.random() * ids));
    await api.post(`/v1/aggregates/${WIDE_TYPE}/${id}/events`, { event_type: WIDE_EVENT, payload: widePayload(++marker) }, 201);
  };
}
