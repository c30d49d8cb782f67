/**
 * What a group commit costs in LMDB alone, for the storage layout in use and two alternatives, so a
 * layout change can be judged before it is built. `npm run bench:layout -- [--aggregates 100000]
 * [--group 14] [--commits 300]`.
 *
 * Three environments with the same options as the shard store (overlappingSync, noMemInit off),
 * each seeded with one event per aggregate, then `--commits` durable transactions (the flags of a
 * `sync` group commit) of `--group` appends to random aggregates, interleaved across layouts:
 *   - `current`: what an append writes today: events, heads, event_ids, outbox, stream, event_index;
 *   - `heads-beside-events`: the head stored in the events database right after the aggregate's
 *     last event (key version `'h'`), so an append dirties one random leaf path instead of two;
 *   - `no-outbox`: the current layout without the outbox database.
 * Values are random bytes of the sizes a sealed event (685 B) and head (~420 B) have. Measured
 * 2026-12-07 (100K aggregates, 14 appends): p50 2,812 / 2,298 / 2,717 µs; 1 append: 880 / 848 / 790.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { open, type Database, type RootDatabase } from 'lmdb';
import { DURABLE_TXN_FLAGS } from '../src/shard-worker/store.js';

const { values: args } = parseArgs({
  options: {
    aggregates: { type: 'string', default: '100000' },
    group: { type: 'string', default: '14' },
    commits: { type: 'string', default: '300' },
  },
});
const aggregates = Number(args.aggregates);
const group = Number(args.group);
const commits = Number(args.commits);

const LAYOUTS = ['current', 'heads-beside-events', 'no-outbox'] as const;
type Layout = (typeof LAYOUTS)[number];

interface Store {
  env: RootDatabase;
  append(aggregate: number): void;
}

function openStore(path: string, layout: Layout): Store {
  const env = open({ path, maxDbs: 16, mapSize: 8 * 1024 ** 3, overlappingSync: true, noMemInit: false });
  const db = (name: string, encoding?: 'string' | 'binary'): Database => env.openDB({ name, ...(encoding ? { encoding } : {}) });
  const events = db('events', 'binary');
  const heads = db('heads', 'binary');
  const eventIds = db('event_ids');
  const outbox = db('outbox');
  const stream = db('stream');
  const eventIndex = db('event_index');
  const versions = new Uint32Array(aggregates);
  let seq = 0;
  return {
    env,
    append(aggregate) {
      const version = ++versions[aggregate]!;
      seq++;
      const id = `a${String(aggregate).padStart(15, '0')}`;
      const key = [0, 'default', 'account', id, version];
      events.put(key, randomBytes(685));
      if (layout === 'heads-beside-events') events.put([0, 'default', 'account', id, 'h'], randomBytes(420));
      else heads.put([0, 'default', 'account', id], randomBytes(420));
      eventIds.put([0, String(1e17 + seq)], key);
      if (layout !== 'no-outbox') outbox.put([0, seq], key);
      stream.put([0, 'default', seq], ['account', id, version, String(seq)]);
      eventIndex.put([0, 'default', 'ticked', 1e12 + seq, seq, 0], key);
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

const root = mkdtempSync(join(tmpdir(), 'edbx-commit-layout-'));
try {
  const stores = new Map<Layout, Store>();
  for (const layout of LAYOUTS) {
    const store = openStore(join(root, layout), layout);
    for (let from = 0; from < aggregates; from += 5000) {
      store.env.transactionSync(() => {
        for (let a = from; a < Math.min(aggregates, from + 5000); a++) store.append(a);
      });
    }
    await store.env.flushed;
    stores.set(layout, store);
  }
  const times = new Map<Layout, number[]>(LAYOUTS.map((l) => [l, []]));
  for (let c = 0; c < commits; c++) {
    const picks = Array.from({ length: group }, () => Math.floor(Math.random() * aggregates));
    for (const layout of LAYOUTS) {
      const store = stores.get(layout)!;
      const started = process.hrtime.bigint();
      store.env.transactionSync(() => picks.forEach((a) => store.append(a)), DURABLE_TXN_FLAGS);
      times.get(layout)!.push(Number(process.hrtime.bigint() - started) / 1000);
    }
  }
  console.log(`commit-layout: ${aggregates} aggregates, ${commits} durable commits of ${group} appends each, interleaved`);
  for (const layout of LAYOUTS) {
    const sorted = times.get(layout)!.sort((a, b) => a - b);
    console.log(`  ${layout.padEnd(20)} p50 ${percentile(sorted, 0.5).toFixed(0)} µs, p90 ${percentile(sorted, 0.9).toFixed(0)} µs`);
  }
  for (const store of stores.values()) await store.env.close();
} finally {
  rmSync(root, { recursive: true, force: true });
}
