/**
 * `npm run bench -- --tenants-scale` (issue 12 item 8), two measurements:
 *
 * 1. Scale. One multi-tenant server holding `tenants` × `aggregates` (default 1,000 × 1,000, one
 *    event each, seeded with bulk import), against one single-tenant server holding the same number
 *    of aggregates in one tenant (the same volume, so only the tenant dimension differs). The same
 *    mix (get, apply, a list page at a random cursor) at `clients` concurrency, every request for a
 *    random tenant (with that tenant's own token, as a SaaS client would) and aggregate; rounds
 *    interleave the two servers so drift hits both alike. Per-request cost = mean latency; the
 *    target is the multi-tenant mean within 1.2× of the single tenant's, per op.
 * 2. Move. A tenant with `moveEvents` events (bulk import) moved to another shard while
 *    `moveWriters` clients keep appending to it: the move's duration and phases (its report), the
 *    server's write pause (the flip), and what the writers saw — the longest single write, p99,
 *    503s — then every event is counted on the target.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { issueToken, readConfig } from '../src/core/index.js';
import { SNOWFLAKE_EPOCH_MS } from '../src/core/snowflake.js';
import { shardName, tenantShard } from '../src/core/placement.js';
import { startEventDbx, type ChildServer } from './children.js';
import { Recorder, nowUs, runTimed, type OpStats } from './stats.js';

export interface TenantsScaleSettings {
  dataRoot: string;
  clients: number;
  durationMs: number;
  warmupMs: number;
  rounds: number;
  tenants: number;
  aggregates: number;
  moveEvents: number;
  moveWriters: number;
  durability: string;
  log: (line: string) => void;
}

const SHARDS = 4;
const TYPE = 'acct';
const OPS = ['get', 'apply', 'list'] as const;
type Op = (typeof OPS)[number];

/** Unique, increasing event ids for the seeds (Snowflake layout, worker id 1021: never the server's). */
class Ids {
  private i = 0;
  next(): { id: string; at: string } {
    const i = this.i++;
    const ms = Date.UTC(2025, 0, 1) + Math.floor(i / 4096);
    return { id: ((BigInt(ms - SNOWFLAKE_EPOCH_MS) << 22n) | (1021n << 12n) | BigInt(i % 4096)).toString(), at: new Date(ms).toISOString() };
  }
}

function line(ids: Ids, aggregate: string, version: number): string {
  const { id, at } = ids.next();
  return JSON.stringify({
    aggregate_type: TYPE,
    aggregate_id: aggregate,
    event_type: version === 1 ? 'opened' : 'changed',
    version,
    payload: { balance: version * 10, owner: aggregate },
    extensions: {},
    metadata: { event_id: id, created_at: at, issued_by: { group: 'bench', user: 'seed' } },
  });
}

async function importLines(pool: Pool, token: string, tenant: string, lines: string[]): Promise<void> {
  const res = await pool.request({
    method: 'POST',
    path: '/v1/import',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson', 'x-tenant-id': tenant },
    body: `${lines.join('\n')}\n`,
    headersTimeout: 600_000,
    bodyTimeout: 600_000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`import into ${tenant}: ${res.statusCode} ${text.slice(0, 300)}`);
}

/** `width` imports at a time over `jobs`. */
async function inParallel<T>(jobs: T[], width: number, fn: (job: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < jobs.length) await fn(jobs[next++] as T);
  }));
}

interface Target {
  name: string;
  server: ChildServer;
  pool: Pool;
  /** Tenant names and their tokens (one tenant for the single-tenant server). */
  tenants: { tenant: string; token: string }[];
  aggregatesPerTenant: number;
}

/**
 * `--data-dir` reuse: a directory seeded by an earlier run (same shape) is measured again without
 * re-importing its million aggregates (about two minutes each on this machine).
 */
const SEEDED = 'bench-seeded.json';
function seededBefore(dir: string, tenants: number, aggregates: number): boolean {
  if (!existsSync(join(dir, SEEDED))) return false;
  const seeded = JSON.parse(readFileSync(join(dir, SEEDED), 'utf8')) as { tenants: number; aggregates: number };
  return seeded.tenants === tenants && seeded.aggregates === aggregates;
}
function markSeeded(dir: string, tenants: number, aggregates: number): void {
  writeFileSync(join(dir, SEEDED), JSON.stringify({ tenants, aggregates }));
}

function configFor(dir: string, multiTenant: boolean, durability: string): void {
  mkdirSync(dir, { recursive: true });
  // A reused directory keeps its config (its keys signed the tokens the run issues).
  if (existsSync(join(dir, 'config.toml'))) return;
  writeFileSync(join(dir, 'config.toml'), `[tenants]\nmulti_tenant = ${multiTenant}\nshard_count = ${SHARDS}\n\n[storage]\ndurability = "${durability}"\n\n[auth]\nverified_cache_max = 20000\n`);
}

async function seedMulti(s: TenantsScaleSettings, ids: Ids): Promise<Target> {
  const dir = join(s.dataRoot, 'tenants-scale-multi');
  configFor(dir, true, s.durability);
  const server = await startEventDbx(dir);
  const pool = new Pool(server.url, { connections: s.clients + 4, pipelining: 1, keepAliveTimeout: 60_000 });
  const auth = readConfig(dir).config.auth;
  const tenants = Array.from({ length: s.tenants }, (_, t) => {
    const tenant = `t${String(t).padStart(4, '0')}`;
    return { tenant, token: issueToken(auth, { group: 'tenant', user: tenant, actions: ['aggregate.read', 'aggregate.append', 'aggregate.create'], tenants: [tenant] }).token };
  });
  const started = Date.now();
  if (!seededBefore(dir, s.tenants, s.aggregates)) {
    await inParallel(tenants, 4, async ({ tenant }) => {
      const lines = Array.from({ length: s.aggregates }, (_, a) => line(ids, `a${a}`, 1));
      await importLines(pool, server.token as string, tenant, lines);
    });
    markSeeded(dir, s.tenants, s.aggregates);
    s.log(`  seeded ${s.tenants} tenants × ${s.aggregates} aggregates in ${Math.round((Date.now() - started) / 1000)} s`);
  } else {
    s.log(`  reusing ${dir} (${s.tenants} tenants × ${s.aggregates} aggregates seeded before)`);
  }
  return { name: `${s.tenants} tenants`, server, pool, tenants, aggregatesPerTenant: s.aggregates };
}

async function seedSingle(s: TenantsScaleSettings, ids: Ids): Promise<Target> {
  const dir = join(s.dataRoot, 'tenants-scale-single');
  configFor(dir, false, s.durability);
  const server = await startEventDbx(dir);
  const pool = new Pool(server.url, { connections: s.clients + 4, pipelining: 1, keepAliveTimeout: 60_000 });
  const auth = readConfig(dir).config.auth;
  const total = s.tenants * s.aggregates;
  const started = Date.now();
  if (!seededBefore(dir, 1, total)) {
    const requests = Array.from({ length: Math.ceil(total / 50_000) }, (_, r) => r);
    await inParallel(requests, 2, async (r) => {
      const lines: string[] = [];
      for (let a = r * 50_000; a < Math.min(total, (r + 1) * 50_000); a++) lines.push(line(ids, `a${a}`, 1));
      await importLines(pool, server.token as string, 'default', lines);
    });
    markSeeded(dir, 1, total);
    s.log(`  seeded 1 tenant × ${total} aggregates in ${Math.round((Date.now() - started) / 1000)} s`);
  } else {
    s.log(`  reusing ${dir} (1 tenant × ${total} aggregates seeded before)`);
  }
  const token = issueToken(auth, { group: 'tenant', user: 'default', actions: ['aggregate.read', 'aggregate.append', 'aggregate.create'], tenants: ['default'] }).token;
  return { name: '1 tenant', server, pool, tenants: [{ tenant: 'default', token }], aggregatesPerTenant: total };
}

function randomInt(n: number): number {
  return Math.floor(Math.random() * n);
}

async function request(target: Target, op: Op): Promise<void> {
  const { tenant, token } = target.tenants[randomInt(target.tenants.length)] as { tenant: string; token: string };
  const id = `a${randomInt(target.aggregatesPerTenant)}`;
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'x-tenant-id': tenant };
  let res;
  if (op === 'get') res = await target.pool.request({ method: 'GET', path: `/v1/aggregates/${TYPE}/${id}`, headers });
  else if (op === 'list') res = await target.pool.request({ method: 'GET', path: `/v1/aggregates/${TYPE}?take=10&cursor=a:${TYPE}:${id}`, headers });
  else {
    headers['content-type'] = 'application/json';
    res = await target.pool.request({ method: 'POST', path: `/v1/aggregates/${TYPE}/${id}/events`, headers, body: JSON.stringify({ event_type: 'changed', payload: { balance: randomInt(1000) } }) });
  }
  await res.body.dump();
  const ok = op === 'apply' ? 201 : 200;
  if (res.statusCode !== ok) throw new Error(`${target.name} ${op} answered ${res.statusCode}`);
}

async function scale(s: TenantsScaleSettings): Promise<Record<string, unknown>> {
  const ids = new Ids();
  const multi = await seedMulti(s, ids);
  const single = await seedSingle(s, ids);
  const runs: { target: string; op: Op; stats: OpStats }[] = [];
  const firstTouch: Record<string, number> = {};
  try {
    // Steady state is what is compared: each tenant's token is verified (Ed25519, then cached) and
    // its shard's pages touched once here, and how long that took is reported on its own.
    for (const target of [single, multi]) {
      const started = nowUs();
      await inParallel(target.tenants, s.clients, async ({ tenant, token }) => {
        const res = await target.pool.request({ method: 'GET', path: `/v1/aggregates/${TYPE}/a0`, headers: { authorization: `Bearer ${token}`, 'x-tenant-id': tenant } });
        await res.body.dump();
        if (res.statusCode !== 200) throw new Error(`${target.name} first get of ${tenant} answered ${res.statusCode}`);
      });
      firstTouch[target.name] = Math.round((nowUs() - started) / 1000);
      s.log(`  first touch of every tenant on ${target.name}: ${firstTouch[target.name]} ms`);
    }
    for (let r = 0; r < s.rounds; r++) {
      for (const target of r % 2 === 0 ? [single, multi] : [multi, single]) {
        for (const op of OPS) {
          const stats = await runTimed({ concurrency: s.clients, durationMs: s.durationMs, warmupMs: s.warmupMs }, () => request(target, op));
          runs.push({ target: target.name, op, stats });
          s.log(`  round ${r + 1} ${target.name} ${op}: ${Math.round(stats.ops_s)} ops/s, mean ${Math.round(stats.mean_us)} µs, p99 ${Math.round(stats.p99_us)} µs`);
        }
      }
    }
  } finally {
    for (const t of [multi, single]) {
      await t.pool.close();
      await t.server.stop();
    }
  }
  const median = (target: string, op: Op, pick: (x: OpStats) => number): number => {
    const v = runs.filter((x) => x.target === target && x.op === op).map((x) => pick(x.stats)).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)] ?? 0;
  };
  const perOp: Record<string, unknown> = {};
  let worst = 0;
  for (const op of OPS) {
    const one = median(single.name, op, (x) => x.mean_us);
    const many = median(multi.name, op, (x) => x.mean_us);
    const ratio = Math.round((many / Math.max(1, one)) * 100) / 100;
    worst = Math.max(worst, ratio);
    perOp[op] = {
      single_mean_us: Math.round(one),
      multi_mean_us: Math.round(many),
      ratio,
      single_ops_s: Math.round(median(single.name, op, (x) => x.ops_s)),
      multi_ops_s: Math.round(median(multi.name, op, (x) => x.ops_s)),
      single_p99_us: Math.round(median(single.name, op, (x) => x.p99_us)),
      multi_p99_us: Math.round(median(multi.name, op, (x) => x.p99_us)),
    };
  }
  return { tenants: s.tenants, aggregates_per_tenant: s.aggregates, clients: s.clients, rounds: s.rounds, first_touch_ms: firstTouch, per_op: perOp, worst_ratio: worst, target: 'multi-tenant mean latency within 1.2× of single-tenant, per op', met: worst <= 1.2, runs };
}

async function move(s: TenantsScaleSettings): Promise<Record<string, unknown>> {
  const dir = join(s.dataRoot, 'tenants-move');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.toml'), `[tenants]\nmulti_tenant = true\nshard_count = ${SHARDS}\n\n[storage]\ndurability = "${s.durability}"\n`);
  const server = await startEventDbx(dir);
  const pool = new Pool(server.url, { connections: s.moveWriters + 4, pipelining: 1, keepAliveTimeout: 60_000 });
  const tenant = 'big';
  const token = server.token as string;
  const from = tenantShard({ shardCount: SHARDS, multiTenant: true }, tenant);
  const to = (from + 1) % SHARDS;
  try {
    // 100 events per aggregate: long histories, as a real tenant has.
    const ids = new Ids();
    const perAggregate = 100;
    const aggregates = Math.ceil(s.moveEvents / perAggregate);
    const lines: string[] = [];
    for (let a = 0; a < aggregates; a++) for (let v = 1; v <= perAggregate && lines.length < s.moveEvents; v++) lines.push(line(ids, `m${a}`, v));
    const seeded = Date.now();
    for (let i = 0; i < lines.length; i += 50_000) await importLines(pool, token, tenant, lines.slice(i, i + 50_000));
    s.log(`  seeded tenant '${tenant}' with ${lines.length} events (${aggregates} aggregates) in ${Math.round((Date.now() - seeded) / 1000)} s`);

    /** Every acknowledged write: [start µs, took µs] (retries after a 503 included in `took`). */
    const samples: [number, number][] = [];
    let acked = 0;
    let unavailable = 0;
    let slowest = 0;
    let slowestAt = 0;
    const stop = { now: false };
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-tenant-id': tenant };
    const writersStart = nowUs();
    const writers = Array.from({ length: s.moveWriters }, async (_, w) => {
      for (let n = 0; !stop.now; n++) {
        const t0 = nowUs();
        for (;;) {
          const res = await pool.request({ method: 'POST', path: `/v1/aggregates/${TYPE}/m${(w * 7 + n) % aggregates}/events`, headers, body: JSON.stringify({ event_type: 'changed', payload: { w, n }, idempotency_key: `w${w}-${n}` }) });
          await res.body.dump();
          if (res.statusCode === 201) break;
          if (res.statusCode !== 503) throw new Error(`append during the move answered ${res.statusCode}`);
          unavailable++;
          await new Promise((r) => setTimeout(r, 10));
        }
        const took = nowUs() - t0;
        samples.push([t0, took]);
        if (took > slowest) {
          slowest = took;
          slowestAt = t0;
        }
        acked++;
      }
    });
    await new Promise((r) => setTimeout(r, 1000));
    const ackedBefore = acked;
    const moveStart = nowUs();
    const res = await fetch(`${server.url}/v1/tenants/${tenant}/shard`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ shard: shardName(to) }),
      signal: AbortSignal.timeout(3_600_000),
    });
    const moveEnd = nowUs();
    const answer = (await res.json()) as { move?: Record<string, unknown>; error?: unknown };
    if (res.status !== 200) throw new Error(`the move answered ${res.status} ${JSON.stringify(answer)}`);
    await new Promise((r) => setTimeout(r, 1000));
    stop.now = true;
    await Promise.all(writers);
    const view = (await (await fetch(`${server.url}/v1/tenants/${tenant}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { shard: string; events: number };
    const window = (from: number, to: number): OpStats => {
      const r = new Recorder();
      for (const [t0, took] of samples) if (t0 >= from && t0 < to) r.add(took);
      return r.summary((to - from) / 1000);
    };
    const before = window(writersStart, moveStart);
    const during = window(moveStart, moveEnd);
    const slow = samples.filter(([, took]) => took > 250_000);
    // Where the slow writes fell: the phases in order, from the move's start (the report's durations).
    const phases = (answer.move?.phases_ms ?? {}) as Record<string, number>;
    const bounds: [string, number][] = [];
    let at = moveStart;
    for (const phase of ['copying', 'verifying', 'flipping', 'deleting']) {
      at += (phases[phase] ?? 0) * 1000;
      bounds.push([phase, at]);
    }
    const slowByPhase: Record<string, { writes: number; longest_ms: number }> = {};
    for (const [t0, took] of slow) {
      const phase = t0 < moveStart ? 'before' : (bounds.find(([, end]) => t0 < end)?.[0] ?? 'after');
      const entry = slowByPhase[phase] ?? { writes: 0, longest_ms: 0 };
      entry.writes++;
      entry.longest_ms = Math.max(entry.longest_ms, Math.round(took / 1000));
      slowByPhase[phase] = entry;
    }
    const expected = lines.length + acked;
    return {
      events_moved: lines.length,
      aggregates,
      writers: s.moveWriters,
      from: shardName(from),
      to: view.shard,
      duration_ms: Math.round((moveEnd - moveStart) / 1000),
      report: answer.move,
      writes_acked_during_move: acked - ackedBefore,
      write_503: unavailable,
      longest_write_ms: Math.round(slowest / 100) / 10,
      longest_write_in_move: slowestAt >= moveStart && slowestAt <= moveEnd,
      writes_before_move: { p50_ms: Math.round(before.p50_us / 100) / 10, p99_ms: Math.round(before.p99_us / 100) / 10, max_ms: Math.round(before.max_us / 100) / 10, ops_s: before.ops_s },
      writes_during_move: { p50_ms: Math.round(during.p50_us / 100) / 10, p99_ms: Math.round(during.p99_us / 100) / 10, max_ms: Math.round(during.max_us / 100) / 10, ops_s: during.ops_s },
      writes_over_250ms_by_phase: slowByPhase,
      events_on_target: view.events,
      events_expected: expected,
      complete: view.events === expected && view.shard === shardName(to),
    };
  } finally {
    await pool.close();
    await server.stop();
  }
}

export async function benchTenantsScale(s: TenantsScaleSettings): Promise<Record<string, unknown>> {
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  s.log(`tenants-scale: ${s.tenants} tenants × ${s.aggregates} aggregates, ${s.clients} clients, ${s.rounds} rounds; load average before: ${load}`);
  const scaled = s.tenants > 0 ? await scale(s) : undefined;
  s.log(`tenants-scale: moving a tenant with ${s.moveEvents} events under ${s.moveWriters} writers`);
  const moved = s.moveEvents > 0 ? await move(s) : undefined;
  const after = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return { load_average_before: load, load_average_after: after, durability: s.durability, ...(scaled ? { scale: scaled } : {}), ...(moved ? { move: moved } : {}) };
}
