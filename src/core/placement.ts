/**
 * Which shard holds an aggregate (DESIGN §2). Pure functions: the coordinator, the CLI's direct mode
 * and the tests must all agree, so nothing here depends on runtime state except the explicit
 * tenant assignments passed in.
 */
import murmurhash from 'murmurhash';
import { DbxError } from './errors.js';

export interface PlacementSettings {
  shardCount: number;
  multiTenant: boolean;
  /** Explicit tenant → shard index assignments (multi-tenant mode only). */
  assignments?: ReadonlyMap<string, number>;
}

export function shardName(index: number): string {
  return `shard-${String(index).padStart(4, '0')}`;
}

export function shardFor(settings: PlacementSettings, tenant: string, aggregateType: string, aggregateId: string): number {
  if (settings.multiTenant) return tenantShard(settings, tenant);
  return murmurhash.v3(`${tenant}\u0000${aggregateType}\u0000${aggregateId}`, 0) % settings.shardCount;
}

export function tenantShard(settings: PlacementSettings, tenant: string): number {
  const assigned = settings.assignments?.get(tenant);
  if (assigned !== undefined) return assigned;
  return murmurhash.v3(tenant, 0) % settings.shardCount;
}

/** Shards that may hold data of `tenant`: one in multi-tenant mode, all of them otherwise. */
export function shardsForTenant(settings: PlacementSettings, tenant: string): number[] {
  if (settings.multiTenant) return [tenantShard(settings, tenant)];
  return Array.from({ length: settings.shardCount }, (_, i) => i);
}

export function workerForShard(shard: number, workerCount: number): number {
  return shard % workerCount;
}

/**
 * A shard named by a person (reference §12.2): `shard-0003`, `SHARD-3` or `3` → 3. Refuses what
 * does not parse and shards beyond `shardCount`, with the original's messages.
 */
export function parseShardId(input: string, shardCount: number): number {
  const text = input.trim();
  const match = /^(?:shard-)?(\d{1,9})$/i.exec(text);
  if (!match) throw new DbxError('invalid_input', `invalid shard id '${input}'`);
  const index = Number(match[1]);
  if (index >= shardCount) throw new DbxError('invalid_input', `shard '${shardName(index)}' exceeds configured shard-count (${shardCount})`);
  return index;
}
