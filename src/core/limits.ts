/** Hard limits at the edge (DESIGN §3). Keys in LMDB must stay below 1978 bytes: these keep them there. */
export const PAYLOAD_BYTES_MAX = 256 * 1024;
export const METADATA_BYTES_MAX = 64 * 1024;
export const NOTE_CHARS_MAX = 128;
export const NAME_CHARS_MAX = 64;
export const AGGREGATE_ID_CHARS_MAX = 128;
export const TENANT_CHARS_MAX = 64;
export const IDEMPOTENCY_KEY_CHARS_MAX = 128;
export const BATCH_EVENTS_MAX = 1000;
export const PATCH_OPS_MAX = 1000;
export const SELECT_FIELDS_MAX = 100;
