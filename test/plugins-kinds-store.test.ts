/**
 * The read-model plugin kinds against the real stores: PostgreSQL (127.0.0.1:5432), NATS JetStream
 * (127.0.0.1:4222) and the file kinds (csv, json) in a temp dir. Bodies are built by hand the way
 * the delivery pool builds them (DeliveryBody). A service test is skipped when its server is not
 * reachable (EDBX_TEST_PG_URL / EDBX_TEST_NATS point elsewhere). Each run uses its own table prefix
 * and stream name and removes them afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { connect, type NatsConnection } from 'nats';
import type { JsonObject } from '../src/core/index.js';
import type { Delivery, DeliveryBody } from '../src/plugins/types.js';
import type { DelivererContext } from '../src/plugins/kinds/context.js';
import { createPostgresDeliverer, POSTGRES_MODES } from '../src/plugins/kinds/postgres.js';
import { createNatsDeliverer, streamSubject } from '../src/plugins/kinds/nats.js';
import { createCsvDeliverer, parseCsv } from '../src/plugins/kinds/csv.js';
import { createJsonDeliverer } from '../src/plugins/kinds/json.js';
import { removeDir, tempDataDir } from './helpers/server.js';

const PG_URL = process.env['EDBX_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const NATS_SERVER = process.env['EDBX_TEST_NATS'] ?? '127.0.0.1:4222';
const run = randomBytes(4).toString('hex');
const dataDir = tempDataDir('edbx-kinds-');
const logs: string[] = [];
const ctx: DelivererContext = { name: 'kinds-test', dataDir, log: (level, msg) => logs.push(`${level} ${msg}`) };

let seq = 0;
interface BodyInput {
  tenant?: string;
  type?: string;
  id?: string;
  version: number;
  event_type?: string;
  event_id?: string;
  payload?: JsonObject;
  state?: JsonObject;
  schema?: unknown;
}
/** A body as payload mode `all` builds it (event, state, schema); omit `state` for other modes. */
function body(input: BodyInput): DeliveryBody {
  const event_id = input.event_id ?? `${run}-${++seq}`;
  const aggregate_type = input.type ?? 'order';
  const aggregate_id = input.id ?? 'o-1';
  const event_type = input.event_type ?? 'order_updated';
  const out: DeliveryBody = {
    event_id,
    tenant: input.tenant ?? 'acme',
    aggregate_type,
    aggregate_id,
    version: input.version,
    event_type,
    event: {
      aggregate_type,
      aggregate_id,
      event_type,
      version: input.version,
      payload: input.payload ?? {},
      extensions: {},
      metadata: { event_id, created_at: `2024-05-0${Math.min(input.version, 9)}T10:00:00.000Z`, issued_by: null },
      hash: 'a'.repeat(64),
      merkle_root: `root-${input.version}`,
    },
  };
  if (input.state !== undefined) out.state = input.state;
  if (input.schema !== undefined) out.schema = input.schema;
  return out;
}
const delivery = (b: DeliveryBody): Delivery => ({ job_id: `job-${b.event_id}`, plugin: 'kinds-test', attempt: 1, body: b });

after(() => removeDir(dataDir));

// ---------------------------------------------------------------- postgres

let pgUp = false;
const prefix = `t${run}_`;
before(async () => {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    pgUp = true;
  } catch {
    pgUp = false;
  } finally {
    await client.end().catch(() => undefined);
  }
});
after(async () => {
  if (!pgUp) return;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const res = await client.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE $1`, [`${prefix}%`]);
    for (const row of res.rows) await client.query(`DROP TABLE IF EXISTS public."${row.tablename}"`);
  } finally {
    await client.end();
  }
});

async function pgQuery<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

const orderSchema = {
  aggregate: 'order',
  column_types: {
    total: { type: 'decimal(10,2)' },
    count: { type: 'integer' },
    paid: { type: 'boolean' },
    placed_at: { type: 'timestamp' },
    day: { type: 'date' },
    meta: { type: 'json' },
    note: { type: 'text' },
    ratio: { type: 'float' },
    blob: { type: 'binary' },
  },
};

test('postgres kind - rows are upserted from the state, with typed columns from the schema', { timeout: 30_000 }, async (t) => {
  if (!pgUp) return t.skip(`postgres is not reachable at ${PG_URL}`);
  const d = createPostgresDeliverer({ kind: 'postgres', url: PG_URL, table_prefix: prefix }, ctx);
  try {
    await d.check();
    const state = { total: '12.50', count: 3, paid: true, placed_at: '2024-05-01T10:00:00Z', day: '2024-05-01', meta: { tags: ['a', 'b'] }, note: 'it\'s "quoted"', ratio: 0.25, blob: 'aGVsbG8=' };
    const first = body({ version: 1, state, schema: orderSchema });
    await d.deliver(delivery(first));
    await d.deliver(delivery(body({ tenant: 'other', version: 1, state: { count: 9 }, schema: orderSchema })));

    const columns = await pgQuery<{ column_name: string; data_type: string }>(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1`,
      [`${prefix}order`],
    );
    const typeOf = Object.fromEntries(columns.map((c) => [c.column_name, c.data_type]));
    assert.deepEqual(typeOf, {
      tenant: 'text', aggregate_id: 'text', version: 'bigint', merkle_root: 'text', archived: 'boolean', updated_at: 'timestamp with time zone',
      last_event_id: 'text', state: 'jsonb', total: 'numeric', count: 'bigint', paid: 'boolean', placed_at: 'timestamp with time zone',
      day: 'date', meta: 'jsonb', note: 'text', ratio: 'double precision', blob: 'bytea',
    });
    const rows = await pgQuery<Record<string, unknown>>(
      `SELECT tenant, aggregate_id, version::text, merkle_root, last_event_id, state, total::text, count::text, paid, placed_at, day::text,
              meta, note, ratio, encode(blob, 'escape') AS blob, updated_at FROM public."${prefix}order" ORDER BY tenant`,
    );
    assert.equal(rows.length, 2, 'one row per (tenant, aggregate_id)');
    const acme = rows[0] as Record<string, unknown>;
    assert.equal(acme['tenant'], 'acme');
    assert.equal(acme['version'], '1');
    assert.equal(acme['merkle_root'], 'root-1');
    assert.equal(acme['last_event_id'], first.event_id);
    assert.deepEqual(acme['state'], state);
    assert.equal(acme['total'], '12.50');
    assert.equal(acme['count'], '3');
    assert.equal(acme['paid'], true);
    assert.equal((acme['placed_at'] as Date).toISOString(), '2024-05-01T10:00:00.000Z');
    assert.equal(acme['day'], '2024-05-01');
    assert.deepEqual(acme['meta'], { tags: ['a', 'b'] });
    assert.equal(acme['note'], 'it\'s "quoted"');
    assert.equal(acme['ratio'], 0.25);
    assert.equal(acme['blob'], 'hello');
    assert.equal((acme['updated_at'] as Date).toISOString(), '2024-05-01T10:00:00.000Z');
    assert.equal((rows[1] as Record<string, unknown>)['count'], '9');
    assert.equal((rows[1] as Record<string, unknown>)['total'], null, 'a field absent from the state is NULL');
  } finally {
    await d.close();
  }
});

test('postgres kind - a replay of an older or the same version never moves the row back', { timeout: 30_000 }, async (t) => {
  if (!pgUp) return t.skip(`postgres is not reachable at ${PG_URL}`);
  const d = createPostgresDeliverer({ kind: 'postgres', url: PG_URL, table_prefix: prefix }, ctx);
  try {
    const v1 = body({ type: 'invoice', id: 'i-1', version: 1, state: { amount: 1 } });
    const v2 = body({ type: 'invoice', id: 'i-1', version: 2, state: { amount: 2 } });
    await d.deliver(delivery(v1));
    await d.deliver(delivery(v2));
    await d.deliver(delivery(v1)); // replay of an older event
    await d.deliver(delivery({ ...v2, state: { amount: 999 } } as DeliveryBody)); // same version again
    const rows = await pgQuery<{ version: string; state: unknown; last_event_id: string }>(`SELECT version::text, state, last_event_id FROM public."${prefix}invoice"`);
    assert.deepEqual(rows, [{ version: '2', state: { amount: 2 }, last_event_id: v2.event_id }]);
  } finally {
    await d.close();
  }
});

test('postgres kind - a new schema field adds its column; a value that does not fit is NULL, not a failure', { timeout: 30_000 }, async (t) => {
  if (!pgUp) return t.skip(`postgres is not reachable at ${PG_URL}`);
  const d = createPostgresDeliverer({ kind: 'postgres', url: PG_URL, table_prefix: prefix }, ctx);
  try {
    const v1 = { aggregate: 'cart', column_types: { items: 'integer' } };
    const v2 = { aggregate: 'cart', column_types: { items: 'integer', coupon: { type: 'text' }, version: 'integer' } };
    await d.deliver(delivery(body({ type: 'cart', id: 'c-1', version: 1, state: { items: 1 }, schema: v1 })));
    await d.deliver(delivery(body({ type: 'cart', id: 'c-1', version: 2, state: { items: 'many', coupon: 'SAVE10', version: 7 }, schema: v2 })));
    const rows = await pgQuery<{ items: string | null; coupon: string; version: string; state: unknown }>(
      `SELECT items::text, coupon, version::text, state FROM public."${prefix}cart"`,
    );
    assert.deepEqual(rows, [{ items: null, coupon: 'SAVE10', version: '2', state: { items: 'many', coupon: 'SAVE10', version: 7 } }]);
    assert.ok(logs.some((l) => l.includes('cart.items') && l.includes('NULL')), 'the unfit value is reported once');
    assert.ok(logs.some((l) => l.includes('cart.version') && l.includes('reserved')), 'a field named like a base column keeps no column');
  } finally {
    await d.close();
  }
});

test('postgres kind - a state sent as the full aggregate view fills archived and merkle_root', { timeout: 30_000 }, async (t) => {
  if (!pgUp) return t.skip(`postgres is not reachable at ${PG_URL}`);
  const d = createPostgresDeliverer({ kind: 'postgres', url: PG_URL, table_prefix: prefix }, ctx);
  try {
    const view = { aggregate_type: 'ticket', aggregate_id: 't-1', version: 4, state: { seat: '12A' }, merkle_root: 'view-root', archived: true, created_at: '2024-01-01T00:00:00Z', updated_at: '2024-06-01T00:00:00Z' };
    const b = body({ type: 'ticket', id: 't-1', version: 4, state: view });
    delete b.event; // state-only mode
    await d.deliver(delivery(b));
    const rows = await pgQuery<{ merkle_root: string; archived: boolean; state: unknown; updated_at: Date }>(`SELECT merkle_root, archived, state, updated_at FROM public."${prefix}ticket"`);
    assert.deepEqual(rows, [{ merkle_root: 'view-root', archived: true, state: { seat: '12A' }, updated_at: new Date('2024-06-01T00:00:00Z') }]);
  } finally {
    await d.close();
  }
});

test('postgres kind - a job without state is refused with the modes that work; check() reports an unreachable server', { timeout: 30_000 }, async (t) => {
  if (!pgUp) return t.skip(`postgres is not reachable at ${PG_URL}`);
  assert.deepEqual([...POSTGRES_MODES], ['all', 'state-only']);
  const d = createPostgresDeliverer({ kind: 'postgres', url: PG_URL, table_prefix: prefix }, ctx);
  const down = createPostgresDeliverer({ kind: 'postgres', url: 'postgres://postgres@127.0.0.1:1/test', table_prefix: prefix }, ctx);
  try {
    await assert.rejects(d.deliver(delivery(body({ type: 'nostate', version: 1 }))), /postgres: the job carries no state; .*all or state-only/);
    await assert.rejects(down.check(), { message: 'postgres: connection refused' });
  } finally {
    await d.close();
    await down.close();
  }
});

// ---------------------------------------------------------------- nats

let nc: NatsConnection | undefined;
const stream = `EDBXTEST_${run}`;
before(async () => {
  try {
    nc = await connect({ servers: NATS_SERVER, timeout: 2000, maxReconnectAttempts: 0 });
    await (await nc.jetstreamManager()).getAccountInfo();
  } catch {
    await nc?.close().catch(() => undefined);
    nc = undefined;
  }
});
after(async () => {
  if (nc === undefined) return;
  const jsm = await nc.jetstreamManager();
  await jsm.streams.delete(stream).catch(() => undefined);
  await nc.close();
});

test('nats kind - a redelivered event id is stored once; the subject is substituted', { timeout: 30_000 }, async (t) => {
  if (nc === undefined) return t.skip(`NATS JetStream is not reachable at ${NATS_SERVER}`);
  const subject = `edbxtest${run}.{tenant}.{aggregate}.{event}`;
  assert.equal(streamSubject(subject), `edbxtest${run}.*.*.*`);
  const d = createNatsDeliverer({ kind: 'nats', servers: [NATS_SERVER], subject, stream }, ctx);
  try {
    await d.check();
    const first = body({ version: 1, event_type: 'order_placed', state: { a: 1 } });
    await d.deliver(delivery(first));
    await d.deliver({ ...delivery(first), attempt: 2 }); // the queue retried after a lost ack
    const jsm = await nc.jetstreamManager();
    assert.equal((await jsm.streams.info(stream)).state.messages, 1, 'deduplicated on Nats-Msg-Id');
    await d.deliver(delivery(body({ tenant: 'beta', type: 'invoice', version: 2, event_type: 'invoice_paid' })));
    const info = await jsm.streams.info(stream);
    assert.equal(info.state.messages, 2);
    assert.ok(info.config.duplicate_window > 0);

    const m1 = await jsm.streams.getMessage(stream, { seq: 1 });
    assert.equal(m1.subject, `edbxtest${run}.acme.order.order_placed`);
    assert.equal(m1.header.get('Nats-Msg-Id'), first.event_id);
    assert.deepEqual(JSON.parse(Buffer.from(m1.data).toString('utf8')), first);
    const m2 = await jsm.streams.getMessage(stream, { seq: 2 });
    assert.equal(m2.subject, `edbxtest${run}.beta.invoice.invoice_paid`);

    await jsm.streams.delete(stream); // removed by an operator: the next attempt fails, the retry recreates it
    const third = body({ version: 3, event_type: 'order_placed' });
    await assert.rejects(d.deliver(delivery(third)), /nats: no JetStream stream captures subject/);
    await d.deliver({ ...delivery(third), attempt: 2 });
    assert.equal((await jsm.streams.info(stream)).state.messages, 1);
  } finally {
    await d.close();
  }
});

test('nats kind - a subject no stream captures fails with a clear message', { timeout: 30_000 }, async (t) => {
  if (nc === undefined) return t.skip(`NATS JetStream is not reachable at ${NATS_SERVER}`);
  const d = createNatsDeliverer({ kind: 'nats', servers: [NATS_SERVER], subject: `nostream${run}.{aggregate}`, timeout_ms: 1000 }, ctx);
  try {
    await assert.rejects(d.deliver(delivery(body({ version: 1 }))), new RegExp(`nats: no JetStream stream captures subject nostream${run}\\.order`));
    assert.throws(() => createNatsDeliverer({ kind: 'nats', servers: [NATS_SERVER], subject: 'a.{id}' }, ctx), /unknown placeholder \{id\}/);
    assert.throws(() => createNatsDeliverer({ kind: 'nats', servers: [NATS_SERVER], subject: 'a.>' }, ctx), /wildcard/);
  } finally {
    await d.close();
  }
});

// ---------------------------------------------------------------- csv

test('csv kind - columns grow as fields appear, older rows padded; RFC 4180 quoting round-trips', { timeout: 30_000 }, async () => {
  const dir = join(dataDir, 'csv-grow');
  const d = createCsvDeliverer({ kind: 'csv', dir }, ctx);
  const tricky = 'he said "hi", ok\r\nnext line';
  const e1 = body({ version: 1, state: { a: 1 } });
  const e2 = body({ version: 2, state: { a: 2, b: tricky, version: 'field named version', nested: { x: [1, null] }, gone: null } });
  const e3 = body({ version: 3, state: { b: 'plain' } });
  await d.deliver(delivery(e1));
  await d.deliver(delivery(e2));
  await d.deliver(delivery(e3));
  await d.close();

  const text = readFileSync(join(dir, 'order.csv'), 'utf8');
  const lines = text.split('\r\n');
  assert.equal(lines[0], 'event_id,tenant,aggregate_id,version,event_type,created_at,a,b,field:version,nested,gone');
  assert.equal(lines[1], `${e1.event_id},acme,o-1,1,order_updated,2024-05-01T10:00:00.000Z,1,,,,`, 'row written before the widening is padded');
  assert.ok(text.includes('"he said ""hi"", ok\r\nnext line"'), 'quotes doubled, the cell quoted');
  const { records, end } = parseCsv(text);
  assert.equal(end, Buffer.byteLength(text));
  assert.deepEqual(records, [
    ['event_id', 'tenant', 'aggregate_id', 'version', 'event_type', 'created_at', 'a', 'b', 'field:version', 'nested', 'gone'],
    [e1.event_id, 'acme', 'o-1', '1', 'order_updated', '2024-05-01T10:00:00.000Z', '1', '', '', '', ''],
    [e2.event_id, 'acme', 'o-1', '2', 'order_updated', '2024-05-02T10:00:00.000Z', '2', tricky, 'field named version', '{"x":[1,null]}', ''],
    [e3.event_id, 'acme', 'o-1', '3', 'order_updated', '2024-05-03T10:00:00.000Z', '', 'plain', '', '', ''],
  ]);
});

test('csv kind - a replayed event id is skipped, also after a restart; a torn last row is cut off', { timeout: 30_000 }, async () => {
  const dir = join(dataDir, 'csv-replay');
  const e1 = body({ version: 1, state: { a: 1 } });
  const e2 = body({ version: 2, state: { a: 2 } });
  const first = createCsvDeliverer({ kind: 'csv', dir }, ctx);
  await first.deliver(delivery(e1));
  await first.deliver(delivery(e1));
  await first.close();
  const file = join(dir, 'order.csv');
  appendFileSync(file, `${e2.event_id},acme,o-1,2,order_up`); // a power cut mid-append
  const second = createCsvDeliverer({ kind: 'csv', dir }, ctx);
  await second.deliver(delivery(e1)); // replay after restart
  await second.deliver(delivery(e2)); // the torn event, retried
  await second.deliver(delivery(body({ type: 'invoice', version: 1, payload: { p: 'from payload' } }))); // event-only: payload fields
  await second.close();
  const { records } = parseCsv(readFileSync(file, 'utf8'));
  assert.deepEqual(records.map((r) => r[0]), ['event_id', e1.event_id, e2.event_id]);
  assert.ok(logs.some((l) => l.includes('torn last row')));
  const invoice = parseCsv(readFileSync(join(dir, 'invoice.csv'), 'utf8')).records;
  assert.deepEqual(invoice[0]?.slice(6), ['p']);
  assert.deepEqual(invoice[1]?.slice(6), ['from payload']);
});

test('csv kind - overlapping deliveries of many aggregates widen one file, each value in its own column', { timeout: 30_000 }, async () => {
  const dir = join(dataDir, 'csv-overlap');
  const d = createCsvDeliverer({ kind: 'csv', dir }, ctx);
  const bodies = Array.from({ length: 20 }, (_, i) => body({ id: `o-${i}`, version: 1, state: { [`f${i % 5}`]: i } }));
  await Promise.all(bodies.map((b) => d.deliver(delivery(b))));
  await d.close();
  const { records } = parseCsv(readFileSync(join(dir, 'order.csv'), 'utf8'));
  assert.equal(records.length, 21);
  assert.deepEqual(records[0]?.slice(6), ['f0', 'f1', 'f2', 'f3', 'f4']);
  for (const [i, b] of bodies.entries()) {
    const row = records.find((r) => r[0] === b.event_id);
    assert.equal(row?.length, 11);
    assert.equal(row?.[6 + (i % 5)], String(i));
  }
});

/**
 * The pool runs pool_threads delivery threads, each with its own deliverer of a plugin: two threads
 * appending to and widening one csv file must not lose a row (a rename racing an append would).
 */
test('csv kind - deliverers of one plugin in two threads lose no row while the header widens', { timeout: 60_000 }, async () => {
  const dir = join(dataDir, 'csv-threads');
  const perThread = 40;
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.url).then(async ({ createCsvDeliverer }) => {
      const d = createCsvDeliverer({ kind: 'csv', dir: workerData.dir }, { name: 't', dataDir: workerData.dir, log: () => {} });
      for (let i = 0; i < workerData.count; i++) {
        const event_id = workerData.tag + '-' + i;
        const state = { ['f_' + workerData.tag + '_' + Math.floor(i / 4)]: i, shared: workerData.tag };
        await d.deliver({ job_id: event_id, plugin: 't', attempt: 1, body: { event_id, tenant: 'acme', aggregate_type: 'order', aggregate_id: workerData.tag + '-' + i, version: 1, event_type: 'order_updated', state } });
      }
      await d.close();
      parentPort.postMessage('done');
    }, (err) => parentPort.postMessage(String(err)));`;
  const url = new URL('../src/plugins/kinds/csv.js', import.meta.url).href;
  const results = await Promise.all(
    ['a', 'b'].map(
      (tag) =>
        new Promise<string>((resolveRun, rejectRun) => {
          const worker = new Worker(code, { eval: true, workerData: { url, dir, tag, count: perThread } });
          worker.once('message', (m: string) => void worker.terminate().then(() => resolveRun(m)));
          worker.once('error', rejectRun);
        }),
    ),
  );
  assert.deepEqual(results, ['done', 'done']);
  const { records } = parseCsv(readFileSync(join(dir, 'order.csv'), 'utf8'));
  const header = records[0] as string[];
  assert.equal(header.length, 6 + 1 + 2 * (perThread / 4), 'every field got its column once');
  const ids = records.slice(1).map((r) => r[0]);
  assert.equal(ids.length, 2 * perThread, 'no row lost, none twice');
  assert.equal(new Set(ids).size, 2 * perThread);
  for (const row of records.slice(1)) {
    assert.equal(row.length, header.length);
    const [tag, i] = (row[0] as string).split('-');
    assert.equal(row[header.indexOf(`f_${tag}_${Math.floor(Number(i) / 4)}`)], i, 'each value sits under its own field');
  }
});

test('csv kind - a file that is not ours is refused, not overwritten', { timeout: 30_000 }, async () => {
  const dir = join(dataDir, 'csv-foreign');
  const d = createCsvDeliverer({ kind: 'csv', dir }, ctx);
  await d.check();
  writeFileSync(join(dir, 'order.csv'), 'name,price\r\nx,1\r\n');
  await assert.rejects(d.deliver(delivery(body({ version: 1, state: { a: 1 } }))), /csv: order\.csv is not an EventDBX read model/);
  assert.equal(readFileSync(join(dir, 'order.csv'), 'utf8'), 'name,price\r\nx,1\r\n');
});

// ---------------------------------------------------------------- json

test('json kind - one line per delivery body; a replay is skipped, also after a restart and a torn line', { timeout: 30_000 }, async () => {
  const dir = join(dataDir, 'json-lines');
  const e1 = body({ version: 1, state: { a: 1 } });
  const e2 = body({ version: 2, state: { a: 'line\nbreak' } });
  const first = createJsonDeliverer({ kind: 'json', dir }, ctx);
  await first.deliver(delivery(e1));
  await first.deliver(delivery(e2));
  await first.deliver(delivery(e1));
  await first.close();
  const file = join(dir, 'order.jsonl');
  appendFileSync(file, '{"event_id":"torn'); // a power cut mid-append
  const second = createJsonDeliverer({ kind: 'json', dir }, ctx);
  await second.deliver(delivery(e2));
  const e3 = body({ version: 3, state: { a: 3 } });
  await second.deliver(delivery(e3));
  await second.close();
  const lines = readFileSync(file, 'utf8').split('\n');
  assert.equal(lines.pop(), '', 'the file ends with a newline');
  assert.deepEqual(lines.map((l) => JSON.parse(l)), [e1, e2, e3]);
});

test('json kind - pretty objects, one after another; replays are still skipped', { timeout: 30_000 }, async () => {
  const dir = join(dataDir, 'json-pretty');
  const e1 = body({ version: 1, state: { a: { deep: [1, 2] } } });
  const e2 = body({ version: 2, state: { a: '}\n}' } });
  const first = createJsonDeliverer({ kind: 'json', dir, pretty: true }, ctx);
  await first.deliver(delivery(e1));
  await first.deliver(delivery(e2));
  await first.close();
  const second = createJsonDeliverer({ kind: 'json', dir, pretty: true }, ctx);
  await second.deliver(delivery(e1));
  await second.deliver(delivery(e2));
  await second.close();
  const text = readFileSync(join(dir, 'order.jsonl'), 'utf8');
  assert.equal(text, `${JSON.stringify(e1, null, 2)}\n${JSON.stringify(e2, null, 2)}\n`);
});
