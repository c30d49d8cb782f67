/** Public face of src/shard-worker. */
export { ShardStore, ShardDb, WorkerEnv, KEY_MAX, DURABLE_TXN_FLAGS } from './store.js';
export { precomputeImport, type ImportPrecomputed } from './import-record.js';
export { compareIdParts, eventIdOfParts, eventIdParts, idTimeMs } from './event-index.js';
export type { EventIndexKey, EventIndexValue } from './event-index.js';
export type { IdempotencyDbKey, StoreOptions } from './store.js';
export type { Head, StoredHead, WriteSet, EventKey, HeadKey, IndexKey, StoredSnapshot } from './records.js';
export type {
  AbortOutcome,
  BatchIntent,
  ImportItem,
  ImportRecord,
  PreparedPart,
  ShardMessage,
  ShardReply,
  ShardReplyMessage,
  ShardRequest,
  ShardResult,
  WorkerInit,
  WriteCommand,
  WriteOp,
  WriteResult,
} from './protocol.js';
export type { ShardControl } from './worker.js';
export { BATCH_LOCKED_MESSAGE } from './protocol.js';
export const WORKER_ENTRY = new URL('./worker.js', import.meta.url);
export { controlEndpoint } from './comlink-endpoint.js';
export { TENANT_KEYED_DBS, keyHasPrefix } from './store.js';
export type { IndexedEvent, KeyPrefixRange, TenantKeyedDb } from './store.js';
export { countTenantRange, countTenantRangeYielding, eventIdOf, lastKeyOf, sameKey, scanPrefix } from './tenant-range.js';
export type { RangeEntry, RangeWriteResult } from './tenant-range.js';
