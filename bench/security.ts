/**
 * `npm run bench -- --security`: what security costs on the write and read paths (issue 10 target:
 * each within 10% of the plain path), at the largest client count:
 *
 * - a token with a write limit (every write reserves its allowance durably in the token ledger)
 *   vs an unlimited token, on one server, rounds interleaved so drift hits both alike;
 * - encryption at rest on vs off: two servers (two data dirs), rounds interleaved the same way.
 *
 * Each side runs `apply` (one event on one of 10K aggregates) and `get` (round robin over them).
 */
import { join } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { startEventDbx, type ChildServer } from './children.js';
import { HttpApi } from './client.js';
import { runTimed, type OpStats } from './stats.js';
import { AGGREGATE_TYPE, idOf } from './workload.js';

export interface SecuritySettings {
  dataRoot: string;
  clients: number;
  durations: { durationMs: number; warmupMs: number };
  rounds: number;
  durability: string;
  log: (line: string) => void;
}

interface Side {
  name: string;
  api: HttpApi;
}

const AGGREGATES = 10_000;

function ops(api: HttpApi): Record<'apply' | 'get', (worker: number) => Promise<void>> {
  let marker = 0;
  let rr = 0;
  return {
    apply: async () => {
      const id = idOf(1 + Math.floor(Math.random() * AGGREGATES));
      await api.post(`/v1/aggregates/${AGGREGATE_TYPE}/${id}/events`, { event_type: 'bench_applied', payload: { marker: ++marker, at: Date.now(), note: 'a recognisable payload of a few dozen bytes' } }, 201);
    },
    get: async () => {
      await api.get(`/v1/aggregates/${AGGREGATE_TYPE}/${idOf((rr++ % AGGREGATES) + 1)}`);
    },
  };
}

/** Rounds alternate which side goes first; answers the medians per side and op, and every run. */
async function interleave(sides: [Side, Side], s: SecuritySettings): Promise<Record<string, unknown>> {
  const runs: { side: string; op: string; stats: OpStats }[] = [];
  for (const side of sides) {
    // Unrecorded: creates every aggregate (so gets find them), warms caches and the JIT.
    let next = 0;
    await Promise.all(
      Array.from({ length: s.clients }, async () => {
        for (let id = ++next; id <= AGGREGATES; id = ++next) {
          await side.api.post(`/v1/aggregates/${AGGREGATE_TYPE}/${idOf(id)}/events`, { event_type: 'bench_applied', payload: { seed: id } }, 201);
        }
      }),
    );
  }
  for (let r = 0; r < s.rounds; r++) {
    const order = r % 2 === 0 ? sides : ([sides[1], sides[0]] as const);
    for (const op of ['apply', 'get'] as const) {
      for (const side of order) {
        const stats = await runTimed({ concurrency: s.clients, ...s.durations }, ops(side.api)[op]);
        runs.push({ side: side.name, op, stats });
        s.log(`  ${side.name} ${op} round ${r + 1}: ${Math.round(stats.ops_s)} ops/s, p50 ${Math.round(stats.p50_us)} µs, p99 ${Math.round(stats.p99_us)} µs`);
      }
    }
  }
  const median = (side: string, op: string, key: 'ops_s' | 'p50_us' | 'p99_us'): number => {
    const v = runs.filter((x) => x.side === side && x.op === op).map((x) => x.stats[key]).sort((a, b) => a - b);
    return Math.round(v[Math.floor(v.length / 2)] ?? 0);
  };
  const summary: Record<string, unknown> = {};
  for (const op of ['apply', 'get']) {
    const [a, b] = sides.map((x) => x.name) as [string, string];
    summary[op] = {
      [a]: { ops_s: median(a, op, 'ops_s'), p50_us: median(a, op, 'p50_us'), p99_us: median(a, op, 'p99_us') },
      [b]: { ops_s: median(b, op, 'ops_s'), p50_us: median(b, op, 'p50_us'), p99_us: median(b, op, 'p99_us') },
      ratio: Math.round((median(b, op, 'ops_s') / Math.max(1, median(a, op, 'ops_s'))) * 1000) / 1000,
    };
  }
  return summary;
}

async function issueLimited(server: ChildServer): Promise<string> {
  const res = await fetch(`${server.url}/v1/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ group: 'bench', user: 'limited', actions: ['*'], tenants: ['default'], write_limit: 1_000_000_000_000, expiration_secs: 0 }),
  });
  if (res.status !== 201) throw new Error(`issuing the limited token: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

function prepare(dir: string, durability: string, extra = ''): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.toml'), `${extra}\n[storage]\ndurability = "${durability}"\n`);
}

export async function benchSecurity(s: SecuritySettings): Promise<Record<string, unknown>> {
  const result: Record<string, unknown> = { clients: s.clients, durability: s.durability, rounds: s.rounds };

  s.log('write limit: unlimited token vs a token with a write limit (same server)');
  const tokenDir = join(s.dataRoot, 'security-tokens');
  prepare(tokenDir, s.durability);
  const server = await startEventDbx(tokenDir);
  const plain = new HttpApi(server.url, server.token, s.clients);
  const limited = new HttpApi(server.url, await issueLimited(server), s.clients);
  try {
    result.write_limit = await interleave([{ name: 'unlimited', api: plain }, { name: 'limited', api: limited }], s);
  } finally {
    await plain.close();
    await limited.close();
    await server.stop();
  }

  s.log('encryption at rest: off vs on (two servers)');
  const offDir = join(s.dataRoot, 'security-plain');
  const onDir = join(s.dataRoot, 'security-encrypted');
  prepare(offDir, s.durability, 'encryption_at_rest = false');
  prepare(onDir, s.durability);
  const off = await startEventDbx(offDir);
  const on = await startEventDbx(onDir);
  const offApi = new HttpApi(off.url, off.token, s.clients);
  const onApi = new HttpApi(on.url, on.token, s.clients);
  try {
    result.encryption = await interleave([{ name: 'plaintext', api: offApi }, { name: 'encrypted', api: onApi }], s);
  } finally {
    await offApi.close();
    await onApi.close();
    await off.stop();
    await on.stop();
  }
  return result;
}
