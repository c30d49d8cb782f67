/**
 * Starts the shard workers and talks to them. Requests made in the same turn are sent to a worker
 * as one message (batching 16–64 per message is ~4× cheaper than one each). Each pending request is
 * rejected if its worker exits, so a caller never waits forever. Lifecycle: starting → running →
 * draining → stopped.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { DbxError, resolveDataKeys, writeLimitsFrom, type Config } from '../core/index.js';
import {
  WORKER_ENTRY,
  controlEndpoint,
  type ShardControl,
  type ShardMessage,
  type ShardReply,
  type ShardReplyMessage,
  type ShardRequest,
  type ShardResult,
  type WorkerInit,
} from '../shard-worker/index.js';
import type { SchemaRecord } from '../core/schema/api.js';
import { workerEnvPath, workerOfShard, type StorageLayout } from './layout.js';

type Pending = { resolve: (value: ShardResult) => void; reject: (err: DbxError) => void; deadline: number };
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
export type RequestBody = DistributiveOmit<ShardRequest, 'id'>;

class WorkerLink {
  readonly pending = new Map<number, Pending>();
  private outbox: ShardRequest[] = [];
  private flushScheduled = false;
  alive = true;

  constructor(
    readonly index: number,
    readonly worker: Worker,
    readonly port: MessagePort,
    readonly control: Comlink.Remote<ShardControl>,
    onGroup: (size: number, depth: number) => void,
    beforeResolve: () => void,
    onDurableOutbox: (marks: [number, number][]) => void,
    onStreamMarks: (marks: [number, string, number][]) => void = () => {},
  ) {
    port.on('message', (message: ShardReplyMessage) => {
      if (message.group_size !== undefined) onGroup(message.group_size, message.pipeline_depth ?? 1);
      beforeResolve();
      if (message.durable_outbox) onDurableOutbox(message.durable_outbox);
      if (message.stream_marks) onStreamMarks(message.stream_marks);
      message.ids.forEach((id, i) => this.settle(id, message.replies[i]));
    });
    // Replies are JSON text, so this should never fire; if it does, the affected requests are
    // unknown and their deadlines answer them.
    port.on('messageerror', (err) => console.error(`shard worker ${index}: a reply could not be received`, err));
  }

  private settle(id: number, text: string | undefined): void {
    const waiter = this.pending.get(id);
    if (!waiter) return;
    this.pending.delete(id);
    let reply: ShardReply;
    try {
      reply = JSON.parse(text as string) as ShardReply;
    } catch (err) {
      console.error(`shard worker ${this.index}: reply ${id} could not be read`, err);
      waiter.reject(new DbxError('internal', 'the shard worker answered with an unreadable result', undefined, { cause: err }));
      return;
    }
    if (reply.ok) waiter.resolve(reply.value);
    else waiter.reject(DbxError.fromWire(reply.error));
  }

  send(request: ShardRequest): void {
    this.outbox.push(request);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A microtask, not setImmediate: requests parsed in the same turn go together, and a lone
    // request does not wait for the next event-loop phase.
    queueMicrotask(() => {
      this.flushScheduled = false;
      const requests = this.outbox;
      this.outbox = [];
      const message: ShardMessage = { ids: requests.map((r) => r.id), requests: JSON.stringify(requests) };
      this.port.postMessage(message);
    });
  }

  /** Rejects every request past its deadline: a lost reply never leaves a caller waiting. */
  expire(now: number): void {
    for (const [id, waiter] of this.pending) {
      if (waiter.deadline > now) continue;
      this.pending.delete(id);
      waiter.reject(new DbxError('unavailable', `shard worker ${this.index} did not answer in time`));
    }
  }

  failAll(reason: string): void {
    this.alive = false;
    const error = new DbxError('unavailable', reason);
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}

export type PoolState = 'starting' | 'running' | 'draining' | 'stopped';

export class ShardPool {
  private readonly links: WorkerLink[] = [];
  private nextId = 1;
  private sweeper: NodeJS.Timeout | undefined;
  state: PoolState = 'starting';
  /** Hears each shard's durable outbox position (the plugin dispatcher reads no further). */
  onDurableOutbox: ((shard: number, sequence: number) => void) | undefined;
  /** Hears each (shard, tenant)'s durable global-stream seq (live stream readers wake on it). */
  onStreamMarks: ((marks: [shard: number, tenant: string, seq: number][]) => void) | undefined;
  /**
   * Checks a request before it is sent (tenant-move.ts: an import chunk placed on a shard its tenant
   * is leaving, or sent while the tenant's writes are paused, is refused 503). Throws to refuse;
   * answers a function called once the request settles, or undefined. Synchronous: it is on the
   * hot path, and must cost nothing for requests it does not care about.
   */
  admit: ((body: RequestBody) => (() => void) | undefined) | undefined;

  constructor(
    readonly config: Config,
    readonly dataDir: string,
    readonly layout: StorageLayout,
    readonly snowflakeState: SharedArrayBuffer,
    private readonly onGroup: (size: number, depth: number) => void = () => {},
    /**
     * Runs before any reply resolves: lmdb-js keeps a thread's read snapshot until a timer renews
     * it, so the coordinator's readers must renew theirs or a read right after an acknowledged write
     * could miss it.
     */
    private readonly beforeResolve: () => void = () => {},
    private readonly onWorkerExit: (index: number, code: number) => void = () => {},
  ) {}

  get workerCount(): number {
    return this.layout.workers;
  }

  /** `schemas`: every schema in force (the workers compile them before they take writes). */
  async start(schemas: SchemaRecord[] = []): Promise<void> {
    const shardCount = this.layout.shard_count;
    for (let w = 0; w < this.workerCount; w++) {
      const shards: number[] = [];
      for (let s = w; s < shardCount; s += this.workerCount) shards.push(s);
      const init: WorkerInit = {
        workerIndex: w,
        envPath: workerEnvPath(this.dataDir, w),
        shards,
        prepareLeaseMs: 2 * this.config.storage.worker_reply_timeout_ms,
        commitsInFlightMax: this.config.storage.commits_in_flight_max,
        mapSizeMib: this.config.storage.map_size_mib,
        durability: this.config.storage.durability,
        flushIntervalMs: this.config.storage.flush_interval_ms,
        batchCommandsMax: this.config.storage.batch_commands_max,
        cacheThreshold: this.config.cache_threshold,
        snapshotThreshold: this.config.snapshot_threshold,
        writeLimits: writeLimitsFrom(this.config.limits),
        snowflakeWorkerId: this.config.snowflake_worker_id,
        snowflakeState: this.snowflakeState,
        restrict: this.config.restrict,
        schemas,
        dataKeys: resolveDataKeys(this.config, this.dataDir)?.keys ?? [],
      };
      const channel = new MessageChannel();
      const worker = new Worker(WORKER_ENTRY, { workerData: { init, port: channel.port2 }, transferList: [channel.port2] });
      const link = new WorkerLink(w, worker, channel.port1, Comlink.wrap<ShardControl>(controlEndpoint(worker)), this.onGroup, this.beforeResolve, (marks) => {
        for (const [shard, sequence] of marks) this.onDurableOutbox?.(shard, sequence);
      }, (marks) => this.onStreamMarks?.(marks));
      worker.on('error', (err) => {
        console.error(`shard worker ${w} failed`, err);
      });
      worker.on('exit', (code) => {
        link.failAll(`shard worker ${w} exited`);
        channel.port1.close();
        this.onWorkerExit(w, code);
      });
      this.links.push(link);
    }
    // A worker is ready once it answers a control call (its environment is open).
    await Promise.all(this.links.map((l) => l.control.cacheSize()));
    // One sweep a second is cheaper than a timer per request; a deadline is a bound, not a clock.
    const sweepMs = Math.min(1000, this.config.storage.worker_reply_timeout_ms);
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const link of this.links) link.expire(now);
    }, sweepMs).unref();
    this.state = 'running';
  }

  workerOf(shard: number): number {
    return workerOfShard(shard, this.layout);
  }

  request(shard: number, body: RequestBody): Promise<ShardResult> {
    return this.requestWorker(this.workerOf(shard), body);
  }

  requestWorker(worker: number, body: RequestBody): Promise<ShardResult> {
    if (this.state !== 'running') return Promise.reject(new DbxError('unavailable', `the server is ${this.state}`));
    const link = this.links[worker];
    if (!link || !link.alive) return Promise.reject(new DbxError('unavailable', `shard worker ${worker} is down`));
    let release: (() => void) | undefined;
    if (this.admit) {
      try {
        release = this.admit(body);
      } catch (err) {
        return Promise.reject(err instanceof DbxError ? err : new DbxError('internal', 'request admission failed', undefined, { cause: err }));
      }
    }
    const id = this.nextId++;
    const deadline = Date.now() + this.config.storage.worker_reply_timeout_ms;
    const sent = new Promise<ShardResult>((resolve, reject) => {
      link.pending.set(id, { resolve, reject, deadline });
      link.send({ ...body, id, deadline } as ShardRequest);
    });
    return release ? sent.finally(release) : sent;
  }

  /**
   * Hands a registry change to every live worker and settles once each has compiled it: a schema
   * PUT that awaits this answers only when every later write is checked against the new version.
   */
  async schemaChanged(tenant: string, aggregate: string, record: SchemaRecord | null): Promise<void> {
    await Promise.all(this.links.filter((l) => l.alive).map((l) => l.control.schemaChanged(tenant, aggregate, record)));
  }

  controls(): Comlink.Remote<ShardControl>[] {
    return this.links.map((l) => l.control);
  }

  control(worker: number): Comlink.Remote<ShardControl> {
    const link = this.links[worker];
    if (!link) throw new DbxError('internal', `no worker ${worker}`);
    return link.control;
  }

  inFlight(): number {
    return this.links.reduce((n, l) => n + l.pending.size, 0);
  }

  /** Stops taking requests, lets every worker finish and flush, then ends the threads. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'draining';
    const drains = this.links.filter((l) => l.alive).map((l) => l.control.drain());
    await withTimeout(Promise.all(drains), timeoutMs).catch((err) => console.error('drain did not finish', err));
    await Promise.all(
      this.links.map(async (l) => {
        l.control[Comlink.releaseProxy]();
        await withTimeout(l.worker.terminate(), 5_000).catch(() => undefined);
      }),
    );
    if (this.sweeper) clearInterval(this.sweeper);
    this.state = 'stopped';
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
