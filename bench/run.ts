/**
 * `npm run bench`: the original perf harness's operation mix against the real server over HTTP,
 * with 1 and 32 concurrent clients, on datasets of 1K / 100K / 1M aggregates, beside floors
 * measured in the same run and (with --compare pg) a PostgreSQL event store served the same way.
 * See `--help`. Results: tables on stdout (stderr with --json), JSON in bench/results/.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { readConfig, writeConfig } from '../src/core/config.js';
import { shardFor } from '../src/core/placement.js';
import { startBenchChild, startEventDbx, type ChildServer } from './children.js';
import { HttpApi } from './client.js';
import { measureFloors } from './floors.js';
import { resetSchema } from './pg-store.js';
import { evaluate, fmtSize, renderTables, writeResultJson, type BenchResult, type DatasetResult, type Durability, type LongAggregateResult, type RunResult } from './report.js';
import { LONG_TYPE, seedDataset, seedLongAggregate } from './seed.js';
import { benchSecurity } from './security.js';
import { benchTenantsNoisy } from './tenants-noisy.js';
import { benchTenantsScale } from './tenants.js';
import { benchPlugins } from './plugins.js';
import { benchStream } from './stream.js';
import { Recorder, nowUs, runTimed, type OpStats } from './stats.js';
import { commitStatsBetween, readCommitCounters } from './commit-stats.js';
import { cpuPerOp, sampleThreads, type ThreadSample } from './thread-cpu.js';
import { AGGREGATE_TYPE, ALL_OPS, WIDE_TYPE, WRITE_OPS, createMix, restoreLeftovers, runOp, wideApply, wideSchema, type OpName } from './workload.js';

const HELP = `Usage: npm run bench -- [options]
  --sizes <n,n,…>       dataset sizes in aggregates (default 1000,100000,1000000)
  --huge                add the 10,000,000 dataset
  --quick               smoke run: 1K only, 500 ms per operation, 10K-event long aggregate
  --duration-ms <ms>    time box per operation and client count (default 2000)
  --warmup-ms <ms>      unrecorded lead-in per operation (default 300)
  --clients <n,n,…>     concurrent client counts (default 1,32)
  --ops <op,op,…>       a subset of list,get,select,events,apply,create,patch,archive,restore
  --durability <mode>   sync | async | both (default both: full mix in sync, write ops again in async)
  --encryption <on|off> encryption at rest (default on, as a new server); off needs fresh data dirs
  --data-dir <dir>      keep datasets in <dir>/account-<size> and reuse them between runs
  --long-events <n>     events in the long aggregate (default 100000; 0 skips the measurement)
  --compare pg          run the same mix against PostgreSQL (--pg-url, --pg-pool)
  --pg-url <url>        default postgres://postgres@127.0.0.1:5432/test
  --pg-pool <n>         PostgreSQL connections of the comparison server (default 32)
  --no-floors           skip the floor measurements
  --seed-batch <n>      events per POST /v1/batch while seeding (default 1000)
  --seed-in-flight <n>  seed batches in flight (default 4)
  --schema              instead of the mix: apply at the largest client count with 20-field
                        payloads, a 20-field schema in force vs none, interleaved (--schema-rounds)
  --schema-rounds <n>   rounds of (none, schema) pairs for --schema (default 3)
  --plugins http        instead of the mix: apply at the largest client count without a plugin,
                        with one http plugin (receiver in this process), and without again;
                        reports delivery rate, commit→delivered lag p50/p99, append cost
                        (--duration-ms per phase; default 60000 here)
  --stream              instead of the mix: apply at the largest client count while
                        --subscribers live SSE subscribers (db.subscribe) follow the global
                        stream; reports commit (ack) → received latency p50/p99 and the append
                        cost (--duration-ms, default 10000)
  --subscribers <n>     live subscribers for --stream (default 1)
  --security            instead of the mix: apply and get at the largest client count with a
                        write-limited token vs an unlimited one, and encryption at rest on vs off,
                        interleaved (--security-rounds, default 3)
  --tenants-noisy       instead of the mix: a quiet tenant's append p50/p99 alone, beside a
                        tenant flooding at the largest client count, and beside the same flood
                        limited to --noisy-limit events/s (default 50; the flooder honouring
                        Retry-After, then ignoring it); rounds interleaved
                        (--noisy-rounds, default 3); --noisy-hold-ms <ms> sets the server's
                        [tenants] rate_limit_hold_max_ms (0: no hold; default: the server's)
  --tenants-scale       instead of the mix: get, apply and list pages at the largest client count
                        against --scale-tenants (default 1000) tenants × --scale-aggregates
                        (default 1000) aggregates vs one tenant holding as many (bulk-imported),
                        rounds interleaved (--scale-rounds, default 3); then a live move of a
                        tenant with --move-events (default 100000) events under --move-writers
                        (default 16) appending clients: duration and longest write pause; with
                        --data-dir, directories seeded by an earlier run are reused
  --json                print the JSON result on stdout (tables go to stderr)
  --keep                keep temporary data directories`;

const FLAGS = {
  sizes: { type: 'string' },
  huge: { type: 'boolean', default: false },
  quick: { type: 'boolean', default: false },
  'duration-ms': { type: 'string' },
  'warmup-ms': { type: 'string' },
  clients: { type: 'string', default: '1,32' },
  ops: { type: 'string' },
  durability: { type: 'string', default: 'both' },
  encryption: { type: 'string', default: 'on' },
  'data-dir': { type: 'string' },
  'long-events': { type: 'string' },
  compare: { type: 'string' },
  'pg-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
  'pg-pool': { type: 'string', default: '32' },
  'no-floors': { type: 'boolean', default: false },
  'seed-batch': { type: 'string', default: '1000' },
  'seed-in-flight': { type: 'string', default: '4' },
  schema: { type: 'boolean', default: false },
  'schema-rounds': { type: 'string', default: '3' },
  security: { type: 'boolean', default: false },
  plugins: { type: 'string' },
  stream: { type: 'boolean', default: false },
  subscribers: { type: 'string', default: '1' },
  'security-rounds': { type: 'string', default: '3' },
  'tenants-noisy': { type: 'boolean', default: false },
  'tenants-scale': { type: 'boolean', default: false },
  'scale-tenants': { type: 'string', default: '1000' },
  'scale-aggregates': { type: 'string', default: '1000' },
  'scale-rounds': { type: 'string', default: '3' },
  'move-events': { type: 'string', default: '100000' },
  'move-writers': { type: 'string', default: '16' },
  'noisy-limit': { type: 'string', default: '50' },
  'noisy-rounds': { type: 'string', default: '3' },
  'noisy-hold-ms': { type: 'string' },
  json: { type: 'boolean', default: false },
  keep: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** Flags or, on a mistake, the message and the usage (exit 2) instead of a stack trace. */
function parseFlags() {
  try {
    return parseArgs({ options: FLAGS, strict: true }).values;
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${HELP}\n`);
    process.exit(2);
  }
}

const args = parseFlags();

function intList(raw: string, flag: string): number[] {
  const list = raw.split(',').map((s) => s.trim().replace(/_/g, ''));
  if (list.some((s) => !/^[1-9]\d*$/.test(s))) throw new Error(`${flag} takes positive integers separated by commas, got '${raw}'`);
  return list.map(Number);
}

function int(raw: string | undefined, fallback: number, flag: string): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new Error(`${flag} takes a non-negative integer, got '${raw}'`);
  return Number(raw);
}

const log = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

interface Settings {
  sizes: number[];
  clients: number[];
  durations: { durationMs: number; warmupMs: number };
  passes: Durability[];
  ops: OpName[];
  longEvents: number;
  dataRoot: string;
  reuse: boolean;
}

function settings(): Settings {
  const sizes = args.sizes !== undefined ? intList(args.sizes, '--sizes') : args.quick ? [1000] : [1000, 100_000, 1_000_000];
  if (args.huge && !sizes.includes(10_000_000)) sizes.push(10_000_000);
  if (!['sync', 'async', 'both'].includes(args.durability)) throw new Error(`--durability is sync, async or both, got '${args.durability}'`);
  if (args.compare !== undefined && args.compare !== 'pg') throw new Error(`--compare only knows 'pg', got '${args.compare}'`);
  if (args.encryption !== 'on' && args.encryption !== 'off') throw new Error(`--encryption is on or off, got '${args.encryption}'`);
  let ops: OpName[] = [...ALL_OPS];
  if (args.ops !== undefined) {
    const wanted = args.ops.split(',').map((o) => o.trim());
    const unknown = wanted.filter((o) => !(ALL_OPS as readonly string[]).includes(o));
    if (unknown.length > 0) throw new Error(`--ops: unknown operation(s) ${unknown.join(', ')}; known: ${ALL_OPS.join(', ')}`);
    // Archive without restore would leave aggregates archived and break every later write.
    if (wanted.includes('archive')) wanted.push('restore');
    ops = ALL_OPS.filter((o) => wanted.includes(o));
  }
  const reuse = args['data-dir'] !== undefined;
  const dataRoot = reuse ? resolve(args['data-dir'] as string) : mkdtempSync(join(tmpdir(), 'edbx-bench-'));
  mkdirSync(dataRoot, { recursive: true });
  return {
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    clients: [...new Set(intList(args.clients, '--clients'))].sort((a, b) => a - b),
    durations: {
      durationMs: int(args['duration-ms'], args.quick ? 500 : 2000, '--duration-ms'),
      warmupMs: int(args['warmup-ms'], args.quick ? 100 : 300, '--warmup-ms'),
    },
    passes: args.durability === 'both' ? ['sync', 'async'] : [args.durability as Durability],
    ops,
    longEvents: int(args['long-events'], args.quick ? 10_000 : 100_000, '--long-events'),
    dataRoot,
    reuse,
  };
}

/** `[storage] durability` must be in config.toml before the server starts. */
function setDurability(dataDir: string, durability: Durability): void {
  mkdirSync(dataDir, { recursive: true });
  const { config, exists } = readConfig(dataDir);
  // A/B runs of storage settings: EVENTDBX_BENCH_STORAGE="workers = 2; commits_in_flight_max = 1".
  const extra = (process.env.EVENTDBX_BENCH_STORAGE ?? '').split(';').map((l) => l.trim()).filter(Boolean).join('\n');
  // Encryption at rest is on by default; off is only possible before anything is sealed.
  const encrypted = args.encryption !== 'off';
  if (!exists) {
    writeFileSync(join(dataDir, 'config.toml'), `${encrypted ? '' : 'encryption_at_rest = false\n'}[storage]\ndurability = "${durability}"\n${extra}\n`);
    return;
  }
  if (config.encryption_at_rest !== encrypted) throw new Error(`--encryption ${args.encryption}: ${dataDir} was made with encryption ${config.encryption_at_rest ? 'on' : 'off'}; use a fresh --data-dir`);
  if (config.storage.durability !== durability) writeConfig(dataDir, { ...config, storage: { ...config.storage, durability } });
}

/** Results go into `runs` as they are measured, so an aborted run still reports what it got. */
/** The EventDBX server's process and shard worker count, for the CPU-per-operation table. */
interface CpuTarget {
  pid: number;
  workers: number;
}

async function runMix(api: HttpApi, ds: DatasetResult, s: Settings, system: RunResult['system'], durability: Durability, ops: readonly OpName[], cpu?: CpuTarget): Promise<void> {
  const size = ds.size;
  const mix = createMix(api, size);
  for (const clients of s.clients) {
    const run: RunResult = { system, durability, clients, ops: {} };
    ds.runs.push(run);
    for (const op of ops) {
      const counted = system === 'eventdbx' && (WRITE_OPS as readonly OpName[]).includes(op);
      const before = counted ? await readCommitCounters(api) : undefined;
      let cpuBefore: ThreadSample | undefined;
      const stats = await runOp(mix, op, { concurrency: clients, ...s.durations }, cpu ? () => (cpuBefore = sampleThreads(cpu.pid)) : undefined);
      run.ops[op] = stats;
      const cpuAfter = cpu && cpuBefore ? sampleThreads(cpu.pid) : undefined;
      const perOp = cpu && cpuBefore && cpuAfter ? cpuPerOp(cpu.pid, cpuBefore, cpuAfter, stats.n, cpu.workers) : undefined;
      if (perOp) (run.cpu ??= {})[op] = perOp;
      const commits = before ? commitStatsBetween(before, await readCommitCounters(api)) : undefined;
      if (commits) (run.commits ??= {})[op] = commits;
      const commitNote = commits ? `; group ${commits.group_size.toFixed(1)} requests, ${commits.groups_per_flush.toFixed(2)} groups per flush, ${commits.flushes_per_request.toFixed(3)} flushes per request` : '';
      const cpuNote = perOp ? `; CPU per op ${Math.round(perOp.total_us)} µs (main ${Math.round(perOp.main_user_us + perOp.main_sys_us)}, worker ${Math.round(perOp.workers_user_us + perOp.workers_sys_us)}, client ${Math.round(perOp.client_us)})` : '';
      log(`  ${system} ${durability} ${fmtSize(size)} ${clients}c ${op}: ${Math.round(stats.ops_s)} ops/s, p50 ${Math.round(stats.p50_us)} µs, p99 ${Math.round(stats.p99_us)} µs (n=${stats.n})${commitNote}${cpuNote}`);
    }
  }
}

async function cpuTarget(server: ChildServer, api: HttpApi): Promise<CpuTarget | undefined> {
  if (server.pid === undefined) return undefined;
  const status = (await api.get('/v1/status')) as { workers?: number };
  return { pid: server.pid, workers: status.workers ?? 1 };
}

/** Sequential appends alternating between the long aggregate and a fresh one, so drift hits both. */
async function measureLong(api: HttpApi, s: Settings): Promise<LongAggregateResult> {
  log(`long aggregate: ensuring one aggregate has ${s.longEvents} events`);
  const seeded = await seedLongAggregate(api, s.longEvents, log);
  const fresh = `fresh-${Date.now()}`;
  const recorders = { long: new Recorder(), fresh: new Recorder() };
  const body = (i: number) => ({ event_type: 'long_appended', payload: { i } });
  let i = 0;
  const warmEnd = nowUs() + s.durations.warmupMs * 1000;
  const start = nowUs();
  const end = warmEnd + 2 * s.durations.durationMs * 1000;
  for (;;) {
    for (const [which, id] of [
      ['long', seeded.id],
      ['fresh', fresh],
    ] as const) {
      const t0 = nowUs();
      await api.post(`/v1/aggregates/${LONG_TYPE}/${id}/events`, body(++i), 201);
      if (t0 >= warmEnd) recorders[which].add(nowUs() - t0);
    }
    if (nowUs() >= end) break;
  }
  const elapsedMs = (nowUs() - Math.max(start, warmEnd)) / 1000;
  const long = recorders.long.summary(elapsedMs);
  const freshStats = recorders.fresh.summary(elapsedMs);
  return { events: s.longEvents, seed_seconds: seeded.seconds, long, fresh: freshStats, ratio: Math.round((long.p50_us / freshStats.p50_us) * 100) / 100 };
}

async function benchEventDbx(size: number, s: Settings, ds: DatasetResult, onLong: ((long: LongAggregateResult) => void) | undefined): Promise<void> {
  const dir = join(s.dataRoot, `account-${size}`);
  for (const [pass, durability] of s.passes.entries()) {
    setDurability(dir, durability);
    log(`EventDBX ${fmtSize(size)}: starting server (${durability}) on ${dir}`);
    const server = await startEventDbx(dir);
    const api = new HttpApi(server.url, server.token, Math.max(...s.clients));
    try {
      if (pass === 0) {
        log(`EventDBX ${fmtSize(size)}: seeding`);
        // Seed batches follow the server's placement so none needs a cross-shard two-phase commit.
        const { tenants } = readConfig(dir).config;
        const placement = { shardCount: tenants.shard_count, multiTenant: tenants.multi_tenant };
        ds.seed = await seedDataset(api, size, {
          batchSize: int(args['seed-batch'], 1000, '--seed-batch'),
          inFlight: int(args['seed-in-flight'], 4, '--seed-in-flight'),
          resumable: true,
          shardOf: (id) => shardFor(placement, 'default', AGGREGATE_TYPE, id),
          log,
        });
        log(`EventDBX ${fmtSize(size)}: ${ds.seed.seeded ? `seeded in ${ds.seed.seconds} s` : 'already seeded, reused'}`);
        const restored = await restoreLeftovers(api);
        if (restored > 0) log(`restored ${restored} aggregates an interrupted run left archived`);
        if (onLong) {
          const long = await measureLong(api, s);
          onLong(long);
          log(`long aggregate: p50 ${Math.round(long.long.p50_us)} µs vs fresh ${Math.round(long.fresh.p50_us)} µs (ratio ${long.ratio})`);
        }
      }
      // With both durabilities, reads do not depend on it: the second pass runs the writes only.
      const ops = pass === 0 ? s.ops : s.ops.filter((o) => (WRITE_OPS as readonly string[]).includes(o));
      if (ops.length > 0) await runMix(api, ds, s, 'eventdbx', durability, ops, await cpuTarget(server, api));
    } finally {
      await api.close();
      await server.stop();
    }
  }
}

/** The comparison tables live in a shared database: leave nothing behind once measured. */
async function dropPgTables(): Promise<void> {
  const admin = new pg.Client({ connectionString: args['pg-url'] });
  await admin.connect();
  try {
    await admin.query('DROP TABLE IF EXISTS pg_events, pg_aggregates');
  } finally {
    await admin.end();
  }
}

async function benchPostgres(size: number, s: Settings, ds: DatasetResult): Promise<void> {
  const url = args['pg-url'];
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await resetSchema(admin);
  } finally {
    await admin.end();
  }
  log(`PostgreSQL ${fmtSize(size)}: tables recreated, starting comparison server`);
  const child = await startBenchChild('pg-server', ['--pg', url, '--pool', args['pg-pool']]);
  const api = new HttpApi(child.url, undefined, Math.max(...s.clients));
  try {
    ds.pg_seed = await seedDataset(api, size, { batchSize: int(args['seed-batch'], 1000, '--seed-batch'), inFlight: int(args['seed-in-flight'], 4, '--seed-in-flight'), resumable: false, log });
    log(`PostgreSQL ${fmtSize(size)}: seeded in ${ds.pg_seed.seconds} s`);
    await runMix(api, ds, s, 'postgres', 'sync', s.ops);
  } finally {
    await api.close();
    await child.stop();
  }
}

/**
 * `--schema`: apply throughput with a 20-field schema in force vs none, on one server. Rounds
 * alternate the order (none→schema, schema→none) so drift on a noisy machine hits both sides
 * alike; the answer reports every run and the medians. A schema change reaches every worker before
 * its PUT answers, so each run measures exactly one mode.
 */
async function benchSchemaApply(s: Settings): Promise<void> {
  const dir = join(s.dataRoot, 'schema-apply');
  setDurability(dir, s.passes[0] as Durability);
  const clients = Math.max(...s.clients);
  const rounds = int(args['schema-rounds'], 3, '--schema-rounds');
  const server = await startEventDbx(dir);
  const api = new HttpApi(server.url, server.token, clients);
  const schemaCall = async (method: 'PUT' | 'DELETE', body?: unknown): Promise<void> => {
    const res = await fetch(`${server.url}/v1/schemas/${WIDE_TYPE}`, {
      method,
      headers: { authorization: `Bearer ${server.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok && !(method === 'DELETE' && res.status === 404)) throw new Error(`${method} schema: ${res.status} ${await res.text()}`);
  };
  const runs: { mode: 'none' | 'schema'; stats: OpStats }[] = [];
  try {
    const op = wideApply(api, 10_000);
    // Unrecorded: the first applies create the 10K aggregates and warm the caches and the JIT.
    await runTimed({ concurrency: clients, ...s.durations }, op);
    for (let r = 0; r < rounds; r++) {
      const order: ('none' | 'schema')[] = r % 2 === 0 ? ['none', 'schema'] : ['schema', 'none'];
      for (const mode of order) {
        if (mode === 'schema') await schemaCall('PUT', wideSchema());
        else await schemaCall('DELETE');
        const stats = await runTimed({ concurrency: clients, ...s.durations }, op);
        runs.push({ mode, stats });
        log(`  schema-apply round ${r + 1} ${mode}: ${Math.round(stats.ops_s)} ops/s, p50 ${Math.round(stats.p50_us)} µs, p99 ${Math.round(stats.p99_us)} µs (n=${stats.n})`);
      }
    }
  } finally {
    await api.close();
    await server.stop();
  }
  const median = (mode: 'none' | 'schema'): number => {
    const v = runs.filter((x) => x.mode === mode).map((x) => x.stats.ops_s).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)] ?? 0;
  };
  const none = median('none');
  const schema = median('schema');
  const summary = { clients, durability: s.passes[0], rounds, none_ops_s: Math.round(none), schema_ops_s: Math.round(schema), ratio: Math.round((schema / none) * 1000) / 1000, runs };
  process.stdout.write(`${args.json ? JSON.stringify(summary, null, 2) : `apply ${clients}c, 20-field payloads: no schema ${Math.round(none)} ops/s, 20-field schema ${Math.round(schema)} ops/s (ratio ${summary.ratio}; medians of ${rounds})`}\n`);
}

async function main(): Promise<void> {
  if (args.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const s = settings();
  // The single-purpose modes: one measurement, its JSON on stdout, temporary data dirs removed.
  const single = async (run: () => Promise<Record<string, unknown> | void>): Promise<void> => {
    try {
      const summary = await run();
      if (summary) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    } finally {
      if (!s.reuse && !args.keep && existsSync(s.dataRoot)) rmSync(s.dataRoot, { recursive: true, force: true });
    }
  };
  const clients = Math.max(...s.clients);
  const durability = s.passes[0] as Durability;
  if (args.plugins !== undefined) {
    const durationMs = int(args['duration-ms'], 60_000, '--duration-ms');
    return single(() => benchPlugins(args.plugins as string, { dataRoot: s.dataRoot, clients, durationMs, warmupMs: s.durations.warmupMs, durability, log }));
  }
  if (args['tenants-scale']) {
    return single(() =>
      benchTenantsScale({
        dataRoot: s.dataRoot,
        clients,
        durationMs: s.durations.durationMs,
        warmupMs: s.durations.warmupMs,
        rounds: int(args['scale-rounds'], 3, '--scale-rounds'),
        tenants: int(args['scale-tenants'], 1000, '--scale-tenants'),
        aggregates: int(args['scale-aggregates'], 1000, '--scale-aggregates'),
        moveEvents: int(args['move-events'], 100_000, '--move-events'),
        moveWriters: int(args['move-writers'], 16, '--move-writers'),
        durability,
        log,
      }),
    );
  }
  if (args['tenants-noisy']) {
    const rounds = int(args['noisy-rounds'], 3, '--noisy-rounds');
    const limitPerSec = int(args['noisy-limit'], 50, '--noisy-limit');
    const holdMs = args['noisy-hold-ms'] === undefined ? undefined : int(args['noisy-hold-ms'], 0, '--noisy-hold-ms');
    return single(() => benchTenantsNoisy({ dataRoot: s.dataRoot, clients, durationMs: s.durations.durationMs, warmupMs: s.durations.warmupMs, rounds, limitPerSec, durability, holdMs, log }));
  }
  if (args.stream) {
    const durationMs = int(args['duration-ms'], 10_000, '--duration-ms');
    const subscribers = int(args.subscribers, 1, '--subscribers');
    return single(() => benchStream({ dataRoot: s.dataRoot, clients, durationMs, warmupMs: s.durations.warmupMs, durability, subscribers, log }));
  }
  if (args.security) {
    const rounds = int(args['security-rounds'], 3, '--security-rounds');
    return single(() => benchSecurity({ dataRoot: s.dataRoot, clients, durations: s.durations, rounds, durability, log }));
  }
  if (args.schema) return single(() => benchSchemaApply(s));
  const many = s.clients[s.clients.length - 1] ?? 32;
  const result: BenchResult = {
    started_at: new Date().toISOString(),
    finished_at: '',
    machine: { cpus: availableParallelism(), node: process.version, platform: `${process.platform}-${process.arch}` },
    options: { sizes: s.sizes, clients: s.clients, ops: s.ops, ...s.durations, durability: s.passes, long_events: s.longEvents, compare: args.compare ?? null, data_dir: s.reuse ? s.dataRoot : null },
    datasets: [],
    checks: [],
  };
  let failure: unknown;
  log(`sizes ${s.sizes.map(fmtSize).join(', ')}; clients ${s.clients.join(', ')}; ${s.durations.durationMs} ms per operation; durability ${s.passes.join(' + ')}; data in ${s.dataRoot}`);
  try {
    if (!args['no-floors']) result.floors = await measureFloors({ ...s.durations, concurrency: many, scratchDir: s.dataRoot }, log);
    for (const [index, size] of s.sizes.entries()) {
      const ds: DatasetResult = { size, seed: { seeded: false, aggregates: size, seconds: 0 }, runs: [] };
      result.datasets.push(ds);
      const onLong = index === 0 && s.longEvents > 0 ? (long: LongAggregateResult) => (result.long_aggregate = long) : undefined;
      await benchEventDbx(size, s, ds, onLong);
      if (args.compare === 'pg') await benchPostgres(size, s, ds);
    }
    if (args.compare === 'pg') await dropPgTables();
  } catch (err) {
    // Keep what was measured (written and printed below), then fail loudly.
    failure = err;
    result.error = err instanceof Error ? err.message : String(err);
  } finally {
    if (!s.reuse && !args.keep && existsSync(s.dataRoot)) rmSync(s.dataRoot, { recursive: true, force: true });
  }
  result.finished_at = new Date().toISOString();
  result.checks = evaluate(result, many);
  const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  const path = writeResultJson(resultsDir, result);
  const tables = renderTables(result, s.clients);
  if (args.json) {
    process.stderr.write(`${tables}\n`);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    process.stdout.write(`${tables}\n`);
  }
  log(`results written to ${path}`);
  if (failure !== undefined) throw failure;
}

main().catch((err: unknown) => {
  log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
