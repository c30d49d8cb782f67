/**
 * `http` plugin kind: POST each job's JSON body to the endpoint (reference §10.3), over one
 * keep-alive undici Agent per deliverer so steady delivery does not pay a TCP (and TLS) handshake
 * per job. Receivers deduplicate on `Idempotency-Key` (= the event id): delivery is at least once.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import type { z } from 'zod';
import { DELIVERY_HEADERS, endpointUrl, type Deliverer, type Delivery, type httpOptions } from '../types.js';
import type { DelivererContext } from './context.js';
import { checkFailed, excerpt, shortReason } from './wire.js';

type HttpOptions = z.output<typeof httpOptions>;

/** Concurrent connections to the endpoint; the pool's concurrency is the real limit. */
const CONNECTIONS_MAX = 8;
/** How much of an error answer is read to quote it; the rest is discarded with the connection. */
const ERROR_BODY_BYTES_MAX = 4096;
const ERROR_BODY_QUOTE_CHARS = 256;
const CLOSE_GRACE_MS = 2000;

// The endpoint rule lives with the options' schema (config validation uses it too).
export { endpointUrl };

interface Setup {
  url: URL;
  agent: Agent;
  /** The agent's connect options (timeout, CA), for the check's own connection. */
  connect: { timeout: number; ca?: Buffer };
  headers: Record<string, string>;
}

/** Configuration problems are reported by every call instead of thrown from the factory, so one bad plugin cannot break the worker that builds it. */
function setUp(options: HttpOptions): Setup | Error {
  let url: URL;
  try {
    url = endpointUrl(options.endpoint, options.https);
  } catch (err) {
    return err instanceof Error && err.message.startsWith('http plugin') ? err : new Error('http plugin endpoint is not a valid URL');
  }
  let ca: Buffer | undefined;
  if (options.ca_file !== undefined) {
    try {
      ca = readFileSync(options.ca_file);
    } catch (err) {
      return new Error(`http plugin ca_file cannot be read: ${shortReason(err)}`);
    }
  }
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [name, value] of Object.entries(options.headers)) {
    if (!DELIVERY_HEADERS.includes(name.toLowerCase())) headers[name.toLowerCase()] = value;
  }
  // `ca` replaces Node's default trust store: a configured CA means "trust exactly this one".
  const connect = { timeout: options.timeout_ms, ...(ca ? { ca } : {}) };
  const agent = new Agent({ connections: CONNECTIONS_MAX, connect });
  return { url, agent, connect, headers };
}

/** Reads at most ERROR_BODY_BYTES_MAX of an answer, for quoting in the error. */
async function readExcerpt(body: AsyncIterable<Buffer> & { destroy(): unknown }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= ERROR_BODY_BYTES_MAX) break; // leaving the loop destroys the stream
    }
  } catch {
    // a body that breaks off still lets us report the status
  }
  return excerpt(Buffer.concat(chunks).subarray(0, ERROR_BODY_BYTES_MAX).toString('utf8'), ERROR_BODY_QUOTE_CHARS);
}

function timedOut(err: unknown, signal: AbortSignal): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return signal.aborted || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}

function requestError(err: unknown, signal: AbortSignal, timeoutMs: number): Error {
  if (timedOut(err, signal)) return new Error(`http plugin request timed out after ${timeoutMs} ms`);
  return new Error(`http plugin request failed: ${shortReason(err)}`);
}

export function createHttpDeliverer(options: HttpOptions, ctx: DelivererContext): Deliverer {
  const setup = setUp(options);
  const timeoutMs = options.timeout_ms;

  async function deliver(delivery: Delivery): Promise<void> {
    if (setup instanceof Error) throw setup;
    const signal = AbortSignal.timeout(timeoutMs);
    let res;
    try {
      res = await request(setup.url, {
        method: 'POST',
        dispatcher: setup.agent,
        headers: {
          ...setup.headers,
          'idempotency-key': delivery.body.event_id,
          'x-eventdbx-event-id': delivery.body.event_id,
          'x-eventdbx-job-id': delivery.job_id,
          'x-eventdbx-attempt': String(delivery.attempt),
        },
        body: JSON.stringify(delivery.body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal,
      });
    } catch (err) {
      throw requestError(err, signal, timeoutMs);
    }
    if (res.statusCode >= 200 && res.statusCode < 300) {
      // Draining (bounded) returns the connection to the keep-alive pool.
      await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      return;
    }
    const quoted = await readExcerpt(res.body);
    throw new Error(`http plugin request failed (${res.statusCode})${quoted ? `: ${quoted}` : ''}`);
  }

  /** Reachable = any HTTP answer below 500 to HEAD (the original demanded 2xx; many endpoints only accept POST). */
  async function check(): Promise<void> {
    if (setup instanceof Error) throw checkFailed(ctx.name, setup.message);
    const signal = AbortSignal.timeout(timeoutMs);
    let status: number;
    // Its own connection: the delivery agent's may all be held by deliveries the endpoint never
    // answers, and a check queued behind them would hang instead of saying so.
    const probe = new Agent({ connections: 1, connect: setup.connect });
    try {
      const res = await request(setup.url, { method: 'HEAD', dispatcher: probe, headersTimeout: timeoutMs, signal, reset: true });
      status = res.statusCode;
      await res.body.dump().catch(() => undefined);
    } catch (err) {
      throw checkFailed(ctx.name, timedOut(err, signal) ? `HEAD timed out after ${timeoutMs} ms` : shortReason(err));
    } finally {
      void probe.destroy().catch(() => undefined);
    }
    if (status >= 500) throw checkFailed(ctx.name, `HEAD answered ${status}`);
  }

  async function close(): Promise<void> {
    if (setup instanceof Error) return;
    // Let in-flight requests finish, but never hang shutdown on a stuck endpoint.
    let timer: NodeJS.Timeout | undefined;
    const graceful = setup.agent.close().then(() => true);
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_GRACE_MS)));
    const closed = await Promise.race([graceful, late]);
    clearTimeout(timer);
    if (!closed) await setup.agent.destroy().catch(() => undefined);
  }

  return { deliver, check, close };
}
