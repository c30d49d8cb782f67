/**
 * Coordinator ↔ shard worker hot-path protocol (DESIGN §1): discriminated unions with a request id,
 * several requests per message, errors as plain data. The coordinator rejects every pending request
 * when a worker exits, so nothing waits forever.
 */
import type { ImportPrecomputed } from './import-record.js';
import type { EventRecord, IssuedBy, JsonObject, PatchOperation, WireError, WriteLimits } from '../core/index.js';
import type { RestrictMode, SchemaRecord } from '../core/schema/api.js';
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
  /**
   * The coordinator counted this aggregate as existing (tenant quota, tenant-quota.ts): if its head
   * is gone by now, refuse with `quota_exceeded` rather than create an aggregate nobody reserved.
   */
  no_create?: boolean;
  /**
   * Answer only an idempotent replay: the token's write limit is used up (write-allowance.ts), so
   * a retry of a stored write gets its original result and anything else is refused
   * `write_limit_exhausted` with nothing written.
   */
  replay_only?: boolean;
}

/** What a write answers: the event it appended (or the original one, for an idempotent retry). */
export interface WriteResult {
  event: EventRecord;
  /** True when an idempotency key matched and nothing new was written. */
  replayed: boolean;
}

/** An event record as the API returns it, `hash` and `merkle_root` optional (bulk import). */
export type ImportRecord = Omit<EventRecord, 'hash' | 'merkle_root'> & Partial<Pick<EventRecord, 'hash' | 'merkle_root'>>;

/** One line of an import, placed on its shard; `line` is its line number in the request body. */
export interface ImportItem {
  shard: number;
  tenant: string;
  line: number;
  record: ImportRecord;
  /** Its state-free part, computed at the edge (import-record.ts); absent: the worker computes it. */
  pre?: ImportPrecomputed;
}

export interface BatchIntent {
  txid: string;
  parts: { shard: number; ws: WriteSet }[];
}

/**
 * Every request carries the caller's deadline (ms since epoch): past it the caller has been told
 * 503, so the worker must not apply it later (a retry without an idempotency key would append
 * twice). Commits and aborts of a cross-worker batch are never dropped: the batch's outcome hangs
 * on them.
 */
export type ShardRequest = { deadline?: number } & (
  | { kind: 'write'; id: number; command: WriteCommand }
  /** `dry_run`: prepared and checked exactly as a batch, then discarded (nothing is written). */
  | { kind: 'batch'; id: number; commands: WriteCommand[]; dry_run?: true }
  | { kind: 'prepare'; id: number; txid: string; commands: WriteCommand[] }
  | { kind: 'commit'; id: number; txid: string; intent?: BatchIntent }
  | { kind: 'abort'; id: number; txid: string }
  | { kind: 'snapshot'; id: number; shard: number; tenant: string; aggregate_type: string; aggregate_id: string; comment?: string }
  /** Bulk import: the chunk is one atomic sub-batch; `verify` compares given hashes and roots. */
  /**
   * `import_id` names one POST /v1/import: once a chunk of it failed on this worker, its later
   * chunks are refused unwritten (they were sent before the failure was known).
   */
  | { kind: 'import'; id: number; commands: ImportItem[]; verify: boolean; import_id?: string }
  /** The plugin queue durably holds the jobs of every outbox entry up to `through`: drop those before it. */
  | { kind: 'prune_outbox'; id: number; shard: number; through: number }
);

export interface PreparedPart {
  shard: number;
  ws: WriteSet;
}

/** What an abort found: it released the prepare, the batch had already committed, or neither. */
export type AbortOutcome = 'aborted' | 'committed' | 'unknown';

/** A prepare refused because another cross-worker batch holds one of its aggregates (retried by the coordinator). */
export const BATCH_LOCKED_MESSAGE = 'an aggregate of this batch is part of another batch in progress; retry';

export type ShardResult =
  | { kind: 'write'; result: WriteResult }
  | { kind: 'abort'; outcome: AbortOutcome }
  | { kind: 'batch'; results: WriteResult[] }
  | { kind: 'prepare'; results: WriteResult[]; parts: PreparedPart[] }
  | { kind: 'done' }
  | { kind: 'snapshot'; version: number }
  | { kind: 'import'; imported: number; skipped: number; created: number };

export type ShardReply = { id: number; ok: true; value: ShardResult } | { id: number; ok: false; error: WireError };

/**
 * Both directions carry JSON text rather than objects for the structured clone: a value the other
 * side cannot deserialise (say, nested thousands deep) then fails only its own request, with the
 * request ids still readable, instead of a `messageerror` that loses a whole group unanswered.
 */
export interface ShardMessage {
  ids: number[];
  /** JSON of `ShardRequest[]`, in the order of `ids`. */
  requests: string;
}

export interface ShardReplyMessage {
  ids: number[];
  /** One JSON text per reply (a `ShardReply`), in the order of `ids`. */
  replies: string[];
  /** Requests that shared this group commit (reported for the batch-size metric). */
  group_size?: number;
  /** Group commits in flight when this group was handed to LMDB (1 = no overlap). */
  pipeline_depth?: number;
  /**
   * Sent once a group's commit is durable: per shard it wrote, its last outbox sequence. The plugin
   * dispatcher moves outbox entries only up to these, so no plugin ever sees an event that a power
   * cut could still take away.
   */
  durable_outbox?: [shard: number, sequence: number][];
  /**
   * Sent once a commit is durable: per shard and tenant it wrote, its last global-stream seq. Live
   * stream readers (coordinator/stream.ts) wake on these and, in `sync` mode, read no further.
   */
  stream_marks?: [shard: number, tenant: string, seq: number][];
}

/** Sent once in `workerData`. */
export interface WorkerInit {
  workerIndex: number;
  /** This worker's LMDB environment and the logical shards stored in it. */
  envPath: string;
  shards: number[];
  /** A prepared cross-worker batch whose commit or abort never arrives is released after this. */
  prepareLeaseMs: number;
  /** Group commits handed to LMDB and not yet durable, at most (the pipeline's depth). */
  commitsInFlightMax: number;
  mapSizeMib: number;
  durability: 'sync' | 'async';
  flushIntervalMs: number;
  batchCommandsMax: number;
  cacheThreshold: number;
  snapshotThreshold: number;
  /** `[limits]`: the worker bounds each event and resulting state with them. */
  writeLimits: WriteLimits;
  snowflakeWorkerId: number;
  snowflakeState: SharedArrayBuffer;
  /** `restrict` from config: off | default | strict (schema-check.ts). */
  restrict: RestrictMode;
  /** Every schema in force when the pool starts; later changes arrive through `schemaChanged`. */
  schemas: SchemaRecord[];
  /** Data encryption keys, newest first (empty = encryption off); the worker builds its own cipher. */
  dataKeys?: Uint8Array[];
}
