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
 * - hammer:    the same limit, but the flooder ignores Retry-After and retries at once. Its 429s
 *              cost no disk, but each costs the HTTP layer CPU; the server's answer is the hold
 *              (`[tenants] rate_limit_hold_max_ms`): a write of a tenant that was already told
 *              Retry-After is held before its 429, so a closed-loop flooder's rate collapses
 *              (`holdMs: 0` turns the hold off, to compare).
 *
 * The flooder runs in its own worker thread (tenants-flooder.ts): a neighbour is another client,
 * and its client-side work must not delay the event loop that times the quiet tenant.
 * The flooder's 429s are counted, not errors. The two tenants are on different shards of one
 * worker environment (the default layout): they share the group commit and the disk, which is
 * exactly where a neighbour hurts.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Pool } from 'undici';
import { tenantShard } from '../src/core/placement.js';
import { startEventDbx, type ChildServer } from './children.js';
import { nowUs, type OpStats } from './stats.js';
import { appendLoop, type Loop, type LoopSpec } from './tenants-append-loop.js';

export interface NoisySettings {
  dataRoot: string;
  clients: number;
  durationMs: number;
  warmupMs: number;
  rounds: number;
  /** The flooder's limit in the `limited` phase, events per second. */
  limitPerSec: number;
  durability: string;
  /** `[tenants] rate_limit_hold_max_ms` of the server (undefined: its default; 0: no hold). */
  holdMs?: number | undefined;
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

/** The flooder's client in its own thread; `run` answers one phase's Loop. */
function startFlooder(url: string, connections: number): { run: (spec: LoopSpec) => Promise<Loop>; close: () => Promise<void> } {
  const worker = new Worker(new URL('./tenants-flooder.js', import.meta.url), { workerData: { url, connections } });
  return {
    run: (spec) =>
      new Promise<Loop>((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        worker.once('error', onError);
        worker.once('message', (msg: { loop?: Loop; error?: string }) => {
          worker.off('error', onError);
          if (msg.loop) resolve(msg.loop);
          else reject(new Error(msg.error));
        });
        worker.postMessage(spec);
      }),
    close: async () => {
      worker.postMessage('close');
      await new Promise((r) => worker.once('exit', r));
    },
  };
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
  const hold = s.holdMs === undefined ? '' : `rate_limit_hold_max_ms = ${s.holdMs}\n`;
  writeFileSync(join(dir, 'config.toml'), `[tenants]\nmulti_tenant = true\nshard_count = ${SHARDS}\n${hold}\n[storage]\ndurability = "${s.durability}"\n`);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const server = await startEventDbx(dir);
  const flooder = flooderTenant();
  const pool = new Pool(server.url, { connections: QUIET_CLIENTS, pipelining: 1, keepAliveTimeout: 60_000 });
  const flood = startFlooder(server.url, s.clients);
  const runs: { phase: string; quiet: OpStats; flood?: OpStats; flood_429: number; flood_429_p50_us: number; flood_closed: number }[] = [];
  try {
    for (let r = 0; r < s.rounds; r++) {
      for (const phase of r % 2 === 0 ? (['quiet', 'unlimited', 'limited', 'hammer'] as const) : (['hammer', 'limited', 'unlimited', 'quiet'] as const)) {
        await setLimit(server, flooder, phase === 'limited' || phase === 'hammer' ? s.limitPerSec : null);
        const start = nowUs();
        const windowUs = start + s.warmupMs * 1000;
        const endUs = windowUs + s.durationMs * 1000;
        const token = server.token as string;
        const [quiet, flooded] = await Promise.all([
          appendLoop(pool, { url: server.url, token, tenant: QUIET, concurrency: QUIET_CLIENTS, windowUs, endUs, honourRetryAfter: true }),
          phase === 'quiet' ? Promise.resolve(undefined) : flood.run({ url: server.url, token, tenant: flooder, concurrency: s.clients, windowUs, endUs, honourRetryAfter: phase !== 'hammer' }),
        ]);
        if (quiet.limited > 0) throw new Error(`the quiet tenant was limited ${quiet.limited} times`);
        runs.push({
          phase,
          quiet: quiet.stats,
          ...(flooded ? { flood: flooded.stats } : {}),
          flood_429: flooded?.limited ?? 0,
          flood_429_p50_us: flooded?.limitedStats.p50_us ?? 0,
          flood_closed: flooded?.closed ?? 0,
        });
        s.log(
          `  round ${r + 1} ${phase}: quiet p50 ${Math.round(quiet.stats.p50_us)} µs p99 ${Math.round(quiet.stats.p99_us)} µs (${Math.round(quiet.stats.ops_s)} ops/s)` +
            (flooded
              ? `; flooder ${Math.round(flooded.stats.ops_s)} ops/s accepted, ${flooded.limited} answered 429 (p50 ${Math.round(flooded.limitedStats.p50_us / 1000)} ms, ${flooded.closed} with Connection: close)`
              : ''),
        );
      }
    }
  } finally {
    await flood.close();
    await pool.close();
    await server.stop();
  }
  const median = (phase: string, pick: (x: (typeof runs)[number]) => number): number => {
    const v = runs.filter((x) => x.phase === phase).map(pick).sort((a, b) => a - b);
    return Math.round(v[Math.floor(v.length / 2)] ?? 0);
  };
  const summary: Record<string, unknown> = {
    load_average_before: load,
    clients_flood: s.clients,
    clients_quiet: QUIET_CLIENTS,
    limit_per_sec: s.limitPerSec,
    hold_max_ms: s.holdMs ?? 'default',
    durability: s.durability,
    rounds: s.rounds,
  };
  const secs = s.durationMs / 1000;
  for (const phase of ['quiet', 'unlimited', 'limited', 'hammer']) {
    summary[phase] = {
      quiet_p50_us: median(phase, (x) => x.quiet.p50_us),
      quiet_p99_us: median(phase, (x) => x.quiet.p99_us),
      quiet_ops_s: median(phase, (x) => x.quiet.ops_s),
      flood_ops_s: median(phase, (x) => x.flood?.ops_s ?? 0),
      flood_429_per_s: Math.round(median(phase, (x) => x.flood_429) / secs),
      flood_429_p50_us: median(phase, (x) => x.flood_429_p50_us),
      flood_closed: median(phase, (x) => x.flood_closed),
    };
  }
  const p99 = (phase: string) => (summary[phase] as { quiet_p99_us: number }).quiet_p99_us;
  summary.p99_ratio_unlimited = Math.round((p99('unlimited') / Math.max(1, p99('quiet'))) * 100) / 100;
  summary.p99_ratio_limited = Math.round((p99('limited') / Math.max(1, p99('quiet'))) * 100) / 100;
  summary.p99_ratio_hammer = Math.round((p99('hammer') / Math.max(1, p99('quiet'))) * 100) / 100;
  summary.target = 'p99_ratio_limited <= 2 and p99_ratio_hammer <= 2';
  summary.met = (summary.p99_ratio_limited as number) <= 2 && (summary.p99_ratio_hammer as number) <= 2;
  summary.load_average_after = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  summary.runs = runs;
  return summary;
}
