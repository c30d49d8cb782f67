/**
 * Event ids are unique on a node: GET /v1/events/{id} answers the first match, and the plugin
 * queue keys its jobs by [plugin, event_id] (a second event under the same id would never be
 * delivered). Generated ids cannot collide (one shared generator, snowflake.ts); an imported id
 * can. A worker refuses one that its own environment holds or has in flight (prepare.ts
 * addImported); with several workers, this guard checks the other environments and the chunks in
 * flight to other workers before a chunk is sent. It runs on the coordinator's one thread, so a
 * check and its reservation never interleave with another import's, and a reservation lasts until
 * the chunk is answered, when its commit is visible to the coordinator's reads (shard-pool.ts
 * renews them before a reply resolves).
 */
import { DbxError } from '../core/index.js';
import type { ImportItem, ShardResult, ShardStore } from '../shard-worker/index.js';
import type { ShardPool } from './shard-pool.js';

export class ImportIdGuard {
  /** Event ids of chunks sent and not answered yet, with their worker. */
  private readonly inFlight = new Map<string, number>();

  /** `storesByWorker[w]`: the read views of worker w's shards. */
  constructor(private readonly storesByWorker: readonly (readonly ShardStore[])[]) {}

  static of(pool: Pick<ShardPool, 'workerCount' | 'workerOf'>, stores: readonly ShardStore[]): ImportIdGuard {
    return new ImportIdGuard(Array.from({ length: pool.workerCount }, (_, w) => stores.filter((_, shard) => pool.workerOf(shard) === w)));
  }

  /** Sends one import chunk to `worker`, its ids reserved until it is answered; refused whole (nothing sent) when an id is taken elsewhere. */
  async send(pool: Pick<ShardPool, 'requestWorker'>, worker: number, items: ImportItem[], verify: boolean, importId?: string): Promise<ShardResult> {
    const reserved = this.reserve(worker, items);
    try {
      return await pool.requestWorker(worker, { kind: 'import', commands: items, verify, ...(importId !== undefined ? { import_id: importId } : {}) });
    } finally {
      for (const id of reserved) this.inFlight.delete(id);
    }
  }

  private reserve(worker: number, items: ImportItem[]): string[] {
    if (this.storesByWorker.length < 2) return [];
    for (const item of items) {
      const id = item.record.metadata.event_id;
      const elsewhere = this.inFlight.get(id);
      if (elsewhere !== undefined && elsewhere !== worker) throw taken(item, 'is being imported by another chunk');
      for (let w = 0; w < this.storesByWorker.length; w++) {
        if (w === worker) continue;
        for (const store of this.storesByWorker[w] as readonly ShardStore[]) {
          if (store.eventIds.get(id) !== undefined) throw taken(item, 'is already stored');
        }
      }
    }
    const reserved: string[] = [];
    for (const item of items) {
      const id = item.record.metadata.event_id;
      if (this.inFlight.has(id)) continue;
      this.inFlight.set(id, worker);
      reserved.push(id);
    }
    return reserved;
  }
}

/** The worker's own refusal, in its words (prepare.ts), with the line (routes-import.ts lineOf). */
function taken(item: ImportItem, what: string): DbxError {
  const { aggregate_type: type, aggregate_id: id, version, metadata } = item.record;
  return new DbxError('already_exists', `line ${item.line}: event_id ${metadata.event_id} ${what} (aggregate ${type}/${id} version ${version})`, {
    line: item.line,
    event_id: metadata.event_id,
  });
}
