/**
 * Result types, the targets as pass/fail checks, and the printed tables. The JSON written
 * to bench/results/ is exactly the BenchResult object, so runs can be compared later.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import Table from 'cli-table3';
import type { Floors } from './floors.js';
import type { SeedResult } from './seed.js';
import type { CommitStats } from './commit-stats.js';
import type { CpuPerOp } from './thread-cpu.js';
import type { OpStats } from './stats.js';
import type { OpName } from './workload.js';

export type Durability = 'sync' | 'async';

export interface RunResult {
  system: 'eventdbx' | 'postgres';
  /** EventDBX's [storage] durability; PostgreSQL runs with synchronous_commit = on (sync). */
  durability: Durability;
  clients: number;
  ops: Partial<Record<OpName, OpStats>>;
  /** EventDBX write ops: group size and flushes, read from /metrics around the run. */
  commits?: Partial<Record<OpName, CommitStats>>;
  /** EventDBX: CPU per operation by thread over the measured window (thread-cpu.ts). */
  cpu?: Partial<Record<OpName, CpuPerOp>>;
}

export interface DatasetResult {
  size: number;
  seed: SeedResult;
  pg_seed?: SeedResult;
  runs: RunResult[];
}

export interface LongAggregateResult {
  events: number;
  seed_seconds: number;
  long: OpStats;
  fresh: OpStats;
  /** long p50 / fresh p50. */
  ratio: number;
}

export interface Check {
  name: string;
  target: string;
  measured: string;
  pass: boolean;
}

export interface BenchResult {
  started_at: string;
  finished_at: string;
  machine: { cpus: number; node: string; platform: string };
  options: Record<string, unknown>;
  floors?: Floors;
  datasets: DatasetResult[];
  long_aggregate?: LongAggregateResult;
  checks: Check[];
  /** Set when the run aborted: the results above are partial. */
  error?: string;
}

/** No ANSI colours: the tables end up in logs and reports. */
const PLAIN = { head: [] as string[], border: [] as string[] };

const fmtInt = (v: number): string => Math.round(v).toLocaleString('en-US');
export const fmtSize = (n: number): string => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}K` : String(n));

/**
 * Issue 8's targets ("Performance to reach"), each checked where the run measured what it needs:
 * against PostgreSQL in the same run (--compare pg), against the floors printed beside (the worker
 * echo plus an append-shaped flushed LMDB transaction), and `async` against `sync`. `many` is the
 * concurrent client count (32).
 */
export function evaluate(result: BenchResult, many: number): Check[] {
  const checks: Check[] = [];
  const add = (name: string, target: string, measured: number, unit: string, pass: boolean): void => {
    checks.push({ name, target, measured: `${unit === 'x' ? measured.toFixed(2) : fmtInt(measured)} ${unit}`, pass });
  };
  const f = result.floors;
  const writeFloor1 = f?.lmdb_append_shape ? f.fastify_worker_echo.c1.p50_us + f.lmdb_append_shape.p50_us : undefined;
  for (const ds of result.datasets) {
    const tag = fmtSize(ds.size);
    const find = (system: RunResult['system'], durability: Durability, clients: number) => ds.runs.find((r) => r.system === system && r.durability === durability && r.clients === clients);
    const sync = find('eventdbx', 'sync', many);
    const async = find('eventdbx', 'async', many);
    const sync1 = find('eventdbx', 'sync', 1);
    const async1 = find('eventdbx', 'async', 1);
    const pg = find('postgres', 'sync', many);
    const pg1 = find('postgres', 'sync', 1);
    const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
    const applyVsPg = ratio(sync?.ops.apply?.ops_s, pg?.ops.apply?.ops_s);
    if (applyVsPg !== undefined) add(`apply ${many} clients sync vs PostgreSQL (${tag})`, '≥ 1.60 x', applyVsPg, 'x', applyVsPg >= 1.6);
    const getVsPg = ratio(sync?.ops.get?.ops_s, pg?.ops.get?.ops_s);
    if (getVsPg !== undefined) add(`get ${many} clients vs PostgreSQL (${tag})`, '≥ 2.50 x', getVsPg, 'x', getVsPg >= 2.5);
    const p50VsFloor = ratio(sync1?.ops.apply?.p50_us, writeFloor1);
    if (p50VsFloor !== undefined) add(`apply 1 client sync p50 vs the floor (${tag})`, '≤ 1.20 x', p50VsFloor, 'x', p50VsFloor <= 1.2);
    const asyncVsSync = ratio(async?.ops.apply?.ops_s, sync?.ops.apply?.ops_s);
    if (asyncVsSync !== undefined) add(`apply ${many} clients async vs sync (${tag})`, '≥ 1.30 x', asyncVsSync, 'x', asyncVsSync >= 1.3);
    const asyncP50VsPg = ratio(async1?.ops.apply?.p50_us, pg1?.ops.apply?.p50_us);
    if (asyncP50VsPg !== undefined) add(`apply 1 client async p50 vs PostgreSQL's (${tag})`, '< 1.00 x', asyncP50VsPg, 'x', asyncP50VsPg < 1);
  }
  const long = result.long_aggregate;
  if (long) add(`append to a ${fmtSize(long.events)}-event aggregate vs a fresh one (p50)`, '≤ 1.50 x', long.ratio, 'x', long.ratio <= 1.5);
  const sized = [...result.datasets].sort((a, b) => a.size - b.size);
  const small = sized[0];
  const large = sized[sized.length - 1];
  if (small && large && large.size > small.size) {
    // The targets are 1M vs 1K and 10M vs 100K; the same bound is applied to what ran.
    const label = `${fmtSize(large.size)} vs ${fmtSize(small.size)} aggregates`;
    const pick = (ds: DatasetResult, clients: number) => ds.runs.find((r) => r.system === 'eventdbx' && r.durability === primaryDurability(ds) && r.clients === clients)?.ops;
    for (const op of ['apply', 'get'] as const) {
      const s1 = pick(small, 1)?.[op];
      const l1 = pick(large, 1)?.[op];
      if (s1 && l1) add(`${op} 1 client p50, ${label}`, '≤ 1.50 x', l1.p50_us / s1.p50_us, 'x', l1.p50_us / s1.p50_us <= 1.5);
      const sm = pick(small, many)?.[op];
      const lm = pick(large, many)?.[op];
      if (sm && lm) add(`${op} ${many} clients ops/s, ${label}`, '≤ 1.50 x slower', sm.ops_s / lm.ops_s, 'x', sm.ops_s / lm.ops_s <= 1.5);
    }
  }
  return checks;
}

function primaryDurability(ds: DatasetResult): Durability {
  return ds.runs.find((r) => r.system === 'eventdbx')?.durability ?? 'sync';
}

export function renderTables(result: BenchResult, clientCounts: number[]): string {
  const out: string[] = [];
  if (result.floors) out.push('Floors (same machine, same client, same run)', renderFloors(result.floors, clientCounts));
  for (const ds of result.datasets) {
    const seed = ds.seed.seeded ? `seeded in ${ds.seed.seconds} s` : 'reused';
    const pgSeed = ds.pg_seed ? `; PostgreSQL seeded in ${ds.pg_seed.seconds} s` : '';
    out.push(`Dataset ${fmtSize(ds.size)} aggregates (${seed}${pgSeed})`, renderDataset(ds, clientCounts));
    const commits = renderCommits(ds);
    if (commits) out.push(`Group commits, ${fmtSize(ds.size)} (eventdbx_commit_batch_commands and eventdbx_storage_transactions around each run)`, commits);
    const cpu = renderCpu(ds);
    if (cpu) out.push(`CPU per operation, ${fmtSize(ds.size)}, µs (server threads from /proc/<pid>/task, client from process.cpuUsage; 2 cores give 2,000,000 µs/s)`, cpu);
  }
  if (result.long_aggregate) {
    const l = result.long_aggregate;
    out.push(
      `Long aggregate: sequential apply, interleaved: ${fmtSize(l.events)}-event aggregate p50 ${fmtInt(l.long.p50_us)} µs (p99 ${fmtInt(l.long.p99_us)}), ` +
        `fresh aggregate p50 ${fmtInt(l.fresh.p50_us)} µs (p99 ${fmtInt(l.fresh.p99_us)}), ratio ${l.ratio.toFixed(2)}`,
    );
  }
  const distance = renderDistance(result, clientCounts);
  if (distance) out.push('Distance to the floors (smallest dataset, first durability)', distance);
  out.push('Targets from the issue', renderChecks(result.checks));
  if (result.error) out.push(`RUN ABORTED (results above are partial): ${result.error}`);
  return out.join('\n');
}

function statCells(s: OpStats | undefined): string[] {
  return s ? [fmtInt(s.ops_s), fmtInt(s.p50_us), fmtInt(s.p99_us)] : ['-', '-', '-'];
}

function header(clientCounts: number[]): string[] {
  return clientCounts.flatMap((c) => [`${c}c ops/s`, `${c}c p50 µs`, `${c}c p99 µs`]);
}

function renderFloors(f: Floors, clientCounts: number[]): string {
  const many = clientCounts[clientCounts.length - 1] ?? 32;
  const table = new Table({ style: PLAIN, head: ['floor', ...header([1, many])] });
  table.push(['fastify echo (POST body)', ...statCells(f.fastify_echo.c1), ...statCells(f.fastify_echo.many)]);
  table.push(['fastify + worker_thread round trip', ...statCells(f.fastify_worker_echo.c1), ...statCells(f.fastify_worker_echo.many)]);
  table.push(['LMDB txn awaited until flushed', ...statCells(f.lmdb_txn_flushed), '', '', '']);
  if (f.lmdb_append_shape) table.push(['LMDB txn of an append\'s shape, flushed', ...statCells(f.lmdb_append_shape), '', '', '']);
  table.push(['raw write + fdatasync', ...statCells(f.fdatasync), '', '', '']);
  return table.toString();
}

function renderDataset(ds: DatasetResult, clientCounts: number[]): string {
  const table = new Table({ style: PLAIN, head: ['system', 'op', ...header(clientCounts)] });
  const systems = [...new Set(ds.runs.map((r) => `${r.system}|${r.durability}`))];
  for (const key of systems) {
    const [system, durability] = key.split('|') as [string, string];
    const runs = ds.runs.filter((r) => `${r.system}|${r.durability}` === key);
    const ops = [...new Set(runs.flatMap((r) => Object.keys(r.ops)))] as OpName[];
    const label = system === 'postgres' ? 'postgres (sync commit)' : `eventdbx ${durability}`;
    for (const op of ops) table.push([label, op, ...clientCounts.flatMap((c) => statCells(runs.find((r) => r.clients === c)?.ops[op]))]);
  }
  return table.toString();
}

/** Group size and flushes of each EventDBX write run (read from /metrics around it). */
function renderCommits(ds: DatasetResult): string | undefined {
  const table = new Table({ style: PLAIN, head: ['durability', 'op', 'clients', 'requests per group', 'groups per flush', 'flushes per request'] });
  for (const run of ds.runs) {
    for (const [op, c] of Object.entries(run.commits ?? {})) {
      if (c) table.push([run.durability, op, String(run.clients), c.group_size.toFixed(1), c.groups_per_flush.toFixed(2), c.flushes_per_request.toFixed(3)]);
    }
  }
  return table.length > 0 ? table.toString() : undefined;
}

function renderCpu(ds: DatasetResult): string | undefined {
  const table = new Table({ style: PLAIN, head: ['durability', 'op', 'clients', 'main user', 'main sys', 'worker user', 'worker sys', 'other threads', 'client', 'total', 'ops/s the total allows'] });
  const cores = availableParallelism();
  for (const run of ds.runs) {
    for (const [op, c] of Object.entries(run.cpu ?? {})) {
      if (!c) continue;
      const cells = [c.main_user_us, c.main_sys_us, c.workers_user_us, c.workers_sys_us, c.other_us, c.client_us, c.total_us].map(fmtInt);
      table.push([run.durability, op, String(run.clients), ...cells, fmtInt((cores * 1e6) / c.total_us)]);
    }
  }
  return table.length > 0 ? table.toString() : undefined;
}

function renderDistance(result: BenchResult, clientCounts: number[]): string | undefined {
  const f = result.floors;
  const ds = [...result.datasets].sort((a, b) => a.size - b.size)[0];
  if (!f || !ds) return undefined;
  const many = clientCounts[clientCounts.length - 1] ?? 32;
  const durability = primaryDurability(ds);
  const run = (c: number) => ds.runs.find((r) => r.system === 'eventdbx' && r.durability === durability && r.clients === c);
  const table = new Table({ style: PLAIN, head: ['measure', 'eventdbx', 'floor', 'floor is'] });
  const get1 = run(1)?.ops.get;
  const apply1 = run(1)?.ops.apply;
  const getM = run(many)?.ops.get;
  const applyM = run(many)?.ops.apply;
  const writeFloor = f.fastify_worker_echo.c1.p50_us + (durability === 'sync' ? f.lmdb_txn_flushed.p50_us : 0);
  if (get1) table.push(['get 1 client p50 µs', fmtInt(get1.p50_us), `${fmtInt(f.fastify_echo.c1.p50_us)} (echo)`, pct(f.fastify_echo.c1.p50_us / get1.p50_us)]);
  if (apply1) table.push([`apply 1 client p50 µs (${durability})`, fmtInt(apply1.p50_us), `${fmtInt(writeFloor)} (worker echo${durability === 'sync' ? ' + LMDB flush' : ''})`, pct(writeFloor / apply1.p50_us)]);
  if (apply1 && f.lmdb_append_shape && durability === 'sync') {
    const shaped = f.fastify_worker_echo.c1.p50_us + f.lmdb_append_shape.p50_us;
    table.push([`apply 1 client p50 µs (${durability})`, fmtInt(apply1.p50_us), `${fmtInt(shaped)} (worker echo + append-shaped LMDB flush)`, pct(shaped / apply1.p50_us)]);
  }
  if (getM) table.push([`get ${many} clients ops/s`, fmtInt(getM.ops_s), `${fmtInt(f.fastify_echo.many.ops_s)} (echo)`, pct(getM.ops_s / f.fastify_echo.many.ops_s, true)]);
  if (applyM) table.push([`apply ${many} clients ops/s`, fmtInt(applyM.ops_s), `${fmtInt(f.fastify_worker_echo.many.ops_s)} (worker echo)`, pct(applyM.ops_s / f.fastify_worker_echo.many.ops_s, true)]);
  return table.toString();
}

function pct(ratio: number, reached = false): string {
  return reached ? `${Math.round(ratio * 100)}% of floor reached` : `${Math.round(ratio * 100)}% of our latency`;
}

function renderChecks(checks: Check[]): string {
  const table = new Table({ style: PLAIN, head: ['target', 'wanted', 'measured', 'result'] });
  for (const c of checks) table.push([c.name, c.target, c.measured, c.pass ? 'PASS' : 'FAIL']);
  return table.toString();
}

export function writeResultJson(dir: string, result: BenchResult): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${result.started_at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  return path;
}
