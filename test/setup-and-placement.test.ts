/**
 * Issue 3 items 1 and 3 as tests: the layout and set-up contracts; placement by murmurhash3 exactly
 * as DESIGN §2 (computed here with the murmurhash package, checked against the shard directories
 * on disk); concurrent writes sharing group commits.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import murmurhash from 'murmurhash';
import { removeDir, startServerInProcess, tempDataDir } from './helpers/server.js';
import { openShards } from './helpers/assertions.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('setup - layout, strict TypeScript, bin.dbx, README set-up commands, .ci/run', () => {
  for (const dir of ['src/core', 'src/coordinator', 'src/shard-worker', 'src/plugins', 'src/cli', 'src/client', 'test', 'bench']) {
    assert.ok(existsSync(join(root, dir)), `${dir} exists`);
  }
  assert.ok(existsSync(join(root, 'config.example.toml')));
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  assert.equal(pkg.bin.dbx, 'dist/src/cli/main.js');
  for (const script of ['start', 'test', 'bench']) assert.ok(pkg.scripts[script], `npm ${script}`);
  const tsconfig = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8'));
  assert.equal(tsconfig.compilerOptions.strict, true);
  assert.equal(tsconfig.compilerOptions.noUncheckedIndexedAccess, true);
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const firstSection = readme.split(/\n## /)[1] ?? '';
  assert.match(firstSection, /npm ci && npm start/);
  assert.match(firstSection, /npm test/);
  assert.match(readFileSync(join(root, '.ci/run'), 'utf8'), /npm ci[\s\S]*npm test/);
});

const dataDir = tempDataDir();
after(() => removeDir(dataDir));

test('placement - each aggregate lives in shard murmurhash3_32(tenant \\0 type \\0 id, 0) mod 4; concurrent writes share commits', { timeout: 30_000 }, async () => {
  const server = await startServerInProcess({ dataDir });
  const ids = Array.from({ length: 40 }, (_, i) => `p-${i}`);
  let batches = 0;
  let commands = 0;
  try {
    const answers = await Promise.all(ids.map((id) => server.request('POST', `/v1/aggregates/parcel/${id}/events`, { event_type: 'scanned' }, { 'x-tenant-id': 'Acme' })));
    assert.ok(answers.every((a) => a.status === 201));
    const metrics = (await server.request('GET', '/metrics')).body as string;
    batches = Number(/eventdbx_commit_batch_commands_count (\d+)/.exec(metrics)?.[1]);
    commands = Number(/eventdbx_commit_batch_commands_sum (\d+)/.exec(metrics)?.[1]);
  } finally {
    await server.stop();
  }
  assert.ok(batches < commands, `40 concurrent writes shared commits (${commands} commands in ${batches} groups)`);
  const stores = openShards(dataDir);
  for (const id of ids) {
    const expected = murmurhash.v3(`acme\u0000parcel\u0000${id}`, 0) % 4;
    const holders = stores.flatMap((s, i) => (s.getHead('acme', 'parcel', id) ? [i] : []));
    assert.deepEqual(holders, [expected], `${id} is on shard ${expected} only (tenant lower-cased)`);
    assert.equal(stores[expected]?.shard, expected);
  }
});
