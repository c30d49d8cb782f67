/**
 * Plugins in the server (issue 11): the durable queue, the dispatcher and the piscina pool wired
 * to the store, plus what the routes and the CLI do with them — configure, enable (connectivity
 * first), disable, remove, test, replay, and the queue's retry and clear.
 */
import { DbxError, type Config, type ValueCipher } from '../core/index.js';
import type { ShardStore } from '../shard-worker/index.js';
import { Dispatcher, type OutboxBarrier, type PluginCounts } from '../plugins/dispatcher.js';
import { buildDeliveryBody } from '../plugins/payload.js';
import { DeliveryPool } from '../plugins/pool.js';
import { deliveryProof } from '../plugins/proof.js';
import { PluginQueue, type Job, type JobKey } from '../plugins/queue.js';
import { DELIVERY_HEADERS, endpointUrl, pluginDefinition, type DeliveryBody, type PluginDefinition } from '../plugins/types.js';
import type { DeliveryOutcome } from '../plugins/delivery-worker.js';
import type { Metrics } from './metrics.js';
import type { Reader } from './reader.js';
import type { SchemaRegistry } from './schema-registry.js';

/** Modes without the state cannot feed a read model that upserts state. */
const STATE_KINDS = new Set(['postgres']);
const STATE_MODES = new Set(['all', 'state-only']);
/** Done jobs removed per prune transaction (pruneDone). */
const PRUNE_BATCH = 10_000;
/** Jobs per queue commit of a replay (PluginService.replay). */
const REPLAY_CHUNK = 1000;
/** Delay of the first prune after a start (then every `[plugin_queue.prune] interval_secs`). */
const FIRST_PRUNE_MS = 2_000;

export interface PluginServiceDeps {
  dataDir: string;
  config: Config;
  cipher: ValueCipher | null;
  stores: ShardStore[];
  reader: Reader;
  registry: SchemaRegistry;
  metrics: Metrics;
  /** Drops a shard's outbox entries below `through` (through its worker, the environment's writer). */
  pruneOutbox?(shard: number, through: number): Promise<void>;
  /** Flipped tenant moves whose source outbox must be taken before the target's (Dispatcher.outboxBarriers). */
  outboxBarriers?(): Iterable<OutboxBarrier>;
  log(level: 'info' | 'warn' | 'error', message: string, extra?: Record<string, unknown>): void;
}

/** A refused configuration: the message names each key and reason too (the CLI prints it as is). */
function invalidConfiguration(problems: { path: string; message: string }[]): DbxError {
  const named = problems.slice(0, 3).map((p) => `${p.path || '(body)'}: ${p.message}`).join('; ');
  const more = problems.length > 3 ? ` (and ${problems.length - 3} more)` : '';
  return new DbxError('validation_failed', `the plugin configuration is invalid: ${named}${more}`, problems);
}

/**
 * A malformed http endpoint is a bad configuration (400 naming the field), not an unreachable one
 * (503): refused here, a disabled plugin cannot be stored with an endpoint no delivery could use.
 * Checked at configure time only, not in the stored definition's schema, so a definition stored
 * before this check still loads.
 */
function refuseMalformedEndpoint(definition: PluginDefinition): void {
  if (definition.options.kind !== 'http') return;
  try {
    endpointUrl(definition.options.endpoint, definition.options.https);
  } catch (err) {
    const message = err instanceof Error && err.message.startsWith('http plugin') ? err.message : 'http plugin endpoint is not a valid URL';
    throw invalidConfiguration([{ path: 'options.endpoint', message }]);
  }
}

/**
 * Headers the HTTP layer frames the request with: a configured one would break every delivery
 * (a wrong length, a second encoding) while the enable check, a HEAD without them, passed.
 */
const FRAMING_HEADERS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'host', 'expect', 'proxy-connection']);
/** RFC 9110 field-value: visible ASCII, obs-text, spaces and tabs; never CR, LF or NUL. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Checked when a configuration comes in (stored definitions load with the schema alone). */
function refuseBadHeaders(definition: PluginDefinition): void {
  if (definition.options.kind !== 'http') return;
  const problems: { path: string; message: string }[] = [];
  for (const [name, value] of Object.entries(definition.options.headers)) {
    const lower = name.toLowerCase();
    if (FRAMING_HEADERS.has(lower)) problems.push({ path: `options.headers.${name}`, message: 'is set by the HTTP connection itself and cannot be configured' });
    else if (DELIVERY_HEADERS.includes(lower)) problems.push({ path: `options.headers.${name}`, message: 'is set by the deliverer on every delivery and cannot be configured' });
    if (!FIELD_VALUE.test(value)) problems.push({ path: `options.headers.${name}`, message: 'a header value cannot hold CR, LF, NUL or other control characters' });
  }
  if (problems.length > 0) throw invalidConfiguration(problems);
}

/** Pool slots kept from the queue's deliveries for checks and tests (see deliverySlots). */
const CHECK_SLOTS = 16;

export class PluginService {
  readonly queue: PluginQueue;
  private readonly pool: DeliveryPool;
  readonly dispatcher: Dispatcher;

  constructor(private readonly deps: PluginServiceDeps) {
    const { config, metrics } = deps;
    this.queue = new PluginQueue(deps.dataDir, deps.cipher, { mapSizeMib: Math.min(config.storage.map_size_mib, 64 * 1024) });
    const concurrentPerThread = Math.max(16, Math.ceil((config.plugins.in_flight_max * 4) / config.plugins.pool_threads));
    this.pool = new DeliveryPool({
      threads: config.plugins.pool_threads,
      // Every plugin's in-flight bound together, with room for checks and tests.
      maxQueue: config.plugins.in_flight_max * 64 + 64,
      timeoutMs: config.plugins.job_timeout_ms,
      dataDir: deps.dataDir,
      concurrentPerThread,
    });
    // What the queue's deliveries may hold of the pool at once; the rest stays free for the
    // connectivity checks of enable/config and `plugin test`, which then never queue behind a
    // hanging plugin's deliveries.
    const deliverySlots = Math.max(1, concurrentPerThread * config.plugins.pool_threads - CHECK_SLOTS);
    this.dispatcher = new Dispatcher({
      config,
      queue: this.queue,
      stores: deps.stores,
      bodyFor: (job, definition) => this.bodyFor(job, definition),
      deliver: (definition, delivery) => this.pool.deliver(definition, delivery),
      ...(deps.pruneOutbox ? { pruneOutbox: deps.pruneOutbox } : {}),
      ...(deps.outboxBarriers ? { outboxBarriers: deps.outboxBarriers } : {}),
      observe: {
        delivered: (plugin, attempts, lagMs) => {
          metrics.pluginDelivered.inc({ plugin });
          metrics.pluginAttempts.inc({ plugin }, attempts);
          metrics.pluginDeliveryLag.observe({ plugin }, lagMs / 1000);
        },
        failed: (plugin, dead) => {
          metrics.pluginFailures.inc({ plugin });
          if (dead) metrics.pluginDead.inc({ plugin });
        },
      },
      log: deps.log,
      deliverySlots,
    });
  }

  private pruneTimer: NodeJS.Timeout | undefined;
  private firstPrune: NodeJS.Timeout | undefined;
  /** A prune in progress (stop waits for its current batch); `stopping` ends it early. */
  private pruning: Promise<unknown> | undefined;
  private stopping = false;

  async start(): Promise<void> {
    await this.dispatcher.start();
    // [plugin_queue.prune]: done jobs are kept for done_ttl_secs, at most max_done_jobs of them.
    // The first prune soon after the start: a server restarted more often than interval_secs
    // would otherwise never prune.
    const { interval_secs } = this.deps.config.plugin_queue.prune;
    const prune = (): void => {
      if (this.pruning) return;
      this.pruning = this.pruneDone()
        .catch((err: unknown) => this.deps.log('warn', 'pruning done plugin jobs failed', { err }))
        .then(() => (this.pruning = undefined));
    };
    this.firstPrune = setTimeout(prune, FIRST_PRUNE_MS);
    this.firstPrune.unref();
    this.pruneTimer = setInterval(prune, interval_secs * 1000);
    this.pruneTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.pruneTimer);
    clearTimeout(this.firstPrune);
    this.stopping = true;
    await this.pruning;
    await this.dispatcher.stop();
    await this.pool.close();
    await this.queue.close();
  }

  /** The delivery body of a job: its event, the state after it, the schema, a proof if asked. */
  bodyFor(job: Pick<Job, 'tenant' | 'aggregate_type' | 'aggregate_id' | 'version' | 'payload_mode'>, definition: PluginDefinition): DeliveryBody | null {
    const { tenant, aggregate_type: type, aggregate_id: id, version } = job;
    const mode = job.payload_mode ?? definition.payload_mode;
    const event = this.deps.reader.eventAt(tenant, type, id, version);
    if (!event) return null;
    // The state after this event costs a rebuild from the nearest snapshot unless it is the head:
    // only modes that deliver it pay for it.
    const state = mode === 'all' || mode === 'state-only' ? this.deps.reader.getAggregate(tenant, type, id, { version, includeEvents: false, eventsMax: 0 }).state : null;
    const schema = mode === 'all' || mode === 'schema-only' || mode === 'event-and-schema' ? (this.deps.registry.get(tenant, type)?.schema ?? null) : null;
    return buildDeliveryBody({
      tenant,
      event,
      state,
      schema,
      mode,
      ...(definition.with_proof ? { proof: deliveryProof(this.deps.reader, tenant, type, id, version) } : {}),
    });
  }

  counts(): PluginCounts[] {
    return this.dispatcher.counts();
  }

  updateGauges(): void {
    const { metrics } = this.deps;
    metrics.pluginQueueJobs.reset();
    metrics.pluginLag.reset();
    metrics.pluginJobsInMemory.reset();
    for (const [plugin, held] of this.dispatcher.heldCounts()) metrics.pluginJobsInMemory.set({ plugin }, held);
    for (const c of this.counts()) {
      for (const state of ['pending', 'processing', 'done', 'dead'] as const) metrics.pluginQueueJobs.set({ plugin: c.plugin, state }, c[state]);
      metrics.pluginLag.set({ plugin: c.plugin }, c.lag_ms / 1000);
    }
  }

  // ---- configuration ----

  list(): (PluginDefinition & { counts: PluginCounts | undefined })[] {
    const counts = new Map(this.counts().map((c) => [c.plugin, c]));
    return this.queue.definitions().map((d) => ({ ...d, counts: counts.get(d.name) }));
  }

  has(name: string): boolean {
    return this.queue.definition(name) !== undefined;
  }

  get(name: string): PluginDefinition {
    const definition = this.queue.definition(name);
    if (!definition) throw new DbxError('not_found', `no plugin named '${name}' is configured`);
    return definition;
  }

  /**
   * Creates or replaces a plugin. An enabled plugin is checked first (connectivity): a plugin that
   * cannot be reached is refused with the reason rather than left retrying forever.
   */
  async configure(input: unknown): Promise<PluginDefinition> {
    const parsed = pluginDefinition.safeParse(input);
    if (!parsed.success) throw invalidConfiguration(parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
    const definition = parsed.data;
    refuseMalformedEndpoint(definition);
    refuseBadHeaders(definition);
    if (STATE_KINDS.has(definition.options.kind) && !STATE_MODES.has(definition.payload_mode)) {
      throw new DbxError('validation_failed', `a ${definition.options.kind} read model upserts the state: use payload mode all or state-only`, [{ path: 'payload_mode', message: 'needs the state' }]);
    }
    const existing = this.queue.definition(definition.name);
    if (existing && existing.options.kind !== definition.options.kind) {
      throw new DbxError('already_exists', `plugin name '${definition.name}' is already used by ${existing.options.kind}`);
    }
    if (definition.enabled) await this.mustConnect(definition);
    await this.queue.putDefinition(definition);
    this.dispatcher.reloadDefinitions();
    return definition;
  }

  async setEnabled(name: string, enabled: boolean): Promise<PluginDefinition> {
    const definition = { ...this.get(name), enabled };
    if (enabled) await this.mustConnect(definition);
    await this.queue.putDefinition(definition);
    this.dispatcher.reloadDefinitions();
    return definition;
  }

  async remove(name: string): Promise<void> {
    const definition = this.get(name);
    if (definition.enabled) throw new DbxError('invalid_input', `plugin '${name}' is enabled: disable it before removing it`);
    await this.queue.removeDefinition(name);
    this.dispatcher.reloadDefinitions();
  }

  /** Sends a synthetic event through the plugin (not queued) and reports the outcome. */
  async test(name: string): Promise<DeliveryOutcome & { body: DeliveryBody }> {
    const definition = this.get(name);
    const now = new Date().toISOString();
    const body = buildDeliveryBody({
      tenant: 'default',
      event: {
        aggregate_type: 'plugin_test',
        aggregate_id: 'synthetic',
        event_type: 'plugin_tested',
        version: 1,
        payload: { plugin: name, at: now },
        extensions: {},
        metadata: { event_id: '0', created_at: now, issued_by: { group: 'eventdbx', user: 'plugin-test' } },
        hash: '0'.repeat(64),
        merkle_root: '0'.repeat(64),
      },
      state: { plugin: name, at: now },
      schema: null,
      mode: definition.payload_mode,
    });
    const outcome = await this.pool.deliverOnce(definition, { job_id: `${name}:test`, plugin: name, attempt: 1, body });
    return { ...outcome, body };
  }

  /** Queues the stored events of one aggregate type (or one aggregate) again for one plugin. */
  async replay(name: string, tenant: string, type: string, id?: string, payloadMode?: PluginDefinition['payload_mode']): Promise<{ queued: number }> {
    const definition = this.get(name);
    if (payloadMode && STATE_KINDS.has(definition.options.kind) && !STATE_MODES.has(payloadMode)) {
      throw new DbxError('validation_failed', `a ${definition.options.kind} read model upserts the state: replay with payload mode all or state-only`, [
        { path: 'body.payload_mode', message: 'all or state-only for a read model' },
      ]);
    }
    // Another mode than the plugin's applies to these jobs only; the plugin keeps its own.
    const override = payloadMode && payloadMode !== definition.payload_mode ? { payload_mode: payloadMode } : {};
    const now = Date.now();
    // In chunks, each its own queue commit handed to the dispatcher before the next is read: a
    // replay of a type with millions of events holds one chunk, not the type, in memory (and in
    // one LMDB transaction). A crash midway leaves the chunks committed so far queued: delivery is
    // at least once, and the replay, not yet answered, can be sent again.
    let queued = 0;
    let jobs: Job[] = [];
    const enqueue = async (): Promise<void> => {
      const replaced = await this.queue.putJobs(jobs);
      this.dispatcher.adopt(jobs, replaced);
      queued += jobs.length;
      jobs = [];
    };
    for (const event of this.deps.reader.eventsOf(tenant, type, id)) {
      jobs.push({
        plugin: name,
        event_id: event.metadata.event_id,
        tenant,
        aggregate_type: event.aggregate_type,
        aggregate_id: event.aggregate_id,
        version: event.version,
        status: 'pending',
        attempts: 0,
        next_attempt_at: 0,
        last_error: null,
        created_at: now,
        committed_at: now,
        updated_at: now,
        ...override,
      });
      if (jobs.length >= REPLAY_CHUNK) await enqueue();
    }
    if (jobs.length > 0) await enqueue();
    return { queued };
  }

  /** Dead jobs (or the one with this event id) back to pending now. */
  async retry(eventId?: string): Promise<{ retried: number; still_dead: number }> {
    await this.dispatcher.settle();
    const dead = this.dispatcher.openJobs({ status: 'dead' });
    const chosen = eventId === undefined ? dead : dead.filter((j) => j.event_id === eventId);
    const now = Date.now();
    // Copies: a held job changes only once the queue has the change (Dispatcher.revived says why).
    const retried = chosen.map((j): Job => ({ ...j, status: 'pending', attempts: 0, next_attempt_at: 0, updated_at: now }));
    await this.queue.update(retried);
    this.dispatcher.revived(retried);
    return { retried: retried.length, still_dead: dead.length - retried.length };
  }

  /** Removes dead jobs (all, or one plugin's). */
  async clearDead(plugin?: string): Promise<{ cleared: number }> {
    await this.dispatcher.settle();
    const dead = this.dispatcher.openJobs({ status: 'dead', ...(plugin !== undefined ? { plugin } : {}) });
    const keys: JobKey[] = dead.map((j) => [j.plugin, j.event_id]);
    await this.queue.removeJobs(keys);
    this.dispatcher.forget(dead);
    this.dispatcher.schedule();
    return { cleared: keys.length };
  }

  /**
   * Removes done jobs completed before the TTL, then the oldest beyond `max_done_jobs`. Walks the
   * queue's status index in batches of PRUNE_BATCH, one transaction each, yielding the event loop
   * between them: no done job is read whole, and a prune of millions never holds the coordinator.
   */
  async pruneDone(now = Date.now()): Promise<number> {
    const { done_ttl_secs, max_done_jobs } = this.deps.config.plugin_queue.prune;
    const names = this.queue.definitions().map((d) => d.name);
    let removed = 0;
    const remove = async (batch: { key: JobKey }[]): Promise<void> => {
      await this.queue.removeJobs(batch.map((b) => b.key));
      const perPlugin = new Map<string, number>();
      for (const { key } of batch) perPlugin.set(key[0], (perPlugin.get(key[0]) ?? 0) + 1);
      for (const [plugin, n] of perPlugin) this.dispatcher.forgetDone(plugin, n);
      removed += batch.length;
      await new Promise((resolve) => setImmediate(resolve));
    };
    if (done_ttl_secs > 0) {
      const cutoff = now - done_ttl_secs * 1000;
      for (const name of names) {
        while (!this.stopping) {
          const batch = this.queue.oldestDone(name, PRUNE_BATCH, cutoff);
          if (batch.length > 0) await remove(batch);
          if (batch.length < PRUNE_BATCH) break;
        }
      }
    }
    if (max_done_jobs !== undefined) {
      let excess = names.reduce((n, name) => n + this.queue.countWithStatus('done', name), 0) - max_done_jobs;
      while (excess > 0 && !this.stopping) {
        // The oldest across plugins: each plugin's oldest few, merged by completion time.
        const take = Math.min(excess, PRUNE_BATCH);
        const oldest = names.flatMap((name) => this.queue.oldestDone(name, take)).sort((a, b) => a.updated_at - b.updated_at).slice(0, take);
        if (oldest.length === 0) break;
        await remove(oldest);
        excess -= oldest.length;
      }
    }
    return removed;
  }

  private async mustConnect(definition: PluginDefinition): Promise<void> {
    const outcome = await this.pool.check(definition);
    if (outcome.ok) return;
    const reason = outcome.error ?? 'no answer';
    // Some kinds already say it in these words; do not say it twice.
    throw new DbxError('unavailable', reason.startsWith('failed to establish connection') ? reason : `failed to establish connection for '${definition.name}': ${reason}`);
  }
}
