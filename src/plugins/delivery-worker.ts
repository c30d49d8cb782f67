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

/** A built deliverer, the tasks using it now, and whether a newer definition replaced it. */
interface Built {
  fingerprint: string;
  deliverer: Promise<Deliverer>;
  active: number;
  retired: boolean;
}

const deliverers = new Map<string, Built>();

function build(definition: PluginDefinition, dataDir: string): Built {
  const deliverer = createDeliverer(definition.options, {
    name: definition.name,
    dataDir,
    log: (level, msg) => process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} plugin ${definition.name}: ${msg}\n`),
  });
  return { fingerprint: JSON.stringify(definition.options), deliverer, active: 0, retired: false };
}

/** Closed once no task uses it: deliveries in flight on a replaced definition finish on it. */
function retire(built: Built): void {
  built.retired = true;
  if (built.active === 0) void built.deliverer.then((d) => d.close()).catch(() => undefined);
}

/**
 * The deliverer a task runs on. Deliveries share one per plugin, rebuilt when the definition
 * changes. A connectivity check of options other than the cached ones (a configuration not stored
 * yet, which may be refused) gets one of its own, closed after it: checking it must not touch the
 * deliveries of the running plugin (it closed their connection or child before).
 */
function delivererFor(definition: PluginDefinition, dataDir: string, check: boolean): Built {
  const fingerprint = JSON.stringify(definition.options);
  const cached = deliverers.get(definition.name);
  if (cached && cached.fingerprint === fingerprint) return cached;
  const built = build(definition, dataDir);
  if (check) {
    built.retired = true;
    return built;
  }
  if (cached) {
    deliverers.delete(definition.name);
    retire(cached);
  }
  // A kind that fails to build is retried on the next task, not cached.
  built.deliverer.catch(() => {
    if (deliverers.get(definition.name) === built) deliverers.delete(definition.name);
  });
  deliverers.set(definition.name, built);
  return built;
}

export default async function deliver(task: DeliveryTask): Promise<DeliveryOutcome> {
  const started = performance.now();
  if (task.startedAt) task.startedAt[0] = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const built = delivererFor(task.definition, task.dataDir, task.check === true);
  built.active++;
  try {
    const deliverer = await built.deliverer;
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
    built.active--;
    if (built.retired && built.active === 0) retire(built);
  }
}
