/**
 * `GET …/{id}?version=N` answers the archived flag the aggregate had at version N (the last
 * archive or restore event up to N), not its current one: from the events replayed after the
 * nearest snapshot, from the snapshot's own flag, or, for a snapshot written before snapshots
 * carried the flag, from a walk back through the events. Encryption at rest is on (the default),
 * so the walk reads sealed event texts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readConfig } from '../src/core/index.js';
import { removeDir, spawnServer, stopSpawned, type SpawnedServer } from './helpers/server.js';

let server: SpawnedServer | undefined;
let dataDir = '';

after(async () => {
  if (server) await stopSpawned(server).catch(() => undefined);
  if (dataDir) removeDir(dataDir);
});

/** Versions 1…13 of doc/arch; snapshot_threshold = 5 puts snapshots at 5 (not archived) and 10 (archived). */
const steps: ('edit' | 'archive' | 'restore')[] = ['edit', 'edit', 'archive', 'restore', 'edit', 'edit', 'edit', 'edit', 'edit', 'archive', 'restore', 'edit', 'archive'];
const archivedAt: boolean[] = [];

async function checkEveryVersion(s: SpawnedServer, label: string): Promise<void> {
  for (let version = 1; version <= steps.length; version++) {
    const res = await s.request('GET', `/v1/aggregates/doc/arch?version=${version}`);
    assert.equal(res.status, 200, `${label}: GET ?version=${version}`);
    assert.equal(res.body.version, version);
    assert.equal(res.body.archived, archivedAt[version - 1], `${label}: archived at version ${version}`);
  }
  const current = await s.request('GET', '/v1/aggregates/doc/arch');
  assert.equal(current.body.archived, true, `${label}: the current flag`);
}

test('reads - ?version=N answers the archived flag as of N, with and without the flag in snapshots', { timeout: 90_000 }, async () => {
  server = await spawnServer({ configToml: 'snapshot_threshold = 5\n' });
  dataDir = server.dataDir;
  let archived = false;
  for (const [index, step] of steps.entries()) {
    const res =
      step === 'edit'
        ? await server.request('POST', `/v1/aggregates/doc/arch${index === 0 ? '' : '/events'}`, { event_type: index === 0 ? 'created' : 'doc_edited', payload: { step: index } })
        : await server.request('POST', `/v1/aggregates/doc/arch/${step}`, {});
    assert.ok(res.status === 200 || res.status === 201, `step ${index + 1} (${step}): ${res.status} ${JSON.stringify(res.body)}`);
    archived = step === 'archive' ? true : step === 'restore' ? false : archived;
    archivedAt.push(archived);
  }
  const snapshots = await server.request('GET', '/v1/aggregates/doc/arch/snapshots');
  assert.deepEqual(
    snapshots.body.items.map((s: { version: number }) => s.version),
    [5, 10],
    'auto snapshots at 5 and 10',
  );
  await checkEveryVersion(server, 'snapshots with the flag');

  // A store written before snapshots carried the flag: drop it from every stored snapshot.
  await stopSpawned(server);
  server = undefined;
  const mapSizeMib = readConfig(dataDir).config.storage.map_size_mib;
  const store = new URL('../src/shard-worker/store.js', import.meta.url).href;
  const shardsDir = join(dataDir, 'shards');
  const workers = readdirSync(shardsDir).filter((n) => n.startsWith('worker-'));
  const script = `import { WorkerEnv } from ${JSON.stringify(store)};
    let stripped = 0;
    for (const name of ${JSON.stringify(workers)}) {
      const env = new WorkerEnv(${JSON.stringify(shardsDir)} + '/' + name, { mapSizeMib: ${mapSizeMib} });
      env.env.transactionSync(() => {
        for (const { key, value } of env.snapshots.getRange()) {
          if (!('archived' in value)) continue;
          const { archived, ...rest } = value;
          env.snapshots.put(key, rest);
          stripped++;
        }
      });
    }
    console.log(stripped);
    process.exit(0);`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), '2', 'both snapshots carried the flag, and lost it');

  server = await spawnServer({ dataDir });
  await checkEveryVersion(server, 'snapshots without the flag');
});
