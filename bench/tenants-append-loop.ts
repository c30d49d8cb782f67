/**
 * The closed-loop appender of `--tenants-noisy`, shared by the quiet tenant (main thread) and the
 * flooder (its own worker thread, tenants-flooder.ts): a neighbour is another client, so its own
 * client-side CPU (parsing thousands of 429s a second) must not sit in the event loop that times
 * the quiet tenant's requests. Both threads read the same monotonic clock (process.hrtime).
 */
import { Pool } from 'undici';
import { Recorder, nowUs, type OpStats } from './stats.js';

export interface LoopSpec {
  url: string;
  token: string;
  tenant: string;
  concurrency: number;
  /** hrtime µs: latencies are recorded from here … */
  windowUs: number;
  /** … to here, when the loops stop. */
  endUs: number;
  /** false: retry a 429 at once (a client that ignores Retry-After). */
  honourRetryAfter: boolean;
}

export interface Loop {
  /** Accepted (201) appends in the window. */
  stats: OpStats;
  /** 429s answered in the window, and how long each took to come back (a held 429 takes long). */
  limited: number;
  limitedStats: OpStats;
  /** Connections the server closed under the flooder (a 429 with `Connection: close`). */
  closed: number;
}

export async function appendLoop(pool: Pool, spec: LoopSpec): Promise<Loop> {
  const recorder = new Recorder();
  const refused = new Recorder();
  let limited = 0;
  let closed = 0;
  let seq = 0;
  const { tenant, windowUs, endUs } = spec;
  const headers = { authorization: `Bearer ${spec.token}`, 'content-type': 'application/json', 'x-tenant-id': tenant };
  await Promise.all(
    Array.from({ length: spec.concurrency }, async (_, worker) => {
      for (;;) {
        const t0 = nowUs();
        if (t0 >= endUs) return;
        const id = `a-${worker}-${seq++ % 100}`;
        const res = await pool.request({ method: 'POST', path: `/v1/aggregates/order/${id}/events`, headers, body: JSON.stringify({ event_type: 'touched', payload: { at: t0, note: 'a payload of a few dozen bytes' } }) });
        await res.body.dump();
        if (res.statusCode === 429) {
          if (t0 >= windowUs) {
            limited++;
            refused.add(nowUs() - t0);
            if (res.headers.connection === 'close') closed++;
          }
          const wait = Math.min(Number(res.headers['retry-after'] ?? 1) * 1000, (endUs - nowUs()) / 1000);
          if (spec.honourRetryAfter && wait > 0) await new Promise((r) => setTimeout(r, wait));
          continue;
        }
        if (res.statusCode !== 201) throw new Error(`${tenant} append answered ${res.statusCode}`);
        if (t0 >= windowUs) recorder.add(nowUs() - t0);
      }
    }),
  );
  const windowMs = (endUs - windowUs) / 1000;
  return { stats: recorder.summary(windowMs), limited, limitedStats: refused.summary(windowMs), closed };
}
