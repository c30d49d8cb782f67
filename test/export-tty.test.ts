/**
 * `dbx aggregate export` on a terminal draws a progress bar on stderr; off a terminal it draws
 * nothing (plain output for scripts). The terminal is a real pseudo-terminal from util-linux's
 * `script`, so the CLI's own `isTTY` check decides, not a flag of ours.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const CLI = resolve('dist/src/cli/main.js');
const SCRIPT = '/usr/bin/script';

function dbx(args: string[], env: NodeJS.ProcessEnv): { code: number | null; stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

test('export - a progress bar on a terminal, none off it', { timeout: 120_000, skip: existsSync(SCRIPT) ? false : 'util-linux script(1) is not installed' }, () => {
  const home = mkdtempSync(join(tmpdir(), 'edbx-export-tty-'));
  try {
    const env = { EVENTDBX_DATA_DIR: join(home, 'data'), NO_COLOR: '1' };
    for (let i = 1; i <= 3; i++) {
      const created = dbx(['aggregate', 'create', 'person', `p-${i}`, '--event', 'person_created', '--field', 'name=Ada'], env);
      assert.equal(created.code, 0, created.stderr);
    }
    const onTty = join(home, 'tty');
    const quoted = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const res = spawnSync(SCRIPT, ['-qec', `${quoted(process.execPath)} ${quoted(CLI)} aggregate export person --output ${quoted(onTty)}`, '/dev/null'], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(res.status, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /export \[[^\]]+\] 3\/3/, 'the bar reaches 3 of 3 aggregates');
    assert.ok(existsSync(onTty), 'the export was written');

    const offTty = join(home, 'plain');
    const plain = dbx(['aggregate', 'export', 'person', '--output', offTty], env);
    assert.equal(plain.code, 0, plain.stderr);
    assert.doesNotMatch(plain.stderr + plain.stdout, /\u001b\[|3\/3/, 'no bar and no escape codes off a terminal');
    assert.equal(readFileSync(join(offTty, readdirOne(offTty)), 'utf8'), readFileSync(join(onTty, readdirOne(onTty)), 'utf8'), 'the same export either way');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

/** The one file an export of one type writes into its output directory. */
function readdirOne(path: string): string {
  assert.ok(statSync(path).isDirectory(), `${path} is the export directory`);
  const files = readdirSync(path);
  assert.equal(files.length, 1, `one file in ${path}: ${files.join(', ')}`);
  return files[0] as string;
}
