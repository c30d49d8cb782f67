/**
 * Bounded cache of hot aggregate heads (version, frontier, state) so an append reads no history.
 * Map insertion order is the recency order: a hit re-inserts, the oldest entry is evicted first.
 * Only the owning worker writes the cache, and only after its transaction committed.
 */
import { evictOldest } from '../core/index.js';
import type { LoadedAggregate } from './prepare.js';

export class HeadsCache {
  private readonly entries = new Map<string, LoadedAggregate>();

  constructor(private readonly capacity: number) {}

  get(key: string): LoadedAggregate | undefined {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  /** After a failed commit the cached heads may describe writes that never reached the disk. */
  clear(): void {
    this.entries.clear();
  }

  /**
   * Drops every entry whose key starts with `prefix` (a tenant move copied or deleted that
   * tenant's range of one shard). O(entries): it runs once per move chunk, not per write.
   */
  forgetPrefix(prefix: string): void {
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.entries.delete(key);
  }

  set(key: string, value: LoadedAggregate): void {
    if (this.capacity === 0) return;
    this.entries.delete(key);
    this.entries.set(key, value);
    evictOldest(this.entries, this.capacity);
  }

  get size(): number {
    return this.entries.size;
  }
}
