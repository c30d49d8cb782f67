/**
 * The delivery pool: piscina threads running delivery-worker.ts. Bounded: at most `maxQueue`
 * deliveries wait for a thread (the dispatcher's per-plugin `in_flight_max` keeps it well below),
 * and every delivery has a timeout, so a plugin that hangs costs one slot for at most that long.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { DeliveryOutcome, DeliveryTask } from './delivery-worker.js';
import type { Delivery, PluginDefinition } from './types.js';

/** How long past a task's own timeout the main thread waits before it stops the thread. */
const WATCHDOG_GRACE_MS = 5000;

export interface PoolOptions {
  threads: number;
  maxQueue: number;
  timeoutMs: number;
  dataDir: string;
  /** Deliveries one thread runs at once. */
  concurrentPerThread: number;
}

export class DeliveryPool {
  private pool: Piscina<DeliveryTask, DeliveryOutcome> | undefined;

  constructor(private readonly options: PoolOptions) {}

  /**
   * Threads start with the first delivery, never with the server: terminating a worker thread
   * while it is still loading its modules aborts the whole process in Node 20 (seen when a server
   * with no plugin started and stopped at once). `stop` gives deliveries in flight their grace
   * first, so threads that are running have finished loading.
   */
  private get piscina(): Piscina<DeliveryTask, DeliveryOutcome> {
    this.pool ??= new Piscina({
      filename: fileURLToPath(new URL('./delivery-worker.js', import.meta.url)),
      minThreads: 0,
      maxThreads: this.options.threads,
      maxQueue: this.options.maxQueue,
      idleTimeout: 60_000,
      // Deliveries are I/O: a thread runs many at once. With piscina's default of one, a plugin
      // that hangs would hold whole threads and stall every other plugin behind it.
      concurrentTasksPerWorker: this.options.concurrentPerThread,
    });
    return this.pool;
  }

  /** Rejects with the reason when the delivery failed. */
  async deliver(definition: PluginDefinition, delivery: Delivery): Promise<void> {
    const outcome = await this.run({ definition, delivery, dataDir: this.options.dataDir, timeoutMs: this.timeoutFor(definition) });
    if (!outcome.ok) throw new Error(outcome.error ?? 'delivery failed');
  }

  /** The connectivity check of a plugin (enable, plugin test). */
  async check(definition: PluginDefinition): Promise<DeliveryOutcome> {
    const delivery: Delivery = { job_id: 'check', plugin: definition.name, attempt: 1, body: { event_id: '0', tenant: 'default', aggregate_type: 'check', aggregate_id: 'check', version: 0, event_type: 'check' } };
    return this.run({ definition, delivery, dataDir: this.options.dataDir, timeoutMs: this.timeoutFor(definition), check: true });
  }

  /** One delivery outside the queue (`plugin test`). */
  deliverOnce(definition: PluginDefinition, delivery: Delivery): Promise<DeliveryOutcome> {
    return this.run({ definition, delivery, dataDir: this.options.dataDir, timeoutMs: this.timeoutFor(definition) });
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
  }

  private async run(task: DeliveryTask): Promise<DeliveryOutcome> {
    // The thread's own timer cannot fire while its thread is stuck in synchronous code (a kind
    // that loops, a blocking call that never returns). This one, on our thread, answers the task
    // as failed and replaces the pool: new deliveries get fresh threads, the ones in flight on the
    // old pool fail and are retried, so one wedged delivery cannot hold every plugin for good.
    // (piscina's own abort signal would run abortable tasks one per thread: no concurrency.)
    const pool = this.piscina;
    let timer: NodeJS.Timeout | undefined;
    const limit = task.timeoutMs + WATCHDOG_GRACE_MS;
    // The clock starts when a thread starts the task (it writes the time here): time spent queued
    // behind other deliveries is not the task's fault and must not replace a healthy pool.
    const startedAt = new Float64Array(new SharedArrayBuffer(8));
    const watchdog = new Promise<DeliveryOutcome>((resolve) => {
      const check = (): void => {
        const start = startedAt[0] as number;
        const left = start === 0 ? limit : start + limit - Date.now();
        if (left > 0) {
          timer = setTimeout(check, left);
          return;
        }
        if (this.pool === pool) this.pool = undefined;
        pool.destroy().catch(() => {});
        resolve({ ok: false, error: `the delivery thread did not answer within ${limit} ms of starting it; its pool was replaced`, ms: limit });
      };
      timer = setTimeout(check, limit);
    });
    try {
      return await Promise.race([pool.run({ ...task, startedAt }), watchdog]);
    } catch (err) {
      // The pool itself refused (queue full, thread died, pool replaced): a failed attempt like any other.
      return { ok: false, error: err instanceof Error ? err.message : String(err), ms: 0 };
    } finally {
      clearTimeout(timer);
    }
  }

  private timeoutFor(definition: PluginDefinition): number {
    const own = 'timeout_ms' in definition.options ? (definition.options.timeout_ms as number) : undefined;
    // The kind's own timeout answers first; this one catches a kind that never settles.
    return Math.min(this.options.timeoutMs, own !== undefined ? own + 1000 : this.options.timeoutMs);
  }
}
