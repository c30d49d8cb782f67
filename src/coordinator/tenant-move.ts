/**
 * The live move of a tenant from one shard to another (issue 12 item 2, DESIGN §2): what
 * `dbx tenant assign` runs when the tenant already has data. The server keeps serving throughout:
 * reads answer from the source until the flip and from the target after it; writes go on to the
 * source until the flip, pause for its short final step, then go to the target.
 *
 * Phases, each persisted in tenant_meta (`TenantMove`) before its work starts:
 * 1. copying — every tenant-keyed range copied in bounded chunks (tenant-copy.ts), the cursor
 *    saved as it goes; then catch-up passes copy what writes changed meanwhile, until a pass finds
 *    few changed aggregates (or the passes run out).
 * 2. verifying — every copied aggregate verified on the target (verify.ts: each event's hash and
 *    root recomputed from the copied bytes, head, state, snapshots) and its root compared with the
 *    source's event at that version.
 * 3. flipping — the tenant's writes paused (new ones wait up to `[tenants] write_pause_max_ms`, then
 *    503 with Retry-After; none in flight), the final delta copied and its new events verified
 *    incrementally (from the frontier verified in 2), heads and append-only ends checked equal, then
 *    ONE tenant_meta transaction sets the assignment and the phase `deleting`; writes resume on the
 *    target. An import chunk placed before the flip is refused (the pool's admission check).
 * 4. deleting — once the plugin queue has taken every source outbox entry up to the flip (so no
 *    delivery loses its event), the source range is deleted in chunks, and the move record goes.
 *
 * Crash at any step (SIGKILL): the next start resumes every recorded move. Before the flip the
 * source still serves and the target's partial copy is just brought up to date again (copying
 * resumes at its cursor, a catch-up follows); after the flip the target serves and the deletion
 * continues. A verification failure rolls the move back (the target range is deleted, the source
 * keeps serving) and answers `integrity_failed`. Moved events get no outbox entry: nothing is
 * delivered twice. Test hook: with NODE_ENV=test, `EVENTDBX_FAULT_TENANT_MOVE=<phase>` kills the
 * process with SIGKILL once that phase has done part of its work.
 *
 * This file is the state machine; what it persists and reports is tenant-move-state.ts, and the
 * checks of the copy (phases 2 and 3) are tenant-move-verify.ts.
 */
import type { Key as LmdbKey } from 'lmdb';
import { DbxError, shardName, tenantShard, type PlacementSettings } from '../core/index.js';
import { TENANT_KEYED_DBS, countTenantRange, countTenantRangeYielding, scanPrefix, type RangeEntry, type ShardStore } from '../shard-worker/index.js';
import type { RequestBody, ShardPool } from './shard-pool.js';
import { ChunkWriter, catchUp, copyMismatch, copyRange, countsCovered, type CopySide } from './tenant-copy.js';
import type { TenantBusy } from './tenant-export.js';
import type { TenantAdmission } from './tenant-gate.js';
import type { OutboxBarrier } from '../plugins/dispatcher.js';
import type { TenantMeta, TenantMove, TenantMovePhase } from './tenant-meta.js';
import { DEFAULT_MOVE_SETTINGS, MoveStopped, faultAt, freshProgress, moveReport, progressOf, testCatchUpHook, type MoveReport, type MoveRun, type MoveSettings, type Progress } from './tenant-move-state.js';
import { verifyCopied, verifyTail, type VerifiedCopies } from './tenant-move-verify.js';
import type { TenantMover } from './tenant-service.js';

type Key = LmdbKey[];

export interface TenantMoveDeps {
  pool: ShardPool;
  /** The coordinator's store view of every shard (index = shard). */
  stores: readonly ShardStore[];
  placement: PlacementSettings;
  meta: TenantMeta;
  admission: TenantAdmission;
  /** Exports, imports and removals in progress: a move refuses to start beside them, and deletes no source range an export reads. */
  busy: TenantBusy;
  /** The plugin queue's durable position in a shard's outbox: entries up to it have their jobs. */
  outboxTaken: (shard: number) => number;
  log: (level: 'info' | 'warn' | 'error', message: string, extra?: Record<string, unknown>) => void;
  settings?: Partial<MoveSettings>;
}

export class TenantMoveService implements TenantMover {
  private readonly settings: MoveSettings;
  private readonly running = new Map<string, Promise<MoveReport>>();
  private stopped = false;

  constructor(private readonly deps: TenantMoveDeps) {
    this.settings = { ...DEFAULT_MOVE_SETTINGS, ...deps.settings, chunk: { ...DEFAULT_MOVE_SETTINGS.chunk, ...deps.settings?.chunk } };
  }

  /** The TenantMover hook (tenant-service.ts): resolves once the target serves and the source is empty. */
  async move(tenant: string, from: number, to: number, assignment: number | null): Promise<Record<string, unknown>> {
    if (from === to) throw new DbxError('invalid_input', `tenant '${tenant}' is already on ${shardName(to)}`);
    if (this.running.has(tenant) || this.deps.meta.get(tenant)?.move) throw new DbxError('tenant_busy', `tenant '${tenant}' is being moved; wait for the move to finish`);
    this.deps.busy.refuseIfBusy(tenant, false, 'move it');
    if (this.deps.meta.removing(tenant)) throw new DbxError('tenant_busy', `tenant '${tenant}' is being removed; wait for the removal to finish`, { tenant });
    const progress = freshProgress(assignment);
    const record: TenantMove = { from, to, phase: 'copying', started_at: new Date().toISOString(), progress: { ...progress } };
    // Held until the move record is on disk (and seen by every check that reads it): a removal
    // or an export starting in between would otherwise pass its checks and race the copy.
    const starting = this.deps.busy.begin(tenant, 'move');
    try {
      await this.deps.meta.setMove(tenant, record);
    } finally {
      starting();
    }
    return { ...(await this.track(tenant, record, progress)) };
  }

  /** At start: every move a crash or a stop interrupted goes on, in the background. */
  resumeAll(): void {
    for (const r of this.deps.meta.list()) {
      if (!r.move || this.running.has(r.tenant)) continue;
      const progress = progressOf(r.move);
      progress.resumed++;
      this.deps.log('warn', 'resuming an interrupted tenant move', { tenant: r.tenant, phase: r.move.phase, from: shardName(r.move.from), to: shardName(r.move.to) });
      this.track(r.tenant, r.move, progress).catch((err: unknown) => this.deps.log('error', 'a resumed tenant move failed', { tenant: r.tenant, err }));
    }
  }

  /** Stops every move at its next step; their records stay, so the next start resumes them. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.running.values()]);
  }

  /**
   * The pool's admission check (ShardPool.admit): an import chunk is refused while its tenant's
   * writes are paused, or when it was placed on a shard the tenant has left; admitted chunks count
   * as the tenant's writes in flight (the flip waits for them).
   */
  admitImport(body: RequestBody): (() => void) | undefined {
    if (body.kind !== 'import' || !this.deps.placement.multiTenant) return undefined;
    const first = body.commands[0];
    if (!first) return undefined;
    const { tenant } = first;
    const { admission } = this.deps;
    const shard = tenantShard(this.deps.placement, tenant);
    if (admission.paused(tenant) || body.commands.some((c) => c.tenant !== tenant || c.shard !== shard)) {
      throw new DbxError('unavailable', `tenant '${tenant}' is moving to another shard; run the import again (lines already stored are skipped)`, { retry_after_secs: 1 });
    }
    if (admission.enter(tenant) !== undefined) throw new DbxError('internal', 'import admission raced a pause');
    return () => admission.leave(tenant);
  }

  private track(tenant: string, record: TenantMove, progress: Progress): Promise<MoveReport> {
    const run = this.run(tenant, record, progress).finally(() => this.running.delete(tenant));
    this.running.set(tenant, run);
    return run;
  }

  private side(shard: number): CopySide {
    const store = this.deps.stores[shard];
    if (!store) throw new DbxError('internal', `no shard ${shard}`);
    return { shard, env: store.worker, store };
  }

  private async run(tenant: string, record: TenantMove, progress: Progress): Promise<MoveReport> {
    const started = performance.now();
    const source = this.side(record.from);
    const target = this.side(record.to);
    const move = { tenant, record, progress, source, target };
    let cleanup: string | undefined;
    const phases: Partial<Record<TenantMovePhase, number>> = {};
    try {
      const timed = async <T>(phase: TenantMovePhase, step: () => Promise<T>): Promise<T> => {
        const at = performance.now();
        try {
          return await step();
        } finally {
          phases[phase] = Math.round(performance.now() - at);
        }
      };
      if (record.phase !== 'deleting') {
        await this.enter(move, 'copying');
        await timed('copying', () => this.copy(move));
        await this.enter(move, 'verifying');
        const verified = await timed('verifying', async () => {
          const all = await this.verifyAll(move);
          // What the writes changed while the copy was verified: caught up (and verified) now, so the
          // write pause only has the last moments' delta left.
          await this.catchUpVerified(move, all);
          return all;
        });
        await this.enter(move, 'flipping');
        await timed('flipping', () => this.flip(move, verified));
      }
      await timed('deleting', () => this.deleteSource(move));
      await this.deps.meta.setMove(tenant, null);
    } catch (err) {
      if (err instanceof MoveStopped || this.stopped) throw new DbxError('unavailable', `the move of tenant '${tenant}' was interrupted by a stop; it resumes at the next start`);
      if (record.phase !== 'deleting') {
        await this.rollBack(move, err);
        throw err;
      }
      // The flip happened: the target serves. Only the source's leftover copy remains, and the
      // record (phase deleting) has the next start delete it.
      this.deps.log('error', 'tenant move: deleting the source range failed; it is retried at the next start', { tenant, err });
      cleanup = `deleting the source range failed (${err instanceof Error ? err.message : String(err)}); it is retried at the next start`;
    }
    target.env.env.resetReadTxn();
    const counts = await countTenantRangeYielding(target.env, target.shard, tenant);
    const report = moveReport(move, counts, performance.now() - started, phases, cleanup);
    this.deps.log('info', 'tenant moved', { ...report });
    return report;
  }

  /** Records the phase durably before its work starts (a crash resumes there). */
  private async enter(move: MoveRun, phase: TenantMovePhase): Promise<void> {
    if (this.stopped) throw new MoveStopped();
    move.record.phase = phase;
    await this.persist(move);
  }

  private async persist(move: MoveRun): Promise<void> {
    move.record.progress = { ...move.progress };
    await this.deps.meta.setMove(move.tenant, { ...move.record });
  }

  private writerFor(move: MoveRun, afterChunk: () => Promise<void> = async () => {}, bounds = this.settings.chunk): ChunkWriter {
    const worker = this.deps.pool.workerOf(move.target.shard);
    return new ChunkWriter(move.target, bounds, (entries: RangeEntry[]) => this.deps.pool.control(worker).tenantWrite(move.target.shard, move.tenant, entries), afterChunk);
  }

  /** Bulk copy from the saved cursor, then catch-up passes until the delta is small. */
  private async copy(move: MoveRun): Promise<void> {
    const { progress } = move;
    let chunks = 0;
    const stepThen = (phase: 'copying' | 'catching-up') => async () => {
      if (this.stopped) throw new MoveStopped();
      faultAt(phase);
    };
    const writer = this.writerFor(move, stepThen('copying'));
    // The cursor names its db: an index would point elsewhere if a later version lists more dbs.
    const names = TENANT_KEYED_DBS.map((d) => d.name);
    let at = progress.db === null ? names.length : Math.max(0, names.indexOf(progress.db));
    if (at === 0 && progress.db !== names[0]) progress.after = null;
    for (; at < names.length; at++, progress.after = null) {
      const db = names[at] as string;
      progress.db = db;
      progress.copied += await copyRange(move.source, move.tenant, db, progress.after ?? undefined, writer, this.settings.chunk, async (last) => {
        progress.after = last;
        if (++chunks % this.settings.persistEveryChunks === 0) await this.persist(move);
      });
    }
    progress.db = null;
    await this.persist(move);
    const hook = testCatchUpHook();
    const bounds = hook ? { ...this.settings.chunk, entries: hook.entries } : this.settings.chunk;
    const passWriter = this.writerFor(move, stepThen('catching-up'), bounds);
    if (hook) await new Promise((r) => setTimeout(r, hook.waitMs));
    for (let pass = 0; pass < this.settings.catchUpPassesMax; pass++) {
      const result = await catchUp(move.source, move.target, move.tenant, passWriter, bounds);
      progress.passes++;
      progress.caught_up += result.entries;
      if (result.changed.size <= this.settings.flipDeltaMax) break;
    }
  }

  /** Catch-up passes outside the pause, each changed aggregate verified incrementally, until the delta is small. */
  private async catchUpVerified(move: MoveRun, verified: VerifiedCopies): Promise<void> {
    const writer = this.writerFor(move, async () => {
      if (this.stopped) throw new MoveStopped();
    });
    for (let pass = 0; pass < this.settings.catchUpPassesMax; pass++) {
      const result = await catchUp(move.source, move.target, move.tenant, writer, this.settings.chunk);
      move.progress.passes++;
      move.progress.caught_up += result.entries;
      for (const agg of result.changed.values()) verifyTail(move, agg.type, agg.id, verified, false);
      if (result.changed.size <= this.settings.flipDeltaMax) break;
    }
  }

  /** Every aggregate on the target, fully verified and checked against the source's root at its version. */
  private async verifyAll(move: MoveRun): Promise<VerifiedCopies> {
    const { target, tenant, progress } = move;
    const verified: VerifiedCopies = new Map();
    progress.verified = 0;
    target.env.env.resetReadTxn();
    // Keys a page at a time: verification yields to other requests, and an LMDB range iterator
    // must not be held across those turns.
    for (let after: Key | undefined; ; ) {
      const keys = scanPrefix(target.env, 'heads', target.shard, { prefix: [tenant] }, this.settings.chunk.entries, after).map((e) => e.key);
      if (keys.length === 0) break;
      after = keys[keys.length - 1];
      for (const key of keys) {
        if (this.stopped) throw new MoveStopped();
        await verifyCopied(move, verified, key[1] as string, key[2] as string);
        if (++progress.verified === 1) faultAt('verifying');
        // Verification shares this thread with every request: a turn for them after each aggregate.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    await this.persist(move);
    return verified;
  }

  /** The write pause: final delta, its verification, the checks, and the one-transaction flip. */
  private async flip(move: MoveRun, verified: VerifiedCopies): Promise<void> {
    const { source, target, tenant, progress, record } = move;
    const pausedAt = performance.now();
    const resume = await this.deps.admission.pause(tenant);
    const steps: Record<string, number> = { drain: performance.now() - pausedAt };
    let at = performance.now();
    const step = (name: string): void => {
      const now = performance.now();
      steps[name] = now - at;
      at = now;
    };
    try {
      const final = await catchUp(source, target, tenant, this.writerFor(move), this.settings.chunk);
      progress.passes++;
      progress.caught_up += final.entries;
      step('catch_up');
      for (const agg of final.changed.values()) verifyTail(move, agg.type, agg.id, verified, true);
      const mismatch = copyMismatch(source, target, tenant, this.settings.chunk);
      if (mismatch) throw new DbxError('integrity_failed', `the copy of tenant '${tenant}' differs from its source after the final catch-up: ${mismatch}`);
      // Every outbox entry of the source up to here may name this tenant's events: the source range
      // stays until the plugin queue has taken them all.
      progress.outbox_at_flip = source.store.outboxHigh();
      step('checks');
      faultAt('flipping');
      progress.pause_ms = performance.now() - pausedAt;
      const flipped: TenantMove = { ...record, phase: 'deleting', progress: { ...progress } };
      await this.deps.meta.update(tenant, (r) => ({ ...r, shard: progress.assignment, move: flipped }));
      record.phase = 'deleting';
      step('commit');
    } finally {
      resume();
      progress.pause_ms = performance.now() - pausedAt;
    }
    progress.pause_steps_ms = Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, Math.round(v * 10) / 10]));
    this.deps.log('info', 'tenant move flipped', { tenant, to: shardName(target.shard), write_pause_ms: Math.round(progress.pause_ms), steps: progress.pause_steps_ms });
  }

  /** After the flip: waits for the plugin queue, then deletes the source range in chunks. */
  private async deleteSource(move: MoveRun): Promise<void> {
    const { source, tenant, progress } = move;
    const through = progress.outbox_at_flip ?? 0;
    let waitedSince = Date.now();
    while (this.deps.outboxTaken(source.shard) < through) {
      if (this.stopped) throw new MoveStopped();
      if (Date.now() - waitedSince > 10_000) {
        this.deps.log('warn', 'tenant move: waiting for the plugin queue to take the source outbox before deleting the source range', { tenant, through });
        waitedSince = Date.now();
      }
      await sleep(this.settings.outboxPollMs);
    }
    // The target only grew since the flip: fewer entries there than on the source would mean a
    // range the copy missed, and the source copy is kept (the record stays; nothing is lost).
    const short = await countsCovered(source, move.target, tenant);
    if (short) throw new DbxError('integrity_failed', `tenant move: the target of '${tenant}' holds fewer entries than its source (${short}); the source range is kept`);
    // An export that began before the flip still reads the source range: it finishes first.
    while (this.deps.busy.has(tenant, 'export')) {
      if (this.stopped) throw new MoveStopped();
      await sleep(this.settings.outboxPollMs);
    }
    const worker = this.deps.pool.workerOf(source.shard);
    for (;;) {
      if (this.stopped) throw new MoveStopped();
      const removed = await this.deps.pool.control(worker).tenantDelete(source.shard, tenant, this.settings.chunk.entries);
      if (removed === 0) break;
      progress.deleted += removed;
      faultAt('deleting');
    }
    source.env.env.resetReadTxn();
    const left = countTenantRange(source.env, source.shard, tenant);
    const rest = Object.entries(left).filter(([, n]) => n > 0);
    if (rest.length > 0) throw new DbxError('internal', `tenant move: the source range of '${tenant}' is not empty after deletion (${rest.map(([db, n]) => `${db}=${n}`).join(', ')})`);
  }

  /** Before the flip the source still serves: drop the target's partial copy and the move record. */
  private async rollBack(move: MoveRun, cause: unknown): Promise<void> {
    const { target, tenant } = move;
    this.deps.log('error', 'tenant move failed before its flip; rolling back (the source keeps serving)', { tenant, err: cause });
    try {
      const worker = this.deps.pool.workerOf(target.shard);
      while ((await this.deps.pool.control(worker).tenantDelete(target.shard, tenant, this.settings.chunk.entries)) > 0);
      await this.deps.meta.setMove(tenant, null);
    } catch (err) {
      // The record stays: the next start resumes the move (and so brings the copy up to date).
      this.deps.log('error', 'tenant move: rolling back failed; the move resumes at the next start', { tenant, err });
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The plugin dispatcher's barriers (Dispatcher.outboxBarriers) for flipped moves: from the flip
 * until the move record goes, the moved tenant's entries in the target shard's outbox are read only
 * once the queue has taken the source's outbox up to the flip, so no plugin gets an aggregate's newer events (written on the
 * target) before its older ones (left in the source's outbox). Kept from the records at start and
 * from every change after: the flip's own commit installs the barrier before writes resume.
 */
export function flippedMoveBarriers(meta: TenantMeta): () => Iterable<OutboxBarrier> {
  const barriers = new Map<string, OutboxBarrier>();
  const note = (tenant: string, move: TenantMove | null | undefined): void => {
    const through = move?.phase === 'deleting' ? move.progress?.outbox_at_flip : undefined;
    if (move && typeof through === 'number') barriers.set(tenant, { tenant, source: move.from, target: move.to, through });
    else barriers.delete(tenant);
  };
  for (const r of meta.list()) note(r.tenant, r.move);
  meta.onChange((tenant, record) => note(tenant, record?.move));
  return () => barriers.values();
}
