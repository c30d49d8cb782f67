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
 */
import type { Key as LmdbKey } from 'lmdb';
import {
  DbxError,
  appendLeaf,
  canonicalize,
  frontierRoot,
  leafHash,
  shardName,
  tenantShard,
  type PlacementSettings,
} from '../core/index.js';
import { TENANT_KEYED_DBS, countTenantRange, countTenantRangeYielding, scanPrefix, type RangeEntry, type ShardStore, type StoredHead } from '../shard-worker/index.js';
import type { RequestBody, ShardPool } from './shard-pool.js';
import { ChunkWriter, catchUp, copyMismatch, copyRange, countsCovered, type ChunkBounds, type CopySide } from './tenant-copy.js';
import type { TenantBusy } from './tenant-export.js';
import type { TenantAdmission } from './tenant-gate.js';
import type { TenantMeta, TenantMove, TenantMovePhase } from './tenant-meta.js';
import type { TenantMover } from './tenant-service.js';
import { verifyAggregate } from './verify.js';

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

/** The mover's resumption data, kept in `TenantMove.progress` (opaque to everyone else). */
interface Progress {
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

/** A copied aggregate as verified: its version and the Merkle frontier of events 1..version. */
interface Verified {
  version: number;
  frontier: string[];
}

class MoveStopped extends Error {}

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
    const progress: Progress = { assignment, db: TENANT_KEYED_DBS[0]?.name ?? null, after: null, copied: 0, passes: 0, caught_up: 0, verified: 0, deleted: 0, resumed: 0 };
    const record: TenantMove = { from, to, phase: 'copying', started_at: new Date().toISOString(), progress: { ...progress } };
    await this.deps.meta.setMove(tenant, record);
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
    const report: MoveReport = {
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
      duration_ms: Math.round(performance.now() - started),
      phases_ms: phases,
      resumed: progress.resumed,
      ...(cleanup !== undefined ? { source_cleanup: cleanup } : {}),
    };
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

  private writerFor(move: MoveRun, afterChunk: () => Promise<void> = async () => {}): ChunkWriter {
    const worker = this.deps.pool.workerOf(move.target.shard);
    return new ChunkWriter(move.target, this.settings.chunk, (entries: RangeEntry[]) => this.deps.pool.control(worker).tenantWrite(move.target.shard, move.tenant, entries), afterChunk);
  }

  /** Bulk copy from the saved cursor, then catch-up passes until the delta is small. */
  private async copy(move: MoveRun): Promise<void> {
    const { progress } = move;
    let chunks = 0;
    const writer = this.writerFor(move, async () => {
      if (this.stopped) throw new MoveStopped();
      faultAt('copying');
    });
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
    for (let pass = 0; pass < this.settings.catchUpPassesMax; pass++) {
      const result = await catchUp(move.source, move.target, move.tenant, writer, this.settings.chunk);
      progress.passes++;
      progress.caught_up += result.entries;
      if (result.changed.size <= this.settings.flipDeltaMax) break;
    }
  }

  /** Catch-up passes outside the pause, each changed aggregate verified incrementally, until the delta is small. */
  private async catchUpVerified(move: MoveRun, verified: Map<string, Verified>): Promise<void> {
    const writer = this.writerFor(move, async () => {
      if (this.stopped) throw new MoveStopped();
    });
    for (let pass = 0; pass < this.settings.catchUpPassesMax; pass++) {
      const result = await catchUp(move.source, move.target, move.tenant, writer, this.settings.chunk);
      move.progress.passes++;
      move.progress.caught_up += result.entries;
      for (const agg of result.changed.values()) this.verifyTail(move, agg.type, agg.id, verified, false);
      if (result.changed.size <= this.settings.flipDeltaMax) break;
    }
  }

  /** Every aggregate on the target, fully verified and checked against the source's root at its version. */
  private async verifyAll(move: MoveRun): Promise<Map<string, Verified>> {
    const { target, tenant, progress } = move;
    const verified = new Map<string, Verified>();
    progress.verified = 0;
    target.env.env.resetReadTxn();
    // Keys a page at a time: verification yields to other requests, and an LMDB range iterator
    // must not be held across those turns.
    for (let after: Key | undefined; ; ) {
      const keys = scanPrefix(target.env, 'heads', target.shard, { prefix: [tenant] }, this.settings.chunk.entries, after).map((e) => e.key);
      if (keys.length === 0) break;
      after = keys[keys.length - 1];
      for (const key of keys) {
        await this.verifyOne(move, verified, key[1] as string, key[2] as string);
        // Verification shares this thread with every request: a turn for them after each aggregate.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    await this.persist(move);
    return verified;
  }

  /** One aggregate of the copy: verify.ts's full check on the target, then its root against the source's. */
  private async verifyOne(move: MoveRun, verified: Map<string, Verified>, type: string, id: string): Promise<void> {
    const { source, target, tenant, progress } = move;
    if (this.stopped) throw new MoveStopped();
    const head = target.store.getHead(tenant, type, id) as StoredHead;
    const result = await verifyAggregate(target.store, tenant, type, id, head);
    if (!result.valid) {
      const problem = result.problems?.[0];
      throw new DbxError('integrity_failed', `the copy of ${type}/${id} on ${shardName(target.shard)} failed verification at version ${result.first_invalid_version}: ${problem?.message ?? 'invalid'}`);
    }
    const sourceRoot = rootAt(source.store, tenant, type, id, head.version);
    if (sourceRoot !== head.merkle_root) {
      throw new DbxError('integrity_failed', `the copy of ${type}/${id} v${head.version} has root ${head.merkle_root}, the source ${sourceRoot ?? 'has no such version'}`);
    }
    verified.set(`${type}\u0000${id}`, { version: head.version, frontier: [...head.frontier] });
    if (++progress.verified === 1) faultAt('verifying');
  }

  /** The write pause: final delta, its verification, the checks, and the one-transaction flip. */
  private async flip(move: MoveRun, verified: Map<string, Verified>): Promise<void> {
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
      for (const agg of final.changed.values()) this.verifyTail(move, agg.type, agg.id, verified, true);
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

  /**
   * Incremental check of one aggregate's copied delta: every event past the verified version has
   * the hash of its body and the root of the tree grown from the verified frontier, and the result
   * equals the target's head and the source's root at that version (its head, when `paused`).
   * O(new events); records the new verified version.
   */
  private verifyTail(move: MoveRun, type: string, id: string, verified: Map<string, Verified>, paused: boolean): void {
    const { source, target, tenant } = move;
    const key = `${type}\u0000${id}`;
    const from = verified.get(key);
    const head = target.store.getHeadMeta(tenant, type, id);
    const fail = (why: string): never => {
      throw new DbxError('integrity_failed', `the copy of ${type}/${id} on ${shardName(target.shard)} failed verification: ${why}`);
    };
    if (!head) {
      if (source.store.getHeadMeta(tenant, type, id)) fail('the aggregate is missing from the copy');
      verified.delete(key);
      return;
    }
    let frontier = from?.frontier ?? [];
    let size = from?.version ?? 0;
    if (head.version < size) fail(`its version went back from ${size} to ${head.version}`);
    for (const stored of target.store.storedEventRange(tenant, type, id, size)) {
      if (size >= head.version) break;
      const event = target.store.openEvent(stored);
      if (event.version !== size + 1) fail(`event ${size + 1} is missing`);
      const { hash, merkle_root, ...body } = event;
      const leaf = leafHash(canonicalize(body));
      if (hash !== leaf) fail(`event ${event.version}: the hash is not the hash of its content`);
      frontier = appendLeaf(frontier, size, leaf);
      size++;
      if (merkle_root !== frontierRoot(frontier)) fail(`event ${event.version}: merkle_root is not the root of events 1..${event.version}`);
    }
    const root = frontierRoot(frontier);
    if (size !== head.version || root !== head.merkle_root) fail(`the head (v${head.version}) is not the fold of its ${size} copied events`);
    if (paused) {
      const sourceHead = source.store.getHeadMeta(tenant, type, id);
      if (sourceHead?.version !== head.version || sourceHead.merkle_root !== root) fail(`the source is at v${sourceHead?.version ?? 0}, the copy at v${head.version}`);
    } else if (rootAt(source.store, tenant, type, id, head.version) !== root) {
      fail(`the source's root at v${head.version} differs from the copy's`);
    }
    verified.set(key, { version: size, frontier });
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

interface MoveRun {
  tenant: string;
  record: TenantMove;
  progress: Progress;
  source: CopySide;
  target: CopySide;
}

function progressOf(record: TenantMove): Progress {
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

/** The merkle_root the source's event at `version` carries (readable without the data key). */
function rootAt(store: ShardStore, tenant: string, type: string, id: string, version: number): string | undefined {
  const stored = store.storedEvents.get([tenant, type, id, version]);
  if (stored === undefined) return undefined;
  try {
    const root = (JSON.parse(stored) as { merkle_root?: unknown }).merkle_root;
    return typeof root === 'string' ? root : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The test fault hook: `EVENTDBX_FAULT_TENANT_MOVE=<phase>` kills this process at that point of a
 * move (SIGKILL: no cleanup runs). Honoured only with NODE_ENV=test, never in a real deployment.
 */
function faultAt(phase: TenantMovePhase): void {
  if (process.env.NODE_ENV !== 'test' || process.env.EVENTDBX_FAULT_TENANT_MOVE !== phase) return;
  process.kill(process.pid, 'SIGKILL');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
