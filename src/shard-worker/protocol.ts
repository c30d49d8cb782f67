/**
 * Coordinator ↔ shard worker hot-path protocol (DESIGN §1): discriminated unions with a request id,
 * several requests per message, errors as plain data. The coordinator rejects every pending request
 * when a worker exits, so nothing waits forever.
 */
import type { EventRecord, IssuedBy, JsonObject, PatchOperation, WireError } from '../core/index.js';
import type { WriteSet } from './records.js';

export type WriteOp = 'create' | 'apply' | 'patch' | 'archive' | 'restore';

export interface WriteCommand {
  op: WriteOp;
  shard: number;
  tenant: string;
  aggregate_type: string;
  aggregate_id: string;
  event_type?: string;
  payload?: JsonObject;
  patch?: PatchOperation[];
  extensions?: JsonObject;
  note?: string;
  comment?: string;
  expected_version?: number;
  idempotency_key?: string;
  issued_by: IssuedBy | null;
}

/** What a write answers: the event it appended (or the original one, for an idempotent retry). */
export interface WriteResult {
  event: EventRecord;
  /** True when an idempotency key matched and nothing new was written. */
  replayed: boolean;
}

export interface BatchIntent {
  txid: string;
  parts: { shard: number; ws: WriteSet }[];
}

export type ShardRequest =
  | { kind: 'write'; id: number; command: WriteCommand }
  | { kind: 'batch'; id: number; commands: WriteCommand[] }
  | { kind: 'prepare'; id: number; txid: string; commands: WriteCommand[] }
  | { kind: 'commit'; id: number; txid: string; intent?: BatchIntent }
  | { kind: 'abort'; id: number; txid: string }
  | { kind: 'snapshot'; id: number; shard: number; tenant: string; aggregate_type: string; aggregate_id: string; comment?: string };

export interface PreparedPart {
  shard: number;
  ws: WriteSet;
}

export type ShardResult =
  | { kind: 'write'; result: WriteResult }
  | { kind: 'batch'; results: WriteResult[] }
  | { kind: 'prepare'; results: WriteResult[]; parts: PreparedPart[] }
  | { kind: 'done' }
  | { kind: 'snapshot'; version: number };

export type ShardReply = { id: number; ok: true; value: ShardResult } | { id: number; ok: false; error: WireError };

export interface ShardMessage {
  requests: ShardRequest[];
}

export interface ShardReplyMessage {
  replies: ShardReply[];
  /** Requests that shared this group commit (reported for the batch-size metric). */
  group_size?: number;
}

/** Sent once in `workerData`. */
export interface WorkerInit {
  workerIndex: number;
  shards: { index: number; path: string }[];
  mapSizeMib: number;
  durability: 'sync' | 'async';
  flushIntervalMs: number;
  batchCommandsMax: number;
  cacheThreshold: number;
  snapshotThreshold: number;
  snowflakeWorkerId: number;
  snowflakeState: SharedArrayBuffer;
}
