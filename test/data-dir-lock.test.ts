/**
 * Issue 7, item 2: one server per data dir. Many `dbx start` processes race for one directory
 * (fresh, or with a stale server.pid naming a dead process): exactly one stays up and serves, every
 * other exits non-zero with one line. The lock is the kernel's, so a SIGKILLed holder frees it at
 * once. (The old pid-file check let two starters both win, and their writes overwrite each other.)
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DBX_BIN, removeDir, spawnServer, stopSpawned, tempDataDir } from './helpers/server.js';
import { range } from './helpers/assertions.js';
import { heavy } from './helpers/heavy.js';

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

const STARTERS = 8;
// Round 0 races on a fresh dir, every later one on a stale server.pid: 2 rounds here (each ~8
// start-ups), 3 under `npm run test:heavy`.
const ROUNDS = heavy(2, 3);

interface Starter {
  child: ChildProcess;
  stderr: string;
  code: number | null | undefined;
  exited: Promise<void>;
}

function startOne(dataDir: string): Starter {
  const child = spawn(process.execPath, [DBX_BIN, 'start', '--foreground', '--data-dir', dataDir, '--port', '0'], {
    env: { ...process.env, EVENTDBX_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const starter: Starter = { child, stderr: '', code: undefined, exited: Promise.resolve() };
  child.stderr?.on('data', (d: Buffer) => (starter.stderr += d.toString()));
  starter.exited = new Promise((res) =>
    child.on('exit', (code) => {
      starter.code = code;
      res();
    }),
  );
  return starter;
}

/** A pid that certainly belongs to no running process: one of ours that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((res) => child.on('exit', res));
  return child.pid as number;
}

async function waitFor(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function serves(dataDir: string, pid: number): Promise<boolean> {
  try {
    const info = JSON.parse(readFileSync(join(dataDir, 'server.pid'), 'utf8')) as { pid: number; port: number };
    if (info.pid !== pid || !(info.port > 0)) return false;
    return (await fetch(`http://127.0.0.1:${info.port}/health`, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

/** Races STARTERS processes on `dataDir`; returns the one that won (still running and serving). */
async function race(dataDir: string): Promise<Starter> {
  const starters = range(STARTERS).map(() => startOne(dataDir));
  try {
    const running = (): Starter[] => starters.filter((s) => s.code === undefined);
    // Losers exit within a few seconds; two winners would both keep running, and this times out.
    await waitFor(`all but one of ${STARTERS} starters exit (still running: ${running().length})`, 30_000, () => running().length <= 1);
    const winners = running();
    assert.equal(winners.length, 1, 'exactly one starter stays up');
    const winner = winners[0] as Starter;
    await waitFor('the winner serves', 15_000, () => serves(dataDir, winner.child.pid as number));
    for (const loser of starters.filter((s) => s !== winner)) {
      assert.notEqual(loser.code, 0, `a loser exits non-zero (stderr: ${loser.stderr})`);
      const lines = loser.stderr.split('\n').filter((l) => l.trim().length > 0);
      assert.equal(lines.length, 1, `one line on stderr, got:\n${loser.stderr}`);
      assert.match(lines[0] as string, /already used by a running server/);
    }
    // A moment later it is still the only one (no loser came back to life).
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(running(), [winner]);
    return winner;
  } catch (err) {
    for (const s of starters) if (s.code === undefined) s.child.kill('SIGKILL');
    await Promise.all(starters.map((s) => s.exited));
    throw err;
  }
}

test('data-dir lock - of 8 concurrent starts on one data dir (fresh or with a stale server.pid) exactly one serves, the others exit with one line', { timeout: 120_000 }, async () => {
  const dataDir = tempDataDir('edbx-lock-');
  dirs.push(dataDir);
  let winner: Starter | undefined;
  for (let round = 0; round < ROUNDS; round++) {
    if (round > 0) {
      // A stale pid file (a crashed holder) is what made the old check race most often.
      writeFileSync(join(dataDir, 'server.pid'), JSON.stringify({ pid: await deadPid(), port: 1, started_at: new Date().toISOString(), restrict: 'default' }));
    }
    winner = await race(dataDir);
    if (round < ROUNDS - 1) {
      winner.child.kill('SIGTERM');
      await winner.exited;
      assert.equal(winner.code, 0, `the winner stops cleanly (stderr: ${winner.stderr})`);
    }
  }
  // SIGKILL: the kernel drops the lock with the process; a new start succeeds at once, although
  // the killed holder's server.pid is still there.
  const holder = winner as Starter;
  holder.child.kill('SIGKILL');
  await holder.exited;
  const stalePid = (JSON.parse(readFileSync(join(dataDir, 'server.pid'), 'utf8')) as { pid: number }).pid;
  assert.equal(stalePid, holder.child.pid, 'the killed holder left its pid file behind');
  const started = Date.now();
  const next = await spawnServer({ dataDir });
  try {
    assert.ok(Date.now() - started < 15_000, 'the start did not wait for anything');
    assert.equal((await next.request('GET', '/health')).status, 200);
  } finally {
    assert.equal(await stopSpawned(next), 0);
  }
});
