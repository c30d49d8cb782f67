/**
 * `db.subscribe()`: the tenant's global stream (GET /v1/stream, Server-Sent Events) as an async
 * iterator that survives the network and the server. It keeps the last position it received (an
 * event's id, or a heartbeat's), and after a dropped connection, a server restart or a
 * `slow_consumer` cut it reconnects with exponential back-off (full jitter) and resumes there:
 * nothing is missed and nothing repeats. Errors that a retry cannot fix (a bad position or filter,
 * a revoked token, a missing action) end the iteration with their `EventDbxError`.
 *
 * Its own single connection (an SSE response never ends), beside the client's pool.
 */
import type { Client as UndiciClient } from 'undici';
import { ConnectionError, createError, errorFromResponse, isEventDbxError, type EventDbxError } from './errors.js';
import { fromWire } from './mapper.js';
import type { CallOptions, EventRecord, JsonObject, JsonValue } from './types.js';
import { loadUndici } from './undici.js';

export interface SubscribeOptions {
  /** Where to start: a position token (`item.position`, `next_position`), `'start'` (default: the first event) or `'end'` (what commits from now on). */
  from?: string;
  /** Only events matching this filter (the filter language of GET /v1/events). */
  filter?: string;
  /** Aborting ends the iteration (no error). */
  signal?: AbortSignal;
  /** Reconnect back-off: first delay and ceiling in ms (default 100 and 5000), full jitter. */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /** Nothing at all (not even a heartbeat) for this long means the connection is dead: reconnect. Default 60000. */
  idleTimeoutMs?: number;
  /** Told before each reconnect: which attempt, how long it waits, and why. */
  onReconnect?: (info: { attempt: number; delayMs: number; error: EventDbxError }) => void;
}

/** One event of the stream and the position right after it (resume from there). */
export interface StreamItem<P = JsonObject | JsonValue[]> {
  position: string;
  event: EventRecord<P>;
}

/** A page of GET /v1/stream (non-live). */
export interface StreamPage<P = JsonObject | JsonValue[]> {
  items: EventRecord<P>[];
  /** Pass as `after` to continue; equal to `after` once at the head. */
  nextPosition: string;
}

export interface StreamReadOptions extends CallOptions {
  /** A position token, `'start'` (default) or `'end'`. */
  after?: string;
  take?: number;
  filter?: string;
}

export interface SubscribeSettings {
  url: URL;
  token?: string;
  tenant: string;
  ca?: string | Buffer | (string | Buffer)[];
}

/** Codes the server cuts a stream with that a reconnect fixes (the others end the iteration). */
const RESUMABLE = new Set(['slow_consumer', 'unavailable']);

export class Subscription<P = JsonObject | JsonValue[]> implements AsyncIterable<StreamItem<P>> {
  private current: string;
  private readonly stop = new AbortController();
  private started = false;

  constructor(
    private readonly settings: SubscribeSettings,
    private readonly options: SubscribeOptions = {},
  ) {
    this.current = options.from ?? 'start';
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) this.stop.abort();
      else signal.addEventListener('abort', () => this.stop.abort(), { once: true });
    }
  }

  /** The last position received (after the last event or heartbeat); `'start'`/`'end'` until the first. */
  get position(): string {
    return this.current;
  }

  /** Ends the iteration (an event being awaited resolves as done). */
  close(): void {
    this.stop.abort();
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamItem<P>> {
    if (this.started) throw new Error('a subscription can be iterated once');
    this.started = true;
    return this.run();
  }

  private async *run(): AsyncGenerator<StreamItem<P>> {
    const initial = this.options.reconnect?.initialDelayMs ?? 100;
    const ceiling = this.options.reconnect?.maxDelayMs ?? 5000;
    let attempt = 0;
    while (!this.stop.signal.aborted) {
      let failure: EventDbxError;
      try {
        for await (const item of this.connection(() => (attempt = 0))) yield item;
        failure = new ConnectionError('unavailable', 'the server ended the stream');
      } catch (err) {
        if (this.stop.signal.aborted) return;
        failure = isEventDbxError(err) ? err : new ConnectionError('unavailable', `stream connection failed: ${describe(err)}`, { cause: err });
        if (!resumable(failure)) throw failure;
      }
      if (this.stop.signal.aborted) return;
      attempt++;
      const delayMs = Math.round(Math.random() * Math.min(ceiling, initial * 2 ** (attempt - 1)));
      this.options.onReconnect?.({ attempt, delayMs, error: failure });
      await sleep(delayMs, this.stop.signal);
    }
  }

  /** One connection: its events until it ends; `connected` once the server answered 200. */
  private async *connection(connected: () => void): AsyncGenerator<StreamItem<P>> {
    const { url, token, tenant, ca } = this.settings;
    const idle = this.options.idleTimeoutMs ?? 60_000;
    // Imported here, not at the top: loading the client must not load undici (~100 ms).
    const { Client } = await loadUndici();
    const client: UndiciClient = new Client(url.origin, { headersTimeout: idle, bodyTimeout: idle, ...(ca !== undefined ? { connect: { ca } } : {}) });
    const query = new URLSearchParams({ after: this.current });
    if (this.options.filter !== undefined) query.set('filter', this.options.filter);
    const headers: Record<string, string> = { accept: 'text/event-stream', 'x-tenant-id': tenant };
    if (token) headers.authorization = `Bearer ${token}`;
    try {
      const response = await client.request({
        method: 'GET',
        path: `${url.pathname.replace(/\/+$/, '')}/v1/stream?${query.toString()}`,
        headers,
        signal: this.stop.signal,
      });
      if (response.statusCode !== 200) {
        const text = await response.body.text();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not the error envelope: errorFromResponse quotes the text
        }
        const retryAfter = response.headers['retry-after'];
        throw errorFromResponse(response.statusCode, body, typeof retryAfter === 'string' ? retryAfter : undefined);
      }
      for await (const frame of sseFrames(response.body)) {
        if (frame.id !== undefined && frame.id.length > 0) this.current = frame.id;
        if (frame.event === 'heartbeat') {
          connected();
          continue;
        }
        if (frame.event === 'error') throw streamError(frame.data);
        if (frame.event !== 'message' || frame.data.length === 0 || frame.id === undefined) continue;
        connected();
        yield { position: frame.id, event: fromWire(JSON.parse(frame.data)) as EventRecord<P> };
      }
    } finally {
      // Also when the consumer stops early (break): the socket goes with it.
      await client.destroy().catch(() => undefined);
    }
  }
}

interface SseFrame {
  event: string;
  data: string;
  id?: string;
}

/** The text/event-stream format (WHATWG HTML §9.2): fields per line, a blank line ends a frame. */
export async function* sseFrames(body: AsyncIterable<Buffer | string>): AsyncGenerator<SseFrame> {
  const decoder = new TextDecoder();
  let rest = '';
  let frame: { event?: string; data: string[]; id?: string } = { data: [] };
  for await (const chunk of body) {
    rest += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    for (;;) {
      let end = start;
      while (end < rest.length && rest.charCodeAt(end) !== 10 && rest.charCodeAt(end) !== 13) end++;
      if (end === rest.length) break;
      // A lone \r at the end of a chunk may be half of \r\n: wait for the next chunk.
      if (rest.charCodeAt(end) === 13 && end + 1 === rest.length) break;
      const line = rest.slice(start, end);
      start = end + (rest.charCodeAt(end) === 13 && rest.charCodeAt(end + 1) === 10 ? 2 : 1);
      if (line === '') {
        if (frame.data.length > 0 || frame.id !== undefined) yield { event: frame.event ?? 'message', data: frame.data.join('\n'), ...(frame.id !== undefined ? { id: frame.id } : {}) };
        frame = { data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1));
      if (field === 'data') frame.data.push(value);
      else if (field === 'event') frame.event = value;
      else if (field === 'id') frame.id = value;
    }
    rest = rest.slice(start);
  }
}

function streamError(data: string): EventDbxError {
  let code = 'internal';
  let message = 'the server ended the stream with an error';
  try {
    const parsed = JSON.parse(data) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === 'string') code = parsed.error.code;
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
  } catch {
    // an unreadable error frame is still an error
  }
  // `slow_consumer` is a stream-only code: the cut is resumed, so it surfaces only in onReconnect.
  if (code === 'slow_consumer') return new ConnectionError('unavailable', `slow_consumer: ${message}`, { details: { code } });
  return createError(code, message);
}

function resumable(err: EventDbxError): boolean {
  if (err.code === 'unavailable' || err.code === 'rate_limited' || err.code === 'request_timeout') return true;
  if (err.status === 502 || err.status === 504) return true;
  return RESUMABLE.has(err.code);
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
