/**
 * `dbx aggregate replay` (issue 13 item 5; reference §1.1) and the streamed route under it,
 * `GET /v1/aggregates/{type}/{id}/replay`: events in version order after --skip, at most --take,
 * each a pretty JSON document (--json: one pretty array). Through the running server (the real
 * binary) and in direct mode on the stopped data dir, with the same bytes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../src/client/index.js';
import { removeDir, runDbx, spawnServer, tempDataDir, type SpawnedServer } from './helpers/server.js';

let server: SpawnedServer;
let home: string;
let dataDir: string;
let stopped = false;

before(async () => {
  home = tempDataDir('edbx-replay-home-');
  server = await spawnServer();
  dataDir = server.dataDir;
});
after(async () => {
  if (!stopped && server.child.exitCode === null) server.kill('SIGTERM');
  await server.exited;
  removeDir(dataDir);
  removeDir(home);
});

function dbx(args: string[]): ReturnType<typeof runDbx> {
  return runDbx([...args, '--data-dir', dataDir], { env: { HOME: home, EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '' }, timeoutMs: 30_000 });
}

async function raw(path: string, token = server.token): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(20_000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** The aggregate's events as the paged list returns them (the reference for every replay). */
let events: any[] = [];

test('replay - the route streams NDJSON in version order; skip is a key lookup, take a bound', { timeout: 60_000 }, async () => {
  assert.equal((await server.request('POST', '/v1/aggregates/person/p-1', { event_type: 'person_created', payload: { name: 'Ada' } })).status, 201);
  for (let v = 2; v <= 6; v++) {
    const res = await server.request('POST', '/v1/aggregates/person/p-1/events', { event_type: 'person_updated', payload: { step: v, note: `line\n"${v}"` } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
  // Another aggregate whose id extends p-1's: its events must never leak into p-1's replay.
  assert.equal((await server.request('POST', '/v1/aggregates/person/p-10', { event_type: 'person_created', payload: { name: 'Bob' } })).status, 201);
  events = (await server.request('GET', '/v1/aggregates/person/p-1/events?take=100')).body.items;
  assert.equal(events.length, 6);

  const all = await raw('/v1/aggregates/person/p-1/replay');
  assert.equal(all.status, 200);
  assert.match(all.type, /^application\/x-ndjson/);
  const lines = all.text.trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines, events, 'every event, in version order, exactly as the events list answers');

  const window = await raw('/v1/aggregates/person/p-1/replay?skip=2&take=3');
  assert.deepEqual(window.text.trimEnd().split('\n').map((l) => JSON.parse(l).version), [3, 4, 5]);
  for (const [query, expected] of [
    ['skip=6', ''],
    ['skip=100', ''],
    ['take=0', ''],
    ['skip=5&take=10', `${JSON.stringify(events[5])}\n`],
  ] as const) {
    const res = await raw(`/v1/aggregates/person/p-1/replay?${query}`);
    assert.equal(res.status, 200, query);
    assert.equal(res.text, expected, query);
  }

  const missing = await raw('/v1/aggregates/person/ghost/replay');
  assert.equal(missing.status, 404);
  assert.equal(JSON.parse(missing.text).error.code, 'not_found');
  const bad = await raw('/v1/aggregates/person/p-1/replay?skip=-1');
  assert.equal(bad.status, 400);
  assert.equal((await raw('/v1/aggregates/person/p-1/replay?from=1')).status, 400, 'unknown query fields are refused');

  // Token rules of the other reads: the action, and the resource patterns.
  const issue = async (actions: string[], resources: string[]) => (await server.request('POST', '/v1/tokens', { group: 'ops', user: 'r', actions, resources })).body.token as string;
  const other = await issue(['aggregate.read'], ['order']);
  assert.equal((await raw('/v1/aggregates/person/p-1/replay', other)).status, 403);
  const noRead = await issue(['events.read'], []);
  assert.equal((await raw('/v1/aggregates/person/p-1/replay', noRead)).status, 403);
  const own = await issue(['aggregate.read'], ['person/p-1']);
  assert.equal((await raw('/v1/aggregates/person/p-1/replay?take=1', own)).status, 200);
  assert.equal((await raw('/v1/aggregates/person/p-10/replay', own)).status, 403);
});

test('replay - hidden fields and hidden types follow the schema, as every read does', { timeout: 30_000 }, async () => {
  const put = await server.request('PUT', '/v1/schemas/vault', { hidden_fields: ['secret'], events: { opened: {} } });
  assert.ok(put.status === 200 || put.status === 201, JSON.stringify(put.body));
  assert.equal((await server.request('POST', '/v1/aggregates/vault/v-1', { event_type: 'opened', payload: { secret: 's3cr3t', name: 'v' } })).status, 201);
  const res = await raw('/v1/aggregates/vault/v-1/replay');
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.text).payload, { name: 'v' });
  assert.doesNotMatch(res.text, /s3cr3t/);
  assert.equal((await server.request('PUT', '/v1/schemas/vault', { hidden: true, hidden_fields: ['secret'], events: { opened: {} } })).status, 200);
  assert.equal((await raw('/v1/aggregates/vault/v-1/replay')).status, 404);
});

test('replay - the TypeScript client streams replays and exports', { timeout: 30_000 }, async () => {
  const db = createClient({ url: server.url, token: server.token });
  try {
    const versions: number[] = [];
    for await (const event of db.replay('person', 'p-1', { skip: 1, take: 3 })) {
      versions.push(event.version);
      assert.equal(event.aggregateId, 'p-1', 'camelCase like every client result');
    }
    assert.deepEqual(versions, [2, 3, 4]);
    // Breaking out early closes the stream; the client keeps working.
    for await (const event of db.replay('person', 'p-1')) {
      assert.equal(event.version, 1);
      break;
    }
    await assert.rejects(async () => {
      for await (const _ of db.replay('person', 'ghost')) assert.fail('no events');
    }, (err: { code?: string }) => err.code === 'not_found');
    const { body, contentType } = await db.exportAggregates('person', { format: 'json' });
    assert.match(contentType, /application\/json/);
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(chunk as Buffer);
    const rows = JSON.parse(Buffer.concat(parts).toString('utf8')) as { __aggregate_id: string }[];
    assert.deepEqual(rows.map((r) => r.__aggregate_id), ['p-1', 'p-10']);
    assert.deepEqual(await db.exportTypes({ type: 'person' }), [{ aggregateType: 'person', aggregates: 2 }]);
  } finally {
    await db.close();
  }
});

test('replay - dbx aggregate replay prints the original forms, through the server and in direct mode alike', { timeout: 90_000 }, async () => {
  const pretty = (e: unknown) => `${JSON.stringify(e, null, 2)}\n`;
  const through = {
    all: await dbx(['aggregate', 'replay', 'person', 'p-1']),
    json: await dbx(['aggregate', 'replay', 'person', 'p-1', '--json']),
    window: await dbx(['aggregate', 'replay', 'person', 'p-1', '--skip', '1', '--take', '2', '--json']),
    skipOne: await dbx(['aggregate', 'replay', 'person', 'p-1', '--skip', '1']),
    none: await dbx(['aggregate', 'replay', 'person', 'p-1', '--skip', '99', '--json']),
  };
  for (const [name, res] of Object.entries(through)) assert.equal(res.code, 0, `${name}: ${res.stderr}`);
  assert.equal(through.all.stdout, events.map(pretty).join(''), 'each event as a pretty JSON document');
  assert.equal(through.json.stdout, `${JSON.stringify(events, null, 2)}\n`, '--json: one pretty array, byte for byte');
  assert.equal(through.window.stdout, `${JSON.stringify(events.slice(1, 3), null, 2)}\n`);
  assert.equal(through.skipOne.stdout, events.slice(1).map(pretty).join(''), '--skip 1 leaves out only the first event');
  assert.equal(through.none.stdout, '[]\n');

  const unknown = await dbx(['aggregate', 'replay', 'person', 'ghost']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /^error: not_found: aggregate person\/ghost not found/);
  const usage = await dbx(['aggregate', 'replay', 'person', 'p-1', '--skip', 'x']);
  assert.equal(usage.code, 2);

  // Direct mode: the same data dir with the server stopped answers the same bytes.
  server.kill('SIGTERM');
  await server.exited;
  stopped = true;
  const direct = {
    all: await dbx(['aggregate', 'replay', 'person', 'p-1']),
    json: await dbx(['aggregate', 'replay', 'person', 'p-1', '--json']),
    window: await dbx(['aggregate', 'replay', 'person', 'p-1', '--skip', '1', '--take', '2', '--json']),
  };
  for (const [name, res] of Object.entries(direct)) {
    assert.equal(res.code, 0, `direct ${name}: ${res.stderr}`);
    assert.equal(res.stdout, through[name as keyof typeof through].stdout, `direct ${name} answers as through the server`);
  }
  const unknownDirect = await dbx(['aggregate', 'replay', 'person', 'ghost']);
  assert.equal(unknownDirect.code, 1);
  assert.match(unknownDirect.stderr, /not_found/);
});
