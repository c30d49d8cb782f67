/**
 * The durable plugin queue (DESIGN §8): one LMDB environment at `<data_dir>/queue`.
 *
 * - `plugins`   name → PluginDefinition (sealed with the data key: endpoints and headers can hold
 *   credentials).
 * - `jobs`      [plugin, event_id] → Job. The key is deterministic, so moving the same outbox entry
 *   twice (a crash between the queue commit and the outbox prune) cannot make a second job.
 * - `positions` shard → the last outbox sequence whose jobs are in `jobs`, written in the same
 *   transaction as those jobs: the dispatcher resumes exactly there after any crash.
 * - `by_status` [status, plugin, updated_at, event_id] → null, written with every job change: a
 *   start loads only the open jobs, and pruning walks the oldest done jobs, without reading the
 *   done ones whole (a day of done jobs at the default TTL is millions; scanning them all every
 *   prune interval blocked the coordinator's event loop). Built once for a queue written before it
 *   (`meta.status_index`).
 *
 * A job holds ids only; the delivery body (event, state, schema, proof) is built from the store
 * when it is delivered, so the queue never holds a second copy of a payload.
 * Commits are synchronous (no overlapping sync): a state change is on disk when its promise resolves.
 */
import { fsyncDirectory, mkdirDurably } from '../core/durable-file.js';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { ValueCipher } from '../core/index.js';
import { pluginDefinition, type PayloadMode, type PluginDefinition } from './types.js';

export const QUEUE_DIR = 'queue';

export type JobStatus = 'pending' | 'processing' | 'done' | 'dead';
export const JOB_STATUSES: readonly JobStatus[] = ['pending', 'processing', 'done', 'dead'];

export interface Job {
  plugin: string;
  event_id: string;
  tenant: string;
  aggregate_type: string;
  aggregate_id: string;
  version: number;
  status: JobStatus;
  attempts: number;
  /** Epoch ms before which the job is not tried (backoff); 0 = now. */
  next_attempt_at: number;
  last_error: string | null;
  /** Epoch ms the job was queued; `committed_at` is the event's own time (lag is measured from it). */
  created_at: number;
  committed_at: number;
  updated_at: number;
  /** A replay in another payload mode than the plugin's (`dbx plugin replay --payload-mode`). */
  payload_mode?: PayloadMode;
}

export type JobKey = [plugin: string, eventId: string];
type StatusKey = [status: JobStatus, plugin: string, updatedAt: number, eventId: string];

const statusKey = (job: Job): StatusKey => [job.status, job.plugin, job.updated_at, job.event_id];
/** A plugin's entries of one status, oldest change first (Infinity sorts after every time). */
const statusRange = (status: JobStatus, plugin: string, before = Infinity) => ({
  start: [status, plugin] as unknown as StatusKey,
  end: [status, plugin, before] as unknown as StatusKey,
});
const STATUS_INDEX_BUILT = 'status_index';

/** A job not yet done: what the dispatcher still has to deliver (or holds dead). */
const isOpen = (status: JobStatus): boolean => status !== 'done';
/** The open jobs of one aggregate for one plugin, in version order (the dispatcher's lane). */
type LaneKey = [plugin: string, tenant: string, aggregateType: string, aggregateId: string, version: number, eventId: string];
const laneIndexKey = (job: Job): LaneKey => [job.plugin, job.tenant, job.aggregate_type, job.aggregate_id, job.version, job.event_id];
const LANE_INDEX_BUILT = 'lane_index';

export class PluginQueue {
  private readonly env: RootDatabase;
  private readonly plugins: Database<Buffer, string>;
  readonly jobs: Database<Job, JobKey>;
  private readonly positions: Database<number, number>;
  private readonly byStatus: Database<null, StatusKey>;
  /** Open jobs by plugin and aggregate, in version order: the dispatcher loads whole lanes from it (dispatcher.ts). */
  private readonly byLane: Database<null, LaneKey>;
  private readonly meta: Database<number, string>;
  private closed = false;

  constructor(
    dataDir: string,
    private readonly cipher: ValueCipher | null,
    options: { mapSizeMib?: number } = {},
  ) {
    const path = join(dataDir, QUEUE_DIR);
    mkdirDurably(path);
    this.env = open({ path, maxDbs: 8, mapSize: (options.mapSizeMib ?? 16 * 1024) * 1024 * 1024, overlappingSync: false, noMemInit: false });
    fsyncDirectory(path); // data.mdb's entry, made by open, is durable before any commit counts
    this.plugins = this.env.openDB<Buffer, string>({ name: 'plugins', encoding: 'binary' });
    this.jobs = this.env.openDB<Job, JobKey>({ name: 'jobs' });
    this.positions = this.env.openDB<number, number>({ name: 'positions' });
    this.byStatus = this.env.openDB<null, StatusKey>({ name: 'by_status' });
    this.byLane = this.env.openDB<null, LaneKey>({ name: 'by_lane' });
    this.meta = this.env.openDB<number, string>({ name: 'meta' });
    if (this.meta.get(STATUS_INDEX_BUILT) === undefined) this.buildStatusIndex();
    if (this.meta.get(LANE_INDEX_BUILT) === undefined) this.buildLaneIndex();
  }

  /** A queue from before `by_lane`: index every open job once, in one transaction. */
  private buildLaneIndex(): void {
    this.env.transactionSync(() => {
      for (const { value } of this.jobs.getRange()) if (isOpen(value.status)) this.byLane.put(laneIndexKey(value), null);
      this.meta.put(LANE_INDEX_BUILT, 1);
    });
  }

  /** A queue from before `by_status`: index every job once, in one transaction. */
  private buildStatusIndex(): void {
    this.env.transactionSync(() => {
      for (const { value } of this.jobs.getRange()) this.byStatus.put(statusKey(value), null);
      this.meta.put(STATUS_INDEX_BUILT, 1);
    });
  }

  /** Inside a write transaction: `job` replaces `old` (absent = new job; `job` absent = removed). */
  private reindex(old: Job | undefined, job: Job | undefined): void {
    if (old) this.byStatus.remove(statusKey(old));
    if (job) this.byStatus.put(statusKey(job), null);
    if (old && isOpen(old.status)) this.byLane.remove(laneIndexKey(old));
    if (job && isOpen(job.status)) this.byLane.put(laneIndexKey(job), null);
  }

  // ---- plugin definitions ----

  definitions(): PluginDefinition[] {
    const out: PluginDefinition[] = [];
    for (const { value } of this.plugins.getRange()) out.push(this.unsealDefinition(value));
    return out;
  }

  definition(name: string): PluginDefinition | undefined {
    const raw = this.plugins.get(name);
    return raw === undefined ? undefined : this.unsealDefinition(raw);
  }

  async putDefinition(definition: PluginDefinition): Promise<void> {
    const json = JSON.stringify(definition);
    await this.plugins.put(definition.name, this.cipher ? this.cipher.seal(json) : Buffer.from(json, 'utf8'));
  }

  /** Removes the definition and every job of the plugin. */
  async removeDefinition(name: string): Promise<void> {
    await this.env.transaction(() => {
      this.plugins.remove(name);
      for (const { key, value } of this.jobs.getRange({ start: [name, ''], end: [name, '\uffff'] })) {
        this.reindex(value, undefined);
        this.jobs.remove(key);
      }
    });
  }

  // ---- dispatcher positions and enqueueing ----

  position(shard: number): number {
    return this.positions.get(shard) ?? 0;
  }

  /**
   * Adds the jobs and moves the shard's position in one durable transaction. Answers the jobs it
   * added (a job whose key is already queued, say by a replay, is left as it is).
   */
  async enqueue(jobs: Job[], shard: number, position: number): Promise<Job[]> {
    const added: Job[] = [];
    await this.env.transaction(() => {
      added.length = 0;
      for (const job of jobs) {
        const key: JobKey = [job.plugin, job.event_id];
        if (this.jobs.get(key) !== undefined) continue;
        this.jobs.put(key, job);
        this.reindex(undefined, job);
        added.push(job);
      }
      this.positions.put(shard, position);
    });
    return added;
  }

  /**
   * Adds jobs outside the outbox flow (replay, test): an existing job of the same key is replaced.
   * A replacement is a new job: its `created_at` is later than the one it replaces, so a state
   * change of the old one still on its way (update) cannot be written over it. Answers, per job,
   * the one it replaced (the dispatcher's counts move it out of its old status).
   */
  async putJobs(jobs: Job[]): Promise<(Job | undefined)[]> {
    let replaced: (Job | undefined)[] = [];
    await this.env.transaction(() => {
      replaced = [];
      for (const job of jobs) {
        const key: JobKey = [job.plugin, job.event_id];
        const old = this.jobs.get(key);
        replaced.push(old);
        if (old && job.created_at <= old.created_at) job.created_at = old.created_at + 1;
        this.reindex(old, job);
        this.jobs.put(key, job);
      }
    });
    return replaced;
  }

  /** Writes the jobs' new states together (delivery outcomes are batched). */
  async update(jobs: Job[]): Promise<void> {
    if (jobs.length === 0) return;
    await this.env.transaction(() => {
      for (const job of jobs) {
        const key: JobKey = [job.plugin, job.event_id];
        // A job removed meanwhile (plugin removed, queue cleared) stays removed; one replaced
        // meanwhile (a replay: another created_at) stays replaced.
        const old = this.jobs.get(key);
        if (old === undefined || old.created_at > job.created_at) continue;
        this.reindex(old, job);
        this.jobs.put(key, job);
      }
    });
  }

  async removeJobs(keys: JobKey[]): Promise<void> {
    if (keys.length === 0) return;
    await this.env.transaction(() => {
      for (const key of keys) {
        const old = this.jobs.get(key);
        if (old === undefined) continue;
        this.reindex(old, undefined);
        this.jobs.remove(key);
      }
    });
  }

  /** A plugin's jobs of one status, oldest change first (from the status index; no other job is read). */
  *jobsWithStatus(status: JobStatus, plugin: string): Generator<Job> {
    for (const key of this.byStatus.getKeys(statusRange(status, plugin))) {
      const [, name, , eventId] = key as StatusKey;
      const job = this.jobs.get([name, eventId]);
      if (job !== undefined) yield job;
    }
  }

  /**
   * The event ids of a plugin's pending jobs, oldest change first, after `after` (an `indexKey`
   * this answered before; absent = from the first): keys only, nothing decoded.
   */
  *pendingKeys(plugin: string, after?: unknown[]): Generator<{ indexKey: unknown[]; eventId: string }> {
    const range = statusRange('pending', plugin);
    const start = after ?? range.start;
    for (const key of this.byStatus.getKeys({ start: start as StatusKey, end: range.end })) {
      const k = key as StatusKey;
      if (after && k[2] === after[2] && k[3] === after[3]) continue;
      yield { indexKey: k, eventId: k[3] };
    }
  }

  /** The plugin's open jobs of one aggregate, in version order (the lane index; see dispatcher.ts). */
  *laneJobs(plugin: string, tenant: string, aggregateType: string, aggregateId: string): Generator<Job> {
    const range = { start: [plugin, tenant, aggregateType, aggregateId] as unknown as LaneKey, end: [plugin, tenant, aggregateType, aggregateId, Infinity] as unknown as LaneKey };
    for (const key of this.byLane.getKeys(range)) {
      const job = this.jobs.get([plugin, (key as LaneKey)[5]]);
      if (job !== undefined && isOpen(job.status)) yield job;
    }
  }

  /**
   * The open jobs of one tenant for one plugin, aggregate by aggregate in version order (the lane
   * index's tenant range: nothing of another tenant is read).
   */
  *tenantJobs(plugin: string, tenant: string): Generator<Job> {
    // No end key: any string can follow the tenant; the scan stops at the first key past it.
    for (const key of this.byLane.getKeys({ start: [plugin, tenant] as unknown as LaneKey })) {
      const k = key as LaneKey;
      if (k[0] !== plugin || k[1] !== tenant) break;
      const job = this.jobs.get([plugin, k[5]]);
      if (job !== undefined && isOpen(job.status)) yield job;
    }
  }

  /**
   * The earliest event time among the first `scan` pending jobs of a plugin in queue order (the
   * status index is ordered by last change, near enough to commit order for a lag gauge).
   */
  oldestPendingCommit(plugin: string, scan = 64): number | undefined {
    let oldest: number | undefined;
    for (const key of this.byStatus.getKeys({ ...statusRange('pending', plugin), limit: scan })) {
      const job = this.jobs.get([plugin, (key as StatusKey)[3]]);
      if (job !== undefined && (oldest === undefined || job.committed_at < oldest)) oldest = job.committed_at;
    }
    return oldest;
  }

  /** How many of a plugin's jobs have this status (counted in the index, nothing decoded). */
  countWithStatus(status: JobStatus, plugin: string): number {
    return this.byStatus.getKeysCount(statusRange(status, plugin));
  }

  /**
   * Keys of a plugin's done jobs, oldest completion first: those completed before `before`, at most
   * `limit` of them.
   */
  oldestDone(plugin: string, limit: number, before = Infinity): { key: JobKey; updated_at: number }[] {
    const out: { key: JobKey; updated_at: number }[] = [];
    for (const key of this.byStatus.getKeys({ ...statusRange('done', plugin, before), limit })) {
      const [, name, updatedAt, eventId] = key as StatusKey;
      out.push({ key: [name, eventId], updated_at: updatedAt });
    }
    return out;
  }

  job(plugin: string, eventId: string): Job | undefined {
    return this.jobs.get([plugin, eventId]);
  }

  *allJobs(plugin?: string): Generator<Job> {
    const range = plugin === undefined ? this.jobs.getRange() : this.jobs.getRange({ start: [plugin, ''], end: [plugin, '\uffff'] });
    for (const { value } of range) yield value;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.env.close();
  }

  private unsealDefinition(raw: Buffer): PluginDefinition {
    const bytes = this.cipher?.isSealed(raw) ? this.cipher.open(raw) : raw;
    return pluginDefinition.parse(JSON.parse(bytes.toString('utf8')));
  }
}
