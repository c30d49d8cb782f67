/** `dbx start` (daemon), `status`, `restart`, `stop`, `destroy` and `config`, run as the real binary. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { removeDir, runDbx, tempDataDir } from './helpers/server.js';

/** A temp HOME with the data dir inside it; the outer environment's token and tenant never leak in. */
function sandbox(): { home: string; dataDir: string; dbx: (args: string[], input?: string) => ReturnType<typeof runDbx> } {
  const home = tempDataDir('edbx-cli-');
  const dataDir = join(home, '.eventdbx');
  const env = { HOME: home, EVENTDBX_DATA_DIR: dataDir, EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '', EVENTDBX_LOG_LEVEL: 'info' };
  return { home, dataDir, dbx: (args, input) => runDbx(args, { env, ...(input !== undefined ? { input } : {}), timeoutMs: 40_000 }) };
}

/** Alive and not a zombie waiting for init to reap it. */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return !existsSync('/proc/self/stat');
  }
}

/** Last resort so a failed assertion never leaves a daemon behind. */
function killDaemon(dataDir: string): void {
  try {
    const { pid } = JSON.parse(readFileSync(join(dataDir, 'server.pid'), 'utf8')) as { pid: number };
    if (pid !== process.pid) process.kill(pid, 'SIGKILL');
  } catch {
    // no daemon
  }
}

test('cli server - start daemonises, status reports it, restart replaces it, stop ends it', { timeout: 90_000 }, async () => {
  const { home, dataDir, dbx } = sandbox();
  try {
    const started = await dbx(['start', '--port', '0']);
    assert.equal(started.code, 0, started.stderr);
    const match = /running on port (\d+) \(pid (\d+)\)/.exec(started.stdout);
    assert.ok(match, started.stdout);
    const pid = Number(match[2]);
    assert.ok(pidAlive(pid));
    assert.ok(existsSync(join(dataDir, 'logs', 'eventdbx.log')));

    const status = await dbx(['status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    const info = JSON.parse(status.stdout);
    assert.equal(info.running, true);
    assert.equal(info.pid, pid);
    assert.equal(info.port, Number(match[1]));
    assert.equal(info.shards, 4);
    assert.ok(info.workers >= 1);
    assert.equal(info.durability, 'sync');
    assert.equal(info.restrict, 'default');
    assert.equal(info.data_dir, dataDir);
    assert.equal(typeof info.uptime_secs, 'number');
    const text = await dbx(['status']);
    assert.match(text.stdout, new RegExp(`running on port ${info.port} \\(pid ${pid}\\) — restrict=default`));

    const again = await dbx(['start']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`error: already_exists: EventDBX server already running \\(pid ${pid}\\)`));

    const restarted = await dbx(['restart', '--port', '0']);
    assert.equal(restarted.code, 0, restarted.stderr);
    assert.match(restarted.stdout, new RegExp(`EventDBX server stopped \\(pid ${pid}\\)`));
    const newPid = Number(/running on port \d+ \(pid (\d+)\)/.exec(restarted.stdout)?.[1]);
    assert.ok(newPid > 0 && newPid !== pid);
    assert.equal(pidAlive(pid), false);

    const stopped = await dbx(['stop']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, new RegExp(`EventDBX server stopped \\(pid ${newPid}\\) after `));
    assert.equal(pidAlive(newPid), false);
    assert.equal(existsSync(join(dataDir, 'server.pid')), false);
    assert.equal((await dbx(['stop'])).stdout.trim(), 'No running EventDBX server found.');
    const down = await dbx(['status', '--json']);
    assert.deepEqual(JSON.parse(down.stdout), { running: false, data_dir: dataDir });
  } finally {
    killDaemon(dataDir);
    removeDir(home);
  }
});

test('cli server - a daemon that dies at start-up reports its last log line', { timeout: 60_000 }, async () => {
  const { home, dataDir, dbx } = sandbox();
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, resolve));
  const { port } = blocker.address() as AddressInfo;
  try {
    const res = await dbx(['start', '--port', String(port)]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^error: unavailable: EventDBX server failed to start \(exit code 1\): error: unavailable: port \d+ is already in use/);
    assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(existsSync(join(dataDir, 'server.pid')), false);
  } finally {
    blocker.close();
    killDaemon(dataDir);
    removeDir(home);
  }
});

test('cli server - destroy asks first (cancelled without the word), and deletes with it', { timeout: 60_000 }, async () => {
  const { home, dataDir, dbx } = sandbox();
  try {
    assert.equal((await dbx(['aggregate', 'create', 'person', 'p-1', '--event', 'person_created'])).code, 0);
    const refused = await dbx(['destroy'], 'no\n');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /Type "destroy" to continue/);
    assert.match(refused.stderr, /error: invalid_input: Destroy command cancelled\./);
    assert.ok(existsSync(join(dataDir, 'config.toml')));
    const silent = await dbx(['destroy']);
    assert.equal(silent.code, 1, 'closed stdin cancels');
    assert.ok(existsSync(join(dataDir, 'config.toml')));

    const stranger = join(home, 'not-ours');
    mkdirSync(stranger);
    writeFileSync(join(stranger, 'keep.txt'), 'x');
    const guarded = await dbx(['destroy', '--yes', '--data-dir', stranger]);
    assert.equal(guarded.code, 1);
    assert.match(guarded.stderr, /does not look like an EventDBX data directory/);
    assert.ok(existsSync(join(stranger, 'keep.txt')));
    // A site generator's folder: a config.toml that is not ours (no key pair) is no data dir.
    const site = join(home, 'site');
    mkdirSync(join(site, 'content'), { recursive: true });
    writeFileSync(join(site, 'config.toml'), 'title = "x"\n[auth]\nuser = "me"\n');
    writeFileSync(join(site, 'content', 'post.md'), 'post');
    const spared = await dbx(['destroy', '--yes', '--data-dir', site]);
    assert.equal(spared.code, 1);
    assert.match(spared.stderr, /does not look like an EventDBX data directory/);
    assert.ok(existsSync(join(site, 'content', 'post.md')));

    const done = await dbx(['destroy'], 'destroy\n');
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /All EventDBX data and configuration removed from /);
    assert.equal(existsSync(dataDir), false);
  } finally {
    removeDir(home);
  }
});

test('cli config - prints TOML without the private key; validates before it writes', { timeout: 60_000 }, async () => {
  const { home, dataDir, dbx } = sandbox();
  try {
    assert.equal((await dbx(['aggregate', 'create', 'person', 'p-1', '--event', 'person_created'])).code, 0);
    const configFile = join(dataDir, 'config.toml');
    const [shown, secret] = await Promise.all([dbx(['config']), dbx(['config', '--show-secrets', '--json'])]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^data_dir = ".*\.eventdbx"$/m);
    assert.match(shown.stdout, /^port = 7070$/m, 'the direct engine on port 0 did not change the configured port');
    assert.match(shown.stdout, /private_key = "<hidden/);
    assert.equal(JSON.parse(secret.stdout).auth.private_key.length > 20, true);

    const before = readFileSync(configFile, 'utf8');
    const invalid = [['--page-limit', '0'], ['--durability', 'fast'], ['--list-page-size', '5000'], ['--port', 'x'], ['--snowflake-worker-id', '5000']];
    const [layout, ...refused] = await Promise.all([dbx(['config', '--shard-count', '8']), ...invalid.map((args) => dbx(['config', ...args]))]);
    refused.forEach((res, i) => {
      assert.equal(res?.code, 2, `${invalid[i]?.join(' ')}: ${res?.stderr}`);
      assert.match(res?.stderr ?? '', /^error: /);
    });
    assert.match(refused[0]?.stderr ?? '', /invalid value for --page-limit: .*config\.toml was not changed/);
    assert.equal(readFileSync(configFile, 'utf8'), before, 'refused changes left the file untouched');
    assert.equal(layout?.code, 1);
    assert.match(layout?.stderr ?? '', /--shard-count is refused: the store is not empty/);
    assert.equal(readFileSync(configFile, 'utf8'), before);

    const saved = await dbx(['config', '--port', '8080', '--durability', 'async', '--clear-snapshot-threshold', '--list-page-size', '25']);
    assert.equal(saved.code, 0, saved.stderr);
    assert.match(saved.stdout, /Configuration saved to .*config\.toml/);
    const after = readFileSync(configFile, 'utf8');
    assert.match(after, /^port = 8080$/m);
    assert.match(after, /^durability = "async"$/m);
    assert.match(after, /^snapshot_threshold = 0$/m);
    assert.match(after, /^list_page_size = 25$/m);
    assert.match(after, /private_key = "[^<]/, 'keys kept');

    const fresh = join(home, 'fresh');
    const empty = await dbx(['config', '--data-dir', fresh, '--shard-count', '2']);
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(readFileSync(join(fresh, 'config.toml'), 'utf8'), /shard_count = 2/);
  } finally {
    removeDir(home);
  }
});
