/** Tenant administration results (issue 12; `/v1/tenants…`), in the client's camelCase. */

/** A tenant's explicit metadata (`dbx tenant list`): fields absent when not set. */
export interface TenantMetaEntry {
  tenant: string;
  shard?: string;
  quota?: number;
  count?: number;
  writesPerSec?: number;
  burst?: number;
}

export interface TenantMetaList {
  items: TenantMetaEntry[];
  shardCount: number;
}

/** Explicit assignments per shard (`{ "shard-0001": 2 }`). */
export interface TenantShardStats {
  shards: Record<string, number>;
  shardCount: number;
}

export interface TenantPlacementChange {
  tenant: string;
  shard: string;
  changed: boolean;
  move?: Record<string, unknown>;
  note?: string;
}

export interface TenantView {
  tenant: string;
  shard: string | null;
  shards: string[];
  assigned: boolean;
  aggregates: number;
  events: number;
  /** Approximate stored bytes. */
  bytes: number;
  quota: { maxAggregates: number; used: number } | null;
  rateLimit: { writesPerSec: number; burst: number } | null;
  plugins: { pending: number; dead: number; lagMs: number };
  move: { phase: string; from: string; to: string; startedAt: string } | null;
  /** Set while a removal of the tenant is under way. */
  removing: { startedAt: string } | null;
}

export interface TenantRateInput {
  writesPerSec: number;
  burst?: number;
}

/** `POST /v1/tenants/{t}/import`: what the import of an export loaded. */
export interface TenantImportSummary {
  tenant: string;
  lines: number;
  imported: number;
  skipped: number;
  aggregatesCreated: number;
  /** Aggregates in the file (each one's hashes and roots recomputed and compared). */
  aggregates: number;
}

/** `DELETE /v1/tenants/{t}`: what a removal removed. */
export interface TenantRemoval {
  tenant: string;
  shards: string[];
  /** Entries removed per database. */
  removed: Record<string, number>;
  aggregates: number;
  events: number;
  jobsDropped: number;
  metadataRemoved: boolean;
}
