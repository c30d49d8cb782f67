/**
 * `npm run bench -- --plugins http`: the apply mix at the largest client count without a plugin,
 * then with one http plugin delivering to a receiver in this process, then without again (the
 * baseline is the mean of the two plain runs, so drift over the run hits both sides). Reports the
 * delivery rate, the end-to-end lag (commit → delivered, from the event's created_at to its arrival)
 * p50/p99 and what the plugin costs the append throughput. Targets (issue 11): lag bounded with p99
 * under 1 s, and the plugin costing at most 15% of append throughput.
 */
import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startEventDbx } from './children.js';
import { HttpApi } from './client.js';
import { runTimed, type OpStats } from './stats.js';
import { AGGREGATE_TYPE, idOf } from './workload.js';

export interface PluginBenchSettings {
  dataRoot: string;
  clients: number;
  durationMs: number;
  warmupMs: number;
  durability: string;
  log: (line: string) => void;
}

const AGGREGATES = 10_000;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export async function benchPlugins(kind: string, s: PluginBenchSettings): Promise<Record<string, unknown>> {
  if (kind !== 'http') throw new Error(`--plugins knows 'http', got '${kind}'`);
  const lags: number[] = [];
  let received = 0;
  let firstAt = 0;
  let lastAt = 0;
  const receiver = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      if (req.method === 'POST') {
        const now = Date.now();
        const body = JSON.parse(text) as { event?: { metadata: { created_at: string } } };
        if (body.event) lags.push(now - Date.parse(body.event.metadata.created_at));
        received++;
        firstAt ||= now;
        lastAt = now;
      }
      res.end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

  const dir = join(s.dataRoot, 'plugins-http');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.toml'), `[storage]\ndurability = "${s.durability}"\n`);
  const server = await startEventDbx(dir);
  const api = new HttpApi(server.url, server.token, s.clients);
  let marker = 0;
  const apply = async (): Promise<void> => {
    const id = idOf(1 + Math.floor(Math.random() * AGGREGATES));
    await api.post(`/v1/aggregates/${AGGREGATE_TYPE}/${id}/events`, { event_type: 'bench_applied', payload: { marker: ++marker, at: Date.now() } }, 201);
  };
  const timed = (): Promise<OpStats> => runTimed({ concurrency: s.clients, durationMs: s.durationMs, warmupMs: s.warmupMs }, apply);
  try {
    // Unrecorded: creates the aggregates, warms caches and the JIT.
    await runTimed({ concurrency: s.clients, durationMs: 3000, warmupMs: 0 }, apply);
    const plainBefore = await timed();
    s.log(`  no plugin: ${Math.round(plainBefore.ops_s)} ops/s, p50 ${Math.round(plainBefore.p50_us)} µs`);
    const put = await fetch(`${server.url}/v1/plugins/bench-http`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ payload_mode: 'event-only', options: { kind: 'http', endpoint } }),
    });
    if (!put.ok) throw new Error(`configuring the plugin: ${put.status} ${await put.text()}`);
    const withPlugin = await timed();
    const appendedWhile = withPlugin.n;
    s.log(`  http plugin: ${Math.round(withPlugin.ops_s)} ops/s, p50 ${Math.round(withPlugin.p50_us)} µs; delivered ${received} so far`);
    // Let the queue drain (bounded wait), then measure the baseline once more.
    const drainStart = Date.now();
    const target = received + 1;
    while (Date.now() - drainStart < 30_000) {
      const q = (await (await fetch(`${server.url}/v1/queue`, { headers: { authorization: `Bearer ${server.token}` } })).json()) as { plugins: { pending: number; processing: number }[] };
      if ((q.plugins[0]?.pending ?? 0) + (q.plugins[0]?.processing ?? 0) === 0 && received >= target - 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const drainMs = Date.now() - drainStart;
    await fetch(`${server.url}/v1/plugins/bench-http/disable`, { method: 'POST', headers: { authorization: `Bearer ${server.token}` } });
    const plainAfter = await timed();
    s.log(`  no plugin again: ${Math.round(plainAfter.ops_s)} ops/s`);
    const baseline = (plainBefore.ops_s + plainAfter.ops_s) / 2;
    const sorted = [...lags].sort((a, b) => a - b);
    return {
      clients: s.clients,
      durability: s.durability,
      duration_ms: s.durationMs,
      append_ops_s: { without_plugin: Math.round(baseline), with_plugin: Math.round(withPlugin.ops_s), ratio: Math.round((withPlugin.ops_s / baseline) * 1000) / 1000 },
      append_p50_us: { without_plugin: Math.round((plainBefore.p50_us + plainAfter.p50_us) / 2), with_plugin: Math.round(withPlugin.p50_us) },
      delivered: received,
      appended_with_plugin: appendedWhile,
      delivery_rate_s: Math.round((received / Math.max(1, lastAt - firstAt)) * 1000),
      lag_ms: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? 0 },
      drain_ms_after_load: drainMs,
    };
  } finally {
    await api.close();
    await server.stop();
    receiver.close();
  }
}
