/**
 * A delivery thread (piscina): builds one deliverer per plugin definition (rebuilt when the
 * definition changes) and runs one delivery per task, bounded by the task's timeout.
 */
import { createDeliverer } from './kinds/index.js';
import type { Deliverer, Delivery, PluginDefinition } from './types.js';

export interface DeliveryTask {
  definition: PluginDefinition;
  delivery: Delivery;
  dataDir: string;
  timeoutMs: number;
  /** `check`: the connectivity check of `enable` / `plugin test` instead of a delivery. */
  check?: boolean;
  /** Shared with the pool: the thread writes the epoch ms it started the task at (the watchdog's clock). */
  startedAt?: Float64Array;
}

export interface DeliveryOutcome {
  ok: boolean;
  error?: string;
  ms: number;
}

const deliverers = new Map<string, { fingerprint: string; deliverer: Promise<Deliverer> }>();

function delivererFor(definition: PluginDefinition, dataDir: string): Promise<Deliverer> {
  const fingerprint = JSON.stringify(definition.options);
  const cached = deliverers.get(definition.name);
  if (cached && cached.fingerprint === fingerprint) return cached.deliverer;
  if (cached) void cached.deliverer.then((d) => d.close()).catch(() => undefined);
  const deliverer = createDeliverer(definition.options, {
    name: definition.name,
    dataDir,
    log: (level, msg) => process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} plugin ${definition.name}: ${msg}\n`),
  });
  // A kind that fails to build is retried on the next task, not cached.
  deliverer.catch(() => deliverers.delete(definition.name));
  deliverers.set(definition.name, { fingerprint, deliverer });
  return deliverer;
}

export default async function deliver(task: DeliveryTask): Promise<DeliveryOutcome> {
  const started = performance.now();
  if (task.startedAt) task.startedAt[0] = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const deliverer = await delivererFor(task.definition, task.dataDir);
    const work = task.check ? deliverer.check() : deliverer.deliver(task.delivery);
    await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${task.timeoutMs} ms`)), task.timeoutMs);
      }),
    ]);
    return { ok: true, ms: performance.now() - started };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err), ms: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}
