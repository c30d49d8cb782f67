/**
 * Query benchmark (issue 13): seeds ~1M events through bulk import (POST /v1/import) into the real
 * server (`dbx start --foreground` in a child process), then times, over HTTP:
 *   - first pages the indexes serve (target ≤ 50 ms): a rare event_type, a one-minute created_at
 *     window, the newest events (sort=created_at:desc), an event_id lookup, one aggregate type;
 *   - the full-scan rate (events/s) of a filter no index serves, paged to the end with its cursors.
 * Each query reports the median and the worst of --repeat runs and the server's own records_read
 * (explain=true), so "served by an index" is visible, not inferred.
 *
 *   npm run bench:query -- [--events 1000000] [--per-aggregate 10] [--repeat 7] [--data-dir D]
 *
 * `--data-dir D` keeps (and on the next run reuses) the seeded store.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SNOWFLAKE_EPOCH_MS } from '../src/core/snowflake.js';
import { startEventDbx } from './children.js';
import { HttpApi } from './client.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    'per-aggregate': { type: 'string', default: '10' },
    repeat: { type: 'string', default: '7' },
    'data-dir': { type: 'string' },
  },
});
const EVENTS = Number(args.events);
const PER_AGGREGATE = Math.max(1, Number(args['per-aggregate']));
const REPEAT = Math.max(1, Number(args.repeat));
const EVENT_TYPES = 20;
/** One event in RARE_EVERY is `q_rare`; one aggregate in 100 is of type `q_small`. */
const RARE_EVERY = 10_000;
const EVENTS_PER_MS = 50;
const BASE_MS = Date.UTC(2025, 0, 1);
const REQUEST_EVENTS = 100_000;

function eventTypeOf(i: number): string {
  return i % RARE_EVERY === RARE_EVERY - 1 ? 'q_rare' : `q_t${String(i % EVENT_TYPES).padStart(2, '0')}`;
}

/** Event i as an import line: native-looking ids (created_at = the time in the id). */
function line(i: number): string {
  const aggregate = Math.floor(i / PER_AGGREGATE);
  const ms = BASE_MS + Math.floor(i / EVENTS_PER_MS);
  const id = (BigInt(ms - SNOWFLAKE_EPOCH_MS) << 22n) | (1000n << 12n) | BigInt(i % EVENTS_PER_MS);
  return JSON.stringify({
    aggregate_type: aggregate % 100 === 0 ? 'q_small' : 'q_order',
    aggregate_id: `a${aggregate}`,
    event_type: eventTypeOf(i),
    version: (i % PER_AGGREGATE) + 1,
    payload: { n: i, status: i % 3 === 0 ? 'open' : 'closed', amount: i % 997 },
    extensions: {},
    metadata: { event_id: id.toString(), created_at: new Date(ms).toISOString(), issued_by: { group: 'bench', user: 'query' } },
  });
}

async function* body(from: number, to: number): AsyncGenerator<string> {
  let lines: string[] = [];
  for (let i = from; i < to; i++) {
    lines.push(line(i));
    if (lines.length === 1000) {
      yield `${lines.join('\n')}\n`;
      lines = [];
    }
  }
  if (lines.length) yield `${lines.join('\n')}\n`;
}

async function seed(api: HttpApi): Promise<void> {
  const probe = await api.probe('/v1/aggregates/q_order?take=1');
  if (probe.status === 200 && probe.body.items.length > 0) {
    console.log('seed: reusing the store in --data-dir');
    return;
  }
  const t0 = performance.now();
  for (let from = 0; from < EVENTS; from += REQUEST_EVENTS) {
    const res = await api.postStream('/v1/import', 'application/x-ndjson', body(from, Math.min(EVENTS, from + REQUEST_EVENTS)));
    if (res.status !== 200) throw new Error(`import answered ${res.status}: ${JSON.stringify(res.body).slice(0, 400)}`);
  }
  const s = (performance.now() - t0) / 1000;
  console.log(`seed: ${EVENTS} events (${EVENTS / PER_AGGREGATE} aggregates) imported in ${s.toFixed(1)} s = ${Math.round(EVENTS / s)} events/s`);
}

interface Timing {
  name: string;
  path: string;
  median_ms: number;
  max_ms: number;
  items: number;
  records_read: number;
  plan: string;
}

async function time(api: HttpApi, name: string, path: string): Promise<Timing> {
  const ms: number[] = [];
  let last: any;
  for (let r = 0; r < REPEAT; r++) {
    const t0 = performance.now();
    last = await api.get(`${path}&explain=true`);
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { name, path, median_ms: ms[Math.floor(ms.length / 2)] as number, max_ms: ms[ms.length - 1] as number, items: last.items.length, records_read: last.explain.records_read, plan: last.explain.plan };
}

/** Pages an unindexed filter to the end: events read per second of wall time. */
async function fullScan(api: HttpApi): Promise<{ events: number; seconds: number; rate: number; requests: number }> {
  const filter = encodeURIComponent('payload.status = "never"');
  let cursor: string | null = null;
  let requests = 0;
  let records = 0;
  const t0 = performance.now();
  do {
    const page: any = await api.get(`/v1/events?take=1000&explain=true&filter=${filter}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    records += page.explain.records_read;
    cursor = page.next_cursor;
    requests += 1;
  } while (cursor !== null);
  const seconds = (performance.now() - t0) / 1000;
  return { events: records, seconds, rate: Math.round(records / seconds), requests };
}

async function main(): Promise<void> {
  const keep = args['data-dir'] !== undefined;
  const dataDir = keep ? (args['data-dir'] as string) : mkdtempSync(join(tmpdir(), 'edbx-bench-query-'));
  if (!existsSync(join(dataDir, 'config.toml'))) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'config.toml'), '[query]\nmax_scan = 100000000\n\n[http]\nrequest_timeout_ms = 600000\n');
  }
  const load = loadavg();
  console.log(`query bench: ${EVENTS} events, load average ${load.map((l) => l.toFixed(1)).join(' ')} (${dataDir})`);
  const server = await startEventDbx(dataDir);
  const api = new HttpApi(server.url, server.token, 2);
  try {
    await seed(api);
    const window = new Date(BASE_MS + Math.floor(EVENTS / EVENTS_PER_MS / 2)).toISOString();
    const windowEnd = new Date(Date.parse(window) + 60_000).toISOString();
    const mid = (BigInt(Math.floor(EVENTS / EVENTS_PER_MS / 2) + BASE_MS - SNOWFLAKE_EPOCH_MS) << 22n) | (1000n << 12n);
    const q = encodeURIComponent;
    const timings = [
      await time(api, 'event_type (rare), first page', `/v1/events?take=100&filter=${q('event_type = "q_rare"')}`),
      await time(api, 'event_type (common), first page', `/v1/events?take=100&filter=${q('event_type = "q_t07"')}`),
      await time(api, 'created_at one-minute window', `/v1/events?take=100&filter=${q(`created_at >= "${window}" AND created_at < "${windowEnd}"`)}`),
      await time(api, 'newest (sort=created_at:desc)', '/v1/events?take=100&sort=created_at:desc'),
      await time(api, 'event_id lookup', `/v1/events?take=100&filter=${q(`event_id = "${mid}"`)}`),
      await time(api, 'event_type + payload (residual)', `/v1/events?take=100&filter=${q('event_type = "q_t03" AND payload.status = "open"')}`),
      await time(api, 'aggregate_type on aggregates', `/v1/aggregates?take=100&filter=${q('aggregate_type = "q_small"')}`),
      await time(api, 'unindexed first page (payload)', `/v1/events?take=100&filter=${q('payload.amount = 5')}`),
    ];
    console.log('\nquery                                  median ms   max ms   items  records_read  plan');
    for (const t of timings) {
      console.log(`${t.name.padEnd(38)} ${t.median_ms.toFixed(1).padStart(9)} ${t.max_ms.toFixed(1).padStart(8)} ${String(t.items).padStart(7)} ${String(t.records_read).padStart(13)}  ${t.plan}`);
    }
    const scan = await fullScan(api);
    console.log(`\nfull scan (payload.status = "never"): ${scan.events} events in ${scan.seconds.toFixed(1)} s = ${scan.rate} events/s over ${scan.requests} requests`);
    const after = loadavg();
    console.log(`load average after: ${after.map((l) => l.toFixed(1)).join(' ')}`);
    writeFileSync(join(tmpdir(), 'edbx-bench-query.json'), JSON.stringify({ events: EVENTS, load_before: load, load_after: after, timings, scan }, null, 2));
  } finally {
    await api.close();
    await server.stop();
    if (!keep) rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
