/**
 * Reading a shard's outbox: every append writes `sequence → event key` in the same LMDB transaction
 * as the event, so the outbox is exactly the committed events in commit order. The plugin
 * dispatcher (not built yet) will move these entries into the durable delivery queue; this reader
 * is the piece it stands on, and it only reads, so it can run beside the shard's writer.
 */
import type { EventRecord } from '../core/index.js';
import type { EventKey, ShardStore } from '../shard-worker/index.js';

export interface OutboxEntry {
  shard: number;
  sequence: number;
  key: EventKey;
  event: EventRecord;
}

/** Entries with sequence > afterSequence, in commit order, at most `limit`. */
export function readOutbox(store: ShardStore, shard: number, afterSequence: number, limit: number): OutboxEntry[] {
  const out: OutboxEntry[] = [];
  for (const { key: sequence, value: key } of store.outbox.getRange({ start: afterSequence + 1, limit })) {
    const json = store.getEventJson(key);
    // An outbox entry without its event would mean a torn transaction; LMDB rules that out.
    if (json === undefined) throw new Error(`outbox entry ${sequence} of shard ${shard} points at a missing event`);
    out.push({ shard, sequence, key, event: JSON.parse(json) as EventRecord });
  }
  return out;
}

/** Highest sequence written so far (0 when the outbox is empty). */
export function outboxHead(store: ShardStore): number {
  for (const { key } of store.outbox.getRange({ reverse: true, limit: 1 })) return key;
  return 0;
}
