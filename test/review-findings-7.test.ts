/**
 * Findings of the seventh review (2026-12-05), each a test that fails if it comes back.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SNOWFLAKE_EPOCH_MS, SnowflakeGenerator, createSnowflakeState, issueToken, readConfig, shardFor } from '../src/core/index.js';
import { readLayout, workerOfShard } from '../src/coordinator/layout.js';
import { httpRequest, removeDir, runDbx, startServerInProcess, tempDataDir, useServer, writeConfigToml, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) removeDir(dir);
});

function dir(): string {
  const d = tempDataDir('edbx-rf7-');
  dirs.push(d);
  return d;
}

/** Every regular file under `root` holding `text` (UTF-8). */
function filesHolding(root: string, text: string): string[] {
  const needle = Buffer.from(text, 'utf8');
  const out: string[] = [];
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    const stat = statSync(path);
    if (stat.isDirectory()) out.push(...filesHolding(path, text));
    else if (stat.isFile() && readFileSync(path).includes(needle)) out.push(path);
  }
  return out;
}

const server = useServer();

// Reference §7: an empty filter is refused ("filter cannot be empty"), whether empty or blank; a
// `?filter=` with nothing in it used to list everything as if no filter had been given.
test('an empty ?filter= is refused like a blank one, on every route that takes a filter', async () => {
  const created = await server.request('POST', '/v1/aggregates/order/o-1', { event_type: 'order_created', payload: { n: 1 } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const paths = ['/v1/aggregates', '/v1/aggregates/order', '/v1/aggregates/order/o-1/events', '/v1/events', '/v1/stream'];
  for (const path of paths) {
    for (const filter of ['', '%20%20']) {
      const res = await server.request('GET', `${path}?filter=${filter}`);
      assertError(res, 400, 'invalid_input');
      assert.match(res.body.error.message, /filter cannot be empty/, `${path}?filter=${filter}`);
    }
    const none = await server.request('GET', path);
    assert.equal(none.status, 200, `${path} without a filter: ${JSON.stringify(none.body)}`);
  }
});

// `dbx events --filter ''` wrapped the filter as `()` and answered "expected field name in
// comparison"; it is refused as empty, with or without an aggregate scope, like the listing routes.
test('dbx events refuses an empty or blank --filter as empty, scoped or not', { timeout: 60_000 }, async () => {
  for (const args of [['events', '--filter', ''], ['events', '--filter', '  '], ['events', 'order', '--filter', ''], ['events', '--follow', '--filter', ' ']]) {
    const res = await runDbx([...args, '--url', server.url, '--token', server.token]);
    assert.equal(res.code, 1, `${args.join(' ')}: ${res.stderr}`);
    assert.match(res.stderr, /filter cannot be empty/, args.join(' '));
    assert.doesNotMatch(res.stderr, /expected field name/, args.join(' '));
  }
});

// The tenant rate limit's early refusal (preParsing) ran before tenant authorisation: a token of
// another tenant learned that tenant B was rate limited (429, with its limit in the body) instead
// of 403, and parked in B's hold slots. It is answered 403, and B's bucket is untouched.
test("a token of another tenant writing to a rate-limited tenant gets 403, never the tenant's 429", { timeout: 60_000 }, async () => {
  const auth = readConfig(server.dataDir).config.auth;
  const own = issueToken(auth, { group: 'g', user: 'b-writer', actions: ['*'], tenants: ['rl-b'] }).token;
  const foreign = issueToken(auth, { group: 'g', user: 'a-writer', actions: ['*'], tenants: ['rl-a'] }).token;
  assert.equal((await server.request('PUT', '/v1/tenants/rl-b/limit', { writes_per_sec: 1, burst: 1 })).status, 200);
  const write = (token: string) =>
    httpRequest(server.url, token, 'POST', '/v1/aggregates/order/o-1/events', { event_type: 'touched', payload: {} }, { 'x-tenant-id': 'rl-b' });
  assert.equal((await write(own)).status, 201, 'the burst of one passes');
  const limited = await write(own);
  assertError(limited, 429, 'rate_limited');
  for (let i = 0; i < 3; i++) {
    const res = await write(foreign);
    assertError(res, 403, 'forbidden');
    assert.doesNotMatch(JSON.stringify(res.body), /limited|writes_per_sec/);
  }
  // The tenant's own clients still see their limit, not a hold a stranger filled.
  assertError(await write(own), 429, 'rate_limited');
});

// README "Not finished" listed idempotency keys as stored in plaintext (in the LMDB key). With a
// DEK they are now stored as a keyed tag (HMAC under an HKDF-derived key): found again, through
// rotations, and a key written before encryption was on is still honoured.
test('idempotency keys never reach the disk as given when a DEK is set; retries still replay, across a DEK rotation and from before a key existed', { timeout: 90_000 }, async () => {
  const KEY = 'patient-4711-ssn-078-05-1120';
  const path = '/v1/aggregates/chart/c-1/events';
  const body = { event_type: 'chart_noted', payload: { n: 1 }, idempotency_key: KEY };
  const retry = async (s: TestServer, expected: 'replayed' | 'appended', version: number): Promise<void> => {
    const res = await s.request('POST', path, body);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers.get('idempotent-replayed') ?? 'false', expected === 'replayed' ? 'true' : 'false', `${expected}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.version, version);
    const conflict = await s.request('POST', path, { ...body, payload: { n: 2 } });
    assertError(conflict, 409, 'already_exists');
  };

  // Encryption on (the default): the key is not in any file, yet a retry replays.
  const sealed = dir();
  let server = await startServerInProcess({ dataDir: sealed });
  try {
    await retry(server, 'appended', 1);
    await retry(server, 'replayed', 1);
  } finally {
    await server.stop();
  }
  assert.deepEqual(filesHolding(sealed, KEY), [], 'no file holds the idempotency key');
  assert.ok(filesHolding(sealed, 'c-1').length > 0, 'the search reads the LMDB files (the aggregate id is readable)');

  // After a rotation the entry (tagged under the old key) is still found.
  const rotated = await runDbx(['config', '--rotate-dek'], { env: { EVENTDBX_DATA_DIR: sealed, EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '' }, timeoutMs: 30_000 });
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.equal(readConfig(sealed).config.data_encryption_keys_retired.length, 1);
  server = await startServerInProcess({ dataDir: sealed });
  try {
    await retry(server, 'replayed', 1);
    // A new key after the rotation works as before.
    const other = await server.request('POST', path, { ...body, idempotency_key: `${KEY}-b` });
    assert.equal(other.status, 201, JSON.stringify(other.body));
    const again = await server.request('POST', path, { ...body, idempotency_key: `${KEY}-b` });
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.body.version, 2);
  } finally {
    await server.stop();
  }
  assert.deepEqual(filesHolding(sealed, KEY), [], 'no file holds either key');

  // Written with encryption off (stored as given), then encryption turned on: still honoured.
  const legacy = dir();
  server = await startServerInProcess({ dataDir: legacy, configToml: 'encryption_at_rest = false\n' });
  try {
    await retry(server, 'appended', 1);
  } finally {
    await server.stop();
  }
  assert.ok(filesHolding(legacy, KEY).length > 0, 'with encryption off the key is stored as given');
  writeConfigToml(legacy, readFileSync(join(legacy, 'config.toml'), 'utf8').replace('encryption_at_rest = false', 'encryption_at_rest = true'));
  server = await startServerInProcess({ dataDir: legacy });
  try {
    assert.notEqual(readConfig(legacy).config.data_encryption_key, '', 'a key was generated');
    await retry(server, 'replayed', 1);
  } finally {
    await server.stop();
  }
});

const NDJSON = { 'content-type': 'application/x-ndjson' };
const importLine = (type: string, id: string, eventId: string, version = 1): string =>
  JSON.stringify({
    aggregate_type: type,
    aggregate_id: id,
    event_type: 'item_added',
    version,
    payload: { n: version },
    metadata: { event_id: eventId, created_at: new Date(Date.UTC(2025, 0, 1)).toISOString(), issued_by: null },
  });

// Event ids are unique on a node (GET /v1/events/{id}, the plugin queue's job keys): a worker
// checked only its own environment, so with workers = 2 an imported id already stored (or being
// imported) in the other worker's environment was accepted a second time.
test('with two workers an imported event_id already stored or in flight in the other worker is refused, and nothing of its chunk is written', { timeout: 60_000 }, async () => {
  const dataDir = dir();
  const two = await startServerInProcess({ dataDir, configToml: '[storage]\nworkers = 2\n' });
  try {
    const layout = readLayout(dataDir);
    assert.ok(layout && layout.workers === 2);
    const workerOf = (id: string): number => workerOfShard(shardFor({ shardCount: layout.shard_count, multiTenant: false }, 'default', 'item', id), layout);
    const ids = Array.from({ length: 64 }, (_, i) => `i-${i}`);
    const onZero = ids.filter((id) => workerOf(id) === 0);
    const onOne = ids.filter((id) => workerOf(id) === 1);
    assert.ok(onZero.length >= 2 && onOne.length >= 2);
    const X = '100000000000000001';
    const first = await two.request('POST', '/v1/import', importLine('item', onZero[0] as string, X) + '\n', NDJSON);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    // A later request, the same id, an aggregate of the other worker.
    const again = await two.request('POST', '/v1/import', importLine('item', onOne[0] as string, X) + '\n', NDJSON);
    assertError(again, 409, 'already_exists');
    assert.match(again.body.error.message, /line 1: event_id 100000000000000001 is already stored/);
    assert.equal((await two.request('GET', `/v1/aggregates/item/${onOne[0]}`)).status, 404, 'nothing of the refused chunk is written');
    // One body: two lines with one id for aggregates of both workers; only one of them is stored.
    const Y = '100000000000000002';
    const both = await two.request('POST', '/v1/import', [importLine('item', onZero[1] as string, Y), importLine('item', onOne[1] as string, Y)].join('\n') + '\n', NDJSON);
    assertError(both, 409, 'already_exists');
    const present = await Promise.all([onZero[1], onOne[1]].map(async (id) => (await two.request('GET', `/v1/aggregates/item/${id}`)).status));
    assert.equal(present.filter((status) => status === 200).length, 1, `exactly one of the two is stored: ${present}`);
    // The tenant import route is guarded too.
    const tenantImport = await two.request('POST', '/v1/tenants/default/import?resume=true', importLine('item', onOne[2] as string, X) + '\n', NDJSON);
    assert.equal(tenantImport.status >= 400, true, JSON.stringify(tenantImport.body));
    assert.equal((await two.request('GET', `/v1/aggregates/item/${onOne[2]}`)).status, 404);
    // The id still names the first event.
    const event = await two.request('GET', `/v1/events/${X}`);
    assert.equal(event.status, 200);
    assert.equal(event.body.aggregate_id, onZero[0]);
  } finally {
    await two.stop();
  }
});

// Generated ids come from one generator per node; an imported id carrying this node's worker id
// could be generated again later: the generator moves past one from the clock's past, and one from
// its future is refused (the generator's position is not kept across a restart).
test('an imported event_id with this node\'s worker id moves the generator past it, and one from the clock\'s future is refused', { timeout: 30_000 }, async () => {
  const state = createSnowflakeState();
  const generator = new SnowflakeGenerator(0, state);
  const nowId = (offsetMs: number, seq: bigint, worker = 0n): bigint => (BigInt(Date.now() + offsetMs - SNOWFLAKE_EPOCH_MS) << 22n) | (worker << 12n) | seq;
  const past = nowId(-5, 4095n);
  assert.equal(generator.observe(past), true);
  assert.equal(new BigInt64Array(state)[0], past, 'the generator moved to the imported id');
  assert.ok(generator.next() > past);
  const before = new BigInt64Array(state)[0];
  assert.equal(generator.observe(nowId(60_000, 0n)), false, 'an id a minute ahead is refused');
  assert.equal(generator.observe(nowId(86_400_000, 0n, 5n)), true, 'another worker id never collides here');
  assert.equal(new BigInt64Array(state)[0], before, 'neither moved the generator');

  const future = nowId(86_400_000, 0n).toString();
  const res = await server.request('POST', '/v1/import', importLine('item', 'future-1', future) + '\n', NDJSON);
  assertError(res, 400, 'invalid_input');
  assert.match(res.body.error.message, /carries this node's snowflake worker id and a time ahead of its clock/);
  assert.equal((await server.request('GET', '/v1/aggregates/item/future-1')).status, 404);
  // One from a moment ago is taken, and the next write is given a later id.
  const recent = nowId(-1, 4095n).toString();
  const ok = await server.request('POST', '/v1/import', importLine('item', 'recent-1', recent) + '\n', NDJSON);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const written = await server.request('POST', '/v1/aggregates/item/recent-1/events', { event_type: 'item_added', payload: { n: 2 } });
  assert.equal(written.status, 201, JSON.stringify(written.body));
  assert.ok(BigInt(written.body.metadata.event_id) > BigInt(recent));
});
