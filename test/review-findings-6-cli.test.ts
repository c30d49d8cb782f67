/**
 * Review findings (round 6, the CLI; 2026-12-05), each run as README.md gives the command against
 * a real server (`dbx start --foreground`), each failing before its fix: JSON flags were parsed
 * leniently (a duplicate member kept its last value, 1e400 became null) and stored altered; a
 * `--url` elsewhere was sent the local root cli.token; a `*` token with no tenant list was shown as
 * `tenants=[default]` though it opens every tenant; `token refresh --limit` could raise a token's
 * allowance; `dbx status` with a tenant token printed `pid undefined`; `dbx config --host` saved a
 * value no server can listen on.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, runDbx, spawnServer, stopSpawned, tempDataDir, type SpawnedServer } from './helpers/server.js';

let server: SpawnedServer;
let home: string;
before(async () => {
  home = tempDataDir('edbx-rf6-home-');
  server = await spawnServer();
});
after(async () => {
  await stopSpawned(server);
  removeDir(server.dataDir);
  removeDir(home);
});

function dbx(args: string[], env: Record<string, string> = {}): ReturnType<typeof runDbx> {
  return runDbx(args, {
    env: { HOME: home, EVENTDBX_DATA_DIR: server.dataDir, EVENTDBX_TOKEN: '', EVENTDBX_TENANT: '', EVENTDBX_TENANT_ID: '', EVENTDBX_URL: '', NO_COLOR: '1', ...env },
    timeoutMs: 30_000,
  });
}

async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const res = await dbx(args, env);
  assert.equal(res.code, 0, `dbx ${args.join(' ')} → ${res.code}: ${res.stdout}${res.stderr}`);
  return res.stdout;
}

test('review-findings-6-cli - JSON flags follow the API\'s I-JSON rules: nothing is stored altered', { timeout: 60_000 }, async () => {
  await ok(['aggregate', 'create', 'person', 'j-1', '--event', 'person_created', '--payload', '{"a":1}']);
  const refused: [string[], RegExp][] = [
    [['aggregate', 'apply', 'person', 'j-1', 'person_noted', '--payload', '{"a":1e400}'], /--payload at a: .*too large for a double/],
    [['aggregate', 'apply', 'person', 'j-1', 'person_noted', '--payload', '{"a":1,"a":2}'], /--payload at a: duplicate member name "a"/],
    [['aggregate', 'apply', 'person', 'j-1', 'person_noted', '--payload', '{"a":{"b":1e-400}}'], /--payload at a\.b: .*too small for a double/],
    [['aggregate', 'apply', 'person', 'j-1', 'person_noted', '--metadata', '{"@m":1,"@m":2}'], /--metadata at @m: duplicate member name/],
    [['aggregate', 'patch', 'person', 'j-1', 'person_patched', '--patch', '[{"op":"add","path":"/n","value":1e400}]'], /--patch at 0\.value: .*too large/],
    [['schema', 'validate', '--aggregate', 'person', '--event', 'person_noted', '--payload', '{"amount":50,"amount":500}'], /--payload at amount: duplicate member name/],
  ];
  for (const [args, message] of refused) {
    const res = await dbx(args);
    assert.equal(res.code, 2, `${args.join(' ')}: ${res.stdout}${res.stderr}`);
    assert.match(res.stderr, /^error: invalid_input: /);
    assert.match(res.stderr, message);
  }
  const got = JSON.parse(await ok(['aggregate', 'get', 'person', 'j-1', '--json']));
  assert.equal(got.version, 1, 'no refused flag wrote an event');
  assert.deepEqual(got.state, { a: 1 });
});

test('review-findings-6-cli - cli.token goes only to a server on this machine: a --url elsewhere needs --token', { timeout: 60_000 }, async () => {
  // No connection is tried: the refusal comes first (10.255.255.1 would otherwise time out).
  for (const args of [['aggregate', 'list', '--url', 'http://10.255.255.1:7070'], ['events', '--url', 'https://db.example.invalid:7070']]) {
    const res = await dbx(args);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /^error: unauthorized: no token for https?:\/\/[^:]+:7070\/?: pass --token or set EVENTDBX_TOKEN/);
  }
  // The local server named by --url still gets cli.token.
  const local = await dbx(['aggregate', 'list', '--url', `http://127.0.0.1:${server.port}`, '--json']);
  assert.equal(local.code, 0, local.stderr);
  assert.ok(Array.isArray(JSON.parse(local.stdout)));
});

test('review-findings-6-cli - a * token with no --tenant is shown as every tenant; refresh --limit never raises an allowance', { timeout: 60_000 }, async () => {
  const wide = await ok(['token', 'generate', '--group', 'ops', '--user', 'ada']);
  assert.match(wide, /tenants=\[\*\]/);
  const scoped = await ok(['token', 'generate', '--group', 'ops', '--user', 'bob', '--action', 'aggregate.*']);
  assert.match(scoped, /tenants=\[default\]/);

  const limited = JSON.parse(await ok(['token', 'generate', '--group', 'ops', '--user', 'w', '--action', 'aggregate.*', '--limit', '2', '--json']));
  await ok(['aggregate', 'create', 'person', 'lim-1', '--event', 'person_created', '--token', limited.token]);
  const raised = JSON.parse(await ok(['token', 'refresh', '--token', limited.token, '--limit', '5', '--json']));
  assert.equal(raised.writes_remaining, 1, 'what the old token had left, not 5');
  // The replacement holds exactly one write: a second is refused.
  await ok(['aggregate', 'create', 'person', 'lim-2', '--event', 'person_created', '--token', raised.token]);
  const over = await dbx(['aggregate', 'create', 'person', 'lim-3', '--event', 'person_created', '--token', raised.token]);
  assert.equal(over.code, 1, over.stdout);
  assert.match(over.stderr, /write_limit_exhausted|write limit/);
});

test('review-findings-6-cli - dbx status with a tenant token names the tenant and prints no undefined', { timeout: 60_000 }, async () => {
  const reader = JSON.parse(await ok(['token', 'generate', '--group', 'ops', '--user', 'r', '--action', 'aggregate.read', '--json']));
  const out = await ok(['status', '--token', reader.token]);
  assert.doesNotMatch(out, /undefined/);
  assert.match(out, new RegExp(`^EventDBX server is running on port ${server.port} — restrict=\\S+ — tenant=default \\(a tenant token's view\\)`));
  const admin = await ok(['status']);
  assert.match(admin, /\(pid \d+\)/);
});

test('review-findings-6-cli - dbx config --host refuses a value that is no host name or address, and saves nothing', { timeout: 60_000 }, async () => {
  const before = readFileSync(join(server.dataDir, 'config.toml'), 'utf8');
  const res = await dbx(['config', '--host', 'not a host!!']);
  assert.notEqual(res.code, 0, res.stdout);
  assert.match(res.stderr, /host.*must be a host name or an IP address/);
  assert.equal(readFileSync(join(server.dataDir, 'config.toml'), 'utf8'), before, 'config.toml unchanged');
});
