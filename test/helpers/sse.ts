/**
 * A Server-Sent Events reader for tests, on a raw TCP socket (no client library in between): it
 * collects frames as they arrive, can pause reading (a slow consumer) and disconnect at will.
 */
import net from 'node:net';

export interface SseFrame {
  event: string;
  data: string;
  id?: string;
}

export interface SseReader {
  frames: SseFrame[];
  /** Resolves when the server closes the connection. */
  closed: Promise<void>;
  isClosed(): boolean;
  /** The HTTP status line and headers. */
  head(): Promise<string>;
  pause(): void;
  resume(): void;
  close(): void;
  /** Waits until `check(frames)` holds (polling), else fails after `ms`. */
  until(check: (frames: SseFrame[]) => boolean, ms: number, what: string): Promise<void>;
  /** Event frames (not heartbeats or errors). */
  events(): SseFrame[];
}

export function openSse(url: string, path: string, headers: Record<string, string>): SseReader {
  const { hostname, port } = new URL(url);
  const socket = net.connect({ host: hostname, port: Number(port) });
  const frames: SseFrame[] = [];
  let buffer = '';
  let headText: string | undefined;
  let headWaiters: ((h: string) => void)[] = [];
  let closed = false;
  let chunked = '';
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Accept: text/event-stream', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''];
  socket.write(lines.join('\r\n'));
  const parseFrames = (): void => {
    let at: number;
    while ((at = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      const frame: { event?: string; data: string[]; id?: string } = { data: [] };
      for (const line of block.split('\n')) {
        if (line.startsWith(':') || line === '') continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') frame.data.push(value);
        else if (field === 'event') frame.event = value;
        else if (field === 'id') frame.id = value;
      }
      if (frame.data.length === 0 && frame.id === undefined) continue;
      frames.push({ event: frame.event ?? 'message', data: frame.data.join('\n'), ...(frame.id !== undefined ? { id: frame.id } : {}) });
    }
  };
  // The body is chunked (no Content-Length): undo the chunk framing before reading frames.
  const dechunk = (): void => {
    for (;;) {
      const eol = chunked.indexOf('\r\n');
      if (eol < 0) return;
      const size = parseInt(chunked.slice(0, eol), 16);
      if (Number.isNaN(size) || chunked.length < eol + 2 + size + 2) return;
      buffer += chunked.slice(eol + 2, eol + 2 + size);
      chunked = chunked.slice(eol + 2 + size + 2);
      if (size === 0) return;
    }
  };
  let raw = '';
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => {
    if (headText === undefined) {
      raw += text;
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return;
      headText = raw.slice(0, end);
      for (const w of headWaiters) w(headText);
      headWaiters = [];
      text = raw.slice(end + 4);
    }
    if (/transfer-encoding: chunked/i.test(headText)) {
      chunked += text;
      dechunk();
    } else buffer += text;
    parseFrames();
  });
  const closedPromise = new Promise<void>((resolve) => {
    socket.on('close', () => {
      closed = true;
      resolve();
    });
    socket.on('error', () => undefined);
  });
  return {
    frames,
    closed: closedPromise,
    isClosed: () => closed,
    head: () => (headText !== undefined ? Promise.resolve(headText) : new Promise((r) => headWaiters.push(r))),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    close: () => socket.destroy(),
    events: () => frames.filter((f) => f.event === 'message'),
    async until(check, ms, what) {
      const deadline = Date.now() + ms;
      while (!check(frames)) {
        if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (${frames.length} frames, closed=${closed})`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}
