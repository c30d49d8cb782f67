/** Domain types shared by every part (DESIGN §3). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface IssuedBy {
  group: string;
  user: string;
}

export interface EventMetadata {
  event_id: string;
  created_at: string;
  issued_by: IssuedBy | null;
  note?: string;
  /** The schema registry version the event was validated against (absent: no schema checked it). */
  schema_version?: number;
}

/** The event as the API returns it and plugins receive it. */
export interface EventRecord {
  aggregate_type: string;
  aggregate_id: string;
  event_type: string;
  version: number;
  payload: JsonObject | JsonValue[];
  extensions: JsonObject;
  metadata: EventMetadata;
  hash: string;
  merkle_root: string;
}

export interface AggregateView {
  aggregate_type: string;
  aggregate_id: string;
  version: number;
  state: JsonObject;
  merkle_root: string;
  archived: boolean;
  created_at: string;
  updated_at: string;
  snapshot_version?: number;
  events?: EventRecord[];
}

export interface SnapshotRecord {
  aggregate_type: string;
  aggregate_id: string;
  version: number;
  state: JsonObject;
  merkle_root: string;
  created_at: string;
  comment: string | null;
}

export interface VerifyResult {
  aggregate_type: string;
  aggregate_id: string;
  version: number;
  merkle_root: string;
  valid: boolean;
  first_invalid_version?: number;
  /** Present when invalid: every check that failed (see src/coordinator/verify.ts for the kinds). */
  problems?: VerifyProblem[];
}

export interface VerifyProblem {
  kind: string;
  version?: number;
  message: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export type ArchiveScope = 'active' | 'archived' | 'all';
