/**
 * Review findings (round 4, the CLI and the first hour): each test runs a command as README.md
 * gives it against one real server (`dbx start --foreground`), and failed before its fix.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, runDbx, spawnServer, stopSpawned, tempDataDir, type SpawnedServer } from './helpers/server.js';

let server: SpawnedServer;
let home: string;
before(async () => {
  home = tempDataDir('edbx-rf4-home-');
  server = await spawnServer();
});
after(async () => {
  await stopSpawned(server);
  removeDir(server.dataDir);
  removeDir(home);
});

function dbx(args: string[], env: Record<string, string> = {}, input?: string): ReturnType<typeof runDbx> {
  return runDbx(args, {
    env: { HOME: home, EVENTDBX_DATA_DIR: server.dataDir, EVENTDBX_TOKEN: '', EVENTDBX_TENANT: '', EVENTDBX_TENANT_ID: '', EVENTDBX_URL: '', NO_COLOR: '1', ...env },
    ...(input !== undefined ? { input } : {}),
    timeoutMs: 30_000,
  });
}

async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const res = await dbx(args, env);
  assert.equal(res.code, 0, `dbx ${args.join(' ')} → ${res.code}: ${res.stdout}${res.stderr}`);
  return res.stdout;
}

function noStack(text: string): void {
  assert.doesNotMatch(text, /\n\s+at |node_modules/, 'no stack trace');
}

test('plugin config postgres --url postgres://… is the read model URL, not the EventDBX server (README Plugins table)', { timeout: 60_000 }, async () => {
  // Before: the preAction hook took the postgres --url for the EventDBX server URL: exit 2,
  // "--url postgres://…: expected http://host:port or https://host:port".
  const res = await dbx(['plugin', 'config', 'postgres', '--name', 'readmodel', '--url', 'postgres://app@127.0.0.1:1/app', '--table-prefix', 'edbx_', '--disable', '--json']);
  assert.equal(res.code, 0, res.stderr);
  const stored = JSON.parse(res.stdout);
  assert.equal(stored.options.kind, 'postgres');
  assert.equal(stored.options.url, 'postgres://app@127.0.0.1:1/app');
  // The EventDBX server of a plugin command is still chosen by --server / $EVENTDBX_URL.
  const listed = await dbx(['plugin', 'list', '--json'], { EVENTDBX_URL: server.url, EVENTDBX_TOKEN: server.token, EVENTDBX_DATA_DIR: join(home, 'nowhere') });
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok(JSON.parse(listed.stdout).some((p: { name: string }) => p.name === 'readmodel'));
  const viaEnv = await dbx(['plugin', 'config', 'log', '--name', 'envlog', '--disable'], { EVENTDBX_URL: server.url, EVENTDBX_TOKEN: server.token, EVENTDBX_DATA_DIR: join(home, 'nowhere') });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  assert.match(viaEnv.stdout, /Log plugin 'envlog' disabled/);
  await ok(['plugin', 'remove', 'readmodel']);
  await ok(['plugin', 'remove', 'envlog']);
});

test('proof check --server takes the tenant from $EVENTDBX_TENANT like every other command (README CLI)', { timeout: 60_000 }, async () => {
  await ok(['aggregate', 'create', 'ledger', 'l-1', '--event', 'ledger_opened', '--field', 'owner=ada', '--tenant', 'acme']);
  await ok(['aggregate', 'apply', 'ledger', 'l-1', 'ledger_noted', '--field', 'n=1', '--tenant', 'acme']);
  const proof = await server.request('GET', '/v1/aggregates/ledger/l-1/proof?version=1&size=2', undefined, { 'x-tenant-id': 'acme' });
  assert.equal(proof.status, 200);
  const file = join(home, 'proof.json');
  writeFileSync(file, JSON.stringify(proof.body));
  // Before: the tenant came only from --tenant or $EVENTDBX_TENANT_ID, so this asked tenant default: not_found, exit 1.
  const res = await dbx(['proof', 'check', file, '--server', server.url], { EVENTDBX_TENANT: 'acme' });
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /^valid: inclusion proof, checked against the server's root/);
});

test('aggregate export --verify of a file that is not a JSON export is a clear invalid_input, not "internal"', { timeout: 60_000 }, async () => {
  const file = join(home, 'tenant.ndjson');
  writeFileSync(file, '{"aggregate_type":"person","aggregate_id":"p-1","version":1}\n');
  const res = await dbx(['aggregate', 'export', '--verify', file]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /^error: invalid_input: .*tenant\.ndjson is not a JSON export/);
  noStack(res.stderr);
  const cut = join(home, 'cut.json');
  writeFileSync(cut, '[{"__aggregate_type":"person","__aggregate_id":"p-1","__version":1,"__merkle_root":"00"');
  const json = await dbx(['aggregate', 'export', '--verify', cut, '--json']);
  assert.equal(json.code, 1);
  assert.equal(JSON.parse(json.stderr).error.code, 'invalid_input');
});

test('--format lines keys hold no spaces (one key=value pair per space-separated word)', { timeout: 60_000 }, async () => {
  const lines = await ok(['token', 'list', '--format', 'lines']);
  assert.match(lines, / writes_left=unlimited /);
  assert.doesNotMatch(lines, /writes left=/);
  for (const line of lines.trim().split('\n')) {
    for (const word of line.split(' ')) assert.match(word, /^[a-z_]+=/, `${word} in ${line}`);
  }
});

test('verbose_responses = false (dbx config --verbose-responses false) makes writes print Ok, as the original', { timeout: 60_000 }, async () => {
  // Before: the key was validated and saved, and changed nothing.
  const saved = await ok(['config', '--verbose-responses', 'false']);
  // The CLI reads it on every command: no restart is asked for, though the server is running.
  assert.match(saved, /Configuration saved/);
  assert.doesNotMatch(saved, /dbx restart/);
  assert.doesNotMatch(await ok(['config', '--domain', 'default']), /dbx restart/);
  // A key the server reads at start still says so (this server is not restarted here).
  assert.match(await ok(['config', '--plugin-max-attempts', '7']), /dbx restart/);
  try {
    assert.equal((await ok(['aggregate', 'create', 'quiet', 'q-1', '--event', 'quiet_created', '--field', 'a=1'])).trim(), 'Ok');
    assert.equal((await ok(['aggregate', 'apply', 'quiet', 'q-1', 'quiet_changed', '--field', 'a=2'])).trim(), 'Ok');
    assert.equal((await ok(['aggregate', 'patch', 'quiet', 'q-1', 'quiet_patched', '--patch', '[{"op":"add","path":"/b","value":1}]'])).trim(), 'Ok');
    assert.equal((await ok(['aggregate', 'archive', 'quiet', 'q-1'])).trim(), 'Ok');
    assert.equal(JSON.parse(await ok(['aggregate', 'restore', 'quiet', 'q-1', '--json'])).archived, false, '--json still prints the result');
  } finally {
    await ok(['config', '--verbose-responses', 'true']);
  }
  assert.match(await ok(['aggregate', 'apply', 'quiet', 'q-1', 'quiet_changed', '--field', 'a=3']), /^aggregate_type=quiet aggregate_id=q-1 version=6 /);
});

test('dbx destroy reads its confirmation from stdin, a pipe too; no answer cancels with exit 1 (README CLI table)', { timeout: 60_000 }, async () => {
  const dir = join(home, 'doomed');
  await ok(['config', '--data-dir', dir, '--port', '7999']);
  const cancelled = await dbx(['destroy', '--data-dir', dir], {}, '');
  assert.equal(cancelled.code, 1);
  assert.match(cancelled.stderr, /error: invalid_input: Destroy command cancelled\./);
  assert.ok(existsSync(dir));
  const done = await dbx(['destroy', '--data-dir', dir], {}, 'destroy\n');
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stdout, /All EventDBX data and configuration removed from /);
  assert.ok(!existsSync(dir));
});

test('reads of a data directory that does not exist say so: token list, aggregate replay, aggregate export (README CLI)', { timeout: 60_000 }, async () => {
  // Before: token list said "no signing key … start the server once first" (invalid_input), replay and
  // export "unauthorized: no token: … start the server once to create …/cli.token".
  const missing = join(home, 'no-such-dir');
  for (const args of [['token', 'list'], ['aggregate', 'replay', 'person', 'p-1'], ['aggregate', 'export', 'person', '--output', join(home, 'x.csv')]]) {
    const res = await dbx(args, { EVENTDBX_DATA_DIR: missing });
    assert.equal(res.code, 1, `dbx ${args.join(' ')}: ${res.stderr}`);
    assert.match(res.stderr, /^error: not_found: data directory .*no-such-dir does not exist/, `dbx ${args.join(' ')}`);
    assert.ok(!existsSync(missing), 'a read creates nothing');
  }
});

test('tenant export -o <existing directory> and an unwritable --output name the path given, not a temp file', { timeout: 60_000 }, async () => {
  // Before: the whole export streamed into a temp file, then "cannot use /…/.dir.tmp-123-ab: EISDIR".
  const dir = join(home, 'a-dir');
  mkdirSync(dir, { recursive: true });
  const res = await dbx(['tenant', 'export', 'default', '-o', dir]);
  assert.equal(res.code, 1);
  assert.equal(res.stderr, `error: invalid_input: ${dir} is a directory: name the file to write\n`);
  const blocked = join(home, 'a-file');
  writeFileSync(blocked, '');
  const bad = await dbx(['aggregate', 'export', '--all', '--output', join(blocked, 'sub', 'x.json'), '--format', 'json']);
  assert.equal(bad.code, 1);
  assert.doesNotMatch(bad.stderr, /\.tmp-/, bad.stderr);
  // Here --format json is the file's format: the error stays text (it was the JSON error model).
  assert.match(bad.stderr, /^error: invalid_input: cannot /);
  noStack(bad.stderr);
});

test('a data directory first made by dbx config is private (0700) like one made by dbx start', { timeout: 60_000 }, async () => {
  // Before: writeConfig created it 0777 & ~umask (0755), readable by every user until the first start.
  const dataDir = join(home, 'fresh-parent', 'made-by-config');
  await ok(['config', '--port', '17999'], { EVENTDBX_DATA_DIR: dataDir });
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dataDir, 'config.toml')).mode & 0o777, 0o600);
});
