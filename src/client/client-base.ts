/**
 * What every part of the client shares: the pooled transport, the stream opener, and the three
 * ways a method talks to the server (`call`, `read`, `send`). The methods themselves live in two
 * layers on top of it, so no file holds the whole API: client-admin.ts (tokens, plugins and the
 * queue, tenants) and client.ts (data: writes, reads, schemas). `EventDbxClient` is the only class
 * a user sees; these bases are not exported from index.ts.
 */
import { Readable } from 'node:stream';
import { Transport, type Query, type Request } from './transport.js';
import { StreamOpener } from './stream.js';
import type { SubscribeSettings } from './subscribe.js';
import { checkTimeout, DEFAULT_RETRY, DEFAULT_TIMEOUT_MS, resolveCa, resolveUrl } from './settings.js';
import type { CallOptions, ClientOptions } from './types.js';

/** One path segment, percent-encoded (ids may hold `/`, `?`, spaces). */
export const seg = (value: string): string => encodeURIComponent(value);

/** The per-call part of an options object (never sent to the server). */
export function callOf(options: CallOptions | undefined): CallOptions {
  if (options === undefined) return {};
  checkTimeout(options.timeoutMs, 'timeoutMs');
  return {
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  };
}

export abstract class ClientBase {
  protected readonly transport: Transport;
  /** Where `subscribe()` connects (its own connection, beside the pool). */
  protected readonly streamAt: SubscribeSettings;
  /** Streamed answers (replay, exports) on their own small pool, opened on first use (stream.ts). */
  protected streams: StreamOpener | undefined;
  readonly tenant: string;

  constructor(options: ClientOptions = {}) {
    this.tenant = options.tenant || options.tenantId || process.env.EVENTDBX_TENANT_ID || 'default';
    const token = options.token || process.env.EVENTDBX_TOKEN;
    const ca = resolveCa(options);
    checkTimeout(options.timeoutMs, 'timeoutMs');
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.transport = new Transport({
      url: resolveUrl(options),
      ...(ca !== undefined ? { ca } : {}),
      ...(token ? { token } : {}),
      tenant: this.tenant,
      retry: { ...DEFAULT_RETRY, ...options.retry },
      timeoutMs,
      // A second past the default deadline, so that deadline (a clean TimeoutError) ends a call first.
      stallMs: (timeoutMs > 0 ? timeoutMs : DEFAULT_TIMEOUT_MS) + 1000,
      connections: options.connections ?? 8,
      ...(options.dispatcher !== undefined ? { dispatcher: options.dispatcher } : {}),
    });
    this.streamAt = { url: resolveUrl(options), tenant: this.tenant, ...(token ? { token } : {}), ...(ca !== undefined ? { ca } : {}) };
  }

  /** The server's base URL. */
  get url(): string {
    return this.transport.origin;
  }

  protected call<T>(request: Omit<Request, keyof CallOptions>, options: CallOptions | undefined): Promise<T> {
    return this.transport.request<T>({ ...request, ...callOf(options) });
  }

  protected read<T>(path: string, query: Query | undefined, options: CallOptions | undefined): Promise<T> {
    return this.call<T>({ method: 'GET', path, ...(query ? { query } : {}), idempotent: true }, options);
  }

  /** A POST; safe to retry only when it carries an idempotency key (the server replays it). */
  protected send<T>(path: string, body: Record<string, unknown>, options: CallOptions | undefined): Promise<T> {
    return this.call<T>({ method: 'POST', path, body, idempotent: typeof body.idempotencyKey === 'string' }, options);
  }

  /**
   * An NDJSON body POSTed as it is (a string, or chunks streamed from an iterable). Not retried: the
   * body may be a one-shot stream. No deadline unless the caller gives `timeoutMs` (it streams).
   */
  protected upload<T>(path: string, query: Query | undefined, lines: string | AsyncIterable<string | Uint8Array>, options: CallOptions | undefined): Promise<T> {
    return this.call<T>(
      {
        method: 'POST',
        path,
        ...(query ? { query } : {}),
        raw: { contentType: 'application/x-ndjson', body: typeof lines === 'string' ? lines : Readable.from(lines) },
        idempotent: false,
      },
      { timeoutMs: 0, ...callOf(options) },
    );
  }

  protected opener(): StreamOpener {
    this.streams ??= new StreamOpener({ ...this.streamAt, timeoutMs: DEFAULT_TIMEOUT_MS });
    return this.streams;
  }
}
