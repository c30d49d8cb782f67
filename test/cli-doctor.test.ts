/**
 * `dbx doctor` (issue 14 item 4) as the real binary against real data dirs: healthy, then each
 * problem it must name with what to do (missing dir, bad config, mismatched keys, a bad or exposed
 * cli.token, a port taken by another process, async durability), its exit codes and --json, and
 * that it changes nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { removeDir, runDbx, spawnServer, stopSpawned, tempDataDir } from './helpers/server.js';

interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  message: string;
  fix?: string;
}

let home: string;
let dataDir: string;

before(async () => {
  home = tempDataDir('edbx-doctor-');
  dataDir = join(home, 'data');
  // A data dir as a first write in direct mode leaves it (config, keys, cli.token, the store).
  const res = await dbx(['aggregate', 'create', 'person', 'p-1', '--event', 'person_created'], dataDir);
  assert.equal(res.code, 0, res.stderr);
  // Not 7070: whether that one is free depends on what else runs on this machine.
  const path = join(dataDir, 'config.toml');
  writeFileSync(path, readFileSync(path, 'utf8').replace(/^port = .*$/m, `port = ${await closedPort()}`));
});

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((done) => probe.close(() => done()));
  return port;
}

after(() => removeDir(home));

function dbx(args: string[], dir: string, env: Record<string, string> = {}): ReturnType<typeof runDbx> {
  return runDbx(args, { env: { HOME: home, EVENTDBX_DATA_DIR: dir, EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '', EVENTDBX_DATA_ENCRYPTION_KEY: '', NO_COLOR: '1', ...env }, timeoutMs: 60_000 });
}

async function doctor(dir: string, env: Record<string, string> = {}): Promise<{ code: number | null; healthy: boolean; checks: Map<string, Check>; text: string }> {
  const [json, text] = await Promise.all([dbx(['doctor', '--json'], dir, env), dbx(['doctor'], dir, env)]);
  assert.equal(json.code, text.code, 'the same verdict in text and JSON');
  const report = JSON.parse(json.stdout) as { healthy: boolean; data_dir: string; checks: Check[] };
  assert.equal(report.data_dir, dir);
  return { code: json.code, healthy: report.healthy, checks: new Map(report.checks.map((c) => [c.name, c])), text: text.stdout };
}

/** Edits config.toml with `edit`, runs `fn`, and puts the original back. */
async function withConfig(edit: (toml: string) => string, fn: () => Promise<void>): Promise<void> {
  const path = join(dataDir, 'config.toml');
  const original = readFileSync(path, 'utf8');
  writeFileSync(path, edit(original));
  try {
    await fn();
  } finally {
    writeFileSync(path, original);
  }
}

test('cli doctor - a healthy data dir: every check passes, exit 0, and nothing is changed', { timeout: 120_000 }, async () => {
  const before = readFileSync(join(dataDir, 'config.toml'), 'utf8');
  const report = await doctor(dataDir);
  assert.equal(report.code, 0, report.text);
  assert.equal(report.healthy, true);
  assert.deepEqual([...report.checks.keys()], ['data directory', 'config', 'key pair', 'cli token', 'data key', 'server', 'port', 'disk', 'durability']);
  for (const name of ['data directory', 'config', 'key pair', 'cli token', 'server', 'port', 'disk', 'durability']) {
    assert.equal(report.checks.get(name)?.status, 'ok', `${name}: ${JSON.stringify(report.checks.get(name))}`);
  }
  // The key generated into config.toml is the one warning a fresh data dir carries, with its fix.
  assert.equal(report.checks.get('data key')?.status, 'warn');
  assert.match(report.checks.get('data key')?.fix ?? '', /dbx config --dek-file/);
  assert.match(report.text, /^ok {4}data directory {2}/m);
  assert.match(report.text, /\nhealthy \(1 warning\)\n$/);
  assert.equal(readFileSync(join(dataDir, 'config.toml'), 'utf8'), before);
  assert.equal(existsSync(join(dataDir, 'server.pid')), false);
});

test('cli doctor - a data dir that does not exist fails (and is not created)', { timeout: 60_000 }, async () => {
  const missing = join(home, 'missing');
  const report = await doctor(missing);
  assert.equal(report.code, 1);
  assert.equal(report.healthy, false);
  assert.equal(report.checks.get('data directory')?.status, 'fail');
  assert.match(report.checks.get('data directory')?.fix ?? '', /dbx start --data-dir/);
  assert.equal(report.checks.get('config')?.status, 'skip');
  assert.match(report.text, /^FAIL {2}data directory {2}.* does not exist\n\s+fix: `dbx start --data-dir /m);
  assert.match(report.text, /\n1 problem to fix\n$/);
  assert.equal(existsSync(missing), false);
});

test('cli doctor - a config that does not parse, and a key pair that does not match, are named with their fix', { timeout: 120_000 }, async () => {
  await withConfig(
    (toml) => `${toml}\nport = "not a number"\n`,
    async () => {
      const report = await doctor(dataDir);
      assert.equal(report.code, 1);
      assert.equal(report.checks.get('config')?.status, 'fail');
      assert.match(report.checks.get('config')?.message ?? '', /config\.toml/);
      assert.match(report.checks.get('config')?.fix ?? '', /config\.example\.toml/);
      assert.equal(report.checks.get('key pair')?.status, 'skip');
    },
  );
  await withConfig(
    (toml) => toml.replace(/^public_key = ".*"$/m, `public_key = "${Buffer.alloc(32, 7).toString('base64')}"`),
    async () => {
      const report = await doctor(dataDir);
      assert.equal(report.code, 1);
      assert.equal(report.checks.get('key pair')?.status, 'fail');
      assert.match(report.checks.get('key pair')?.message ?? '', /public_key does not match/);
      assert.equal(report.checks.get('cli token')?.status, 'skip');
    },
  );
});

test('cli doctor - cli.token: an invalid one fails, a readable-by-others one warns', { timeout: 120_000 }, async () => {
  const path = join(dataDir, 'cli.token');
  const token = readFileSync(path, 'utf8');
  try {
    writeFileSync(path, `${token.trim().slice(0, -4)}AAAA\n`);
    const forged = await doctor(dataDir);
    assert.equal(forged.code, 1);
    assert.equal(forged.checks.get('cli token')?.status, 'fail');
    assert.match(forged.checks.get('cli token')?.message ?? '', /signature is invalid/);
    assert.match(forged.checks.get('cli token')?.fix ?? '', /dbx restart/);
    writeFileSync(path, token);
    chmodSync(path, 0o644);
    const exposed = await doctor(dataDir);
    assert.equal(exposed.code, 0, 'a warning is advice, not a failure');
    assert.equal(exposed.checks.get('cli token')?.status, 'warn');
    assert.match(exposed.checks.get('cli token')?.fix ?? '', /chmod 600/);
  } finally {
    writeFileSync(path, token);
    chmodSync(path, 0o600);
  }
});

test('cli doctor - the port: free, taken by another process, or this data dir\'s own server; async durability warns', { timeout: 120_000 }, async () => {
  const squatter = createServer();
  await new Promise<void>((done) => squatter.listen(0, '127.0.0.1', done));
  const taken = (squatter.address() as AddressInfo).port;
  try {
    await withConfig(
      (toml) => toml.replace(/^port = .*$/m, `port = ${taken}`),
      async () => {
        const report = await doctor(dataDir);
        assert.equal(report.code, 1);
        assert.equal(report.checks.get('port')?.status, 'fail');
        assert.equal(report.checks.get('port')?.message, `${taken} on 127.0.0.1 is in use by another process`);
        assert.match(report.checks.get('port')?.fix ?? '', /dbx config --port N/);
      },
    );
  } finally {
    await new Promise<void>((done) => squatter.close(() => done()));
  }
  await withConfig(
    (toml) => toml.replace(/^durability = .*$/m, 'durability = "async"').replace(/^\[storage\]$/m, (m) => (/^durability = /m.test(toml) ? m : `${m}\ndurability = "async"`)),
    async () => {
      const report = await doctor(dataDir);
      assert.equal(report.code, 0);
      assert.equal(report.checks.get('durability')?.status, 'warn');
      assert.match(report.checks.get('durability')?.message ?? '', /^async: a power cut may lose/);
    },
  );
  const server = await spawnServer({ dataDir });
  try {
    const report = await doctor(dataDir);
    assert.equal(report.code, 0, report.text);
    assert.equal(report.checks.get('server')?.status, 'ok');
    assert.match(report.checks.get('server')?.message ?? '', new RegExp(`running \\(pid ${server.child.pid}\\)`));
    assert.match(report.checks.get('port')?.message ?? '', /in use by this data dir's server/);
  } finally {
    await stopSpawned(server);
  }
});
