/**
 * The storage layout of a data dir (DESIGN §2): S logical shards stored in W worker environments,
 * shard s in worker s mod W. It is recorded in `<data_dir>/shards/layout.json` at first start,
 * because a store read with another S or W would look for aggregates on the wrong shard (they
 * 404 while lists show them, and a write would fork their history). A start whose config disagrees
 * with a non-empty store is refused with one line; an empty store takes the new layout.
 */
import { mkdirDurably } from '../core/durable-file.js';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { effectiveWorkers, writeFileDurably, type Config } from '../core/index.js';
import { WorkerEnv } from '../shard-worker/index.js';

export const LAYOUT_FORMAT = 2;
const LAYOUT_FILE = 'layout.json';

const layoutSchema = z.object({
  format: z.literal(LAYOUT_FORMAT),
  shard_count: z.number().int().min(1),
  workers: z.number().int().min(1),
});
export type StorageLayout = z.infer<typeof layoutSchema>;

export class LayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayoutError';
  }
}

export function shardsDir(dataDir: string): string {
  return join(dataDir, 'shards');
}

export function workerEnvPath(dataDir: string, worker: number): string {
  return join(shardsDir(dataDir), `worker-${String(worker).padStart(4, '0')}`);
}

export function workerOfShard(shard: number, layout: StorageLayout): number {
  return shard % layout.workers;
}

/** The recorded layout, or undefined for a data dir that has none yet. */
export function readLayout(dataDir: string): StorageLayout | undefined {
  const path = join(shardsDir(dataDir), LAYOUT_FILE);
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new LayoutError(`${path} is not valid JSON (${err instanceof Error ? err.message : String(err)}); restore it from a backup`);
  }
  const result = layoutSchema.safeParse(parsed);
  if (!result.success) throw new LayoutError(`${path} is not a layout this version reads (expected format ${LAYOUT_FORMAT})`);
  return result.data;
}

/**
 * A data dir of the first layout (one environment per shard) is refused, not migrated. The start
 * calls this before it writes anything (config.toml, keys), so 0.1 can still open the dir and its
 * events can be paged out of `GET /v1/events` into `dbx import` (0.1's hashes and roots import).
 */
export function refuseFirstLayout(dataDir: string): void {
  const dir = shardsDir(dataDir);
  const legacy = existsSync(dir) ? readdirSync(dir).filter((name) => /^shard-\d{4}$/.test(name)) : [];
  if (legacy.length > 0) {
    throw new LayoutError(
      `${dir} holds the one-environment-per-shard layout of EventDBX-TS 0.1 (${legacy.length} shard directories); ` +
        'this version stores one environment per worker and does not migrate it (nothing was changed): run 0.1 on it, page its GET /v1/events into `dbx import` on a new data dir',
    );
  }
}

/**
 * Decides the layout for this start: the recorded one when the config agrees (`workers = 0` means
 * "whatever is recorded"), a fresh one for a new or empty store; refuses a disagreeing non-empty
 * store and the per-shard directories of the first layout.
 */
export function resolveLayout(dataDir: string, config: Config, cpuCount: number, mapSizeMib: number): StorageLayout {
  refuseFirstLayout(dataDir);
  const dir = shardsDir(dataDir);
  const shardCount = config.tenants.shard_count;
  const recorded = readLayout(dataDir);
  if (recorded) {
    const workers = config.storage.workers > 0 ? Math.min(config.storage.workers, shardCount) : Math.min(recorded.workers, shardCount);
    if (recorded.shard_count === shardCount && recorded.workers === workers) return recorded;
    if (storeHasData(dataDir, recorded, mapSizeMib)) {
      throw new LayoutError(
        `${dataDir} was created with shard_count = ${recorded.shard_count} and workers = ${recorded.workers}, ` +
          `but the config asks for shard_count = ${shardCount} and workers = ${workers}; ` +
          'a non-empty store keeps its layout: restore those settings in config.toml',
      );
    }
    removeWorkerEnvs(dataDir, recorded);
  }
  const layout: StorageLayout = { format: LAYOUT_FORMAT, shard_count: shardCount, workers: effectiveWorkers(config, cpuCount) };
  mkdirDurably(dir);
  writeFileDurably(join(dir, LAYOUT_FILE), `${JSON.stringify(layout)}\n`);
  return layout;
}

function storeHasData(dataDir: string, layout: StorageLayout, mapSizeMib: number): boolean {
  for (let w = 0; w < layout.workers; w++) {
    const path = workerEnvPath(dataDir, w);
    if (!existsSync(join(path, 'data.mdb'))) continue;
    const env = new WorkerEnv(path, { mapSizeMib });
    try {
      if (env.countAggregates() > 0 || env.countEvents() > 0) return true;
    } finally {
      void env.close();
    }
  }
  return false;
}

function removeWorkerEnvs(dataDir: string, layout: StorageLayout): void {
  for (let w = 0; w < layout.workers; w++) rmSync(workerEnvPath(dataDir, w), { recursive: true, force: true });
}
