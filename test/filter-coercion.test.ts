/**
 * Filters that used to return nothing silently (issue 14 item 2, reference §7.3): timestamps
 * compare as times (ISO 8601 or epoch ms, on every timestamp field), a number literal matches a
 * numeric string the way the original's coercion does (`--field score=42` stores "42"), and a
 * field no record has is not an error but `explain=true` / `--explain` say so. Through the real
 * `dbx` binary against a real server.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, runDbx, spawnServer, tempDataDir, type SpawnedServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

let server: SpawnedServer;
let home: string;
let createdMs = 0;
const q = (filter: string): string => encodeURIComponent(filter);

function dbx(args: string[]): ReturnType<typeof runDbx> {
  return runDbx(args, { env: { HOME: home, EVENTDBX_DATA_DIR: server.dataDir, EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '' }, timeoutMs: 30_000 });
}

async function ok(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const res = await dbx(args);
  assert.equal(res.code, 0, `dbx ${args.join(' ')} → ${res.code}: ${res.stderr}`);
  return res;
}

const ids = async (path: string): Promise<string[]> => {
  const res = await server.request('GET', path);
  assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
  return res.body.items.map((a: { aggregate_id: string }) => a.aggregate_id).sort();
};

before(async () => {
  home = tempDataDir('edbx-coerce-home-');
  server = await spawnServer();
  const before = Date.now();
  await ok(['aggregate', 'create', 'player', 'p-1', '--event', 'player_joined', '--field', 'score=42', '--field', 'active=true']);
  await ok(['aggregate', 'create', 'player', 'p-2', '--event', 'player_joined', '--field', 'score=7']);
  const typed = await server.request('POST', '/v1/aggregates/player/p-3', { event_type: 'player_joined', payload: { score: 99, active: false } });
  assert.equal(typed.status, 201);
  createdMs = before;
});
after(async () => {
  if (server.child.exitCode === null) server.kill('SIGTERM');
  await server.exited;
  removeDir(server.dataDir);
  removeDir(home);
});

test('filter coercion - `--field score=42` stores the string "42", and `score > 40` matches it as the original does', { timeout: 60_000 }, async () => {
  const stored = await server.request('GET', '/v1/aggregates/player/p-1');
  assert.equal(stored.body.state.score, '42', '--field stores strings');
  assert.deepEqual(await ids(`/v1/aggregates/player?filter=${q('score > 40')}`), ['p-1', 'p-3']);
  assert.deepEqual(await ids(`/v1/aggregates/player?filter=${q('score = 42')}`), ['p-1']);
  assert.deepEqual(await ids(`/v1/aggregates/player?filter=${q('score IN [7, 99]')}`), ['p-2', 'p-3']);
  assert.deepEqual(await ids(`/v1/aggregates/player?filter=${q('score <= 7.0')}`), ['p-2']);
  assert.deepEqual(await ids(`/v1/aggregates/player?filter=${q('score = "42"')}`), ['p-1'], 'a string literal equals the string');
  assert.deepEqual(await ids(`/v1/aggregates/player?filter=${q('score = "99"')}`), [], 'a string literal is never made a number (as in the original)');
  assert.deepEqual(await ids(`/v1/aggregates/player?filter=${q('active = true')}`), ['p-1'], '"true" compares as a boolean with a boolean literal');
  // The event payloads carry the same strings: the same rule there.
  const events = await server.request('GET', `/v1/events?filter=${q('payload.score > 40')}`);
  assert.deepEqual(events.body.items.map((e: { aggregate_id: string }) => e.aggregate_id).sort(), ['p-1', 'p-3']);
  // And through the CLI.
  const listed = JSON.parse((await ok(['aggregate', 'list', 'player', '--filter', 'score > 40', '--json'])).stdout) as { aggregate_id: string }[];
  assert.deepEqual(listed.map((a) => a.aggregate_id).sort(), ['p-1', 'p-3']);
});

test('filter coercion - created_at / updated_at compare as times: ISO 8601 strings and epoch ms, on aggregates and events', { timeout: 60_000 }, async () => {
  const everyone = ['p-1', 'p-2', 'p-3'];
  for (const filter of [
    'created_at > "2020-01-01T00:00:00Z"',
    'created_at > "2020-01-01"',
    'createdAt >= "2020-01-01T01:00:00+01:00"',
    `created_at >= ${createdMs - 1000}`,
    `updated_at > "${new Date(createdMs - 1000).toISOString()}"`,
    'updated_at < "2999-12-31T23:59:59.999Z"',
  ]) {
    assert.deepEqual(await ids(`/v1/aggregates/player?filter=${q(filter)}`), everyone, filter);
  }
  assert.deepEqual(await ids(`/v1/aggregates/player?filter=${q('created_at < "2020-01-01T00:00:00Z"')}`), []);
  const p1 = (await server.request('GET', '/v1/aggregates/player/p-1')).body;
  assert.deepEqual(await ids(`/v1/aggregates/player?filter=${q(`created_at = "${p1.created_at}"`)}`), ['p-1']);
  assert.deepEqual(await ids(`/v1/aggregates/player?filter=${q(`created_at = ${Date.parse(p1.created_at)}`)}`), ['p-1']);
  for (const filter of ['created_at > "2020-01-01T00:00:00Z"', `metadata.created_at >= ${createdMs - 1000}`]) {
    const res = await server.request('GET', `/v1/events?filter=${q(filter)}`);
    assert.equal(res.body.items.length, 3, filter);
  }
  // Not a time: said at once, not an empty answer.
  for (const filter of ['created_at > "yesterday"', 'updated_at > true', 'created_at IN ["2024-02-30"]']) {
    const res = await server.request('GET', `/v1/aggregates?filter=${q(filter)}`);
    assertError(res, 400, 'invalid_input');
    assert.match(res.body.error.message, /ISO 8601/);
  }
  assertError(await server.request('GET', `/v1/events?filter=${q('created_at < "soon"')}`), 400, 'invalid_input');
});

test('filter coercion - a field no record has is no error, but explain and --explain say so', { timeout: 60_000 }, async () => {
  const res = await server.request('GET', `/v1/aggregates/player?explain=true&filter=${q('scroe > 40')}`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.items, []);
  assert.deepEqual(res.body.explain.missing_fields, ['scroe']);
  assert.ok(res.body.explain.notes.some((n: string) => /no record read has 'scroe'/.test(n)));
  const present = await server.request('GET', `/v1/aggregates/player?explain=true&filter=${q('score > 1000')}`);
  assert.deepEqual(present.body.explain.missing_fields, [], 'a field some record has is not reported');

  const list = await ok(['aggregate', 'list', 'player', '--filter', 'scroe > 40', '--explain']);
  assert.match(list.stderr, /explain: missing fields \(no record read has them\): scroe/);
  assert.match(list.stderr, /explain: plan=index_range index=aggregate_index/);
  assert.doesNotMatch(list.stdout, /explain/, 'the listing on stdout stays clean');
  const events = await ok(['events', '--filter', 'payload.scroe > 40', '--explain', '--json']);
  assert.deepEqual(JSON.parse(events.stdout), []);
  const line = JSON.parse(events.stderr.trim().split('\n').pop() as string);
  assert.deepEqual(line.explain.missing_fields, ['payload.scroe']);
  assert.equal(line.explain.plan, 'full_scan');
  const indexed = await ok(['events', '--filter', 'event_type = "player_joined"', '--explain']);
  assert.match(indexed.stderr, /explain: plan=index_range index=event_index/);
  assert.match(indexed.stderr, /records=3 /);
  const history = await ok(['aggregate', 'events', 'player', 'p-1', '--filter', 'payload.nope = 1', '--explain']);
  assert.match(history.stderr, /missing fields \(no record read has them\): payload\.nope/);
});
