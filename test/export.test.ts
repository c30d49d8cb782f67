/**
 * Exports (issue 13 item 6; reference §14.4): `GET /v1/export` and `dbx aggregate export` against
 * the real server (`dbx start --foreground`, two worker environments, four shards), then the same
 * data dir in direct mode. The route streams one type's active aggregates sorted by id from one
 * snapshot, as CSV or JSON (with version and Merkle root); the CLI writes files durably, zips
 * them, and `--verify` checks a JSON export against the store. A heap-bounded run shows memory
 * stays flat in the size of the export (a bigger one under `npm run test:heavy`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { open as openLmdb } from 'lmdb';
import { SNOWFLAKE_EPOCH_MS } from '../src/core/snowflake.js';
import { heavy } from './helpers/heavy.js';
import { removeDir, runDbx, spawnServer, tempDataDir, type SpawnedServer } from './helpers/server.js';

const SAMPLER = new URL('./helpers/memory-sampler.js', import.meta.url).href;

let server: SpawnedServer;
let home: string;
let dataDir: string;
let out: string;
let stopped = false;

/** A data dir laid out like every server here: two worker environments, four shards. */
function configuredDataDir(prefix: string): string {
  const dir = tempDataDir(prefix);
  writeFileSync(join(dir, 'config.toml'), '[storage]\nworkers = 2\n\n[tenants]\nshard_count = 4\n');
  return dir;
}

before(async () => {
  home = tempDataDir('edbx-export-home-');
  out = tempDataDir('edbx-export-out-');
  dataDir = configuredDataDir('edbx-export-data-');
  server = await spawnServer({ dataDir });
});
after(async () => {
  if (!stopped && server.child.exitCode === null) server.kill('SIGTERM');
  await server.exited;
  for (const dir of [dataDir, home, out]) removeDir(dir);
});

function dbx(args: string[], env: Record<string, string> = {}): ReturnType<typeof runDbx> {
  return runDbx([...args, '--data-dir', dataDir], { env: { HOME: home, EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '', ...env }, timeoutMs: 120_000 });
}

async function get(path: string, token = server.token, tenant?: string): Promise<{ status: number; headers: Headers; text: string }> {
  return getFrom(server, path, tenant, token);
}

async function getFrom(from: SpawnedServer, path: string, tenant?: string, token = from.token): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`${from.url}${path}`, {
    headers: { authorization: `Bearer ${token}`, ...(tenant ? { 'x-tenant-id': tenant } : {}) },
    signal: AbortSignal.timeout(60_000),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function write(method: string, path: string, body: unknown, tenant?: string): Promise<any> {
  return writeTo(server, method, path, body, tenant);
}

async function writeTo(to: SpawnedServer, method: string, path: string, body: unknown, tenant?: string): Promise<any> {
  const res = await to.request(method, path, body, tenant ? { 'x-tenant-id': tenant } : {});
  assert.ok(res.status === 200 || res.status === 201, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** RFC 4180 (CRLF records, quoted cells) → rows of cells. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  assert.equal(cell + row.join(''), '', 'the document ends with a complete CRLF record');
  return rows;
}

const PEOPLE = Array.from({ length: 30 }, (_, i) => `p-${String(i).padStart(2, '0')}`);
const TRICKY = 'comma, "quote"\r\nand a new line';

let seeded: Promise<void> | undefined;
function seed(): Promise<void> {
  seeded ??= (async () => {
    const events = PEOPLE.map((id) => {
      const n = Number(id.slice(2));
      const payload: Record<string, unknown> = { name: `person ${n}`, n };
      if (n % 3 === 0) payload.city = 'Oslo';
      if (n === 7) Object.assign(payload, { city: TRICKY, address: { zip: '0150', lines: ['a', 'b'] }, __version: 'mine', ok: false });
      return { aggregate_type: 'person', aggregate_id: id, event_type: 'person_created', payload };
    });
    // One atomic batch across the four shards (an apply to a missing aggregate creates it).
    await write('POST', '/v1/batch', { events });
    await write('POST', '/v1/aggregates/person/p-04/events', { event_type: 'person_moved', payload: { city: 'Rome' } });
    await write('POST', '/v1/aggregates/person/p-05/archive', {});
    await write('PUT', '/v1/schemas/order', { column_types: { total: { type: 'integer' }, status: { type: 'text' }, secret: { type: 'text' } }, hidden_fields: ['secret'], events: { order_placed: {} } });
    await write('POST', '/v1/aggregates/order/o-2', { event_type: 'order_placed', payload: { status: 'open', total: 12, secret: 'hush', zeta: 1 } });
    await write('POST', '/v1/aggregates/order/o-1', { event_type: 'order_placed', payload: { total: 3, alpha: 'x' } });
    await write('PUT', '/v1/schemas/vault', { hidden: true, events: { opened: {} } });
    await write('POST', '/v1/aggregates/vault/v-1', { event_type: 'opened', payload: { k: 1 } });
    await write('POST', '/v1/aggregates/person/p-99', { event_type: 'person_created', payload: { name: 'other tenant' } }, 'acme');
  })();
  return seeded;
}

test('export - GET /v1/export streams CSV: sorted union header, RFC 4180 quoting, active aggregates only', { timeout: 60_000 }, async () => {
  await seed();
  const res = await get('/v1/export?type=person&format=csv');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/csv/);
  assert.equal(res.headers.get('content-disposition'), 'attachment; filename="person.csv"');
  assert.equal(res.headers.get('content-length'), null, 'streamed (chunked), not buffered to measure its length');
  const rows = parseCsv(res.text);
  // Sorted by state key (`__version` first), each written under its column name.
  assert.deepEqual(rows[0], ['__aggregate_id', 'field:__version', 'address', 'city', 'n', 'name', 'ok']);
  const ids = rows.slice(1).map((r) => r[0]);
  assert.deepEqual(ids, PEOPLE.filter((id) => id !== 'p-05'), 'sorted by id across four shards on two workers; archived p-05 left out');
  const byId = new Map(rows.slice(1).map((r) => [r[0], r]));
  assert.deepEqual(byId.get('p-07'), ['p-07', 'mine', '{"zip":"0150","lines":["a","b"]}', TRICKY, '7', 'person 7', 'false']);
  assert.deepEqual(byId.get('p-04'), ['p-04', '', '', 'Rome', '4', 'person 4', ''], 'the current state; absent keys empty');
  assert.doesNotMatch(res.text, /other tenant/, "another tenant's aggregates never appear");

  // A schema puts its declared columns first, in its order; hidden fields are not exported at all.
  const declared = Object.keys((await server.request('GET', '/v1/schemas/order')).body.schema.column_types).filter((c) => c !== 'secret');
  assert.deepEqual(declared.sort(), ['status', 'total']);
  const orders = parseCsv((await get('/v1/export?type=order')).text);
  const cells = (row: Record<string, string>) => ['__aggregate_id', ...declared, 'alpha', 'zeta'].map((c) => row[c] ?? '');
  assert.deepEqual(orders, [
    ['__aggregate_id', ...declared, 'alpha', 'zeta'],
    cells({ __aggregate_id: 'o-1', total: '3', alpha: 'x' }),
    cells({ __aggregate_id: 'o-2', total: '12', status: 'open', zeta: '1' }),
  ]);
  assert.doesNotMatch((await get('/v1/export?type=order&format=json')).text, /hush|secret/);
  // A hidden type exports like a type without aggregates, and is not listed.
  assert.equal((await get('/v1/export?type=vault')).text, '__aggregate_id\r\n');
  const types = JSON.parse((await get('/v1/export/types')).text);
  assert.deepEqual(types, { items: [{ aggregate_type: 'order', aggregates: 2 }, { aggregate_type: 'person', aggregates: 29 }] });
  assert.deepEqual(JSON.parse((await get('/v1/export/types', server.token, 'acme')).text).items, [{ aggregate_type: 'person', aggregates: 1 }]);

  for (const query of ['', 'type=Person', 'type=person&format=xml', 'type=person&take=1']) {
    const bad = await get(`/v1/export?${query}`);
    assert.equal(bad.status, 400, query);
    assert.match(JSON.parse(bad.text).error.code, /^(validation_failed|invalid_input)$/, query);
  }
});

test('export - JSON rows carry version and Merkle root; --pretty is JSON.stringify(rows, null, 2)', { timeout: 60_000 }, async () => {
  await seed();
  const compact = await get('/v1/export?type=person&format=json');
  assert.equal(compact.status, 200);
  assert.match(compact.headers.get('content-type') ?? '', /^application\/json/);
  const rows = JSON.parse(compact.text) as Record<string, unknown>[];
  assert.equal(rows.length, 29);
  for (const row of rows) {
    const stored = (await server.request('GET', `/v1/aggregates/person/${row.__aggregate_id}`)).body;
    assert.equal(row.__aggregate_type, 'person');
    assert.equal(row.__version, stored.version);
    assert.equal(row.__merkle_root, stored.merkle_root);
    const { __aggregate_type: _t, __aggregate_id: _i, __version: _v, __merkle_root: _r, 'field:__version': escaped, ...state } = row;
    assert.deepEqual(escaped === undefined ? state : { ...state, __version: escaped }, stored.state, `state of ${row.__aggregate_id}, JSON types kept`);
  }
  const pretty = await get('/v1/export?type=person&format=json&pretty=true');
  assert.equal(pretty.text, `${JSON.stringify(rows, null, 2)}\n`);
  assert.equal((await get('/v1/export?type=nobody&format=json')).text, '[]\n');
});

test('export - the token decides: action, type and id patterns, tenant', { timeout: 60_000 }, async () => {
  await seed();
  const issue = async (actions: string[], resources: string[], tenants: string[] = []) =>
    (await write('POST', '/v1/tokens', { group: 'ops', user: 'exporter', actions, resources, tenants })).token as string;
  const some = await issue(['aggregate.read'], ['person/p-1*']);
  const rows = JSON.parse((await get('/v1/export?type=person&format=json', some)).text) as { __aggregate_id: string }[];
  assert.deepEqual(rows.map((r) => r.__aggregate_id), PEOPLE.filter((id) => id.startsWith('p-1')));
  assert.deepEqual(JSON.parse((await get('/v1/export/types', some)).text).items, [{ aggregate_type: 'person', aggregates: 10 }]);
  const ordersOnly = await issue(['aggregate.read'], ['order']);
  assert.equal((await get('/v1/export?type=person', ordersOnly)).status, 403);
  assert.deepEqual(JSON.parse((await get('/v1/export/types', ordersOnly)).text).items, [{ aggregate_type: 'order', aggregates: 2 }]);
  assert.equal((await get('/v1/export?type=person', await issue(['events.read'], []))).status, 403);
  const acme = await issue(['aggregate.read'], [], ['acme']);
  assert.equal((await get('/v1/export?type=person', acme)).status, 403, 'the default tenant is not in the token');
  assert.deepEqual(parseCsv((await get('/v1/export?type=person', acme, 'acme')).text), [['__aggregate_id', 'name'], ['p-99', 'other tenant']]);
});

test('export - one snapshot: writes committed while the export streams are not in it', { timeout: 60_000 }, async () => {
  // Its own server: after exports cut short, a SIGTERM'd server waited out a 30 s timeout before it
  // exited (seen here; an open question for the export route), and the shared one is stopped by
  // the last test. This one is SIGKILLed: nothing reads its data afterwards.
  const own = await spawnServer({ dataDir: configuredDataDir('edbx-export-snap-') });
  try {
    // Enough rows that the response cannot fit in socket buffers: the server is mid-stream when we write.
    const lines: string[] = [];
    const baseMs = Date.UTC(2025, 0, 1);
    // ~8 MB: more than the stream's buffer and the loopback socket's can hold while the reader waits.
    for (let i = 0; i < 4000; i++) {
      lines.push(
        JSON.stringify({
          aggregate_type: 'bulk',
          aggregate_id: `b-${String(i).padStart(5, '0')}`,
          event_type: 'bulk_created',
          version: 1,
          payload: { i, text: 'y'.repeat(2000) },
          extensions: {},
          metadata: { event_id: ((BigInt(baseMs - SNOWFLAKE_EPOCH_MS) << 22n) | (900n << 12n) | BigInt(i)).toString(), created_at: new Date(baseMs).toISOString(), issued_by: { group: 't', user: 't' } },
        }),
      );
    }
    // Its own tenant, so the other tests' exports of every type do not meet these rows.
    const imported = await own.request('POST', '/v1/import', `${lines.join('\n')}\n`, { 'content-type': 'application/x-ndjson', 'x-tenant-id': 'snap' });
    assert.equal(imported.status, 200, JSON.stringify(imported.body));
    const res = await fetch(`${own.url}/v1/export?type=bulk&format=json`, { headers: { authorization: `Bearer ${own.token}`, 'x-tenant-id': 'snap' }, signal: AbortSignal.timeout(60_000) });
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.ok(!first.done && first.value.length < 4000 * 2000, 'only the start has arrived');
    await writeTo(own, 'POST', '/v1/aggregates/bulk/b-03999/events', { event_type: 'bulk_changed', payload: { i: -1 } }, 'snap');
    await writeTo(own, 'POST', '/v1/aggregates/bulk/b-99999', { event_type: 'bulk_created', payload: { i: 99999 } }, 'snap');
    const parts = [Buffer.from(first.value)];
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      parts.push(Buffer.from(next.value));
    }
    const rows = JSON.parse(Buffer.concat(parts).toString('utf8')) as { __aggregate_id: string; __version: number; i: number }[];
    assert.equal(rows.length, 4000, 'the aggregate created mid-export is not in it');
    assert.deepEqual([rows.at(-1)?.__aggregate_id, rows.at(-1)?.__version, rows.at(-1)?.i], ['b-03999', 1, 3999], 'the last row as it was when the export began');
    const later = JSON.parse((await getFrom(own, '/v1/export?type=bulk&format=json', 'snap')).text) as { __version: number }[];
    assert.equal(later.length, 4001, 'a new export sees both writes');

    // Exports cut short (the client goes away mid-stream) release their snapshot: with a write after
    // each, a leaked one would stay in LMDB's reader table with its old transaction id.
    for (let i = 0; i < 6; i++) {
      const abort = new AbortController();
      const cut = await fetch(`${own.url}/v1/export?type=bulk&format=${i % 2 ? 'csv' : 'json'}`, { headers: { authorization: `Bearer ${own.token}`, 'x-tenant-id': 'snap' }, signal: abort.signal });
      const partial = cut.body!.getReader();
      assert.equal((await partial.read()).done, false);
      await writeTo(own, 'POST', `/v1/aggregates/bulk/c-${i}`, { event_type: 'bulk_created', payload: { i } }, 'snap');
      abort.abort();
      await partial.read().catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const worker of ['worker-0000', 'worker-0001']) {
      // Read only the reader table; this process never writes (nor closes) the environment.
      const env = openLmdb({ path: join(own.dataDir, 'shards', worker), readOnly: true, maxDbs: 16, mapSize: 64 * 1024 * 1024 * 1024 });
      const held = env
        .readerList()
        .split('\n')
        .filter((line) => line.trim().startsWith(String(own.child.pid)) && !/\s-\s*$/.test(line));
      assert.ok(held.length <= 1, `${worker}: at most the current read transaction is held, got ${JSON.stringify(held)}`);
    }
  } finally {
    own.kill('SIGKILL');
    await own.exited;
    removeDir(own.dataDir);
  }
});

function listTree(dir: string): string[] {
  return readdirSync(dir).sort();
}

function pythonZip(path: string): Record<string, string> {
  const script = 'import json,sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(json.dumps({i.filename: z.read(i).decode() for i in z.infolist()}))';
  return JSON.parse(execFileSync('python3', ['-c', script, path], { encoding: 'utf8' })) as Record<string, string>;
}

let serverCsv = '';

test('export - dbx aggregate export writes the original files, zips them, and reports progress', { timeout: 90_000 }, async () => {
  await seed();
  serverCsv = (await get('/v1/export?type=person&format=csv')).text;
  const single = join(out, 'one', 'people.csv');
  const one = await dbx(['aggregate', 'export', 'person', '--output', single]);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout, `wrote ${single}\nExported 1 aggregate type(s) in CSV format\n`);
  assert.equal(readFileSync(single, 'utf8'), serverCsv, 'the file holds exactly what the route streams');
  assert.equal(statSync(single).mode & 0o777, 0o600);

  const dir = join(out, 'all');
  const all = await dbx(['aggregate', 'export', '--all', '--format', 'json', '--output', dir]);
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stdout, `wrote ${join(dir, 'order.json')}\nwrote ${join(dir, 'person.json')}\nExported 2 aggregate type(s) in JSON format\n`);
  assert.deepEqual(listTree(dir), ['order.json', 'person.json'], 'one file per type, no temp file left, the hidden type not exported');
  assert.equal(readFileSync(join(dir, 'person.json'), 'utf8'), (await get('/v1/export?type=person&format=json')).text);

  const zipped = await dbx(['aggregate', 'export', '--all', '--format', 'json', '--pretty', '--zip', '--output', dir, '--json']);
  assert.equal(zipped.code, 0, zipped.stderr);
  const summary = JSON.parse(zipped.stdout);
  const zipPath = join(dir, 'aggregates_json.zip');
  assert.equal(summary.zip, zipPath);
  assert.deepEqual([summary.aggregate_types, summary.aggregates], [2, 31]);
  assert.deepEqual(summary.files.map((f: { path: string; aggregates: number }) => [f.path, f.aggregates]), [['order.json', 2], ['person.json', 29]]);
  const progress = zipped.stderr.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(progress.at(-1), { progress: 'export', aggregate_type: 'person', type_aggregates: 29, aggregates: 31, total: 31, bytes: summary.files[1].bytes });
  const entries = pythonZip(zipPath);
  assert.deepEqual(Object.keys(entries), ['order.json', 'person.json']);
  assert.equal(entries['person.json'], (await get('/v1/export?type=person&format=json&pretty=true')).text, 'a real deflate zip (read back by Python zipfile, CRCs checked)');
  const zipOne = await dbx(['aggregate', 'export', 'order', '--zip', '--output', join(out, 'orders.csv')]);
  assert.equal(zipOne.stdout, `Exported 1 aggregate type(s) to ${join(out, 'orders.zip')} (zip archive)\n`, 'the extension is forced to .zip');
  assert.deepEqual(Object.keys(pythonZip(join(out, 'orders.zip'))), ['order.csv']);

  const none = await dbx(['aggregate', 'export', 'ghost', '--output', join(out, 'ghost.csv')]);
  assert.equal(none.stdout, "no aggregates found for 'ghost'\n");
  assert.equal(existsSync(join(out, 'ghost.csv')), false);
  const misuses = [
    [['aggregate', 'export', '--all', '--output', single], /output path must be a directory when exporting multiple aggregate types/],
    [['aggregate', 'export', 'person', '--all', '--output', dir], /aggregate name cannot be provided when using --all/],
    [['aggregate', 'export', '--output', dir], /aggregate name must be provided unless --all is specified/],
    [['aggregate', 'export', 'person', '--format', 'xml', '--output', dir], /Allowed choices are csv, json/],
    [['aggregate', 'export', '--verify', single], /a CSV export carries no versions or Merkle roots/],
  ] as const;
  const answers = await Promise.all(misuses.map(([args]) => dbx([...args])));
  misuses.forEach(([args, message], i) => {
    const res = answers[i]!;
    assert.equal(res.code, 2, `${args.join(' ')}: ${res.stdout}${res.stderr}`);
    assert.match(res.stderr, message);
  });
  assert.equal(readFileSync(single, 'utf8'), serverCsv, 'a refused export leaves the existing file alone');
});

test('export - --verify checks an export against the store: unchanged, changed since, mismatched', { timeout: 90_000 }, async () => {
  await seed();
  const zipPath = join(out, 'all', 'aggregates_json.zip');
  const clean = await dbx(['aggregate', 'export', '--verify', zipPath, '--json']);
  assert.equal(clean.code, 0, clean.stderr);
  assert.deepEqual(JSON.parse(clean.stdout), { sources: [`${zipPath}:order.json`, `${zipPath}:person.json`], checked: 31, unchanged: 31, changed_since: 0, mismatched: 0, added_since: 0, problems: [], problems_truncated: false });

  // Appends since the export: still consistent (the history was only extended), reported as such.
  await write('POST', '/v1/aggregates/person/p-01/events', { event_type: 'person_moved', payload: { city: 'Lima' } });
  await write('POST', '/v1/aggregates/person/p-02/archive', {});
  await write('POST', '/v1/aggregates/person/p-50', { event_type: 'person_created', payload: { name: 'new' } });
  const later = await dbx(['aggregate', 'export', '--verify', zipPath]);
  assert.equal(later.code, 0, later.stderr);
  assert.equal(later.stdout, 'checked=31 unchanged=29 changed_since=2 mismatched=0 added_since=1\n');

  // An edited file: the row no longer matches the store at its version.
  const file = join(out, 'all', 'person.json');
  writeFileSync(file, readFileSync(file, 'utf8').replace('"person 9"', '"someone else"'));
  const edited = await dbx(['aggregate', 'export', '--verify', file]);
  assert.equal(edited.code, 1);
  assert.equal(
    edited.stdout,
    'checked=29 unchanged=26 changed_since=2 mismatched=1 added_since=1\nmismatch aggregate_type=person aggregate_id=p-09 version=1 problem=state_mismatch state differs at version 1\n',
  );
  assert.match(edited.stderr, /error: integrity_failed: 1 exported aggregate\(s\) do not match the store/);
  const rows = JSON.parse(readFileSync(file, 'utf8')) as { __aggregate_id: string; __merkle_root: string }[];
  const p12 = rows.find((r) => r.__aggregate_id === 'p-12')!;
  p12.__merkle_root = p12.__merkle_root.startsWith('0') ? `1${p12.__merkle_root.slice(1)}` : `0${p12.__merkle_root.slice(1)}`;
  writeFileSync(file, JSON.stringify(rows));
  const forged = await dbx(['aggregate', 'export', '--verify', file, '--json']);
  assert.equal(forged.code, 1);
  const report = JSON.parse(forged.stdout);
  assert.deepEqual(report.problems.map((p: { aggregate_id: string; problem: string }) => [p.aggregate_id, p.problem]), [['p-09', 'state_mismatch'], ['p-12', 'root_mismatch']]);
});

test('export - direct mode on the stopped data dir writes the same bytes; memory stays flat in the size of the export', { timeout: 180_000 }, async () => {
  await seed();
  const viaServer = (await get('/v1/export?type=person&format=csv')).text;
  // A type big enough that buffering it would show: 800 rows of 10 KB (~8 MB) here, 2,500 (~25 MB)
  // under `npm run test:heavy`.
  const count = heavy(800, 2500);
  const lines: string[] = [];
  const baseMs = Date.UTC(2025, 1, 1);
  for (let i = 0; i < count; i++) {
    lines.push(
      JSON.stringify({
        aggregate_type: 'big',
        aggregate_id: `g-${String(i).padStart(5, '0')}`,
        event_type: 'big_created',
        version: 1,
        payload: { i, blob: `${i}:`.padEnd(10_000, 'z') },
        extensions: {},
        metadata: { event_id: ((BigInt(baseMs - SNOWFLAKE_EPOCH_MS) << 22n) | (901n << 12n) | BigInt(i)).toString(), created_at: new Date(baseMs).toISOString(), issued_by: { group: 't', user: 't' } },
      }),
    );
  }
  const imported = await server.request('POST', '/v1/import', `${lines.join('\n')}\n`, { 'content-type': 'application/x-ndjson' });
  assert.equal(imported.status, 200, JSON.stringify(imported.body));

  server.kill('SIGTERM');
  await server.exited;
  stopped = true;
  // The whole stack runs in one process (direct mode): engine, HTTP route, client, file writer.
  // A 1 MB young generation keeps garbage between scavenges out of the peak (with the default
  // 16 MB semi-spaces the noise is larger than the ~8 MB document), and a 40 MB old-space bound
  // makes buffering the 25 MB heavy document die with "heap out of memory".
  const heapBoundMb = 40;
  const sampled = (name: string): Record<string, string> => ({
    NODE_OPTIONS: `--max-old-space-size=${heapBoundMb} --max-semi-space-size=1 --import=${SAMPLER}`,
    EDBX_MEMORY_SAMPLE_FILE: join(out, `${name}.memory.json`),
  });
  const peak = (name: string): number => (JSON.parse(readFileSync(join(out, `${name}.memory.json`), 'utf8')) as { heap_used_max: number }).heap_used_max;
  const direct = await dbx(['aggregate', 'export', 'person', '--output', join(out, 'direct.csv')], sampled('small'));
  assert.equal(direct.code, 0, direct.stderr);
  assert.equal(readFileSync(join(out, 'direct.csv'), 'utf8'), viaServer, 'direct mode exports what the server exported');

  const bigFile = join(out, 'big.json');
  const big = await dbx(['aggregate', 'export', 'big', '--format', 'json', '--output', bigFile], sampled('big'));
  assert.equal(big.code, 0, big.stderr);
  const size = statSync(bigFile).size;
  assert.ok(size > count * 10_000, `the export is ${size} bytes`);
  // Measured here: a 10 KB export peaks at ~29 MB of heap, 8 MB and 25 MB ones within 1 MB of it.
  // Holding the document anywhere (as rows, as one string, or as the client's text) adds its size.
  const growth = peak('big') - peak('small');
  assert.ok(growth < size / 2, `peak heap grew by ${growth} bytes for a ${size}-byte export (the 29-row export's peak: ${peak('small')})`);
  assert.ok(peak('big') < (heapBoundMb + 2) * 1024 * 1024, `peak heap ${peak('big')} within the bound`);
  const rows = JSON.parse(readFileSync(bigFile, 'utf8')) as { __aggregate_id: string }[];
  assert.equal(rows.length, count);
  assert.equal(rows[count - 1]?.__aggregate_id, `g-${String(count - 1).padStart(5, '0')}`);
});
