/**
 * The writer's side of `event_index` (event-index.ts) for one shard: one entry per event, written
 * inside the event's own transaction, the shard's INDEX_READY marker on its first write (after
 * indexing a shard written before the index existed, whole), and each tenant's largest time skew
 * in `query_meta`. Only the shard's owning worker uses it, and only inside write transactions.
 */
import type { EventKey } from './records.js';
import type { ShardDb } from './shard-db.js';
import { INDEX_READY, SKEW, eventIdParts, idTimeMs, type EventIndexKey, type EventIndexValue, type QueryMetaKey } from './event-index.js';

export class EventIndexWriter {
  /** The marker is on disk (or written in this transaction). */
  private markerWritten = false;
  /** Per tenant, the largest skew written so far (saves a read per event). */
  private readonly skewSeen = new Map<string, number>();

  constructor(
    private readonly eventIndex: ShardDb<EventIndexValue, EventIndexKey>,
    private readonly queryMeta: ShardDb<number, QueryMetaKey>,
    /** The shard's events in stored form (every key, plaintext or sealed text). */
    private readonly storedEvents: () => Iterable<{ key: EventKey; value: string }>,
  ) {}

  /** Before the first event a transaction writes: the marker, after indexing a legacy shard whole. */
  ensureMarker(): void {
    if (this.markerWritten) return;
    if (this.queryMeta.get(INDEX_READY) === undefined) {
      for (const { key, value } of this.storedEvents()) this.indexStored(key, value);
      this.queryMeta.put(INDEX_READY, 1);
    }
    this.markerWritten = true;
  }

  /** One put per event; a second one only when an import raises the tenant's time skew. */
  index(key: EventKey, eventType: string, createdMs: number, eventId: string): void {
    const [high, low] = eventIdParts(eventId);
    const created = Number.isFinite(createdMs) ? createdMs : idTimeMs(high);
    this.eventIndex.put([key[0], eventType, created, high, low], [key[1], key[2], key[3]]);
    const skew = Math.abs(created - idTimeMs(high));
    if (skew === 0) return;
    const known = this.skewSeen.get(key[0]) ?? this.queryMeta.get([key[0], SKEW]) ?? 0;
    this.skewSeen.set(key[0], Math.max(known, skew));
    if (skew > known) this.queryMeta.put([key[0], SKEW], skew);
  }

  /** The stored text (plaintext or sealed) keeps event_type, event_id and created_at readable. */
  indexStored(key: EventKey, json: string): void {
    const stored = JSON.parse(json) as { event_type: string; metadata: { event_id: string; created_at: string } };
    this.index(key, stored.event_type, Date.parse(stored.metadata.created_at), stored.metadata.event_id);
  }

  /** After a failed commit: what this transaction wrote is gone, so re-read the disk. */
  forgetUncommitted(): void {
    this.markerWritten = false;
    this.skewSeen.clear();
  }

  forgetTenant(tenant: string): void {
    this.skewSeen.delete(tenant);
  }
}
