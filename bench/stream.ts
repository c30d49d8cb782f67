/**
 * `npm run bench -- --stream`: end-to-end latency of the global stream's live mode. The apply mix
 * runs at the largest client count while live subscribers (`db.subscribe({ from: 'end' })`, the
 * TypeScript client over SSE, in this process) follow the store. Each write carries a marker; per
 * event it records when the request was sent, when its 201 arrived (the commit is between the two:
 * in `sync` the answer follows the durable commit) and when each subscriber received it, all on
 * this process's clock. Reports ack → received (the stream's own delay after the commit became
 * visible to the writer; negative = the event arrived before its answer) and sent → received
 * (the whole trip), p50/p99/max, and what following costs the append throughput.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '../src/client/index.js';
import { startEventDbx } from './children.js';
import { HttpApi } from './client.js';
import { nowUs, runTimed, type OpStats } from './stats.js';
import { AGGREGATE_TYPE, idOf } from './workload.js';

export interface StreamBenchSettings {
  dataRoot: string;
  clients: number;
  durationMs: number;
  warmupMs: number;
  durability: string;
  /** Live subscribers following at once. */
  subscribers: number;
  log: (line: string) => void;
}

const AGGREGATES = 10_000;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

const ms = (us: number): number => Math.round(us / 10) / 100;

export async function benchStream(s: StreamBenchSettings): Promise<Record<string, unknown>> {
  const dir = join(s.dataRoot, 'stream-live');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.toml'), `[storage]\ndurability = "${s.durability}"\n`);
  const server = await startEventDbx(dir);
  const api = new HttpApi(server.url, server.token, s.clients);
  const sentAt: number[] = [];
  const ackedAt: number[] = [];
  let marker = 0;
  let measuring = false;
  const apply = async (): Promise<void> => {
    const m = marker++;
    const id = idOf(1 + Math.floor(Math.random() * AGGREGATES));
    sentAt[m] = nowUs();
    await api.post(`/v1/aggregates/${AGGREGATE_TYPE}/${id}/events`, { event_type: 'bench_streamed', payload: { m, measured: measuring } }, 201);
    ackedAt[m] = nowUs();
  };
  const db = createClient({ url: server.url, token: server.token });
  const stop = new AbortController();
  const received: number[][] = Array.from({ length: s.subscribers }, () => []);
  let measured = 0;
  let followers: Promise<void>[] = [];
  try {
    // Unrecorded: creates the aggregates, warms caches and the JIT; then the same load without subscribers.
    await runTimed({ concurrency: s.clients, durationMs: 3000, warmupMs: 0 }, apply);
    const plain = await runTimed({ concurrency: s.clients, durationMs: Math.min(s.durationMs, 5000), warmupMs: s.warmupMs }, apply);
    const subscriptions = Array.from({ length: s.subscribers }, () => db.subscribe<{ m: number; measured: boolean }>({ from: 'end', signal: stop.signal }));
    followers = subscriptions.map(async (subscription, k) => {
      const at = received[k] as number[];
      for await (const { event } of subscription) {
        if (!event.payload.measured) continue;
        at[event.payload.m] = nowUs();
        if (k === 0) measured++;
      }
    });
    while (subscriptions.some((sub) => sub.position === 'end')) await new Promise((r) => setTimeout(r, 20));
    measuring = true;
    const first = marker;
    const withStream: OpStats = await runTimed({ concurrency: s.clients, durationMs: s.durationMs, warmupMs: 0 }, apply);
    measuring = false;
    const last = marker;
    const deadline = Date.now() + 30_000;
    while (measured < last - first && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const afterAck: number[] = [];
    const afterSend: number[] = [];
    let missing = 0;
    for (const at of received) {
      for (let m = first; m < last; m++) {
        const got = at[m];
        if (got === undefined) {
          missing++;
          continue;
        }
        afterAck.push(got - (ackedAt[m] as number));
        afterSend.push(got - (sentAt[m] as number));
      }
    }
    afterAck.sort((a, b) => a - b);
    afterSend.sort((a, b) => a - b);
    const summary = (v: number[]) => ({ p50: ms(percentile(v, 50)), p99: ms(percentile(v, 99)), max: ms(v[v.length - 1] ?? 0) });
    const result = {
      clients: s.clients,
      subscribers: s.subscribers,
      durability: s.durability,
      duration_ms: s.durationMs,
      events_streamed: last - first,
      deliveries: afterAck.length,
      missing,
      append_ops_s: { without_subscribers: Math.round(plain.ops_s), with_subscribers: Math.round(withStream.ops_s) },
      append_p50_ms: ms(withStream.p50_us),
      ack_to_received_ms: summary(afterAck),
      sent_to_received_ms: summary(afterSend),
    };
    s.log(`  stream: ${result.events_streamed} events × ${s.subscribers} subscriber(s), ack→received p50 ${result.ack_to_received_ms.p50} ms p99 ${result.ack_to_received_ms.p99} ms; sent→received p50 ${result.sent_to_received_ms.p50} ms p99 ${result.sent_to_received_ms.p99} ms`);
    return result;
  } finally {
    stop.abort();
    await Promise.allSettled(followers);
    await db.close();
    await api.close();
    await server.stop();
  }
}
