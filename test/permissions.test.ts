/**
 * Permissions (issue 7.12): the data dir holds every payload in plaintext (data.mdb) unless a DEK is
 * set, so everything under it is owner-only whatever the umask: directories 0700, files 0600. The
 * real server is spawned under umask 022 (the usual default, which made the dir 0755 and data.mdb
 * 0644), once on a fresh dir and once on a dir an older version left wide open.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, spawnServer, stopSpawned, tempDataDir } from './helpers/server.js';

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

/** Every entry under root (root included) whose mode is not 0700 (dirs) / 0600 (files). */
function wideEntries(root: string): string[] {
  const wrong: string[] = [];
  const walk = (path: string): void => {
    const stat = lstatSync(path);
    const mode = stat.mode & 0o7777;
    if (stat.isDirectory()) {
      if (mode !== 0o700) wrong.push(`${path} ${mode.toString(8)}`);
      for (const name of readdirSync(path)) walk(join(path, name));
    } else if (!stat.isSymbolicLink() && mode !== 0o600) {
      wrong.push(`${path} ${mode.toString(8)}`);
    }
  };
  walk(root);
  return wrong;
}

async function startWriteAndCheck(dataDir: string): Promise<void> {
  // Set in the parent: the spawned server inherits umask 022, as from a login shell.
  const old = process.umask(0o022);
  let server;
  try {
    server = await spawnServer({ dataDir });
  } finally {
    process.umask(old);
  }
  try {
    const res = await server.request('POST', '/v1/aggregates/perm/a-1/events', { event_type: 'noted', payload: { secret: 'x' } });
    assert.equal(res.status, 201);
    const all = wideEntries(dataDir);
    assert.deepEqual(all, [], 'every file 0600 and every directory 0700');
    assert.ok(readdirSync(dataDir, { recursive: true }).some((name) => String(name).endsWith('data.mdb')), 'LMDB files were checked too');
  } finally {
    assert.equal(await stopSpawned(server), 0);
  }
}

test('permissions - under umask 022 a new data dir is 0700 and every file in it 0600', { timeout: 60_000 }, async () => {
  const dataDir = join(tempDataDir('edbx-perm-'), 'data');
  dirs.push(dataDir);
  await startWriteAndCheck(dataDir);
});

test('permissions - an existing world-readable data dir is narrowed at start', { timeout: 60_000 }, async () => {
  const dataDir = tempDataDir('edbx-perm-');
  dirs.push(dataDir);
  const first = await spawnServer({ dataDir });
  assert.equal(await stopSpawned(first), 0);
  // What an older version under umask 022 left: everything group/other readable.
  mkdirSync(join(dataDir, 'extra'), { recursive: true });
  writeFileSync(join(dataDir, 'extra', 'note'), 'x');
  const widen = (path: string): void => {
    const stat = lstatSync(path);
    chmodSync(path, stat.isDirectory() ? 0o755 : 0o644);
    if (stat.isDirectory()) for (const name of readdirSync(path)) widen(join(path, name));
  };
  widen(dataDir);
  assert.notDeepEqual(wideEntries(dataDir), []);
  await startWriteAndCheck(dataDir);
});
