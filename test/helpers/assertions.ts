/**
 * Assertions and small utilities shared by the integration suites: the DESIGN §6 error model, the
 * "nothing changed" check after a rejected write, and direct access to a stopped server's shards.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { loadDataCipher, readConfig } from '../../src/core/index.js';
import { readLayout, workerEnvPath, workerOfShard } from '../../src/coordinator/layout.js';
import { WorkerEnv, type ShardStore } from '../../src/shard-worker/index.js';
import type { TestServer } from './server.js';

type Answer = { status: number; body: any };

/** Every error answer is `{ error: { code, message, details? } }` and leaks no stack or path. */
export function assertError(res: Answer, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${JSON.stringify(res.body)}`);
  assert.ok(res.body && typeof res.body === 'object' && res.body.error, `not the error model: ${JSON.stringify(res.body)}`);
  assert.equal(res.body.error.code, code);
  assert.equal(typeof res.body.error.message, 'string');
  assert.ok(res.body.error.message.length > 0);
  const extra = Object.keys(res.body.error).filter((k) => !['code', 'message', 'details'].includes(k));
  assert.deepEqual(extra, [], 'error has only code, message, details');
  const text = JSON.stringify(res.body);
  assert.doesNotMatch(text, /\n\s+at |node_modules|\/dist\/|\/src\//, 'no stack trace or internal path in an error');
}

/** Version and Merkle root of an aggregate (or null when it does not exist). */
export async function headOf(server: TestServer, type: string, id: string, tenant?: string): Promise<{ version: number; merkle_root: string } | null> {
  const res = await server.request('GET', `/v1/aggregates/${type}/${id}`, undefined, tenant ? { 'x-tenant-id': tenant } : {});
  if (res.status === 404) return null;
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return { version: res.body.version, merkle_root: res.body.merkle_root };
}

/**
 * Opens every shard of a stopped server's data dir with the server's own store options: index s of
 * the answer is shard s, a view of the worker environment that holds it (the recorded layout).
 */
export function openShards(dataDir: string): ShardStore[] {
  const { config } = readConfig(dataDir);
  const layout = readLayout(dataDir);
  assert.ok(layout, `${dataDir} has a recorded storage layout`);
  const envs = new Map<number, WorkerEnv>();
  const stores: ShardStore[] = [];
  // The server's own DEK: tests read and edit the plaintext, as the server would see it.
  const cipher = loadDataCipher(config, dataDir);
  for (let s = 0; s < layout.shard_count; s++) {
    const w = workerOfShard(s, layout);
    let env = envs.get(w);
    if (!env) {
      const path = workerEnvPath(dataDir, w);
      if (!existsSync(path)) continue;
      env = new WorkerEnv(path, { mapSizeMib: config.storage.map_size_mib, cipher });
      envs.set(w, env);
    }
    stores.push(env.shard(s));
  }
  return stores;
}

/** The shard store that holds an aggregate, found by scanning (independent of placement code). */
export function shardHolding(stores: ShardStore[], tenant: string, type: string, id: string): ShardStore {
  const found = stores.filter((s) => s.getHead(tenant, type, id) !== undefined);
  assert.equal(found.length, 1, `aggregate ${type}/${id} is on exactly one shard`);
  return found[0] as ShardStore;
}

export function range(n: number, from = 1): number[] {
  return Array.from({ length: n }, (_, i) => i + from);
}
