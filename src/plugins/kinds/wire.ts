/**
 * Small pieces the network and process kinds share: splitting a byte stream into bounded lines,
 * and turning library / system errors into the short, stable reasons a job's `last_error` shows
 * (never a stack or a library's message, which may carry paths or change between versions).
 */

/** Longest reply line a receiver may send; a longer one means it does not speak the protocol. */
export const REPLY_LINE_BYTES_MAX = 1024 * 1024;

/**
 * Feeds chunks, emits complete lines (without `\n` / `\r\n`). A line over `maxBytes` calls
 * `onOverflow` and is dropped up to its end, so a chatty peer cannot grow memory without bound.
 */
export class LineSplitter {
  private buffered = '';
  private discarding = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onOverflow: () => void,
    private readonly maxBytes = REPLY_LINE_BYTES_MAX,
  ) {}

  push(chunk: Buffer | string): void {
    let text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    for (;;) {
      const nl = text.indexOf('\n');
      if (nl < 0) break;
      const piece = text.slice(0, nl);
      text = text.slice(nl + 1);
      if (this.discarding) {
        this.discarding = false;
        this.buffered = '';
        continue;
      }
      const line = this.buffered + piece;
      this.buffered = '';
      this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
    }
    if (this.discarding) return;
    this.buffered += text;
    if (this.buffered.length > this.maxBytes) {
      this.buffered = '';
      this.discarding = true;
      this.onOverflow();
    }
  }
}

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed by the peer',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connect timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_SOCKET: 'connection closed by the peer',
  UND_ERR_CLOSED: 'client closed',
  ENOENT: 'not found',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EROFS: 'read-only file system',
};

/** A short reason for `err`: a known system/undici code in words, TLS codes as `TLS <code>`. */
export function shortReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    const known = REASONS[code];
    if (known) return known;
    if (/CERT|TLS|SSL|SELF_SIGNED|UNABLE_TO/.test(code)) return `TLS ${code}`;
    if (/^[A-Z0-9_]{2,48}$/.test(code)) return code;
  }
  return 'unexpected error';
}

/** First `max` characters of `text` on one line (control characters become spaces), `…` when cut. */
export function excerpt(text: string, max: number): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** The readiness-check failure every kind reports (reference §10.7 wording, plus the reason). */
export function checkFailed(name: string, reason: string): Error {
  return new Error(`failed to establish connection for '${name}': ${reason}`);
}
