/**
 * A commit that fails (here: the disk is full — a small tmpfs; lmdb-js grows its map on its own, so
 * a full map is not a failure it shows) must leave answers, the heads cache and the disk
 * in agreement: every write acknowledged 201 is on disk, every write answered 503 is not, no
 * version is used twice, and the worker refuses further writes (fail-stop) instead of building on
 * state that never reached the disk. After a restart every aggregate verifies.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startServerInProcess, tempDataDir, type TestServer } from './helpers/server.js';
import { openShards } from './helpers/assertions.js';

const root = tempDataDir('edbx-full-disk-');
const mnt = join(root, 'mnt');
const dataDir = join(mnt, 'data');
after(() => {
  try {
    execFileSync('umount', ['-l', mnt]);
  } catch {
    // not mounted (skipped)
  }
  removeDir(root);
});

const CONFIG = '[limits]\nevent_bytes_max = 524288\n';
const BLOB = 'x'.repeat(200 * 1024);

/** A 12 MiB tmpfs: a few dozen writes of ~200 KiB fill it. Needs root (mount). */
function mountSmallDisk(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to mount a small tmpfs';
  mkdirSync(mnt, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12m,mode=0700', 'tmpfs', mnt]);
  } catch (err) {
    return `cannot mount a tmpfs: ${err instanceof Error ? err.message : String(err)}`;
  }
  return existsSync(mnt) ? undefined : 'mount point missing';
}

test('commit failure - a full disk fails its group, nothing half-written, the worker stops taking writes', { timeout: 120_000 }, async (t) => {
  const skip = mountSmallDisk();
  if (skip) return t.skip(skip);
  let server: TestServer = await startServerInProcess({ dataDir, configToml: CONFIG });
  const acknowledged = new Map<string, number>();
  let unavailable = 0;
  try {
    // Concurrent writers so failures land inside shared group commits.
    for (let round = 0; round < 200 && unavailable === 0; round++) {
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) => {
          const id = `blob-${i}`;
          return server.request('POST', `/v1/aggregates/store/${id}/events`, { event_type: 'filled', payload: { round, blob: BLOB } }).then((res) => ({ id, res }));
        }),
      );
      for (const { id, res } of answers) {
        if (res.status === 201) {
          assert.equal(res.body.version, (acknowledged.get(id) ?? 0) + 1, `${id}: versions are contiguous`);
          acknowledged.set(id, res.body.version);
        } else {
          assert.equal(res.status, 503, JSON.stringify(res.body));
          assert.equal(res.body.error.code, 'unavailable');
          unavailable++;
        }
      }
    }
    assert.ok(unavailable > 0, 'the map filled up');
    // Fail-stop: a small write after the failure is refused too, never built on the failed group.
    const after = await server.request('POST', '/v1/aggregates/store/small/events', { event_type: 'tiny', payload: { n: 1 } });
    assert.equal(after.status, 503);
  } finally {
    await server.stop();
  }

  // On disk: every acknowledged version, and at most the one write of the failed group per
  // aggregate (a failed flush leaves its outcome unknown, which is what 503 says: retry with an
  // idempotency key); never a version past it, never a reused one.
  const stores = openShards(dataDir);
  for (const [id, version] of acknowledged) {
    const holder = stores.find((s) => s.getHead('default', 'store', id));
    assert.ok(holder, `${id} is on disk`);
    const stored = holder.getHead('default', 'store', id)?.version ?? 0;
    assert.ok(stored === version || stored === version + 1, `${id}: stored v${stored}, acknowledged v${version}`);
    assert.equal(holder.getEventJson(['default', 'store', id, stored + 1]), undefined, `${id}: no event past the head`);
    for (let v = 1; v <= stored; v++) assert.ok(holder.getEventJson(['default', 'store', id, v]), `${id}: v${v} present`);
  }
  assert.ok(stores.every((s) => s.getHead('default', 'store', 'small') === undefined), 'the write refused after the failure is not on disk');

  // Room again (an operator freeing space), then a restart: everything on disk verifies.
  execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
  server = await startServerInProcess({ dataDir });
  try {
    for (const id of acknowledged.keys()) {
      const verify = await server.request('GET', `/v1/aggregates/store/${id}/verify`);
      assert.equal(verify.body.valid, true, `${id} verifies after restart`);
    }
  } finally {
    await server.stop();
  }
});
