/** Public face of the TypeScript client (package export "eventdbx" / "eventdbx/client"). */
export { createClient, EventDbxClient, paginate } from './client.js';
export { EventDbxError, isEventDbxError } from './errors.js';
export type {
  AggregateView,
  BatchEvent,
  ClientOptions,
  CreateOptions,
  EventOptions,
  EventRecord,
  GetOptions,
  JsonObject,
  LifecycleOptions,
  ListOptions,
  Page,
  PageOptions,
  PatchOperation,
  RetryOptions,
  Selection,
  ServerStatus,
  SnapshotRecord,
  VerifyResult,
  WriteOptions,
} from './types.js';
