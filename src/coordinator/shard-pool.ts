/**
 * Starts the shard workers and talks to them. Requests made in the same turn are sent to a worker
 * as one message (batching 16–64 per message is ~4× cheaper than one each). Each pending request is
 * rejected if its worker exits, so a caller never waits forever. Lifecycle: starting → running →
 * draining → stopped.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { DbxError, shardName, type Config } from '../core/index.js';
import {
  WORKER_ENTRY,
  controlEndpoint,
  type ShardControl,
  type ShardReplyMessage,
  type ShardRequest,
  type ShardResult,
  type WorkerInit,
} from '../shard-worker/index.js';
import { join } from 'node:path';

type Pending = { resolve: (value: ShardResult) => void; reject: (err: DbxError) => void };
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
export type RequestBody = DistributiveOmit<ShardRequest, 'id'>;

class WorkerLink {
  readonly pending = new Map<number, Pending>();
  private outbox: ShardRequest[] = [];
  private flushScheduled = false;
  alive = true;

  constructor(
    readonly worker: Worker,
    readonly port: MessagePort,
    readonly control: Comlink.Remote<ShardControl>,
    onGroup: (size: number) => void,
    beforeResolve: () => void,
  ) {
    port.on('message', (message: ShardReplyMessage) => {
      if (message.group_size !== undefined) onGroup(message.group_size);
      beforeResolve();
      for (const reply of message.replies) {
        const waiter = this.pending.get(reply.id);
        if (!waiter) continue;
        this.pending.delete(reply.id);
        if (reply.ok) waiter.resolve(reply.value);
        else waiter.reject(DbxError.fromWire(reply.error));
      }
    });
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
      this.port.postMessage({ requests });
    });
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
  state: PoolState = 'starting';

  constructor(
    readonly config: Config,
    readonly dataDir: string,
    readonly workerCount: number,
    readonly snowflakeState: SharedArrayBuffer,
    private readonly onGroup: (size: number) => void = () => {},
    /**
     * Runs before any reply resolves: lmdb-js keeps a thread's read snapshot until a timer renews
     * it, so the coordinator's readers must renew theirs or a read right after an acknowledged write
     * could miss it.
     */
    private readonly beforeResolve: () => void = () => {},
    private readonly onWorkerExit: (index: number, code: number) => void = () => {},
  ) {}

  shardPath(shard: number): string {
    return join(this.dataDir, 'shards', shardName(shard));
  }

  async start(): Promise<void> {
    const shardCount = this.config.tenants.shard_count;
    for (let w = 0; w < this.workerCount; w++) {
      const shards = [];
      for (let s = w; s < shardCount; s += this.workerCount) shards.push({ index: s, path: this.shardPath(s) });
      const init: WorkerInit = {
        workerIndex: w,
        shards,
        mapSizeMib: this.config.storage.map_size_mib,
        durability: this.config.storage.durability,
        flushIntervalMs: this.config.storage.flush_interval_ms,
        batchCommandsMax: this.config.storage.batch_commands_max,
        cacheThreshold: this.config.cache_threshold,
        snapshotThreshold: this.config.snapshot_threshold,
        snowflakeWorkerId: this.config.snowflake_worker_id,
        snowflakeState: this.snowflakeState,
      };
      const channel = new MessageChannel();
      const worker = new Worker(WORKER_ENTRY, { workerData: { init, port: channel.port2 }, transferList: [channel.port2] });
      const link = new WorkerLink(worker, channel.port1, Comlink.wrap<ShardControl>(controlEndpoint(worker)), this.onGroup, this.beforeResolve);
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
    // A worker is ready once it answers a control call (its environments are open).
    await Promise.all(this.links.map((l) => l.control.cacheSize()));
    this.state = 'running';
  }

  workerOf(shard: number): number {
    return shard % this.workerCount;
  }

  request(shard: number, body: RequestBody): Promise<ShardResult> {
    return this.requestWorker(this.workerOf(shard), body);
  }

  requestWorker(worker: number, body: RequestBody): Promise<ShardResult> {
    if (this.state !== 'running') return Promise.reject(new DbxError('unavailable', `the server is ${this.state}`));
    const link = this.links[worker];
    if (!link || !link.alive) return Promise.reject(new DbxError('unavailable', `shard worker ${worker} is down`));
    const id = this.nextId++;
    return new Promise<ShardResult>((resolve, reject) => {
      link.pending.set(id, { resolve, reject });
      link.send({ ...body, id } as ShardRequest);
    });
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
