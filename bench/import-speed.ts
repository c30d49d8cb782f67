/**
 * Bulk import throughput: POST /v1/import of small events into the real server (`dbx start
 * --foreground` in a child process, sync durability), over HTTP, the body pre-generated so the
 * client's own JSON work stays out of the timing. Prints events/s per round and the median.
 *
 *   node dist/bench/import-speed.js [--events 200000] [--per-aggregate 1] [--rounds 3]
 *     [--hashes] [--request-events 100000] [--chunk-events 1000] [--chunks-in-flight 3] [--workers 1]
 *     [--encryption false] [--keep-data-dir <dir>]
 *
 * `--hashes` sends each record with its hash and merkle_root (computed here), so the server
 * compares them too (the verify path); without it the server only computes them.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SNOWFLAKE_EPOCH_MS } from '../src/core/snowflake.js';
import { appendLeaf, frontierRoot, leafHash } from '../src/core/merkle.js';
import { canonicalize } from '../src/core/canonical-json.js';
import { startEventDbx } from './children.js';
import { HttpApi } from './client.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    'per-aggregate': { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    hashes: { type: 'boolean', default: false },
    'request-events': { type: 'string', default: '100000' },
    'chunk-events': { type: 'string', default: '1000' },
    'chunks-in-flight': { type: 'string', default: '3' },
    workers: { type: 'string', default: '1' },
    /** `false`: the server runs with encryption_at_rest = false (nothing sealed). */
    encryption: { type: 'string', default: 'true' },
    /** Imports into this (new) data dir and leaves it there, for a look at what was stored. */
    'keep-data-dir': { type: 'string' },
  },
});
const events = Number(args.events);
const perAggregate = Math.max(1, Number(args['per-aggregate']));
const rounds = Math.max(1, Number(args.rounds));
const requestEvents = Math.max(1, Number(args['request-events']));

/** Request bodies of one round, each as text chunks of 1000 lines (pre-generated, outside the timing). */
function generate(round: number): string[][] {
  const requests: string[][] = [];
  let lines: string[] = [];
  let chunks: string[] = [];
  let frontier: string[] = [];
  const baseMs = Date.UTC(2025, 0, 1) + round * 1_000_000;
  for (let i = 0; i < events; i++) {
    const version = (i % perAggregate) + 1;
    if (version === 1) frontier = [];
    const ms = baseMs + Math.floor(i / 4096);
    const record: Record<string, unknown> = {
      aggregate_type: 'speed',
      aggregate_id: `r${round}-${Math.floor(i / perAggregate)}`,
      event_type: version === 1 ? 'speed_created' : 'speed_changed',
      version,
      payload: { n: i, name: `item ${i}`, ok: true },
      extensions: {},
      metadata: {
        event_id: ((BigInt(ms - SNOWFLAKE_EPOCH_MS) << 22n) | (1022n << 12n) | BigInt(i % 4096)).toString(),
        created_at: new Date(ms).toISOString(),
        issued_by: { group: 'bench', user: 'speed' },
      },
    };
    if (args.hashes) {
      const hash = leafHash(canonicalize(record));
      frontier = appendLeaf(frontier, version - 1, hash);
      record.hash = hash;
      record.merkle_root = frontierRoot(frontier);
    }
    lines.push(JSON.stringify(record));
    if (lines.length === 1000) {
      chunks.push(lines.join('\n') + '\n');
      lines = [];
    }
    // Versions may continue across requests: each request sees the previous one committed.
    if ((i + 1) % requestEvents === 0) {
      if (lines.length) chunks.push(lines.join('\n') + '\n');
      requests.push(chunks);
      lines = [];
      chunks = [];
    }
  }
  if (lines.length) chunks.push(lines.join('\n') + '\n');
  if (chunks.length) requests.push(chunks);
  return requests;
}

async function* stream(chunks: string[]): AsyncGenerator<string> {
  for (const chunk of chunks) yield chunk;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function main(): Promise<void> {
  const kept = args['keep-data-dir'];
  if (kept !== undefined) mkdirSync(kept, { recursive: true });
  const dataDir = kept ?? mkdtempSync(join(tmpdir(), 'edbx-import-speed-'));
  writeFileSync(
    join(dataDir, 'config.toml'),
    `encryption_at_rest = ${args.encryption !== 'false'}\n\n[storage]\nworkers = ${Number(args.workers)}\n\n[import]\nchunk_events = ${Number(args['chunk-events'])}\nchunks_in_flight = ${Number(args['chunks-in-flight'])}\n\n[http]\nrequest_timeout_ms = 600000\n`,
  );
  const server = await startEventDbx(dataDir);
  const api = new HttpApi(server.url, server.token, 2);
  const rates: number[] = [];
  try {
    console.log(`import-speed: ${events} events (${perAggregate} per aggregate), ${args.hashes ? 'with' : 'without'} hashes, requests of ${requestEvents}, chunk_events ${args['chunk-events']}`);
    for (let round = 0; round < rounds; round++) {
      const bodies = generate(round);
      const bytes = bodies.reduce((n, b) => n + b.reduce((m, c) => m + Buffer.byteLength(c), 0), 0);
      const t0 = process.hrtime.bigint();
      let imported = 0;
      for (const body of bodies) {
        const res = await api.postStream('/v1/import', 'application/x-ndjson', stream(body));
        if (res.status !== 200) throw new Error(`import answered ${res.status}: ${JSON.stringify(res.body).slice(0, 400)}`);
        imported += res.body.imported as number;
      }
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (imported !== events) throw new Error(`imported ${imported} of ${events}`);
      const rate = Math.round(events / seconds);
      rates.push(rate);
      console.log(`  round ${round + 1}: ${events} events in ${seconds.toFixed(2)} s = ${rate} events/s (${(bytes / seconds / 1e6).toFixed(1)} MB/s)`);
    }
    console.log(`median: ${median(rates)} events/s`);
  } finally {
    await api.close();
    await server.stop();
    if (kept === undefined) rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
