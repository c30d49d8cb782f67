/**
 * Findings of the seventh review (2026-12-05), each a test that fails if it comes back.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readConfig } from '../src/core/index.js';
import { removeDir, runDbx, startServerInProcess, tempDataDir, useServer, writeConfigToml, type TestServer } from './helpers/server.js';
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
