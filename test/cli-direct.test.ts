/**
 * The CLI with no server running: commands open the data directory themselves (an in-process
 * engine), give the same answers as through a server, and are refused while a live server owns it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, runDbx, spawnServer, tempDataDir } from './helpers/server.js';

function sandbox(): { home: string; dataDir: string; dbx: (args: string[]) => ReturnType<typeof runDbx> } {
  const home = tempDataDir('edbx-direct-');
  const dataDir = join(home, '.eventdbx');
  const env = { HOME: home, EVENTDBX_DATA_DIR: dataDir, EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '' };
  return { home, dataDir, dbx: (args) => runDbx(args, { env, timeoutMs: 30_000 }) };
}

test('cli direct - commands work without a server and answer exactly as through one', { timeout: 60_000 }, async () => {
  const { home, dataDir, dbx } = sandbox();
  try {
    const created = await dbx(['aggregate', 'create', 'person', 'p-1', '--event', 'person_created', '--field', 'name=Ada']);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout.trim(), 'aggregate_type=person aggregate_id=p-1 version=1 archived=false');
    assert.equal((await dbx(['aggregate', 'apply', 'person', 'p-1', 'person_renamed', '--field', 'name=Grace'])).code, 0);
    const direct = await dbx(['aggregate', 'get', 'person', 'p-1', '--include-events']);
    assert.equal(direct.code, 0, direct.stderr);
    assert.equal(JSON.parse(direct.stdout).version, 2);
    assert.equal(existsSync(join(dataDir, 'server.pid')), false, 'the direct engine released the data directory');
    assert.match(readFileSync(join(dataDir, 'config.toml'), 'utf8'), /^port = 7070$/m, 'port 0 of the direct engine was not saved');

    // Validation and auth are the server's own in direct mode too.
    const invalid = await dbx(['aggregate', 'apply', 'Person', 'p-1', 'x']);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /^error: validation_failed: params\.type: aggregate_type must be lowercase snake_case/);
    const issued = await dbx(['token', 'generate', '--group', 'ops', '--user', 'ro', '--action', 'aggregate.read', '--json']);
    const readOnly = JSON.parse(issued.stdout).token as string;
    const refused = await dbx(['aggregate', 'apply', 'person', 'p-1', 'person_renamed', '--token', readOnly]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: forbidden: token lacks the 'aggregate\.append' action/);

    const server = await spawnServer({ dataDir });
    try {
      const remote = await dbx(['aggregate', 'get', 'person', 'p-1', '--include-events']);
      assert.equal(remote.code, 0, remote.stderr);
      assert.equal(remote.stdout, direct.stdout, 'same answer through the server');
    } finally {
      // Not server.stop(): its 15 s fallback timer would keep this file's process alive after the tests.
      if (server.child.exitCode === null) server.kill('SIGTERM');
      await server.exited;
    }
  } finally {
    removeDir(home);
  }
});

test('cli direct - a live server that does not answer owns the directory: direct access is refused', { timeout: 60_000 }, async () => {
  const { home, dataDir, dbx } = sandbox();
  // A live process standing in for a server that is still starting (or stuck): it never listens.
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    assert.equal((await dbx(['aggregate', 'apply', 'order', 'o-1', 'order_placed', '--stage'])).code, 0, 'staging needs no server');
    const stagedEntries = async () => (JSON.parse((await dbx(['aggregate', 'list', '--stage', '--json'])).stdout) as Record<string, unknown>[]).map(({ idempotency_key: _k, ...rest }) => rest);
    const staged = await stagedEntries();
    writeFileSync(join(dataDir, 'server.pid'), JSON.stringify({ pid: holder.pid, port: 1, started_at: new Date().toISOString(), restrict: 'default' }));

    const [commit, create, status] = await Promise.all([
      dbx(['aggregate', 'commit']),
      dbx(['aggregate', 'create', 'order', 'o-2', '--event', 'order_placed']),
      dbx(['status']),
    ]);
    for (const res of [commit, create]) {
      assert.equal(res.code, 1);
      assert.match(res.stderr, new RegExp(`^error: unavailable: the EventDBX server \\(pid ${holder.pid}\\) owns .* but does not answer on port 1; direct access is refused`));
    }
    assert.deepEqual(await stagedEntries(), staged, 'the stage is kept (its entries keyed for a replay-safe commit)');
    assert.match(status.stdout, new RegExp(`EventDBX server \\(pid ${holder.pid}\\) is not answering on port 1`));

    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    const committed = await dbx(['aggregate', 'commit']);
    assert.equal(committed.code, 0, committed.stderr);
    assert.match(committed.stdout, /committed 1 event\(s\)/);
  } finally {
    holder.kill('SIGKILL');
    removeDir(home);
  }
});
