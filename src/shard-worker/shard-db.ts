/** One shard's slice of a named database of a worker environment (keys prefixed by the shard). */
import type { Database, Key as LmdbKey, RangeOptions } from 'lmdb';
import type { ValueCodec } from './sealing.js';

type Key = LmdbKey[];

/**
 * One shard's slice of a named database: prefixes every key with the shard and strips it from
 * range results. `scalar` databases have a single-value key (the outbox sequence, an event id, a
 * batch txid) that becomes `[shard, key]` on disk.
 */
export class ShardDb<V, K> {
  constructor(
    readonly db: Database<V, Key>,
    readonly shard: number,
    private readonly scalar = false,
    /** Stored form of the values (sealing); absent = stored as they are. */
    private readonly codec?: ValueCodec<V>,
  ) {}

  private full(key: K): Key {
    return this.scalar ? [this.shard, key as LmdbKey] : [this.shard, ...(key as unknown as LmdbKey[])];
  }

  private local(key: Key): K {
    return (this.scalar ? key[1] : key.slice(1)) as K;
  }

  get(key: K): V | undefined {
    const stored = this.db.get(this.full(key));
    return stored === undefined || !this.codec ? stored : this.codec.decode(stored);
  }

  put(key: K, value: V): Promise<boolean> {
    return this.db.put(this.full(key), (this.codec ? this.codec.encode(value) : value) as V);
  }

  remove(key: K): Promise<boolean> {
    return this.db.remove(this.full(key));
  }

  /** Keys compare as on disk; an absent bound is this shard's first or last key. */
  /**
   * `transaction` (from `env.useReadTransaction()`): read in that snapshot, so several ranges (an
   * export's two passes) see one point in time; absent = the current read transaction.
   */
  getRange(
    options: { start?: K; end?: K; reverse?: boolean; limit?: number; transaction?: RangeOptions['transaction'] } = {},
  ): Iterable<{ key: K; value: V }> & { map<T>(fn: (e: { key: K; value: V }) => T): Iterable<T> } {
    const low: Key = [this.shard];
    const high: Key = [this.shard + 1];
    const range: RangeOptions = {
      start: options.start !== undefined ? this.full(options.start) : options.reverse ? high : low,
      end: options.end !== undefined ? this.full(options.end) : options.reverse ? low : high,
      ...(options.reverse ? { reverse: true } : {}),
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
      ...(options.transaction !== undefined ? { transaction: options.transaction } : {}),
    };
    const codec = this.codec;
    return this.db.getRange(range).map(({ key, value }) => ({ key: this.local(key as Key), value: codec ? codec.decode(value) : (value as V) }));
  }

  getCount(): number {
    return this.db.getCount({ start: [this.shard], end: [this.shard + 1] });
  }
}
