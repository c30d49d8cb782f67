/**
 * Streamed answers (exports, replays): the body is handed to the caller as it arrives instead of
 * being read whole like the JSON calls do, so a multi-gigabyte export costs a chunk of memory.
 * Never retried: a caller that lost a stream half way asks again (the server keeps no state).
 *
 * Its own small pool (2 connections) beside the JSON transport's: a long export then never holds
 * a socket that short calls are queued behind. `bodyTimeout` is the longest silence between two
 * chunks, not the length of the transfer.
 */
import type { Readable } from 'node:stream';
import type { Pool } from 'undici';
import { createError, errorFromResponse, isEventDbxError } from './errors.js';
import { loadUndici } from './undici.js';

export interface StreamSettings {
  url: URL;
  token?: string;
  tenant: string;
  timeoutMs: number;
  ca?: string | Buffer | (string | Buffer)[];
}

export interface OpenedStream {
  contentType: string;
  /** The raw body: iterate it (`for await`) or pipe it; destroy it to stop early. */
  body: Readable;
}

export class StreamOpener {
  /** Made on first use; undici itself is imported then too (~100 ms a short CLI read never pays). */
  private pool: Promise<Pool> | undefined;
  private readonly basePath: string;

  constructor(private readonly settings: StreamSettings) {
    this.basePath = settings.url.pathname.replace(/\/+$/, '');
  }

  async open(path: string, query: Record<string, string | number | boolean | undefined>, accept: string): Promise<OpenedStream> {
    this.pool ??= loadUndici().then(
      ({ Pool }) =>
        new Pool(this.settings.url.origin, {
          connections: 2,
          headersTimeout: this.settings.timeoutMs,
          bodyTimeout: this.settings.timeoutMs,
          ...(this.settings.ca !== undefined ? { connect: { ca: this.settings.ca } } : {}),
        }),
    );
    const pool = await this.pool;
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    const search = params.toString();
    const headers: Record<string, string> = { accept, 'x-tenant-id': this.settings.tenant };
    if (this.settings.token) headers.authorization = `Bearer ${this.settings.token}`;
    let response;
    try {
      response = await pool.request({ method: 'GET', path: `${this.basePath}${path}${search ? `?${search}` : ''}`, headers });
    } catch (err) {
      if (isEventDbxError(err)) throw err;
      const code = (err as { code?: unknown }).code;
      throw createError('unavailable', `cannot reach EventDBX at ${this.settings.url.origin}: ${typeof code === 'string' ? code : String(err)}`, { cause: err });
    }
    const contentType = String(response.headers['content-type'] ?? '');
    if (response.statusCode >= 400) {
      const text = await response.body.text();
      let parsed: unknown = text;
      try {
        parsed = contentType.includes('json') && text ? JSON.parse(text) : text;
      } catch {
        // an error body that is not JSON is quoted as text
      }
      const retryAfter = response.headers['retry-after'];
      throw errorFromResponse(response.statusCode, parsed, typeof retryAfter === 'string' ? retryAfter : undefined);
    }
    return { contentType, body: response.body as unknown as Readable };
  }

  /** A JSON answer as the API sent it (snake_case, not mapped). */
  async json(path: string, query: Record<string, string | number | boolean | undefined> = {}): Promise<unknown> {
    return JSON.parse(await this.text(path, query, 'application/json'));
  }

  /** A whole answer as text (the Prometheus exposition, a JSON document before parsing). */
  async text(path: string, query: Record<string, string | number | boolean | undefined>, accept: string): Promise<string> {
    const { body } = await this.open(path, query, accept);
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    return Buffer.concat(parts).toString('utf8');
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await (await pool)?.close();
  }
}

/** Splits a byte stream into lines (NDJSON), without holding more than one partial line. */
export async function* ndjsonLines(body: AsyncIterable<Buffer | string>): AsyncGenerator<unknown> {
  let rest = '';
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    rest += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    let at: number;
    while ((at = rest.indexOf('\n', start)) >= 0) {
      const line = rest.slice(start, at);
      start = at + 1;
      if (line.trim()) yield JSON.parse(line);
    }
    rest = rest.slice(start);
  }
  rest += decoder.decode();
  if (rest.trim()) yield JSON.parse(rest);
}

export type ExportFormat = 'csv' | 'json';

export interface ExportOptions {
  /** `csv` (default) or `json` (rows carry `__version` and `__merkle_root`). */
  format?: ExportFormat;
  /** JSON only: 2-space indentation. */
  pretty?: boolean;
}

/** One entry of `GET /v1/export/types` (as the API sends it). */
export interface ExportTypeCount {
  aggregate_type: string;
  /** Active aggregates of the type the token may read. */
  aggregates: number;
}

export interface ReplayOptions {
  /** Versions to pass over first (default 0). */
  skip?: number;
  /** At most this many events (default: all). */
  take?: number;
}
