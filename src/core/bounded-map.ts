/**
 * Eviction for caches that keep recency in a Map's insertion order (least recent first).
 *
 * V8 leaves a deleted Map entry as a hole until the table is rehashed, and iteration walks the
 * holes. Evicting the single oldest entry per insert with `keys().next()` therefore walks every
 * hole earlier evictions left: measured on this box at 10,000 entries, 6.2 µs per insert, against
 * 0.2–0.4 µs when a batch of the oldest is evicted at once (the rehash then clears the holes).
 * The heads cache paid that on every append once a store held more aggregates than it caches.
 */

/** Once `map` holds more than `max` entries, drops the oldest down to `max` less a small batch. */
export function evictOldest<K, V>(map: Map<K, V>, max: number): void {
  if (map.size <= max) return;
  let drop = map.size - max + (max >>> 6);
  for (const key of map.keys()) {
    if (drop-- <= 0) break;
    map.delete(key);
  }
}
