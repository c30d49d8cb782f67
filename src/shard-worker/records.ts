/**
 * What a shard stores, as plain data. Everything here crosses thread boundaries (structured clone)
 * and is written verbatim by `applyWriteSet`, so a prepared write set can be logged as a batch
 * intent and replayed after a crash.
 */
import type { JsonObject } from '../core/index.js';

export type HeadKey = [tenant: string, type: string, id: string];
export type EventKey = [tenant: string, type: string, id: string, version: number];
export type IndexKey = [tenant: string, status: 'a' | 'r', type: string, id: string];
/** The global stream (`stream` db): per (shard, tenant) commit sequence, gapless from 1. */
export type StreamKey = [tenant: string, seq: number];
/** What a stream entry points at: the event key minus its tenant, and the event id (merge order). */
export type StreamValue = [type: string, id: string, version: number, event_id: string];

/** Aggregate head: everything an append needs without reading history. */
export interface Head {
  version: number;
  /** RFC 6962 right frontier of the leaf hashes 1..version. */
  frontier: string[];
  merkle_root: string;
  archived: boolean;
  created_at: string;
  updated_at: string;
  snapshot_version?: number;
}

/** What the `heads` database holds: the head with the aggregate's current state. */
export interface StoredHead extends Head {
  state: JsonObject;
}

export interface StoredSnapshot {
  state: JsonObject;
  merkle_root: string;
  created_at: string;
  comment: string | null;
  /**
   * The aggregate's archived flag at this version (GET ?version=N starts from it). Absent from
   * snapshots written before it existed: the reader then finds the flag in the events.
   */
  archived?: boolean;
}

export interface IdempotencyEntry {
  version: number;
  fingerprint: string;
}

/** One LMDB transaction's worth of changes to one shard. */
export interface WriteSet {
  /**
   * `sealed`: `json` is already the stored (encrypted) text, written as it is. `event_type` and
   * `created_ms` key the event's `event_index` entry (event-index.ts) without parsing `json`;
   * absent (a batch intent logged before they existed), they are read from the stored text.
   */
  events: { key: EventKey; json: string; event_id: string; sealed?: boolean; event_type?: string; created_ms?: number }[];
  heads: { key: HeadKey; head: Head; state: JsonObject }[];
  /** Aggregate-index changes in command order (an archive then a restore must end active). */
  index: ['put' | 'del', IndexKey][];
  idempotency: { key: [string, string, string, string]; entry: IdempotencyEntry }[];
  snapshots: { key: EventKey; snapshot: StoredSnapshot }[];
  /**
   * Stream entries written verbatim with their seqs (a tenant move copies a tenant's stream so
   * positions stay valid on the new shard). When present, `events` get no new stream seq.
   */
  stream?: { tenant: string; seq: number; value: StreamValue }[];
}

export function emptyWriteSet(): WriteSet {
  return { events: [], heads: [], index: [], idempotency: [], snapshots: [] };
}

export function headKeyString(tenant: string, type: string, id: string): string {
  return `${tenant}\u0000${type}\u0000${id}`;
}
