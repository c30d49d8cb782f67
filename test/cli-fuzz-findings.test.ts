/**
 * CLI gaps a fuzzing pass found (2026-12-03), each pinned: a reader closing the pipe early, input
 * files that cannot be read, token flags the API would refuse, a --domain that is no tenant id, a
 * data dir whose config.toml lost its keys, an [http] host that does not resolve. Each must end in
 * one `error: <code>: <message>` line (or quietly), never a stack trace, never new keys.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { DBX_BIN, removeDir, runDbx, tempDataDir } from './helpers/server.js';

let dataDir: string;
const AGGREGATES = 1500;

function noStack(stderr: string): void {
  assert.doesNotMatch(stderr, /\n\s+at |node:internal|Unhandled/, `no stack trace: ${stderr}`);
}

before(async () => {
  dataDir = tempDataDir();
  const lines: string[] = [];
  for (let i = 0; i < AGGREGATES; i++) {
    const id = (386790933284257792n + BigInt(i) * 4194304n).toString();
    lines.push(JSON.stringify({ aggregate_type: 'acc', aggregate_id: `a${i}`, event_type: 'created', version: 1, payload: { n: i }, extensions: {}, metadata: { event_id: id, created_at: '2026-12-03T08:00:00.000Z', issued_by: { group: 'g', user: 'u' } } }));
  }
  const file = join(dataDir, '..', `cli-fuzz-${process.pid}.jsonl`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  const imported = await runDbx(['import', file, '--data-dir', dataDir, '--json'], { timeoutMs: 60_000 });
  assert.equal(imported.code, 0, imported.stderr);
});
after(() => removeDir(dataDir));

test('cli-fuzz-findings - a listing piped into a reader that stops early ends quietly', { timeout: 60_000 }, () => {
  // ~150 KB of rows: more than a pipe holds, so the CLI is still writing when head has gone.
  const run = spawnSync('bash', ['-c', `"${process.execPath}" "${DBX_BIN}" aggregate list --all --format json --data-dir "${dataDir}" | head -c 100 >/dev/null; echo "exit=\${PIPESTATUS[0]}" >&2`], { encoding: 'utf8', timeout: 50_000 });
  noStack(run.stderr);
  assert.match(run.stderr, /exit=0/);
});

test('cli-fuzz-findings - an input file that is missing or a directory is invalid_input naming it', { timeout: 60_000 }, async () => {
  for (const args of [['import', '/nonexistent/x.jsonl'], ['import', dataDir], ['proof', 'check', '/nonexistent/p.json'], ['tenant', 'check', '/nonexistent/t.ndjson']]) {
    const run = await runDbx([...args, ...(args[0] === 'import' ? ['--data-dir', dataDir] : [])], { timeoutMs: 30_000 });
    assert.equal(run.code, 1, `${args.join(' ')}: ${run.stderr}`);
    noStack(run.stderr);
    assert.match(run.stderr, /^error: invalid_input: cannot read \S+: (ENOENT|it is a directory)/, args.join(' '));
  }
});

test('cli-fuzz-findings - token flags are checked as the API checks them', { timeout: 60_000 }, async () => {
  const bad: [string[], RegExp][] = [
    [['--expiration', '9000000000000'], /--expiration/],
    [['--tenant', 'Bad!'], /--tenant 'Bad!'/],
    [['--resource', ''], /--resource/],
  ];
  for (const [flags, message] of bad) {
    const run = await runDbx(['token', 'generate', '-g', 'g', '-u', 'u', ...flags, '--data-dir', dataDir], { timeoutMs: 30_000 });
    assert.equal(run.code, 2, `${flags.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, /^error: invalid_input: /);
    assert.match(run.stderr, message);
  }
  const empty = await runDbx(['token', 'generate', '-g', '', '-u', 'u', '--data-dir', dataDir], { timeoutMs: 30_000 });
  assert.equal(empty.code, 2, empty.stderr);
  const ok = await runDbx(['token', 'generate', '-g', 'g', '-u', 'u', '--tenant', 'Acme', '--expiration', '3600', '--json', '--data-dir', dataDir], { timeoutMs: 30_000 });
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout).tenants, ['acme']);
});

test('cli-fuzz-findings - --domain must be a tenant id; config.toml stays as it was', { timeout: 30_000 }, async () => {
  const before = readFileSync(join(dataDir, 'config.toml'), 'utf8');
  const run = await runDbx(['config', '--domain', 'BAD!name', '--data-dir', dataDir], { timeoutMs: 20_000 });
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /--domain/);
  assert.equal(readFileSync(join(dataDir, 'config.toml'), 'utf8'), before);
});

test('cli-fuzz-findings - a data dir holding a store whose config.toml is empty or gone is refused, not re-keyed', { timeout: 60_000 }, async () => {
  const path = join(dataDir, 'config.toml');
  const saved = readFileSync(path, 'utf8');
  const token = readFileSync(join(dataDir, 'cli.token'), 'utf8');
  try {
    for (const damage of ['empty', 'missing'] as const) {
      if (damage === 'empty') writeFileSync(path, '');
      else removeDir(path);
      const run = await runDbx(['start', '--foreground', '--port', '0', '--data-dir', dataDir], { timeoutMs: 30_000 });
      assert.equal(run.code, 1, run.stderr);
      noStack(run.stderr);
      assert.match(run.stderr, /^error: invalid_input: .*config\.toml (has no auth key pair|is missing), but .* already holds data/);
      assert.equal(readFileSync(join(dataDir, 'cli.token'), 'utf8'), token, 'cli.token untouched');
      if (damage === 'empty') assert.equal(readFileSync(path, 'utf8'), '', 'config.toml not rewritten');
    }
  } finally {
    writeFileSync(path, saved);
  }
});

test('cli-fuzz-findings - an [http] host that does not resolve is named', { timeout: 60_000 }, async () => {
  const path = join(dataDir, 'config.toml');
  const saved = readFileSync(path, 'utf8');
  try {
    writeFileSync(path, saved.replace(/^host = .*$/m, 'host = "no-such-host.invalid"'));
    const run = await runDbx(['start', '--foreground', '--port', '0', '--data-dir', dataDir], { timeoutMs: 40_000 });
    assert.equal(run.code, 1, run.stderr);
    noStack(run.stderr);
    assert.match(run.stderr, /^error: unavailable: \[http\] host 'no-such-host\.invalid'/);
  } finally {
    writeFileSync(path, saved);
  }
});

test('cli-fuzz-findings - a start that fails leaves its flags out of config.toml; a malformed --dek is a usage error', { timeout: 60_000 }, async () => {
  const path = join(dataDir, 'config.toml');
  const before = readFileSync(path, 'utf8');
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as AddressInfo).port;
  try {
    const run = await runDbx(['start', '--foreground', '--port', String(port), '--restrict', 'strict', '--data-dir', dataDir], { timeoutMs: 40_000 });
    assert.equal(run.code, 1, run.stderr);
    noStack(run.stderr);
    assert.match(run.stderr, new RegExp(`^error: unavailable: port ${port} is already in use`));
    assert.equal(readFileSync(path, 'utf8'), before, 'config.toml as it was: neither --port nor --restrict saved');
  } finally {
    blocker.close();
  }
  const dek = await runDbx(['config', '--dek', 'abc', '--data-dir', dataDir], { timeoutMs: 20_000 });
  assert.equal(dek.code, 2, dek.stderr);
  assert.match(dek.stderr, /^error: invalid_input: --dek: data encryption key must be base64 of 32 bytes/);
  assert.equal(readFileSync(path, 'utf8'), before);
});
