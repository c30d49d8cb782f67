/**
 * Floors measured in the same run, on the same machine and with the same client, so the distance
 * between EventDBX and the limit shows:
 *   (a) a bare fastify route echoing a POST body (child process);
 *   (b) the same route with a worker_thread round trip;
 *   (c) one small LMDB transaction awaited until flushed, with the options the shard store uses;
 *   (d) one raw write + fdatasync of a small file (what (c) cannot go below);
 *   (e) an LMDB transaction of an append's shape, flushed: one put into each of the seven databases
 *       an append writes (events, heads, event_ids, event_index, outbox, stream, aggregate index),
 *       at random keys of 20K-key databases. LMDB copies every page on the path to each changed
 *       leaf, so a commit's flush grows with the databases it touches, not with the bytes: on
 *       2026-12-05 (c) was 100–170 µs and (e) ~1,100 µs on this disk.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import { startBenchChild } from './children.js';
import { HttpApi } from './client.js';
import { Recorder, nowUs, runTimed, type OpStats } from './stats.js';

export interface HttpFloor {
  c1: OpStats;
  many: OpStats;
}

export interface Floors {
  fastify_echo: HttpFloor;
  fastify_worker_echo: HttpFloor;
  lmdb_txn_flushed: OpStats;
  /** (e): a flushed transaction shaped like one append (absent in results from before it). */
  lmdb_append_shape?: OpStats;
  fdatasync: OpStats;
}

export interface FloorOptions {
  durationMs: number;
  warmupMs: number;
  /** Many-client concurrency (32 by default). */
  concurrency: number;
  /** Directory on the disk the data lives on: the flush floors depend on it. */
  scratchDir: string;
}

export async function measureFloors(options: FloorOptions, log: (line: string) => void): Promise<Floors> {
  log('floors: fastify echo and worker round trip (child process)');
  const child = await startBenchChild('floor-server');
  let echo: HttpFloor;
  let workerEcho: HttpFloor;
  try {
    // A fresh process runs cold (JIT, lazy route setup) where the server under test was warmed by
    // seeding: warm both routes first so the floor is not flattered or penalised by start-up.
    for (const path of ['/echo', '/echo-worker']) await httpFloor(child.url, path, { ...options, durationMs: 500, warmupMs: 0 });
    echo = await httpFloor(child.url, '/echo', options);
    workerEcho = await httpFloor(child.url, '/echo-worker', options);
  } finally {
    await child.stop();
  }
  log('floors: LMDB transaction + flushed, raw fdatasync');
  const lmdb = await lmdbFloor(options);
  const appendShape = await lmdbAppendShapeFloor(options);
  const fsync = fdatasyncFloor(options);
  return { fastify_echo: echo, fastify_worker_echo: workerEcho, lmdb_txn_flushed: lmdb, lmdb_append_shape: appendShape, fdatasync: fsync };
}

/** The body is shaped like an apply body, so parsing and serialising cost the same. */
async function httpFloor(url: string, path: string, options: FloorOptions): Promise<HttpFloor> {
  const result: Partial<HttpFloor> = {};
  for (const [key, concurrency] of [
    ['c1', 1],
    ['many', options.concurrency],
  ] as const) {
    const api = new HttpApi(url, undefined, concurrency);
    let marker = 0;
    try {
      result[key] = await runTimed({ concurrency, durationMs: options.durationMs, warmupMs: options.warmupMs }, async () => {
        await api.post(path, { event_type: 'bench_applied', payload: { marker: ++marker, at: Date.now() } }, 201);
      });
    } finally {
      await api.close();
    }
  }
  return result as HttpFloor;
}

async function lmdbFloor(options: FloorOptions): Promise<OpStats> {
  const dir = mkdtempSync(join(options.scratchDir, 'edbx-floor-lmdb-'));
  // The same environment options as src/shard-worker/store.ts, so this is our own floor.
  const env = open({ path: dir, maxDbs: 16, mapSize: 256 * 1024 * 1024, overlappingSync: true, noMemInit: true });
  const db = env.openDB<string, number>({ name: 'floor', encoding: 'string' });
  let key = 0;
  try {
    return await runTimed({ concurrency: 1, durationMs: options.durationMs, warmupMs: options.warmupMs }, async () => {
      // ABORTABLE | SYNCHRONOUS_COMMIT | NO_SYNC_FLUSH, as the shard worker commits its groups.
      env.transactionSync(() => db.put(++key, '{"marker":1,"at":1700000000000}'), 0x1 | 0x2 | 0x10000);
      await env.flushed;
    });
  } finally {
    await env.flushed;
    // No close(): lmdb 3.5.6 can hang in close() after transactionSync (STYLE.md); exit releases it.
    rmSync(dir, { recursive: true, force: true });
  }
}

const APPEND_DATABASES = 7;
const APPEND_KEYS = 20_000;

async function lmdbAppendShapeFloor(options: FloorOptions): Promise<OpStats> {
  const dir = mkdtempSync(join(options.scratchDir, 'edbx-floor-append-'));
  const env = open({ path: dir, maxDbs: 16, mapSize: 1024 * 1024 * 1024, overlappingSync: true, noMemInit: true });
  const dbs = Array.from({ length: APPEND_DATABASES }, (_, i) => env.openDB<string, string>({ name: `floor-${i}`, encoding: 'string' }));
  const value = 'v'.repeat(300);
  // Random keys spread over the key space: B-trees of depth 3, as a store of that size has.
  const randomKey = (): string => `k${Math.floor(Math.random() * APPEND_KEYS * 4)}`;
  env.transactionSync(() => {
    for (const db of dbs) for (let k = 0; k < APPEND_KEYS; k++) db.put(randomKey(), value);
  }, 0x1 | 0x2 | 0x10000);
  try {
    return await runTimed({ concurrency: 1, durationMs: options.durationMs, warmupMs: options.warmupMs }, async () => {
      env.transactionSync(() => {
        for (const db of dbs) db.put(randomKey(), value);
      }, 0x1 | 0x2 | 0x10000);
      await env.flushed;
    });
  } finally {
    await env.flushed;
    // No close(), as in lmdbFloor.
    rmSync(dir, { recursive: true, force: true });
  }
}

function fdatasyncFloor(options: FloorOptions): OpStats {
  const dir = mkdtempSync(join(options.scratchDir, 'edbx-floor-fsync-'));
  const fd = openSync(join(dir, 'f'), 'w');
  const recorder = new Recorder();
  const block = Buffer.alloc(128, 1);
  try {
    const warmEnd = nowUs() + options.warmupMs * 1000;
    while (nowUs() < warmEnd) {
      writeSync(fd, block, 0, block.length, 0);
      fdatasyncSync(fd);
    }
    const start = nowUs();
    const end = start + options.durationMs * 1000;
    let t1 = start;
    while (t1 < end) {
      const t0 = nowUs();
      writeSync(fd, block, 0, block.length, 0);
      fdatasyncSync(fd);
      t1 = nowUs();
      recorder.add(t1 - t0);
    }
    return recorder.summary((t1 - start) / 1000);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}
