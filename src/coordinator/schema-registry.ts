/**
 * The schema registry (issue 9, DESIGN §5): one LMDB environment at `<data_dir>/registry`, written
 * only by the coordinator (the CLI's direct mode runs the coordinator in-process, so every change
 * goes through the HTTP routes either way).
 *
 * - `schemas`         [tenant, aggregate]          → SchemaRecord: the schema in force.
 * - `schema_versions` [tenant, aggregate, version] → SchemaVersionRecord: every change, numbered
 *   from 1 per (tenant, aggregate), never rewritten. A delete records a tombstone version, so the
 *   history of a removed schema stays readable and a re-created one continues the numbering (an
 *   event's recorded schema version then names exactly one contract).
 *
 * Schemas change rarely and are read on every write (by the enforcement, through `get` and
 * `onChange`), so each change is its own durable transaction (~300 µs) and reads are plain LMDB
 * reads without a round trip.
 */
import { mkdirDurably } from '../core/durable-file.js';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { DbxError } from '../core/index.js';
import type { AggregateSchema, SchemaRecord } from '../core/schema/api.js';
import { DURABLE_TXN_FLAGS, KEY_MAX } from '../shard-worker/index.js';

/** One entry of a schema's history. `deleted` marks the tombstone a delete leaves. */
export interface SchemaVersionRecord extends SchemaRecord {
  deleted: boolean;
  /** When this version was recorded (for a tombstone: when the schema was deleted). */
  recorded_at: string;
}

/** What `onChange` listeners hear after a change is durable: the schema now in force, or null. */
export interface SchemaChange {
  tenant: string;
  aggregate: string;
  version: number;
  record: SchemaRecord | null;
}

export type SchemaChangeListener = (change: SchemaChange) => void | Promise<void>;

export interface RegistryOptions {
  mapSizeMib: number;
  /** Direct reads: no write txns at open (see TokenLedger); writes then fail in lmdb. */
  readOnly?: boolean;
}

export interface PutOptions {
  /** Refuse (409 version_conflict) unless the schema in force is at this version (0 = none). */
  expectedVersion?: number;
  /** Refuse (409 already_exists) if a schema is in force: `schema create`. */
  createOnly?: boolean;
  now?: Date;
}

export const REGISTRY_DIR = 'registry';

type CurrentKey = [string, string];
type VersionKey = [string, string, number];

export class SchemaRegistry {
  private readonly env: RootDatabase;
  private readonly current: Database<SchemaRecord, CurrentKey>;
  private readonly history: Database<SchemaVersionRecord, VersionKey>;
  private readonly listeners = new Set<SchemaChangeListener>();
  private closed = false;

  constructor(dataDir: string, options: RegistryOptions) {
    const path = join(dataDir, REGISTRY_DIR);
    if (!options.readOnly) mkdirDurably(path);
    // The same option style as WorkerEnv (lmdb needs one set of options per path in a process).
    this.env = open({ path, maxDbs: 4, mapSize: options.mapSizeMib * 1024 * 1024, readOnly: options.readOnly ?? false, overlappingSync: true, noMemInit: false });
    this.current = this.env.openDB<SchemaRecord, CurrentKey>({ name: 'schemas' });
    this.history = this.env.openDB<SchemaVersionRecord, VersionKey>({ name: 'schema_versions' });
  }

  /** Every schema in force for the tenant, by aggregate name. */
  list(tenant: string): SchemaRecord[] {
    const out: SchemaRecord[] = [];
    for (const { value } of this.current.getRange({ start: [tenant, ''], end: [tenant, KEY_MAX] })) out.push(checked(value, tenant));
    return out;
  }

  /** Every schema in force, every tenant (what the enforcement loads at start). */
  *all(): Iterable<SchemaRecord> {
    for (const { value } of this.current.getRange({})) yield value;
  }

  get(tenant: string, aggregate: string): SchemaRecord | undefined {
    const record = this.current.get([tenant, aggregate]);
    return record === undefined ? undefined : checked(record, tenant, aggregate);
  }

  /** A schema's history, oldest first, after version `after`, at most `take` entries. */
  versions(tenant: string, aggregate: string, options: { after?: number; take?: number } = {}): SchemaVersionRecord[] {
    const out: SchemaVersionRecord[] = [];
    const range = this.history.getRange({
      start: [tenant, aggregate, (options.after ?? 0) + 1],
      end: [tenant, aggregate, Number.MAX_SAFE_INTEGER],
      ...(options.take !== undefined ? { limit: options.take } : {}),
    });
    for (const { value } of range) out.push(value);
    return out;
  }

  version(tenant: string, aggregate: string, version: number): SchemaVersionRecord | undefined {
    return this.history.get([tenant, aggregate, version]);
  }

  /**
   * Stores `schema` (already parsed and validated) as the tenant's schema for `schema.aggregate`.
   * `created_at` is kept from the schema in force, `updated_at` is now. A schema equal to the one
   * in force (timestamps aside) is not a change: no new version, the current record is returned,
   * so re-applying a file is idempotent.
   */
  async put(tenant: string, schema: AggregateSchema, options: PutOptions = {}): Promise<SchemaRecord> {
    this.assertOpen();
    const aggregate = schema.aggregate;
    const now = (options.now ?? new Date()).toISOString();
    let result: SchemaRecord | undefined;
    let changed = false;
    this.env.transactionSync(() => {
      const existing = this.current.get([tenant, aggregate]);
      if (options.createOnly && existing) throw new DbxError('already_exists', `schema already exists for aggregate ${aggregate}`, { version: existing.version });
      // Before the version check: a retried PUT whose first answer was lost finds its own change.
      if (existing && sameContent(existing.schema, schema)) {
        result = existing;
        return;
      }
      checkExpected(existing, options.expectedVersion, aggregate);
      const version = this.lastVersion(tenant, aggregate) + 1;
      const stored: AggregateSchema = { ...schema, created_at: existing?.schema.created_at ?? now, updated_at: now };
      const record: SchemaRecord = { tenant, version, schema: stored };
      assertRecord(record, tenant, aggregate);
      this.current.put([tenant, aggregate], record);
      this.history.put([tenant, aggregate, version], { ...record, deleted: false, recorded_at: now });
      result = record;
      changed = true;
    }, DURABLE_TXN_FLAGS);
    const record = result as SchemaRecord;
    if (changed) await this.emit({ tenant, aggregate, version: record.version, record });
    return record;
  }

  /** Removes the schema in force, leaving a tombstone version; 404 if there is none. */
  async delete(tenant: string, aggregate: string, options: { expectedVersion?: number; now?: Date } = {}): Promise<SchemaVersionRecord> {
    this.assertOpen();
    const now = (options.now ?? new Date()).toISOString();
    let tombstone: SchemaVersionRecord | undefined;
    this.env.transactionSync(() => {
      const existing = this.current.get([tenant, aggregate]);
      if (!existing) throw schemaNotFound(aggregate);
      checkExpected(existing, options.expectedVersion, aggregate);
      const version = this.lastVersion(tenant, aggregate) + 1;
      tombstone = { tenant, version, schema: existing.schema, deleted: true, recorded_at: now };
      this.current.remove([tenant, aggregate]);
      this.history.put([tenant, aggregate, version], tombstone);
    }, DURABLE_TXN_FLAGS);
    const record = tombstone as SchemaVersionRecord;
    await this.emit({ tenant, aggregate, version: record.version, record: null });
    return record;
  }

  /**
   * Called after every change is durable, before the HTTP answer: an enforcement that awaits its
   * workers here makes "PUT answered" mean "writes are checked against it". Returns an unsubscribe.
   */
  onChange(listener: SchemaChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await this.env.flushed;
    await this.env.close();
  }

  private lastVersion(tenant: string, aggregate: string): number {
    for (const { key } of this.history.getRange({ start: [tenant, aggregate, Number.MAX_SAFE_INTEGER], end: [tenant, aggregate, 0], reverse: true, limit: 1 })) {
      return key[2];
    }
    return 0;
  }

  private async emit(change: SchemaChange): Promise<void> {
    await Promise.all([...this.listeners].map((listener) => listener(change)));
  }

  private assertOpen(): void {
    if (this.closed) throw new DbxError('unavailable', 'the schema registry is closed');
  }
}

export function schemaNotFound(aggregate: string): DbxError {
  return new DbxError('not_found', `schema not found for aggregate ${aggregate}`);
}

function checkExpected(existing: SchemaRecord | undefined, expected: number | undefined, aggregate: string): void {
  if (expected === undefined) return;
  const current = existing?.version ?? 0;
  if (current !== expected) {
    throw new DbxError('version_conflict', `schema ${aggregate} is at version ${current}, not ${expected}`, { current_version: current });
  }
}

/** Equal apart from the timestamps the registry owns. */
function sameContent(a: AggregateSchema, b: AggregateSchema): boolean {
  const strip = ({ created_at: _c, updated_at: _u, ...rest }: AggregateSchema) => rest;
  return stableJson(strip(a)) === stableJson(strip(b));
}

function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) : v,
  );
}

/** Asserted right before writing and right after reading (a record under the wrong key is a bug). */
function assertRecord(record: SchemaRecord, tenant: string, aggregate?: string): void {
  if (record.tenant !== tenant || (aggregate !== undefined && record.schema.aggregate !== aggregate) || !Number.isSafeInteger(record.version) || record.version < 1) {
    throw new DbxError('internal', 'schema registry record does not match its key', undefined, { cause: { tenant, aggregate, version: record.version } });
  }
}

function checked(record: SchemaRecord, tenant: string, aggregate?: string): SchemaRecord {
  assertRecord(record, tenant, aggregate);
  return record;
}
