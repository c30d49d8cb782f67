/**
 * Durable small files (DESIGN §5, issue 8.4): config.toml, cli.token and the pid file are written to
 * a temp file, fsynced, renamed and the directory fsynced. Here: modes, no temp file left behind,
 * and a write that fails part-way leaves the old file intact. That the fsyncs reach the disk is
 * checked by the power-cut test (test/power-cut.test.ts), which drops every unsynced write.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileDurably } from '../src/core/index.js';
import { removeDir, spawnServer, stopSpawned, tempDataDir } from './helpers/server.js';

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));
function scratch(): string {
  const dir = tempDataDir('edbx-durable-');
  dirs.push(dir);
  return dir;
}

test('durable files - writeFileDurably sets the mode whatever the umask and leaves no temp file', () => {
  const dir = scratch();
  const old = process.umask(0);
  try {
    writeFileDurably(join(dir, 'a.txt'), 'one');
    writeFileDurably(join(dir, 'b.bin'), Buffer.from([1, 2, 3]), 0o640);
    writeFileDurably(join(dir, 'a.txt'), 'two');
  } finally {
    process.umask(old);
  }
  assert.equal(readFileSync(join(dir, 'a.txt'), 'utf8'), 'two');
  assert.deepEqual([...readFileSync(join(dir, 'b.bin'))], [1, 2, 3]);
  assert.equal(statSync(join(dir, 'a.txt')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'b.bin')).mode & 0o777, 0o640);
  assert.deepEqual(readdirSync(dir).sort(), ['a.txt', 'b.bin']);
});

test('durable files - a failed rename leaves the target as it was and removes the temp file', () => {
  const dir = scratch();
  // A non-empty directory cannot be renamed over: the write fails after the temp file is complete.
  const target = join(dir, 'taken');
  mkdirSync(target);
  writeFileSync(join(target, 'inside'), 'old');
  assert.throws(() => writeFileDurably(target, 'new'), /EISDIR|ENOTEMPTY|EEXIST/);
  assert.equal(readFileSync(join(target, 'inside'), 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir), ['taken']);
});

/**
 * A write that runs out of space part-way (RLIMIT_FSIZE stands in for a full disk: EFBIG after 4 KiB)
 * must leave the old config.toml byte for byte and no temp file. The old code left
 * `config.toml.tmp-<pid>` behind; writing in place (as cli.token was) would truncate the old file.
 */
test('durable files - writeConfig that fails part-way keeps the old config.toml and leaves no temp file', { timeout: 30_000 }, async () => {
  const dir = scratch();
  writeFileSync(join(dir, 'config.toml'), 'port = 7071\n');
  const core = resolve(import.meta.dirname ?? '.', '../src/core/index.js');
  const script = `
    process.on('SIGXFSZ', () => {});
    const { writeConfig, parseConfig } = await import(${JSON.stringify(core)});
    const config = parseConfig({ port: 7072, auth: { key_id: 'x'.repeat(1 << 20) } }, 'test');
    try { writeConfig(${JSON.stringify(dir)}, config); console.log('written'); }
    catch (err) { console.log(err.code); }`;
  const out = await new Promise<string>((res, rej) => {
    // ulimit -f counts 512-byte blocks in dash: 8 blocks = 4 KiB.
    const child = spawn('sh', ['-c', `ulimit -f 8; exec "${process.execPath}" --input-type=module -e "$0"`, script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', () => (clearTimeout(timer), res(text.trim())));
    child.on('error', rej);
  });
  assert.equal(out, 'EFBIG', 'the write failed for lack of space');
  assert.equal(readFileSync(join(dir, 'config.toml'), 'utf8'), 'port = 7071\n');
  assert.deepEqual(readdirSync(dir), ['config.toml']);
});

test('durable files - the server leaves config.toml, cli.token and server.pid at 0600 with no temp files', { timeout: 60_000 }, async () => {
  const dir = scratch();
  const server = await spawnServer({ dataDir: dir });
  try {
    for (const name of ['config.toml', 'cli.token', 'server.pid']) {
      assert.equal(statSync(join(dir, name)).mode & 0o777, 0o600, name);
    }
    const leftovers = readdirSync(dir).filter((name) => name.includes('.tmp'));
    assert.deepEqual(leftovers, []);
    assert.equal(JSON.parse(readFileSync(join(dir, 'server.pid'), 'utf8')).port, server.port);
  } finally {
    assert.equal(await stopSpawned(server), 0);
  }
});
