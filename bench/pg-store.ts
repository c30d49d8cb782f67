/**
 * The PostgreSQL event store for `--compare pg`: the same model as EventDBX (aggregate head + state
 * row, one row per event, version check, archive as an event), with ONE atomic statement per write
 * — a CTE that moves the head and inserts the event — and synchronous_commit left at its default
 * (on), so an acknowledged write is durable like EventDBX's sync mode. It does not hash or keep
 * Merkle roots; that work is EventDBX's alone.
 */
import pg from 'pg';

// bigint columns as numbers (versions stay far below 2^53); event ids are turned back into strings.
pg.types.setTypeParser(20, (v: string) => Number(v));

export const PG_DEFAULTS = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

export async function resetSchema(client: pg.ClientBase): Promise<void> {
  await client.query('DROP TABLE IF EXISTS pg_events, pg_aggregates');
  await client.query(`CREATE TABLE pg_aggregates (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    version bigint NOT NULL,
    state jsonb NOT NULL,
    archived boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id))`);
  await client.query(`CREATE TABLE pg_events (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    version bigint NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    note text,
    event_id bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, version))`);
}

const EVENT_COLUMNS = 'aggregate_type, aggregate_id, version, event_type, payload, note, event_id, created_at';
const HEAD_COLUMNS = 'aggregate_type, aggregate_id, version, state, archived, created_at, updated_at';

/** Named statements: parsed once per connection, like a real service would. */
export const SQL = {
  /** Apply: upsert the head (merge payload, drop keys set to null), version check, insert the event. */
  apply: {
    name: 'apply',
    text: `WITH head AS (
      INSERT INTO pg_aggregates AS a (aggregate_type, aggregate_id, version, state, archived, created_at, updated_at)
      SELECT $1, $2, 1, $3::jsonb - $4::text[], false, now(), now() WHERE $5::bigint IS NULL OR $5::bigint = 0
      ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
        SET version = a.version + 1, state = (a.state || $3::jsonb) - $4::text[], updated_at = now()
        WHERE NOT a.archived AND ($5::bigint IS NULL OR a.version = $5::bigint)
      RETURNING version)
    INSERT INTO pg_events (aggregate_type, aggregate_id, version, event_type, payload, note, created_at)
      SELECT $1, $2, head.version, $6, $3::jsonb, $7, now() FROM head
      RETURNING ${EVENT_COLUMNS}`,
  },
  create: {
    name: 'create',
    text: `WITH head AS (
      INSERT INTO pg_aggregates (aggregate_type, aggregate_id, version, state, archived, created_at, updated_at)
      VALUES ($1, $2, 1, $3::jsonb - $4::text[], false, now(), now())
      ON CONFLICT DO NOTHING
      RETURNING ${HEAD_COLUMNS}),
    ev AS (
      INSERT INTO pg_events (aggregate_type, aggregate_id, version, event_type, payload, note, created_at)
      SELECT $1, $2, 1, $5, $3::jsonb, $6, now() FROM head)
    SELECT * FROM head`,
  },
  /** Archive ($3 = true) or restore ($3 = false): flip the flag, bump the version, insert the event. */
  lifecycle: {
    name: 'lifecycle',
    text: `WITH head AS (
      UPDATE pg_aggregates SET archived = $3, version = version + 1, updated_at = now()
      WHERE aggregate_type = $1 AND aggregate_id = $2 AND archived <> $3 AND ($6::bigint IS NULL OR version = $6::bigint)
      RETURNING ${HEAD_COLUMNS}),
    ev AS (
      INSERT INTO pg_events (aggregate_type, aggregate_id, version, event_type, payload, note, created_at)
      SELECT $1, $2, head.version, $4, $5::jsonb, NULL, now() FROM head)
    SELECT * FROM head`,
  },
  get: { name: 'get', text: `SELECT ${HEAD_COLUMNS} FROM pg_aggregates WHERE aggregate_type = $1 AND aggregate_id = $2` },
  events: {
    name: 'events',
    text: `SELECT ${EVENT_COLUMNS} FROM pg_events WHERE aggregate_type = $1 AND aggregate_id = $2 AND version > $3 ORDER BY version LIMIT $4`,
  },
  list: {
    name: 'list',
    text: `SELECT ${HEAD_COLUMNS} FROM pg_aggregates
      WHERE aggregate_type = $1 AND aggregate_id > $2 AND archived = $3 ORDER BY aggregate_id LIMIT $4`,
  },
  /** Seeding only: first events of new aggregates, all-or-nothing (a duplicate fails the statement). */
  seed: {
    name: 'seed',
    text: `WITH input AS (
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[]) AS t(aggregate_type, aggregate_id, event_type, payload)),
    head AS (
      INSERT INTO pg_aggregates (aggregate_type, aggregate_id, version, state, archived, created_at, updated_at)
      SELECT aggregate_type, aggregate_id, 1, payload, false, now(), now() FROM input)
    INSERT INTO pg_events (aggregate_type, aggregate_id, version, event_type, payload, created_at)
      SELECT aggregate_type, aggregate_id, 1, event_type, payload, now() FROM input
      RETURNING aggregate_type, aggregate_id, version`,
  },
};

export type JsonPatchOp = { op: 'add' | 'replace' | 'remove' | 'test' | 'move' | 'copy'; path: string; value?: unknown; from?: string };

/** RFC 6901 pointer → the text[] path jsonb functions take. */
export function pointerPath(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * Patch as ONE statement: add/replace/remove become nested jsonb_set / #- expressions over the
 * current state; replace and remove require the path to exist (RFC 6902). Other ops are refused.
 */
export function patchStatement(ops: JsonPatchOp[]): { text: string; extraParams: unknown[] } {
  const params: unknown[] = [];
  const param = (v: unknown, cast: string): string => {
    params.push(v);
    return `$${params.length + 6}::${cast}`;
  };
  let expr = 'a.state';
  const guards: string[] = [];
  for (const op of ops) {
    const path = param(pointerPath(op.path), 'text[]');
    if (op.op === 'add' || op.op === 'replace') {
      if (op.op === 'replace') guards.push(`a.state #> ${path} IS NOT NULL`);
      expr = `jsonb_set(${expr}, ${path}, ${param(JSON.stringify(op.value ?? null), 'jsonb')}, true)`;
    } else if (op.op === 'remove') {
      guards.push(`a.state #> ${path} IS NOT NULL`);
      expr = `(${expr} #- ${path})`;
    } else {
      throw new Error(`the PostgreSQL comparison store does not support patch op '${op.op}'`);
    }
  }
  // $1 type, $2 id, $3 event_type, $4 patch (stored as the payload), $5 note, $6 expected_version.
  const text = `WITH head AS (
    UPDATE pg_aggregates a SET version = a.version + 1, state = ${expr}, updated_at = now()
    WHERE a.aggregate_type = $1 AND a.aggregate_id = $2 AND NOT a.archived AND ($6::bigint IS NULL OR a.version = $6::bigint)
      ${guards.map((g) => `AND ${g}`).join(' ')}
    RETURNING a.version)
  INSERT INTO pg_events (aggregate_type, aggregate_id, version, event_type, payload, note, created_at)
    SELECT $1, $2, head.version, $3, $4::jsonb, $5, now() FROM head
    RETURNING ${EVENT_COLUMNS}`;
  return { text, extraParams: params };
}

/** Event rows shaped like EventDBX's event record (without hash and merkle_root). */
export function eventView(row: Record<string, unknown>): Record<string, unknown> {
  return {
    aggregate_type: row.aggregate_type,
    aggregate_id: row.aggregate_id,
    event_type: row.event_type,
    version: row.version,
    payload: row.payload,
    metadata: { event_id: String(row.event_id), created_at: row.created_at, ...(row.note ? { note: row.note } : {}) },
  };
}
