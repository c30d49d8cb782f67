/**
 * The `postgres` kind: a read model with one table per aggregate type and one row per aggregate,
 * upserted from the state after each event.
 *
 * Table `<pg_schema>.<table_prefix><aggregate_type>` (created when missing, with the schema):
 *   tenant text, aggregate_id text, version bigint, merkle_root text, archived boolean,
 *   updated_at timestamptz, last_event_id text, state jsonb, PRIMARY KEY (tenant, aggregate_id)
 * plus one typed column per field of the schema's `column_types` when the job carries a schema
 * (postgres-columns.ts maps the types), added by ALTER TABLE … ADD COLUMN IF NOT EXISTS as fields
 * appear. Every column besides the eight above is a field column: set on each upsert from the state
 * field of the same name (NULL when absent), so the row always mirrors the latest state. A field
 * whose name is one of the eight, or longer than 63 bytes, gets no column (it stays in `state`).
 * `archived` is NULL unless the state is sent as a full aggregate view; `updated_at` is the event's
 * time (now() when the job has none).
 *
 * Idempotent on replay: `ON CONFLICT (tenant, aggregate_id) DO UPDATE … WHERE cur.version <
 * EXCLUDED.version`, so a row never moves back to an older version, and a replay of the same
 * version changes nothing. Needs the state: payload modes `all` or `state-only` (POSTGRES_MODES).
 */
import pg from 'pg';
import { z } from 'zod';
import { postgresOptions, type Deliverer, type Delivery, type DeliveryBody, type PayloadMode } from '../types.js';
import type { DelivererContext } from './context.js';
import { checkBodyIds, parseOptions, stateParts, type StateParts } from './read-model.js';
import { shortReason } from './wire.js';
import { UNCONVERTIBLE, columnForSchemaType, columnFromCatalog, isValidIdent, quoteIdent, sameKind, toParam, type PgColumn } from './postgres-columns.js';

/** The payload modes that carry the state; config validation refuses a postgres plugin in others. */
export const POSTGRES_MODES = ['all', 'state-only'] as const satisfies readonly PayloadMode[];
export function postgresAcceptsMode(mode: PayloadMode): boolean {
  return (POSTGRES_MODES as readonly PayloadMode[]).includes(mode);
}

export const POSTGRES_BASE_COLUMNS = ['tenant', 'aggregate_id', 'version', 'merkle_root', 'archived', 'updated_at', 'last_event_id', 'state'] as const;
const BASE: ReadonlySet<string> = new Set(POSTGRES_BASE_COLUMNS);

// Limits of one deliverer's pool: deliveries are sequential per aggregate, so two connections cover
// overlap between aggregates; a stuck statement fails the job (and retries) instead of hanging it.
const POOL_CONNECTIONS_MAX = 2;
const CONNECT_TIMEOUT_MS = 10_000;
const STATEMENT_TIMEOUT_MS = 30_000;
const IDLE_TIMEOUT_MS = 30_000;

/** The part of an AggregateSchema this kind reads; the rest is ignored. */
const schemaColumns = z.object({
  column_types: z.record(z.string(), z.union([z.string(), z.object({ type: z.string() })])).nullish(),
});

interface TableState {
  /** field columns only (base columns excluded), as the database has them */
  columns: Map<string, PgColumn>;
}

const pgCode = (err: unknown): string | undefined => (err as { code?: unknown })?.code as string | undefined;

export function createPostgresDeliverer(options: z.input<typeof postgresOptions>, ctx: DelivererContext): Deliverer {
  const opts = parseOptions('postgres', postgresOptions, options);
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: POOL_CONNECTIONS_MAX,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: IDLE_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    application_name: `eventdbx-plugin-${ctx.name}`.slice(0, 63),
  });
  // An idle client losing its connection emits here; unhandled, it would end the worker thread.
  pool.on('error', (err) => ctx.log('warn', `postgres plugin ${ctx.name}: idle connection lost: ${err.message}`));
  const tables = new Map<string, TableState>();
  const warned = new Set<string>();
  const warnOnce = (key: string, msg: string): void => {
    if (warned.has(key)) return;
    warned.add(key);
    ctx.log('warn', `postgres plugin ${ctx.name}: ${msg}`);
  };

  const tableName = (type: string): string => `${opts.table_prefix}${type}`;
  const qualified = (type: string): string => `${quoteIdent(opts.pg_schema)}.${quoteIdent(tableName(type))}`;

  async function loadColumns(type: string): Promise<TableState> {
    const res = await pool.query<{ column_name: string; data_type: string; numeric_precision: number | null; numeric_scale: number | null }>(
      `SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns
        WHERE table_schema = $1 AND table_name = $2`,
      [opts.pg_schema, tableName(type)],
    );
    const columns = new Map<string, PgColumn>();
    for (const row of res.rows) {
      if (BASE.has(row.column_name)) continue;
      const column = columnFromCatalog(row.data_type, row.numeric_precision, row.numeric_scale);
      if (column === undefined) warnOnce(`type:${type}.${row.column_name}`, `column ${tableName(type)}.${row.column_name} has type ${row.data_type}, which this plugin does not write`);
      else columns.set(row.column_name, column);
    }
    const state = { columns };
    tables.set(type, state);
    return state;
  }

  async function createTable(type: string): Promise<void> {
    const sql = `CREATE TABLE IF NOT EXISTS ${qualified(type)} (
      tenant text NOT NULL, aggregate_id text NOT NULL, version bigint NOT NULL, merkle_root text,
      archived boolean, updated_at timestamptz NOT NULL, last_event_id text NOT NULL, state jsonb NOT NULL,
      PRIMARY KEY (tenant, aggregate_id))`;
    try {
      await pool.query(sql);
    } catch (err) {
      if (pgCode(err) === '3F000') {
        await pool.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(opts.pg_schema)}`);
        return createTable(type);
      }
      // Two deliverers creating the same table at once: IF NOT EXISTS can still collide in pg_type.
      if (pgCode(err) !== '23505' && pgCode(err) !== '42P07') throw err;
    }
  }

  /** The field columns the schema asks for, valid names only; warns once about the others. */
  function wantedColumns(type: string, schema: unknown): Map<string, PgColumn> {
    const wanted = new Map<string, PgColumn>();
    if (schema === undefined || schema === null) return wanted;
    const parsed = schemaColumns.safeParse(schema);
    if (!parsed.success) {
      warnOnce(`schema:${type}`, `the schema of ${type} has an unexpected shape; no typed columns`);
      return wanted;
    }
    for (const [field, setting] of Object.entries(parsed.data.column_types ?? {})) {
      const column = columnForSchemaType(typeof setting === 'string' ? setting : setting.type);
      if (column === undefined) warnOnce(`stype:${type}.${field}`, `field ${type}.${field} has an unknown schema type; no column`);
      else if (BASE.has(field) || !isValidIdent(field)) warnOnce(`name:${type}.${field}`, `field ${type}.${field} cannot have its own column (reserved or too long); it stays in state`);
      else wanted.set(field, column);
    }
    return wanted;
  }

  async function ensureTable(body: DeliveryBody): Promise<TableState> {
    const type = body.aggregate_type;
    let state = tables.get(type);
    if (state === undefined) {
      await createTable(type);
      state = await loadColumns(type);
    }
    const missing: [string, PgColumn][] = [];
    for (const [field, column] of wantedColumns(type, body.schema)) {
      const existing = state.columns.get(field);
      if (existing === undefined) missing.push([field, column]);
      else if (!sameKind(existing, column)) {
        warnOnce(`kind:${type}.${field}:${column.sql}`, `column ${tableName(type)}.${field} is ${existing.sql}, the schema says ${column.sql}; keeping ${existing.sql}`);
      }
    }
    if (missing.length > 0) {
      const adds = missing.map(([field, column]) => `ADD COLUMN IF NOT EXISTS ${quoteIdent(field)} ${column.sql}`).join(', ');
      await pool.query(`ALTER TABLE ${qualified(type)} ${adds}`);
      state = await loadColumns(type);
    }
    return state;
  }

  async function upsert(body: DeliveryBody, parts: StateParts, table: TableState): Promise<void> {
    const names: string[] = [...POSTGRES_BASE_COLUMNS];
    const values: unknown[] = [
      body.tenant,
      body.aggregate_id,
      body.version,
      parts.merkle_root,
      parts.archived,
      parts.updated_at,
      body.event_id,
      JSON.stringify(parts.fields),
    ];
    for (const [field, column] of table.columns) {
      const param = toParam(Object.hasOwn(parts.fields, field) ? parts.fields[field] : undefined, column);
      if (param === UNCONVERTIBLE) warnOnce(`value:${body.aggregate_type}.${field}`, `a value of ${body.aggregate_type}.${field} does not fit ${column.sql}; written as NULL (kept in state)`);
      names.push(field);
      values.push(param === UNCONVERTIBLE ? null : param);
    }
    const placeholders = names.map((name, i) => (name === 'updated_at' ? `COALESCE($${i + 1}::timestamptz, now())` : `$${i + 1}`));
    const updates = names.filter((n) => n !== 'tenant' && n !== 'aggregate_id').map((n) => `${quoteIdent(n)} = EXCLUDED.${quoteIdent(n)}`);
    const sql =
      `INSERT INTO ${qualified(body.aggregate_type)} AS cur (${names.map(quoteIdent).join(', ')}) VALUES (${placeholders.join(', ')}) ` +
      `ON CONFLICT (tenant, aggregate_id) DO UPDATE SET ${updates.join(', ')} WHERE cur.version < EXCLUDED.version`;
    await pool.query(sql, values);
  }

  async function deliver(delivery: Delivery): Promise<void> {
    const body = delivery.body;
    checkBodyIds(body);
    const parts = stateParts(body);
    if (parts === undefined) {
      throw new Error(`postgres: the job carries no state; a postgres plugin needs payload mode ${POSTGRES_MODES.join(' or ')}`);
    }
    try {
      const table = await ensureTable(body);
      try {
        await upsert(body, parts, table);
      } catch (err) {
        // A column dropped or retyped by hand since we looked: read the catalogue again next time.
        if (pgCode(err) === '42703' || pgCode(err) === '42804' || pgCode(err) === '42P01') tables.delete(body.aggregate_type);
        throw err;
      }
    } catch (err) {
      throw wrap(err, ctx);
    }
  }

  return {
    deliver,
    async check(): Promise<void> {
      try {
        await pool.query('SELECT 1');
      } catch (err) {
        throw wrap(err, ctx);
      }
    },
    async close(): Promise<void> {
      await pool.end();
    },
  };
}

const SQLSTATE_REASONS: Readonly<Record<string, string>> = {
  '28000': 'authentication failed',
  '28P01': 'authentication failed',
  '3D000': 'database does not exist',
  '3F000': 'schema does not exist',
  '42501': 'permission denied',
  '42P01': 'table is missing',
  '42703': 'column is missing',
  '42804': 'column has another type',
  '57014': 'statement timed out',
  '40001': 'serialization failure',
  '40P01': 'deadlock',
};
const SQLSTATE_CLASSES: Readonly<Record<string, string>> = {
  '08': 'connection failure',
  '22': 'value refused',
  '23': 'constraint violated',
  '53': 'server out of resources',
  '57': 'server unavailable',
};

/**
 * A stable short reason for a job's `last_error` (an API answer: no library or server text, which
 * can quote values and change between versions); the full message goes to the server log.
 */
function wrap(err: unknown, ctx: DelivererContext): Error {
  if (err instanceof Error && err.message.startsWith('postgres: ')) return err;
  const code = pgCode(err);
  const message = err instanceof Error ? err.message : String(err);
  ctx.log('warn', `postgres plugin ${ctx.name}: ${message.slice(0, 500)}${code ? ` (${code})` : ''}`);
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    const reason = SQLSTATE_REASONS[code] ?? SQLSTATE_CLASSES[code.slice(0, 2)] ?? 'server error';
    return new Error(`postgres: ${reason} (SQLSTATE ${code})`, { cause: err });
  }
  // pg's own failures carry no code; these two are the ones a deployment meets.
  if (/timeout exceeded when trying to connect/i.test(message)) return new Error('postgres: connect timed out', { cause: err });
  if (/connection terminated/i.test(message)) return new Error('postgres: connection closed by the peer', { cause: err });
  return new Error(`postgres: ${shortReason(err)}`, { cause: err });
}
