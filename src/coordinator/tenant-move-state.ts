/**
 * The state of a tenant move (tenant-move.ts) that outlives one run of it: the settings, the
 * resumption data persisted in tenant_meta's `TenantMove.progress`, the report a move answers, and
 * the test fault hook. Kept apart from the state machine so its phases read on their own.
 */
import type { Key as LmdbKey } from 'lmdb';
import { shardName } from '../core/index.js';
import { TENANT_KEYED_DBS } from '../shard-worker/index.js';
import type { ChunkBounds, CopySide } from './tenant-copy.js';
import type { TenantMove, TenantMovePhase } from './tenant-meta.js';

type Key = LmdbKey[];

export interface MoveSettings {
  /** Entries and stored bytes per target transaction. */
  chunk: ChunkBounds;
  /** Catch-up passes before the flip at most (each copies what changed during the one before). */
  catchUpPassesMax: number;
  /** A catch-up that finds at most this many changed aggregates is followed by the flip. */
  flipDeltaMax: number;
  /** Progress is persisted every this many chunks (a crash re-copies at most these). */
  persistEveryChunks: number;
  /** How long the deletion waits for the plugin queue between checks. */
  outboxPollMs: number;
}

export const DEFAULT_MOVE_SETTINGS: MoveSettings = {
  chunk: { entries: 1000, bytes: 4 * 1024 * 1024 },
  catchUpPassesMax: 8,
  flipDeltaMax: 64,
  persistEveryChunks: 4,
  outboxPollMs: 20,
};

/** The mover's resumption data, kept in `TenantMove.progress` (opaque to everyone else). */
export interface Progress {
  /** What tenant_meta's `shard` becomes at the flip (null: back to the hash shard). */
  assignment: number | null;
  /** Bulk copy cursor: the db being copied (null once every db is) and the last key copied there. */
  db: string | null;
  after: Key | null;
  copied: number;
  passes: number;
  caught_up: number;
  verified: number;
  pause_ms?: number;
  /** Where the write pause went: waiting for writes in flight, the final catch-up, checks, the flip commit. */
  pause_steps_ms?: Record<string, number>;
  outbox_at_flip?: number;
  deleted: number;
  resumed: number;
}

/** What a move answers (and `dbx tenant assign` prints). */
export interface MoveReport {
  tenant: string;
  from: string;
  to: string;
  aggregates: number;
  events: number;
  entries_copied: number;
  catch_up_passes: number;
  entries_caught_up: number;
  /** Longest time the tenant's writes were paused (the flip), in ms. */
  write_pause_ms: number;
  write_pause_steps_ms: Record<string, number>;
  entries_deleted: number;
  duration_ms: number;
  /** Time spent in each phase this run (ms). */
  phases_ms: Partial<Record<TenantMovePhase, number>>;
  resumed: number;
  /** Set when the source range could not be deleted yet (the target serves regardless). */
  source_cleanup?: string;
}

/** A move that starts now: nothing copied yet, the bulk copy at the first tenant-keyed db. */
export function freshProgress(assignment: number | null): Progress {
  return { assignment, db: TENANT_KEYED_DBS[0]?.name ?? null, after: null, copied: 0, passes: 0, caught_up: 0, verified: 0, deleted: 0, resumed: 0 };
}

/** One move in progress: its tenant, durable record, resumption data and the two shards. */
export interface MoveRun {
  tenant: string;
  record: TenantMove;
  progress: Progress;
  source: CopySide;
  target: CopySide;
}

/** The resumption data of a recorded move (fields an older record lacks get their start values). */
export function progressOf(record: TenantMove): Progress {
  const p = (record.progress ?? {}) as Partial<Progress>;
  return {
    assignment: p.assignment === undefined ? record.to : p.assignment,
    db: p.db === undefined ? (TENANT_KEYED_DBS[0]?.name ?? null) : p.db,
    after: p.after ?? null,
    copied: p.copied ?? 0,
    passes: p.passes ?? 0,
    caught_up: p.caught_up ?? 0,
    verified: p.verified ?? 0,
    ...(p.pause_ms !== undefined ? { pause_ms: p.pause_ms } : {}),
    ...(p.pause_steps_ms !== undefined ? { pause_steps_ms: p.pause_steps_ms } : {}),
    ...(p.outbox_at_flip !== undefined ? { outbox_at_flip: p.outbox_at_flip } : {}),
    deleted: p.deleted ?? 0,
    resumed: p.resumed ?? 0,
  };
}

/** The report of a run that ended: `counts` are the target's ranges, `phases` the time spent in each. */
export function moveReport(move: MoveRun, counts: Record<string, number>, durationMs: number, phases: Partial<Record<TenantMovePhase, number>>, cleanup: string | undefined): MoveReport {
  const { tenant, record, progress } = move;
  return {
    tenant,
    from: shardName(record.from),
    to: shardName(record.to),
    aggregates: counts.heads ?? 0,
    events: counts.events ?? 0,
    entries_copied: progress.copied,
    catch_up_passes: progress.passes,
    entries_caught_up: progress.caught_up,
    write_pause_ms: Math.round((progress.pause_ms ?? 0) * 10) / 10,
    write_pause_steps_ms: progress.pause_steps_ms ?? {},
    entries_deleted: progress.deleted,
    duration_ms: Math.round(durationMs),
    phases_ms: phases,
    resumed: progress.resumed,
    ...(cleanup !== undefined ? { source_cleanup: cleanup } : {}),
  };
}

/** Thrown at the next step of a move once the server stops; the record stays for the next start. */
export class MoveStopped extends Error {}

/**
 * The test fault hook: `EVENTDBX_FAULT_TENANT_MOVE=<phase>` kills this process at that point of a
 * move (SIGKILL: no cleanup runs). Honoured only with NODE_ENV=test, never in a real deployment.
 */
export function faultAt(phase: TenantMovePhase | 'catching-up'): void {
  if (process.env.NODE_ENV !== 'test' || process.env.EVENTDBX_FAULT_TENANT_MOVE !== phase) return;
  process.kill(process.pid, 'SIGKILL');
}

/**
 * Test hook: `EVENTDBX_TEST_MOVE_CHUNK_ENTRIES=<n>` makes the copy phase's catch-up passes write
 * chunks that small and wait a moment before the first pass (writers running in the test then
 * leave a delta of several chunks), so a test can kill a catch-up pass between two of its chunks
 * every time. The bulk copy keeps its normal chunks: tiny ones made it slow enough under a loaded
 * CI that the kill came later than the test waited. Honoured only with NODE_ENV=test.
 */
export function testCatchUpHook(): { entries: number; waitMs: number } | undefined {
  const raw = process.env.EVENTDBX_TEST_MOVE_CHUNK_ENTRIES;
  if (process.env.NODE_ENV !== 'test' || raw === undefined || !/^[1-9]\d*$/.test(raw)) return undefined;
  return { entries: Number(raw), waitMs: 300 };
}
