/**
 * The dispatcher (DESIGN §8): moves committed events from the shards' outboxes into the durable
 * queue, one job per enabled plugin, and feeds the delivery pool.
 *
 * - **Never on the write path.** It runs on timers in the coordinator, reads the outboxes through
 *   read transactions and hands deliveries to piscina threads; a write never waits for it, and a
 *   plugin that hangs only fills its own share of the pool (`in_flight_max`, or the pool's slots
 *   divided among the enabled plugins when that is less: see `deliverySlots`).
 * - **Order per aggregate.** Each plugin keeps a lane per aggregate; only the lane's head is ever in
 *   flight, so one aggregate's events arrive in version order while other aggregates go in parallel.
 * - **Retries.** A failure retries after `retry_base_ms · 2^(attempt−1)` (full jitter, capped at
 *   `retry_max_ms`) up to `plugin_max_attempts`, then the job is dead; the jobs behind it wait
 *   (`[plugins] on_dead = "block"`, the default) or pass it ("skip").
 * - **Durability.** Jobs and the shard's outbox position are committed together; a job is marked
 *   done only after its delivery answered, so a crash at any moment redelivers (at least once,
 *   `event_id` in every delivery) and never loses a job. `processing` jobs found at start were
 *   interrupted: they are pending again.
 * - **Bounded memory.** The queue on disk holds every open job; memory holds at most
 *   `[plugins] jobs_in_memory_max` of them per plugin (plus one dead job per blocked aggregate and
 *   the lanes loaded whole). Beyond that the plugin is *spilled*: new jobs stay on disk only, and
 *   once memory has room they are loaded back oldest first, a whole lane at a time, from the
 *   queue's lane index. The rule that keeps order: a lane in memory always holds the lowest
 *   versions of its aggregate's open jobs (a prefix); jobs on disk only are later ones. A lane
 *   blocked by a dead head keeps only that head in memory, its later jobs wait on disk, so blocked
 *   aggregates do not fill the window and starve the others.
 */
import type { Config, EventRecord } from '../core/index.js';
import type { ShardStore } from '../shard-worker/index.js';
import type { Job, JobStatus, PluginQueue } from './queue.js';
import type { Delivery, DeliveryBody, PluginDefinition } from './types.js';

export interface DispatcherDeps {
  config: Config;
  queue: PluginQueue;
  /** Every shard's store (index = shard number), for the outboxes. */
  stores: ShardStore[];
  /** The body of one job for its plugin; null when the event is gone (never, short of a bug). */
  bodyFor(job: Job, definition: PluginDefinition): DeliveryBody | null;
  /** Delivers through the pool; rejects with the reason on failure. */
  deliver(definition: PluginDefinition, delivery: Delivery): Promise<void>;
  observe?: DispatcherObserver;
  /** Asks the shard's worker to drop outbox entries below `through` (their jobs are durable here). */
  pruneOutbox?(shard: number, through: number): Promise<void>;
  /**
   * Tenants moved live whose source outbox may still hold entries up to `through` (tenant-move.ts):
   * the target shard's outbox is read past the tenant's first entry there only once the source's
   * position reached it (see pump).
   */
  outboxBarriers?(): Iterable<OutboxBarrier>;
  log(level: 'info' | 'warn' | 'error', message: string, extra?: Record<string, unknown>): void;
  /**
   * Deliveries the pool runs at once for the queue (its capacity less what checks and tests keep).
   * Shared fairly: each enabled plugin gets at most slots / plugins of them (never below 1), so
   * hanging plugins together cannot take the slots of a healthy one. Absent: in_flight_max only.
   */
  deliverySlots?: number;
}

export interface OutboxBarrier {
  tenant: string;
  source: number;
  target: number;
  through: number;
}

/** What openJobs reads: a plugin's, a tenant's, one status, at most `limit` (absent = no bound). */
export interface OpenJobsFilter {
  plugin?: string;
  tenant?: string;
  status?: JobStatus;
  limit?: number;
}

export interface DispatcherObserver {
  delivered(plugin: string, attempts: number, lagMs: number): void;
  failed(plugin: string, dead: boolean): void;
}

export interface PluginCounts {
  plugin: string;
  enabled: boolean;
  pending: number;
  processing: number;
  done: number;
  dead: number;
  /** Age in ms of the oldest job not yet done (0 when none): how far delivery is behind. */
  lag_ms: number;
}

interface Lane {
  key: string;
  jobs: Job[];
  inFlight: boolean;
  /** `on_dead = "block"` and the head is dead: only the head is held, later jobs wait on disk. */
  blocked: boolean;
}

interface PluginState {
  definition: PluginDefinition;
  lanes: Map<string, Lane>;
  /** Every job held in `lanes`, by event id. */
  held: Map<string, Job>;
  inFlight: number;
  done: number;
  /** New jobs go to disk only until a scan of the queue has loaded every job left there (see the header). */
  spilled: boolean;
  /** Where the next scan of the pending jobs on disk resumes (a status-index key); undefined = from the start. */
  cursor: unknown[] | undefined;
  /** Open jobs on disk and not held (best effort, for counts: exact again once a scan finds nothing left). */
  pendingOnDisk: number;
  deadOnDisk: number;
}

const OPEN_STATUSES: readonly JobStatus[] = ['pending', 'processing', 'dead'];

/** How long a stop waits for deliveries in flight. */
const STOP_GRACE_MS = 2000;

const laneKey = (job: Pick<Job, 'tenant' | 'aggregate_type' | 'aggregate_id'>): string => `${job.tenant}\u0000${job.aggregate_type}\u0000${job.aggregate_id}`;

const jobKey = (job: Pick<Job, 'plugin' | 'event_id'>): string => `${job.plugin}\u0000${job.event_id}`;

function newPluginState(definition: PluginDefinition): PluginState {
  return { definition, lanes: new Map(), held: new Map(), inFlight: 0, done: 0, spilled: false, cursor: undefined, pendingOnDisk: 0, deadOnDisk: 0 };
}

/** How often a position that moved past entries without jobs is committed to the queue. */
const POSITION_SAVE_MS = 1000;

export class Dispatcher {
  private readonly plugins = new Map<string, PluginState>();
  private readonly positions = new Map<number, number>();
  /** Per shard: the position last committed to the queue, and when (see pumpShard). */
  private readonly savedPositions = new Map<number, number>();
  private readonly positionSavedAt = new Map<number, number>();
  private readonly pruned = new Map<number, { through: number; at: number }>();
  /** Per shard, the last outbox sequence known durable: nothing beyond it is moved (see durableAt). */
  private readonly durable = new Map<number, number>();
  private readonly dirty = new Map<string, Job>();
  /** The batch of `dirty` being committed by flush. */
  private flushingJobs: Map<string, Job> | undefined;
  private timers: NodeJS.Timeout[] = [];
  private pumping = false;
  private flushing: Promise<void> | undefined;
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly deps: DispatcherDeps) {}

  /** Loads the jobs not yet done (up to the window), then starts moving and delivering. */
  async start(): Promise<void> {
    this.reloadDefinitions();
    // Interrupted deliveries (at most in_flight_max per plugin) are pending again, on disk first,
    // so every later read of the queue sees them as such.
    const recovered: Job[] = [];
    for (const name of this.plugins.keys()) {
      for (const job of this.deps.queue.jobsWithStatus('processing', name)) recovered.push({ ...job, status: 'pending' });
    }
    await this.deps.queue.update(recovered);
    if (recovered.length > 0) this.deps.log('warn', 'plugin jobs interrupted by a stop were made pending again', { jobs: recovered.length });
    // Open jobs only, through the queue's status and lane indexes: done ones are counted, never read.
    for (const [name, state] of this.plugins) {
      state.done = this.deps.queue.countWithStatus('done', name);
      state.pendingOnDisk = this.deps.queue.countWithStatus('pending', name);
      state.deadOnDisk = this.deps.queue.countWithStatus('dead', name);
      // Blocked lanes first (their dead heads, one job each), so a pending job behind one is never
      // taken for the head of its lane.
      if (this.deps.config.plugins.on_dead === 'block') for (const job of this.deps.queue.jobsWithStatus('dead', name)) this.loadLane(state, job);
      state.spilled = true;
      this.refill(state);
    }
    for (let s = 0; s < this.deps.stores.length; s++) {
      this.positions.set(s, this.deps.queue.position(s));
      this.savedPositions.set(s, this.deps.queue.position(s));
      // What is on disk when the server starts is durable; later commits are reported by durableAt.
      this.durable.set(s, Math.max(this.durable.get(s) ?? 0, (this.deps.stores[s] as ShardStore).outboxHigh()));
    }
    const { poll_ms } = this.deps.config.plugins;
    this.timers.push(setInterval(() => void this.pump(), poll_ms));
    this.timers.push(setInterval(() => this.schedule(), Math.max(5, Math.min(poll_ms, 50))));
    this.timers.push(setInterval(() => void this.flush(), this.deps.config.plugins.state_flush_ms));
    for (const t of this.timers) t.unref();
  }

  /** Picks up added, changed, enabled, disabled and removed plugins. */
  reloadDefinitions(): void {
    const seen = new Set<string>();
    for (const definition of this.deps.queue.definitions()) {
      seen.add(definition.name);
      const state = this.plugins.get(definition.name);
      if (state) state.definition = definition;
      else this.plugins.set(definition.name, newPluginState(definition));
    }
    for (const name of [...this.plugins.keys()]) if (!seen.has(name)) this.plugins.delete(name);
  }

  /**
   * Jobs written to the queue outside the outbox flow (a replay: every event of an aggregate or a
   * type, replacing jobs of the same keys). A job whose lane is in memory joins it, and the lane
   * is completed from disk (it must stay a prefix); a job of a lane not in memory is held only
   * while the window has room and nothing of the plugin waits on disk, as a new job is (pump):
   * otherwise it stays on disk, counted there, and the plugin is spilled so refill loads it back
   * in order. A replay of a whole type therefore holds the window, not the type.
   */
  adopt(jobs: Job[], replaced: readonly (Job | undefined)[] = []): void {
    const window = this.deps.config.plugins.jobs_in_memory_max;
    const touched = new Map<PluginState, Map<string, Job>>();
    for (const [i, job] of jobs.entries()) {
      const state = this.plugins.get(job.plugin);
      if (!state) continue;
      const key = jobKey(job);
      // The replaced job's status as counted here: a change not yet committed is newer than the disk's.
      const before = this.dirty.get(key) ?? this.flushingJobs?.get(key) ?? replaced[i];
      // A change of the replaced job not yet committed is void (the queue would skip it: see update).
      this.dirty.delete(key);
      const old = state.held.get(job.event_id);
      const inMemory = old !== undefined || state.lanes.has(laneKey(job));
      if (!inMemory && (state.spilled || state.held.size >= window)) {
        // Left on disk: it is pending there now, whatever the job it replaced was.
        if (before?.status === 'done') state.done = Math.max(0, state.done - 1);
        else if (before?.status === 'dead') state.deadOnDisk = Math.max(0, state.deadOnDisk - 1);
        if (before === undefined || before.status === 'done' || before.status === 'dead') state.pendingOnDisk++;
        this.rescan(state);
        continue;
      }
      const lane = this.laneOf(state, job);
      const at = old ? lane.jobs.indexOf(old) : -1;
      if (at >= 0) lane.jobs[at] = job;
      else {
        lane.jobs.push(job);
        // The job it replaced was counted as not held; it is held, and counted as held, now.
        if (before?.status === 'done') state.done = Math.max(0, state.done - 1);
        else if (before?.status === 'dead') state.deadOnDisk = Math.max(0, state.deadOnDisk - 1);
        else if (before) state.pendingOnDisk = Math.max(0, state.pendingOnDisk - 1);
      }
      state.held.set(job.event_id, job);
      lane.jobs.sort((a, b) => a.version - b.version);
      lane.blocked = false;
      let lanes = touched.get(state);
      if (!lanes) touched.set(state, (lanes = new Map()));
      lanes.set(lane.key, job);
    }
    for (const [state, lanes] of touched) for (const job of lanes.values()) this.loadLane(state, job);
    this.schedule();
  }

  /**
   * Dead jobs made pending again, once that change is committed to the queue (a retry). A held one
   * takes the change only now: changed before the commit, a blocked head could be delivered and its
   * lane dropped while the jobs behind it still wait on disk, and a new write would overtake them.
   * The plugin is spilled first, so the jobs behind come back from disk (whole lanes, in order) with
   * the next refill before any new job of theirs is held (see rescan).
   */
  revived(jobs: Job[]): void {
    for (const job of jobs) {
      const state = this.plugins.get(job.plugin);
      if (!state) continue;
      this.rescan(state);
      const held = state.held.get(job.event_id);
      // A replay that replaced the job meanwhile (a later created_at) wins: the queue kept its
      // version too (see PluginQueue.update).
      if (held) {
        if (held.created_at === job.created_at) Object.assign(held, { status: job.status, attempts: job.attempts, next_attempt_at: job.next_attempt_at, updated_at: job.updated_at });
      } else {
        state.deadOnDisk = Math.max(0, state.deadOnDisk - 1);
        state.pendingOnDisk++;
      }
      const lane = state.lanes.get(laneKey(job));
      if (lane) lane.blocked = false;
    }
    this.schedule();
  }

  /** Jobs on disk that an earlier scan passed (behind a dead head) may go now: the next refill starts from the first. */
  private rescan(state: PluginState): void {
    state.spilled = true;
    state.cursor = undefined;
  }

  /** Done jobs of `plugin` removed from the queue (pruning): `done` counts what the queue holds. */
  forgetDone(plugin: string, removed: number): void {
    const state = this.plugins.get(plugin);
    if (state) state.done = Math.max(0, state.done - removed);
  }

  /**
   * Forgets jobs removed from the queue (clear, a tenant's removal; `jobs` as openJobs answered
   * them). A lane whose dead head went takes its later jobs from disk at the next refill.
   */
  forget(jobs: Job[]): void {
    for (const job of jobs) {
      const state = this.plugins.get(job.plugin);
      if (!state) continue;
      const held = state.held.get(job.event_id);
      const lane = state.lanes.get(laneKey(job));
      if (!held || !lane) {
        // Not held (any more): counted in the status it has now. One that was in flight when it was
        // listed and answered while it was being removed was counted done (or dead) by finish.
        if (job.status === 'done') state.done = Math.max(0, state.done - 1);
        else if (job.status === 'dead') state.deadOnDisk = Math.max(0, state.deadOnDisk - 1);
        else state.pendingOnDisk = Math.max(0, state.pendingOnDisk - 1);
        continue;
      }
      const at = lane.jobs.indexOf(held);
      if (at < 0) continue;
      // A head in flight goes too: its outcome finds it gone (finish) and neither retries it nor
      // writes it back. The lane stays while it is in flight, so nothing of its aggregate starts beside it.
      lane.jobs.splice(at, 1);
      state.held.delete(job.event_id);
      if (at === 0 && lane.blocked) {
        lane.blocked = false;
        this.rescan(state);
      }
      if (lane.jobs.length === 0 && !lane.inFlight) state.lanes.delete(lane.key);
    }
  }

  counts(now = Date.now()): PluginCounts[] {
    const out: PluginCounts[] = [];
    for (const [plugin, state] of this.plugins) {
      const c: PluginCounts = { plugin, enabled: state.definition.enabled, pending: state.pendingOnDisk, processing: 0, done: state.done, dead: state.deadOnDisk, lag_ms: 0 };
      let oldest = Infinity;
      for (const lane of state.lanes.values()) {
        for (const job of lane.jobs) {
          c[job.status === 'done' ? 'done' : job.status]++;
          if (job.status !== 'dead' && job.committed_at < oldest) oldest = job.committed_at;
        }
      }
      // Jobs waiting on disk (spilled, or behind a dead head) are behind too: the oldest queued of them.
      if (state.pendingOnDisk > 0) oldest = Math.min(oldest, this.deps.queue.oldestPendingCommit(plugin) ?? Infinity);
      c.lag_ms = oldest === Infinity ? 0 : Math.max(0, now - oldest);
      out.push(c);
    }
    return out;
  }

  /** Open jobs held in memory per plugin (the window; see the header). */
  heldCounts(): Map<string, number> {
    return new Map([...this.plugins].map(([name, state]) => [name, state.held.size]));
  }

  /**
   * Jobs not yet done (the CLI's `dbx queue` lists them): those held, then those on disk only. The
   * disk is read through an index that fits the filter (a tenant's lanes, one status), never more
   * than `limit` jobs decoded: a backlog of millions is not read whole for a listing.
   */
  openJobs(filter: OpenJobsFilter = {}): Job[] {
    const out: Job[] = [];
    const limit = filter.limit ?? Infinity;
    const wanted = (job: Job): boolean => job.status !== 'done' && (filter.tenant === undefined || job.tenant === filter.tenant) && (filter.status === undefined || job.status === filter.status);
    const take = (job: Job): boolean => {
      if (wanted(job)) out.push(job);
      return out.length < limit;
    };
    for (const [name, state] of this.plugins) {
      if (filter.plugin !== undefined && name !== filter.plugin) continue;
      for (const lane of state.lanes.values()) for (const job of lane.jobs) if (!take(job)) return out;
      if (state.pendingOnDisk === 0 && state.deadOnDisk === 0 && !state.spilled) continue;
      // Not held: a change not yet committed is the truth (a job that just died), else the queue's.
      const local = new Map(this.flushingJobs ?? []);
      for (const [key, job] of this.dirty) local.set(key, job);
      for (const job of local.values()) if (job.plugin === name && !state.held.has(job.event_id) && !take(job)) return out;
      for (const job of this.onDisk(name, filter)) {
        if (!state.held.has(job.event_id) && !this.settledHere(job) && !take(job)) return out;
      }
    }
    return out;
  }

  /**
   * How many jobs are not done: counted in the queue's status index (nothing decoded), corrected by
   * the changes not yet committed (a job delivered a moment ago is still open on disk).
   */
  openTotal(): number {
    let total = 0;
    for (const name of this.plugins.keys()) for (const status of OPEN_STATUSES) total += this.deps.queue.countWithStatus(status, name);
    const local = new Map(this.flushingJobs ?? []);
    for (const [key, job] of this.dirty) local.set(key, job);
    for (const job of local.values()) {
      const stored = this.deps.queue.job(job.plugin, job.event_id);
      if (!stored || !this.plugins.has(job.plugin)) continue;
      const openHere = job.status !== 'done';
      if (openHere !== (stored.status !== 'done')) total += openHere ? 1 : -1;
    }
    return total;
  }

  /** A plugin's open jobs on disk through the narrowest index for the filter. */
  private *onDisk(plugin: string, filter: OpenJobsFilter): Generator<Job> {
    if (filter.tenant !== undefined) yield* this.deps.queue.tenantJobs(plugin, filter.tenant);
    else for (const status of filter.status ? [filter.status] : OPEN_STATUSES) yield* this.deps.queue.jobsWithStatus(status, plugin);
  }

  /** Commits every job state change made so far (before an admin change reads the queue: retry, clear). */
  async settle(): Promise<void> {
    for (let i = 0; i < 4 && (this.flushing || this.dirty.size > 0); i++) {
      await this.flushing;
      await this.flush();
    }
  }

  /** The job's state here is newer than the queue's (a change not yet committed: see flush). */
  private settledHere(job: Pick<Job, 'plugin' | 'event_id'>): boolean {
    const key = jobKey(job);
    return this.dirty.has(key) || (this.flushingJobs?.has(key) ?? false);
  }

  /**
   * Loads the lane of `job` from the queue's lane index: every open job of its aggregate not held
   * yet, in version order (a lane is held as a prefix; see the header). In `block` mode a lane
   * whose lowest open job is dead holds only that job.
   */
  private loadLane(state: PluginState, job: Job): void {
    const lane = this.laneOf(state, job);
    const block = this.deps.config.plugins.on_dead === 'block';
    let added = 0;
    if (!(block && lane.blocked)) {
      for (const stored of this.deps.queue.laneJobs(job.plugin, job.tenant, job.aggregate_type, job.aggregate_id)) {
        if (state.held.has(stored.event_id) || this.settledHere(stored)) continue;
        if (stored.status === 'dead' && !block) continue;
        lane.jobs.push(stored);
        state.held.set(stored.event_id, stored);
        if (stored.status === 'dead') state.deadOnDisk = Math.max(0, state.deadOnDisk - 1);
        else state.pendingOnDisk = Math.max(0, state.pendingOnDisk - 1);
        added++;
        // A dead lowest job blocks its lane: the jobs behind it stay on disk.
        if (stored.status === 'dead' && lane.jobs.length === 1) {
          lane.blocked = true;
          break;
        }
      }
    }
    if (added > 0) lane.jobs.sort((a, b) => a.version - b.version);
    if (lane.jobs.length === 0) state.lanes.delete(lane.key);
  }

  /**
   * A spilled plugin with room: loads pending jobs from disk, oldest first (the status index from
   * `cursor` on), a whole lane each, until the window is full; a scan that reaches the end leaves
   * the plugin unspilled.
   */
  private refill(state: PluginState): void {
    const window = this.deps.config.plugins.jobs_in_memory_max;
    if (!state.spilled || state.held.size >= window) return;
    const name = state.definition.name;
    for (const key of this.deps.queue.pendingKeys(name, state.cursor)) {
      state.cursor = key.indexKey;
      if (state.held.has(key.eventId) || this.settledHere({ plugin: name, event_id: key.eventId })) continue;
      const job = this.deps.queue.job(name, key.eventId);
      if (!job || job.status !== 'pending') continue;
      if (state.lanes.get(laneKey(job))?.blocked) continue;
      this.loadLane(state, job);
      if (state.held.size >= window) return;
    }
    state.spilled = false;
    state.cursor = undefined;
    // Every pending job on disk is held now, or waits behind a blocked head.
    let blocked = 0;
    for (const lane of state.lanes.values()) if (lane.blocked) blocked++;
    if (blocked === 0) state.pendingOnDisk = 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // Deliveries in flight get a short grace to finish; one still running (a plugin that hangs)
    // stays `processing` on disk and is pending again at the next start (at least once).
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => (grace = setTimeout(r, STOP_GRACE_MS)))]);
    clearTimeout(grace);
    await this.savePositionsOnStop();
    await this.flush();
  }

  /**
   * A clean stop leaves no position unsaved (a pass that made no job saves at most once a second):
   * else the next start would re-read those entries and hand a plugin enabled meanwhile events
   * from before it was enabled. Waits for a pass still running first.
   */
  private async savePositionsOnStop(): Promise<void> {
    for (let waited = 0; this.pumping && waited < STOP_GRACE_MS; waited += 5) await new Promise((r) => setTimeout(r, 5));
    try {
      for (const [shard, position] of this.positions) {
        if ((this.savedPositions.get(shard) ?? 0) < position) await this.savePosition(shard, position, Date.now());
      }
    } catch (err) {
      this.deps.log('warn', 'could not save the plugin queue position at stop (entries without jobs are read again at the next start)', { err });
    }
  }

  /**
   * A shard's commits up to outbox `sequence` are durable. In `sync` mode a commit is visible a
   * moment before its flush completes; moving only durable entries means no plugin is ever handed
   * an event that a power cut could still take back.
   */
  durableAt(shard: number, sequence: number): void {
    if (sequence > (this.durable.get(shard) ?? 0)) this.durable.set(shard, sequence);
  }

  /** Moves new outbox entries of every shard into the queue. */
  async pump(): Promise<void> {
    if (this.pumping || this.stopped) return;
    this.pumping = true;
    try {
      const waiting: number[] = [];
      for (let shard = 0; shard < this.deps.stores.length; shard++) {
        if ((await this.pumpShard(shard)) === 'gated') waiting.push(shard);
        this.maybePrune(shard);
      }
      // A target whose source was taken in this pass need not wait for the next one.
      for (const shard of waiting) if (this.gatedTenants(shard).size === 0) await this.pumpShard(shard);
      for (const state of this.plugins.values()) this.refill(state);
    } catch (err) {
      this.deps.log('error', 'plugin dispatcher could not move events into the queue', { err });
    } finally {
      this.pumping = false;
    }
  }

  /**
   * A tenant just moved to `shard` may have events in its source shard's outbox not yet taken: the
   * lower versions of aggregates that go on at the target. The target's outbox is read up to that
   * tenant's first entry there and stops until the source's position reached the flip, so each
   * plugin lane gets an aggregate's events in version order across the move. Only entries written
   * after a flip are held back, and a source always reaches a flip's position (every barrier on the
   * source itself is from a later flip, so it holds back only entries past it): no cycle of moves
   * can hold two shards for good.
   */
  private gatedTenants(shard: number): Set<string> {
    const gated = new Set<string>();
    for (const b of this.deps.outboxBarriers?.() ?? []) {
      if (b.target === shard && b.source !== shard && (this.positions.get(b.source) ?? 0) < b.through) gated.add(b.tenant);
    }
    return gated;
  }

  /** Answers 'gated' when it stopped before an entry of a tenant whose source is not yet taken. */
  private async pumpShard(shard: number): Promise<'gated' | undefined> {
    const store = this.deps.stores[shard] as ShardStore;
    const after = this.positions.get(shard) ?? 0;
    const { batch_max } = this.deps.config.plugins;
    const durable = this.durable.get(shard) ?? 0;
    if (durable <= after) {
      // A quiet outbox: the position a busy spell left unsaved is committed now, so a tenant move
      // waiting for the queue to take its source outbox (queue.position) sees it arrive.
      if ((this.savedPositions.get(shard) ?? 0) < after) await this.savePosition(shard, after, Date.now());
      return;
    }
    const entries = [...store.outbox.getRange({ start: after + 1, end: durable + 1, limit: batch_max })];
    const gated = this.gatedTenants(shard);
    const stop = gated.size === 0 ? -1 : entries.findIndex(({ value }) => gated.has(value[0]));
    if (stop >= 0) entries.length = stop;
    if (entries.length === 0) return stop >= 0 ? 'gated' : undefined;
    const enabled = [...this.plugins.values()].filter((p) => p.definition.enabled);
    const now = Date.now();
    const jobs: Job[] = [];
    for (const { value: key } of entries) {
      if (enabled.length === 0) break;
      const [tenant, type, id, version] = key;
      const event = this.eventOf(store, key);
      if (!event) continue;
      for (const { definition } of enabled) {
        if (definition.tenants.length > 0 && !definition.tenants.includes(tenant)) continue;
        if (definition.aggregate_types.length > 0 && !definition.aggregate_types.includes(type)) continue;
        jobs.push({
          plugin: definition.name,
          event_id: event.metadata.event_id,
          tenant,
          aggregate_type: type,
          aggregate_id: id,
          version,
          status: 'pending',
          attempts: 0,
          next_attempt_at: 0,
          last_error: null,
          created_at: now,
          committed_at: Date.parse(event.metadata.created_at) || now,
          updated_at: now,
        });
      }
    }
    const last = (entries[entries.length - 1] as { key: number }).key;
    // Entries that make no job (no plugin enabled, or none wants them) need no durable commit of
    // their own: the position is saved at most once a second then (one flush of the queue
    // environment per poll competed with the write path for the disk). A crash in between only
    // re-reads entries that make no job; the outbox is pruned only through a saved position.
    const added = jobs.length > 0 || now - (this.positionSavedAt.get(shard) ?? 0) >= POSITION_SAVE_MS ? await this.savePosition(shard, last, now, jobs) : [];
    this.positions.set(shard, last);
    const window = this.deps.config.plugins.jobs_in_memory_max;
    for (const job of added) {
      const state = this.plugins.get(job.plugin);
      if (!state) continue;
      // Held only while nothing of the plugin waits on disk before it (see the header).
      const lane = state.lanes.get(laneKey(job));
      if (state.spilled || lane?.blocked || state.held.size >= window) {
        state.pendingOnDisk++;
        if (!lane?.blocked) state.spilled = true;
        continue;
      }
      this.hold(state, job);
    }
    this.schedule();
    return stop >= 0 ? 'gated' : undefined;
  }

  /** Commits the jobs and the shard's position to the queue in one transaction; answers the jobs added. */
  private async savePosition(shard: number, position: number, now: number, jobs: Job[] = []): Promise<Job[]> {
    const added = await this.deps.queue.enqueue(jobs, shard, position);
    this.positionSavedAt.set(shard, now);
    this.savedPositions.set(shard, position);
    return added;
  }

  /** At most once a second per shard: the queue commit is durable once enqueue resolved. */
  private maybePrune(shard: number): void {
    const position = this.savedPositions.get(shard) ?? 0;
    const last = this.pruned.get(shard) ?? { through: 0, at: 0 };
    const now = Date.now();
    if (!this.deps.pruneOutbox || position <= last.through + 1 || now - last.at < 1000) return;
    this.pruned.set(shard, { through: position, at: now });
    this.deps.pruneOutbox(shard, position).catch((err: unknown) => {
      this.pruned.set(shard, last);
      this.deps.log('warn', 'could not prune a shard outbox (it is retried)', { shard, err });
    });
  }

  private eventOf(store: ShardStore, key: [string, string, string, number]): EventRecord | undefined {
    return store.getEvent(key);
  }

  /** Starts every delivery that may start now. */
  schedule(): void {
    if (this.stopped) return;
    const now = Date.now();
    const cap = this.inFlightCap();
    for (const state of this.plugins.values()) {
      if (!state.definition.enabled) continue;
      for (const lane of state.lanes.values()) {
        if (state.inFlight >= cap) break;
        if (lane.inFlight) continue;
        const head = this.headOf(state, lane);
        if (!head || head.status !== 'pending' || head.next_attempt_at > now) continue;
        this.startDelivery(state, lane, head);
      }
    }
  }

  /** Deliveries one plugin may have in flight: in_flight_max, or its fair share of the pool (deliverySlots). */
  private inFlightCap(): number {
    const { in_flight_max } = this.deps.config.plugins;
    if (this.deps.deliverySlots === undefined) return in_flight_max;
    let enabled = 0;
    for (const state of this.plugins.values()) if (state.definition.enabled) enabled++;
    return Math.max(1, Math.min(in_flight_max, Math.floor(this.deps.deliverySlots / Math.max(1, enabled))));
  }

  /** The lane's first job to deliver: dead jobs block it, unless `on_dead = "skip"`. */
  private headOf(state: PluginState, lane: Lane): Job | undefined {
    if (this.deps.config.plugins.on_dead === 'block') return lane.jobs[0];
    return lane.jobs.find((j) => j.status !== 'dead');
  }

  private startDelivery(state: PluginState, lane: Lane, job: Job): void {
    const definition = state.definition;
    lane.inFlight = true;
    state.inFlight++;
    job.status = 'processing';
    job.attempts++;
    job.updated_at = Date.now();
    this.markDirty(job);
    const run = (async () => {
      let error: string | undefined;
      try {
        const body = this.deps.bodyFor(job, definition);
        if (!body) throw new Error('the event is no longer in the store');
        await this.deps.deliver(definition, { job_id: `${job.plugin}:${job.event_id}`, plugin: job.plugin, attempt: job.attempts, body });
      } catch (err) {
        error = (err instanceof Error ? err.message : String(err)).slice(0, 1024) || 'delivery failed';
      }
      this.finish(state, lane, job, error);
    })();
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
  }

  private finish(state: PluginState, lane: Lane, job: Job, error: string | undefined): void {
    lane.inFlight = false;
    state.inFlight--;
    // A replay of the same event while this attempt was in flight replaced the job in its lane
    // (adopt) and in the queue: the replacement owns the job's key now, so this outcome must not be
    // written over it (a "done" here would mark the replayed job done on disk before it is sent).
    const superseded = !lane.jobs.includes(job);
    const now = Date.now();
    job.updated_at = now;
    if (error === undefined) {
      job.status = 'done';
      job.last_error = null;
      job.next_attempt_at = 0;
      const at = lane.jobs.indexOf(job);
      if (at >= 0) {
        lane.jobs.splice(at, 1);
        state.held.delete(job.event_id);
      }
      // Superseded (replayed, or removed from the queue): not done on disk, so not counted done.
      if (!superseded) state.done++;
      this.deps.observe?.delivered(job.plugin, job.attempts, now - job.committed_at);
    } else {
      job.last_error = error;
      const dead = job.attempts >= this.deps.config.plugin_max_attempts;
      job.status = dead ? 'dead' : 'pending';
      job.next_attempt_at = dead ? 0 : now + this.backoff(job.attempts);
      this.deps.observe?.failed(job.plugin, dead);
      if (dead) this.deps.log('warn', 'plugin job is dead after its last attempt', { plugin: job.plugin, event_id: job.event_id, error });
    }
    if (!superseded) this.markDirty(job);
    if (job.status === 'dead' && !superseded) this.settleDead(state, lane, job);
    if (lane.jobs.length === 0 && state.lanes.get(lane.key) === lane) state.lanes.delete(lane.key);
    // The next job of this lane (and others) may go at once.
    if (!this.stopped) setImmediate(() => this.schedule());
  }

  /**
   * Memory stays bounded however many jobs die: `skip` lets the dead job go from memory (it is on
   * disk, found by openJobs, retried from there); `block` keeps it as its lane's head and sends the
   * jobs behind it to disk, where they wait until it is retried or cleared.
   */
  private settleDead(state: PluginState, lane: Lane, job: Job): void {
    if (this.deps.config.plugins.on_dead === 'skip') {
      const at = lane.jobs.indexOf(job);
      if (at >= 0) lane.jobs.splice(at, 1);
      state.held.delete(job.event_id);
      state.deadOnDisk++;
      return;
    }
    if (lane.jobs[0] !== job) return;
    lane.blocked = true;
    for (const behind of lane.jobs.splice(1)) {
      state.held.delete(behind.event_id);
      state.pendingOnDisk++;
    }
  }

  private backoff(attempts: number): number {
    const { retry_base_ms, retry_max_ms } = this.deps.config.plugins;
    const ceiling = Math.min(retry_max_ms, retry_base_ms * 2 ** Math.min(30, attempts - 1));
    // Full jitter (at least 1 ms): retries of many jobs spread out instead of arriving together.
    return 1 + Math.floor(Math.random() * ceiling);
  }

  private markDirty(job: Job): void {
    this.dirty.set(jobKey(job), { ...job });
  }

  /** Writes the batched job state changes in one transaction. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.dirty.size === 0) return Promise.resolve();
    const batch = [...this.dirty.values()];
    // Until committed, these changes are newer than what the queue answers (settledHere).
    this.flushingJobs = new Map(this.dirty);
    this.dirty.clear();
    this.flushing = this.deps.queue
      .update(batch)
      .catch((err: unknown) => this.deps.log('error', 'plugin queue update failed', { err }))
      .finally(() => {
        this.flushing = undefined;
        this.flushingJobs = undefined;
      });
    return this.flushing;
  }

  private laneOf(state: PluginState, job: Job): Lane {
    const key = laneKey(job);
    let lane = state.lanes.get(key);
    if (!lane) {
      lane = { key, jobs: [], inFlight: false, blocked: false };
      state.lanes.set(key, lane);
    }
    return lane;
  }

  /** A new job at the end of its lane (the outbox gives an aggregate's events in version order). */
  private hold(state: PluginState, job: Job): void {
    this.laneOf(state, job).jobs.push(job);
    state.held.set(job.event_id, job);
  }
}

export type { JobStatus };
