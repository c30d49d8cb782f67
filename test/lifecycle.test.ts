/**
 * Lifecycle (DESIGN §11) with the real `dbx` binary: first start sets up the data dir, SIGTERM stops
 * cleanly, and every refusal to start is one line naming its cause, never a stack trace.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { removeDir, runDbx, spawnServer, stopSpawned, tempDataDir, writeConfigToml } from './helpers/server.js';

const dirs: string[] = [];
const dir = (): string => {
  const d = tempDataDir();
  dirs.push(d);
  return d;
};
after(() => dirs.forEach(removeDir));

/** A refused start: exit code 1, one line on stderr naming the cause, no stack trace. */
function assertRefused(out: { code: number | null; stdout: string; stderr: string }, cause: RegExp): void {
  assert.equal(out.code, 1, `exit code (stderr: ${out.stderr})`);
  const lines = out.stderr.split('\n').filter((l) => l.trim().length > 0);
  assert.equal(lines.length, 1, `one line on stderr, got:\n${out.stderr}`);
  assert.match(lines[0] as string, cause);
  assert.doesNotMatch(out.stderr, / {4}at /, 'no stack trace');
}

const startArgs = (dataDir: string, port = '0') => ['start', '--foreground', '--data-dir', dataDir, '--port', port];

test('lifecycle - first start writes config.toml with [auth] keys and a 0600 cli.token; a second server on the dir is refused; SIGTERM exits 0', { timeout: 60_000 }, async () => {
  const dataDir = dir();
  const server = await spawnServer({ dataDir });
  try {
    const config = parseToml(readFileSync(join(dataDir, 'config.toml'), 'utf8')) as { auth: Record<string, string> };
    assert.match(config.auth.private_key ?? '', /^[A-Za-z0-9+/=]{40,}$/);
    assert.match(config.auth.public_key ?? '', /^[A-Za-z0-9+/=]{40,}$/);
    const tokenFile = join(dataDir, 'cli.token');
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    assert.equal(readFileSync(tokenFile, 'utf8').trim().split('.').length, 3);
    assert.equal((await server.request('POST', '/v1/aggregates/life/l-1', { event_type: 'born' })).status, 201);

    const second = await runDbx(startArgs(dataDir), { env: { EVENTDBX_LOG_LEVEL: 'warn' } });
    assertRefused(second, /already used by a running server/);
    assert.equal((await server.request('GET', '/health')).status, 200, 'the first server is unaffected');

    assert.equal(await stopSpawned(server), 0);
    assert.doesNotMatch(server.stderr(), / {4}at /);
    assert.equal(existsSync(join(dataDir, 'server.pid')), false, 'the lock is released');
  } finally {
    await stopSpawned(server);
  }
  // The data survives a restart on the same dir, with the same keys.
  const again = await spawnServer({ dataDir });
  try {
    assert.equal((await again.request('GET', '/v1/aggregates/life/l-1')).body.version, 1);
  } finally {
    await stopSpawned(again);
  }
});

test('lifecycle - a port in use is refused with one line naming the port', { timeout: 30_000 }, async () => {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '0.0.0.0', resolve));
  const port = (blocker.address() as { port: number }).port;
  try {
    const out = await runDbx(startArgs(dir(), String(port)), { env: { EVENTDBX_LOG_LEVEL: 'warn' } });
    assertRefused(out, new RegExp(`port ${port}.*in use`));
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
});

test('lifecycle - a malformed config.toml is refused with one line naming the key', { timeout: 30_000 }, async () => {
  const bad = dir();
  writeConfigToml(bad, '[storage]\ndurability = "sometimes"\n');
  assertRefused(await runDbx(startArgs(bad)), /storage\.durability/);
  assert.equal(readFileSync(join(bad, 'config.toml'), 'utf8'), '[storage]\ndurability = "sometimes"\n', 'a bad config is never rewritten');
  const unknown = dir();
  writeConfigToml(unknown, 'snapshot_treshold = 5\n');
  assertRefused(await runDbx(startArgs(unknown)), /snapshot_treshold/);
  const notToml = dir();
  writeConfigToml(notToml, '[storage\n');
  assertRefused(await runDbx(startArgs(notToml)), /config\.toml/);
});

test('lifecycle - [storage] durability = "async" serves reads and writes and stops cleanly', { timeout: 30_000 }, async () => {
  const server = await spawnServer({ dataDir: dir(), configToml: '[storage]\ndurability = "async"\n' });
  try {
    for (let i = 1; i <= 5; i++) assert.equal((await server.request('POST', '/v1/aggregates/life/a-1/events', { event_type: 'ticked', payload: { i } })).status, 201);
    const got = await server.request('GET', '/v1/aggregates/life/a-1');
    assert.equal(got.body.version, 5);
    assert.deepEqual(got.body.state, { i: 5 });
    assert.equal((await server.request('GET', '/v1/aggregates/life/a-1/verify')).body.valid, true);
    assert.equal(await stopSpawned(server), 0);
  } finally {
    await stopSpawned(server);
  }
});
