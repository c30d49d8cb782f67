/**
 * `npm run bench -- --tenants-noisy`: does one tenant flooding writes push another tenant's
 * latency up? (issue 12 item 4: the quiet tenant's p99 must stay within 2× its quiet value once the
 * flooder is limited.) One multi-tenant server; the quiet tenant appends at a steady, modest
 * concurrency (QUIET_CLIENTS); three phases, each `durationMs`, rounds interleaved so drift hits
 * all alike:
 *
 * - quiet:     the quiet tenant alone (its baseline p50/p99);
 * - unlimited: plus a flooder at `clients` concurrency, no limit (what a noisy neighbour costs);
 * - limited:   the same flood with `dbx tenant limit <flooder> --writes-per-sec N` in force: its
 *              excess is answered 429 before touching a shard; the flooder waits Retry-After
 *              after a 429, as a well-behaved client (ours) does;
 * - hammer:    the same limit, but the flooder ignores Retry-After and retries at once: the 429s
 *              cost no disk, but each still costs the HTTP layer its CPU (what a per-tenant limit
 *              cannot take away; a connection or per-token limit in front is the answer there).
 *
 * The flooder's 429s are counted, not errors. The two tenants are on different shards of one
 * worker environment (the default layout): they share the group commit and the disk, which is
 * exactly where a neighbour hurts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { tenantShard } from '../src/core/placement.js';
import { startEventDbx, type ChildServer } from './children.js';
import { Recorder, nowUs, type OpStats } from './stats.js';

export interface NoisySettings {
  dataRoot: string;
  clients: number;
  durationMs: number;
  warmupMs: number;
  rounds: number;
  /** The flooder's limit in the `limited` phase, events per second. */
  limitPerSec: number;
  durability: string;
  log: (line: string) => void;
}

const QUIET = 'quiet';
const QUIET_CLIENTS = 4;
const SHARDS = 4;

/** A tenant other than `quiet` on another shard (the shard of a tenant is its hash in multi-tenant mode). */
function flooderTenant(): string {
  const quietShard = tenantShard({ shardCount: SHARDS, multiTenant: true }, QUIET);
  for (let i = 0; ; i++) if (tenantShard({ shardCount: SHARDS, multiTenant: true }, `noisy${i}`) !== quietShard) return `noisy${i}`;
}

interface Loop {
  stats: OpStats;
  limited: number;
}

/** `concurrency` loops appending to `tenant` until `endUs`, recording latencies after `windowUs`. */
async function appendLoop(pool: Pool, token: string, tenant: string, concurrency: number, windowUs: number, endUs: number, honourRetryAfter = true): Promise<Loop> {
  const recorder = new Recorder();
  let limited = 0;
  let seq = 0;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-tenant-id': tenant };
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (;;) {
        const t0 = nowUs();
        if (t0 >= endUs) return;
        const id = `a-${worker}-${seq++ % 100}`;
        const res = await pool.request({ method: 'POST', path: `/v1/aggregates/order/${id}/events`, headers, body: JSON.stringify({ event_type: 'touched', payload: { at: t0, note: 'a payload of a few dozen bytes' } }) });
        await res.body.dump();
        if (res.statusCode === 429) {
          limited++;
          const wait = Math.min(Number(res.headers['retry-after'] ?? 1) * 1000, (endUs - nowUs()) / 1000);
          if (honourRetryAfter && wait > 0) await new Promise((r) => setTimeout(r, wait));
          continue;
        }
        if (res.statusCode !== 201) throw new Error(`${tenant} append answered ${res.statusCode}`);
        if (t0 >= windowUs) recorder.add(nowUs() - t0);
      }
    }),
  );
  return { stats: recorder.summary((endUs - windowUs) / 1000), limited };
}

async function setLimit(server: ChildServer, tenant: string, perSec: number | null): Promise<void> {
  const res = await fetch(`${server.url}/v1/tenants/${tenant}/limit`, {
    method: perSec === null ? 'DELETE' : 'PUT',
    headers: { authorization: `Bearer ${server.token}`, ...(perSec === null ? {} : { 'content-type': 'application/json' }) },
    ...(perSec === null ? {} : { body: JSON.stringify({ writes_per_sec: perSec }) }),
  });
  if (res.status !== 200) throw new Error(`setting the limit: ${res.status} ${await res.text()}`);
}

export async function benchTenantsNoisy(s: NoisySettings): Promise<Record<string, unknown>> {
  const dir = join(s.dataRoot, 'tenants-noisy');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.toml'), `[tenants]\nmulti_tenant = true\nshard_count = ${SHARDS}\n\n[storage]\ndurability = "${s.durability}"\n`);
  const server = await startEventDbx(dir);
  const flooder = flooderTenant();
  const pool = new Pool(server.url, { connections: s.clients + QUIET_CLIENTS, pipelining: 1, keepAliveTimeout: 60_000 });
  const runs: { phase: string; quiet: OpStats; flood?: OpStats; flood_429: number }[] = [];
  try {
    for (let r = 0; r < s.rounds; r++) {
      for (const phase of r % 2 === 0 ? (['quiet', 'unlimited', 'limited', 'hammer'] as const) : (['hammer', 'limited', 'unlimited', 'quiet'] as const)) {
        await setLimit(server, flooder, phase === 'limited' || phase === 'hammer' ? s.limitPerSec : null);
        const start = nowUs();
        const windowUs = start + s.warmupMs * 1000;
        const endUs = windowUs + s.durationMs * 1000;
        const token = server.token as string;
        const [quiet, flood] = await Promise.all([
          appendLoop(pool, token, QUIET, QUIET_CLIENTS, windowUs, endUs),
          phase === 'quiet' ? Promise.resolve(undefined) : appendLoop(pool, token, flooder, s.clients, windowUs, endUs, phase !== 'hammer'),
        ]);
        if (quiet.limited > 0) throw new Error(`the quiet tenant was limited ${quiet.limited} times`);
        runs.push({ phase, quiet: quiet.stats, ...(flood ? { flood: flood.stats } : {}), flood_429: flood?.limited ?? 0 });
        s.log(
          `  round ${r + 1} ${phase}: quiet p50 ${Math.round(quiet.stats.p50_us)} µs p99 ${Math.round(quiet.stats.p99_us)} µs (${Math.round(quiet.stats.ops_s)} ops/s)` +
            (flood ? `; flooder ${Math.round(flood.stats.ops_s)} ops/s accepted, ${flood.limited} answered 429` : ''),
        );
      }
    }
  } finally {
    await pool.close();
    await server.stop();
  }
  const median = (phase: string, pick: (x: (typeof runs)[number]) => number): number => {
    const v = runs.filter((x) => x.phase === phase).map(pick).sort((a, b) => a - b);
    return Math.round(v[Math.floor(v.length / 2)] ?? 0);
  };
  const summary: Record<string, unknown> = {
    clients_flood: s.clients,
    clients_quiet: QUIET_CLIENTS,
    limit_per_sec: s.limitPerSec,
    durability: s.durability,
    rounds: s.rounds,
  };
  for (const phase of ['quiet', 'unlimited', 'limited', 'hammer']) {
    summary[phase] = {
      quiet_p50_us: median(phase, (x) => x.quiet.p50_us),
      quiet_p99_us: median(phase, (x) => x.quiet.p99_us),
      quiet_ops_s: median(phase, (x) => x.quiet.ops_s),
      flood_ops_s: median(phase, (x) => x.flood?.ops_s ?? 0),
      flood_429: median(phase, (x) => x.flood_429),
    };
  }
  const p99 = (phase: string) => (summary[phase] as { quiet_p99_us: number }).quiet_p99_us;
  summary.p99_ratio_unlimited = Math.round((p99('unlimited') / Math.max(1, p99('quiet'))) * 100) / 100;
  summary.p99_ratio_limited = Math.round((p99('limited') / Math.max(1, p99('quiet'))) * 100) / 100;
  summary.p99_ratio_hammer = Math.round((p99('hammer') / Math.max(1, p99('quiet'))) * 100) / 100;
  summary.target = 'p99_ratio_limited <= 2';
  summary.met = (summary.p99_ratio_limited as number) <= 2;
  summary.runs = runs;
  return summary;
}
