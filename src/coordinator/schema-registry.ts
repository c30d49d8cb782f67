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
 * With a data encryption key every value is sealed (DESIGN §5: "encrypted when a DEK is set"):
 * a schema's notes, rules and hidden field names say a lot about the data. Keys (tenant, aggregate
 * name, version) stay readable, like aggregate types in the shards. Values written before the key
 * was configured are sealed when the registry is next opened for writing.
 *
 * Schemas change rarely and are read on every write (by the enforcement, through `get` and
 * `onChange`), so each change is its own durable transaction (~300 µs) and reads are plain LMDB
 * reads without a round trip.
 */
import { fsyncDirectory, mkdirDurably } from '../core/durable-file.js';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { DbxError, type ValueCipher } from '../core/index.js';
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
  /** Seals every value (and opens sealed ones); null or absent: plaintext. */
  cipher?: ValueCipher | null;
}

/** A sealed registry value: the record's JSON, sealed with the data key. */
interface SealedValue {
  sealed: Uint8Array;
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
  private readonly current: Database<SchemaRecord | SealedValue, CurrentKey>;
  private readonly history: Database<SchemaVersionRecord | SealedValue, VersionKey>;
  private readonly cipher: ValueCipher | null;
  private readonly listeners = new Set<SchemaChangeListener>();
  private closed = false;

  constructor(dataDir: string, options: RegistryOptions) {
    const path = join(dataDir, REGISTRY_DIR);
    if (!options.readOnly) mkdirDurably(path);
    // The same option style as WorkerEnv (lmdb needs one set of options per path in a process).
    this.env = open({ path, maxDbs: 4, mapSize: options.mapSizeMib * 1024 * 1024, readOnly: options.readOnly ?? false, overlappingSync: true, noMemInit: false });
    if (!options.readOnly) fsyncDirectory(path); // data.mdb's entry, made by open, is durable before any commit counts
    this.current = this.env.openDB<SchemaRecord | SealedValue, CurrentKey>({ name: 'schemas' });
    this.history = this.env.openDB<SchemaVersionRecord | SealedValue, VersionKey>({ name: 'schema_versions' });
    this.cipher = options.cipher ?? null;
    if (this.cipher && !options.readOnly) this.sealPlaintext();
  }

  private seal<T extends SchemaRecord>(record: T): T | SealedValue {
    return this.cipher ? { sealed: this.cipher.seal(JSON.stringify(record)) } : record;
  }

  private open<T extends SchemaRecord>(value: T | SealedValue): T {
    if (!isSealed(value)) return value;
    if (!this.cipher) throw new DbxError('unavailable', 'the schema registry is encrypted: configure the data encryption key');
    return JSON.parse(this.cipher.open(Buffer.from(value.sealed)).toString('utf8')) as T;
  }

  /** Values written before a data key was configured: sealed in one durable transaction. */
  private sealPlaintext(): void {
    const plain = (db: Database<SchemaRecord | SealedValue, (string | number)[]>) => [...db.getRange({})].filter((e) => !isSealed(e.value));
    const current = plain(this.current as unknown as Database<SchemaRecord | SealedValue, (string | number)[]>);
    const history = plain(this.history as unknown as Database<SchemaRecord | SealedValue, (string | number)[]>);
    if (current.length === 0 && history.length === 0) return;
    this.env.transactionSync(() => {
      for (const { key, value } of current) void this.current.put(key as CurrentKey, this.seal(value as SchemaRecord));
      for (const { key, value } of history) void this.history.put(key as VersionKey, this.seal(value as SchemaVersionRecord));
    }, DURABLE_TXN_FLAGS);
  }

  /** Every schema in force for the tenant, by aggregate name. */
  list(tenant: string): SchemaRecord[] {
    const out: SchemaRecord[] = [];
    for (const { value } of this.current.getRange({ start: [tenant, ''], end: [tenant, KEY_MAX] })) out.push(checked(this.open(value), tenant));
    return out;
  }

  /** Every schema in force, every tenant (what the enforcement loads at start). */
  *all(): Iterable<SchemaRecord> {
    for (const { value } of this.current.getRange({})) yield this.open(value);
  }

  get(tenant: string, aggregate: string): SchemaRecord | undefined {
    const record = this.current.get([tenant, aggregate]);
    return record === undefined ? undefined : checked(this.open(record), tenant, aggregate);
  }

  /** A schema's history, oldest first, after version `after`, at most `take` entries. */
  versions(tenant: string, aggregate: string, options: { after?: number; take?: number } = {}): SchemaVersionRecord[] {
    const out: SchemaVersionRecord[] = [];
    const range = this.history.getRange({
      start: [tenant, aggregate, (options.after ?? 0) + 1],
      end: [tenant, aggregate, Number.MAX_SAFE_INTEGER],
      ...(options.take !== undefined ? { limit: options.take } : {}),
    });
    for (const { value } of range) out.push(this.open(value));
    return out;
  }

  version(tenant: string, aggregate: string, version: number): SchemaVersionRecord | undefined {
    const value = this.history.get([tenant, aggregate, version]);
    return value === undefined ? undefined : this.open(value);
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
      const storedNow = this.current.get([tenant, aggregate]);
      const existing = storedNow === undefined ? undefined : this.open(storedNow);
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
      this.current.put([tenant, aggregate], this.seal(record));
      this.history.put([tenant, aggregate, version], this.seal({ ...record, deleted: false, recorded_at: now }));
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
      const stored = this.current.get([tenant, aggregate]);
      const existing = stored === undefined ? undefined : this.open(stored);
      if (!existing) throw schemaNotFound(aggregate);
      checkExpected(existing, options.expectedVersion, aggregate);
      const version = this.lastVersion(tenant, aggregate) + 1;
      tombstone = { tenant, version, schema: existing.schema, deleted: true, recorded_at: now };
      this.current.remove([tenant, aggregate]);
      this.history.put([tenant, aggregate, version], this.seal(tombstone));
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

function isSealed(value: unknown): value is SealedValue {
  return typeof value === 'object' && value !== null && 'sealed' in value && (value as SealedValue).sealed instanceof Uint8Array;
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
