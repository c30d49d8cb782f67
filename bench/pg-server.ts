/**
 * Child process for `--compare pg`: a small fastify server answering the benchmark's subset of the
 * EventDBX HTTP API from PostgreSQL (bench/pg-store.ts), so both stores are measured over HTTP by
 * the same client. Like the real server it logs nothing per request; unlike it, it checks no token
 * and validates little (which only flatters PostgreSQL). Prints {"port": n} once listening.
 *
 * Usage: node dist/bench/pg-server.js --pg <connection string> --pool <connections>
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import Fastify, { type FastifyReply } from 'fastify';
import pg from 'pg';
import { SQL, eventView, patchStatement, type JsonPatchOp } from './pg-store.js';

const { values } = parseArgs({ options: { pg: { type: 'string' }, pool: { type: 'string', default: '32' } } });
const pool = new pg.Pool({ connectionString: values.pg, max: Number(values.pool) });

type Row = Record<string, unknown>;
type Params = { type: string; id: string };

function fail(reply: FastifyReply, status: number, code: string, message: string): { error: { code: string; message: string } } {
  reply.code(status);
  return { error: { code, message } };
}

function nullKeys(payload: Record<string, unknown>): string[] {
  return Object.keys(payload).filter((k) => payload[k] === null);
}

function headView(row: Row): Row {
  return {
    aggregate_type: row.aggregate_type,
    aggregate_id: row.aggregate_id,
    version: row.version,
    state: row.state,
    archived: row.archived,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** Only on the failure path: why did the guarded statement touch no row? */
async function explain(reply: FastifyReply, p: Params, expected: number | undefined, missingStatus = 404) {
  const head = (await pool.query({ ...SQL.get, values: [p.type, p.id] })).rows[0] as Row | undefined;
  if (!head && expected !== undefined) return fail(reply, 409, 'version_conflict', `aggregate ${p.type}/${p.id} is at version 0`);
  if (!head) return fail(reply, missingStatus, 'not_found', `aggregate ${p.type}/${p.id} not found`);
  if (expected !== undefined && head.version !== expected) return fail(reply, 409, 'version_conflict', `aggregate is at version ${String(head.version)}`);
  if (head.archived) return fail(reply, 409, 'aggregate_archived', `aggregate ${p.type}/${p.id} is archived`);
  return fail(reply, 409, 'invalid_input', 'the write did not apply (restore of an active aggregate, or a patch path that does not exist)');
}

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

type WriteBody = { event_type: string; payload?: Record<string, unknown>; note?: string; expected_version?: number };

app.post<{ Params: Params; Body: WriteBody }>('/v1/aggregates/:type/:id', async (request, reply) => {
  const { type, id } = request.params;
  const payload = request.body.payload ?? {};
  const rows = (await pool.query({ ...SQL.create, values: [type, id, payload, nullKeys(payload), request.body.event_type, request.body.note ?? null] })).rows;
  if (!rows[0]) return fail(reply, 409, 'already_exists', `aggregate ${type}/${id} already exists`);
  reply.code(201);
  return headView(rows[0]);
});

app.post<{ Params: Params; Body: WriteBody }>('/v1/aggregates/:type/:id/events', async (request, reply) => {
  const { type, id } = request.params;
  const b = request.body;
  const payload = b.payload ?? {};
  const values = [type, id, payload, nullKeys(payload), b.expected_version ?? null, b.event_type, b.note ?? null];
  const rows = (await pool.query({ ...SQL.apply, values })).rows;
  if (!rows[0]) return explain(reply, request.params, b.expected_version, 404);
  reply.code(201);
  return eventView(rows[0]);
});

app.post<{ Params: Params; Body: WriteBody & { patch: JsonPatchOp[] } }>('/v1/aggregates/:type/:id/patch', async (request, reply) => {
  const { type, id } = request.params;
  const b = request.body;
  const statement = patchStatement(b.patch);
  const name = `patch_${createHash('sha1').update(statement.text).digest('hex').slice(0, 16)}`;
  const values = [type, id, b.event_type, JSON.stringify(b.patch), b.note ?? null, b.expected_version ?? null, ...statement.extraParams];
  const rows = (await pool.query({ name, text: statement.text, values })).rows;
  if (!rows[0]) return explain(reply, request.params, b.expected_version, 404);
  reply.code(201);
  return eventView(rows[0]);
});

for (const op of ['archive', 'restore'] as const) {
  app.post<{ Params: Params; Body: { comment?: string; expected_version?: number } | undefined }>(`/v1/aggregates/:type/:id/${op}`, async (request, reply) => {
    const { type, id } = request.params;
    const b = request.body ?? {};
    const payload = b.comment !== undefined ? { comment: b.comment } : {};
    const values = [type, id, op === 'archive', op === 'archive' ? 'archived' : 'restored', payload, b.expected_version ?? null];
    const rows = (await pool.query({ ...SQL.lifecycle, values })).rows;
    if (!rows[0]) return explain(reply, request.params, b.expected_version, 404);
    return headView(rows[0]);
  });
}

app.post<{ Body: { events: (WriteBody & { aggregate_type: string; aggregate_id: string })[] } }>('/v1/batch', async (request, reply) => {
  const events = request.body.events;
  try {
    const values = [events.map((e) => e.aggregate_type), events.map((e) => e.aggregate_id), events.map((e) => e.event_type), events.map((e) => JSON.stringify(e.payload ?? {}))];
    const rows = (await pool.query({ ...SQL.seed, values })).rows;
    reply.code(201);
    return { events: rows };
  } catch (err) {
    // A duplicate means this batch was seeded already (the statement is all-or-nothing).
    if ((err as { code?: string }).code === '23505') return fail(reply, 409, 'version_conflict', 'an aggregate of this batch exists already');
    throw err;
  }
});

app.get<{ Params: Params }>('/v1/aggregates/:type/:id', async (request, reply) => {
  const row = (await pool.query({ ...SQL.get, values: [request.params.type, request.params.id] })).rows[0] as Row | undefined;
  return row ? headView(row) : fail(reply, 404, 'not_found', 'aggregate not found');
});

app.get<{ Params: Params; Querystring: { fields: string } }>('/v1/aggregates/:type/:id/select', async (request, reply) => {
  const row = (await pool.query({ ...SQL.get, values: [request.params.type, request.params.id] })).rows[0] as Row | undefined;
  if (!row) return fail(reply, 404, 'not_found', 'aggregate not found');
  const out: Row = {};
  for (const field of request.query.fields.split(',')) {
    let value: unknown = row.state;
    for (const part of field.split('.')) value = value !== null && typeof value === 'object' ? (value as Row)[part] : undefined;
    out[field] = value ?? null;
  }
  return out;
});

app.get<{ Params: Params; Querystring: { take?: string; cursor?: string } }>('/v1/aggregates/:type/:id/events', async (request) => {
  const { type, id } = request.params;
  const take = Math.min(Number(request.query.take ?? 100), 1000);
  const after = request.query.cursor ? Number(request.query.cursor.split(':')[3]) : 0;
  const rows = (await pool.query({ ...SQL.events, values: [type, id, after, take + 1] })).rows as Row[];
  const items = rows.slice(0, take).map(eventView);
  const last = items[items.length - 1];
  return { items, next_cursor: rows.length > take && last ? `a:${type}:${id}:${String(last.version)}` : null };
});

app.get<{ Params: { type: string }; Querystring: { take?: string; cursor?: string; archived_only?: string } }>('/v1/aggregates/:type', async (request) => {
  const { type } = request.params;
  const take = Math.min(Number(request.query.take ?? 10), 1000);
  const archived = request.query.archived_only === 'true';
  const after = request.query.cursor ? (request.query.cursor.split(':')[2] ?? '') : '';
  const rows = (await pool.query({ ...SQL.list, values: [type, after, archived, take + 1] })).rows as Row[];
  const items = rows.slice(0, take).map(headView);
  const last = items[items.length - 1];
  return { items, next_cursor: rows.length > take && last ? `${archived ? 'r' : 'a'}:${type}:${String(last.aggregate_id)}` : null };
});

app.setErrorHandler((err, _request, reply) => {
  process.stderr.write(`pg-server error: ${err instanceof Error ? err.stack : String(err)}\n`);
  void reply.code(500).send({ error: { code: 'internal', message: err instanceof Error ? err.message : String(err) } });
});

await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
const stop = (): void => {
  void app
    .close()
    .then(() => pool.end())
    .then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
