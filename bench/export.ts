/**
 * Export throughput and memory (issue 13): N aggregates (one event each, ~`--state-bytes` of
 * state) imported into the real server (`dbx start --foreground`, a child), then exported:
 *   1. `GET /v1/export` read by this process and discarded (the server's rate alone),
 *   2. `dbx aggregate export` through the running server (the CLI writes the file durably),
 *   3. `dbx aggregate export` in direct mode (server stopped: the engine runs in the CLI).
 * Reports aggregates/s, MB/s, and peak memory: for (1) the server's VmHWM (reset before it
 * through /proc/<pid>/clear_refs) and its sampled peak heap during the export; for the CLI runs
 * the kernel's max RSS and the sampled peak heap of the process (test/helpers/memory-sampler.ts).
 * RSS counts the LMDB pages the scan maps in (file-backed, shared, dropped under pressure).
 *
 *   npm run build && node dist/bench/export.js [--aggregates 50000] [--state-bytes 600] [--format csv,json] [--heap-mb N]
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SNOWFLAKE_EPOCH_MS } from '../src/core/snowflake.js';
import { runDbx, spawnServer, type SpawnedServer } from '../test/helpers/server.js';
import { HttpApi } from './client.js';

const { values: args } = parseArgs({
  options: {
    aggregates: { type: 'string', default: '50000' },
    'state-bytes': { type: 'string', default: '600' },
    format: { type: 'string', default: 'csv,json' },
    keep: { type: 'boolean', default: false },
    'heap-mb': { type: 'string' },
  },
});
const aggregates = Number(args.aggregates);
const stateBytes = Number(args['state-bytes']);
const formats = (args.format as string).split(',') as ('csv' | 'json')[];
const SAMPLER = new URL('../test/helpers/memory-sampler.js', import.meta.url).href;
/** `--heap-mb N`: every process measured runs under --max-old-space-size=N (it fails if the export needs more). */
const NODE_OPTIONS = `${args['heap-mb'] ? `--max-old-space-size=${Number(args['heap-mb'])} ` : ''}--import=${SAMPLER}`;

function lines(from: number, to: number): string {
  const out: string[] = [];
  const filler = 'x'.repeat(Math.max(0, stateBytes - 200));
  const baseMs = Date.UTC(2025, 0, 1);
  for (let i = from; i < to; i++) {
    const ms = baseMs + Math.floor(i / 4096);
    out.push(
      JSON.stringify({
        aggregate_type: 'item',
        aggregate_id: `item-${String(i).padStart(7, '0')}`,
        event_type: 'item_created',
        version: 1,
        payload: { name: `item ${i}`, city: i % 3 === 0 ? 'Paris, "FR"' : 'Rome', n: i, ok: i % 2 === 0, tags: ['a', 'b'], note: filler },
        extensions: {},
        metadata: {
          event_id: ((BigInt(ms - SNOWFLAKE_EPOCH_MS) << 22n) | (1000n << 12n) | BigInt(i % 4096)).toString(),
          created_at: new Date(ms).toISOString(),
          issued_by: { group: 'bench', user: 'export' },
        },
      }),
    );
  }
  return `${out.join('\n')}\n`;
}

/** User + system CPU seconds the process has used (/proc/<pid>/stat, clock ticks of 100 Hz). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function procStatus(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

interface Row {
  run: string;
  format: string;
  seconds: number;
  /** Server CPU seconds (user + system) spent on the export, when measured. */
  cpu?: number;
  bytes: number;
  peak_rss_mb: string;
  peak_heap_mb: string;
}

async function serverExport(server: SpawnedServer, pid: number, format: string, sample: string): Promise<Row> {
  writeFileSync(`/proc/${pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
  const before = await samplePeaks(pid, sample); // and the sampler's peaks
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const res = await fetch(`${server.url}/v1/export?type=item&format=${format}`, { headers: { authorization: `Bearer ${server.token}` } });
  if (res.status !== 200 || !res.body) throw new Error(`export answered ${res.status}`);
  let bytes = 0;
  for await (const chunk of res.body) bytes += (chunk as Uint8Array).length;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  const peaks = await samplePeaks(pid, sample);
  return { run: 'GET /v1/export (server)', format, seconds, cpu, bytes, peak_rss_mb: mb(procStatus(pid, 'VmHWM')), peak_heap_mb: `${mb(peaks.heap_used_max)} (${mb(before.heap_used_now)} before)` };
}

/** SIGUSR2 to the server's memory sampler: its peaks since the last signal (then reset). */
async function samplePeaks(pid: number, sample: string): Promise<{ heap_used_max: number; heap_used_now: number }> {
  rmSync(sample, { force: true });
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 200 && !existsSync(sample); i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 20));
  return JSON.parse(readFileSync(sample, 'utf8')) as { heap_used_max: number; heap_used_now: number };
}

async function cliExport(dataDir: string, out: string, format: string, run: string): Promise<Row> {
  const sample = join(out, `memory-${format}-${run.length}.json`);
  const file = join(out, `item-${run.length}.${format}`);
  const t0 = performance.now();
  const res = await runDbx(['aggregate', 'export', 'item', '--output', file, '--format', format, '--data-dir', dataDir], {
    env: { NODE_OPTIONS, EDBX_MEMORY_SAMPLE_FILE: sample },
    timeoutMs: 600_000,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (res.code !== 0) throw new Error(`dbx export failed: ${res.stderr}`);
  const memory = JSON.parse(readFileSync(sample, 'utf8')) as { heap_used_max: number; max_rss_kb: number };
  const bytes = statSync(file).size;
  rmSync(file);
  return { run, format, seconds, bytes, peak_rss_mb: mb(memory.max_rss_kb * 1024), peak_heap_mb: mb(memory.heap_used_max) };
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'edbx-export-bench-'));
  const out = mkdtempSync(join(tmpdir(), 'edbx-export-out-'));
  writeFileSync(join(dataDir, 'config.toml'), '[http]\nrequest_timeout_ms = 600000\n');
  const rows: Row[] = [];
  const serverSample = join(out, 'server-memory.json');
  let server: SpawnedServer | undefined = await spawnServer({ dataDir, env: { NODE_OPTIONS, EDBX_MEMORY_SAMPLE_FILE: serverSample } });
  try {
    const status = (await server.request('GET', '/v1/status')).body as { pid: number };
    const api = new HttpApi(server.url, server.token, 1);
    const t0 = performance.now();
    for (let from = 0; from < aggregates; from += 10_000) {
      const body = lines(from, Math.min(aggregates, from + 10_000));
      const res = await api.postStream('/v1/import', 'application/x-ndjson', (async function* () {
        yield body;
      })());
      if (res.status !== 200) throw new Error(`import answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
    }
    await api.close();
    if (args['heap-mb']) console.log(`every process measured runs under --max-old-space-size=${args['heap-mb']}`);
    console.log(`seeded ${aggregates} aggregates (~${stateBytes} B of state each) in ${((performance.now() - t0) / 1000).toFixed(1)} s; server RSS ${mb(procStatus(status.pid, 'VmRSS'))} MB`);
    for (const format of formats) rows.push(await serverExport(server, status.pid, format, serverSample));
    for (const format of formats) rows.push(await cliExport(dataDir, out, format, 'dbx export via server'));
    if (server.child.exitCode === null) server.kill('SIGTERM');
    await server.exited;
    server = undefined;
    for (const format of formats) rows.push(await cliExport(dataDir, out, format, 'dbx export direct (in-process engine)'));
  } finally {
    if (server && server.child.exitCode === null) {
      server.kill('SIGTERM');
      await server.exited;
    }
    if (!args.keep) {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    }
  }
  console.log(`\nload average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (2 vCPU)`);
  console.log('run | format | aggregates/s | MB/s | MB | seconds | server CPU s (aggregates per CPU-s) | peak RSS MB | peak heap MB');
  for (const r of rows) {
    const cpu = r.cpu !== undefined ? `${r.cpu.toFixed(2)} (${Math.round(aggregates / r.cpu)})` : '-';
    console.log(`${r.run} | ${r.format} | ${Math.round(aggregates / r.seconds)} | ${mb(r.bytes / r.seconds)} | ${mb(r.bytes)} | ${r.seconds.toFixed(2)} | ${cpu} | ${r.peak_rss_mb} | ${r.peak_heap_mb}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
