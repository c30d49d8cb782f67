/**
 * One live subscriber of GET /v1/stream (Server-Sent Events). It owns its position and moves
 * between two modes:
 * - catch-up: behind the head, it pulls pages from the store at its socket's pace (it stops reading
 *   while the socket does not drain), so it never queues anything;
 * - live: at the head, it takes new entries from the tenant's feed (stream.ts). Those are pushed,
 *   so while its socket does not drain they queue, up to `[stream] max_buffered_events` /
 *   `max_buffered_bytes`; beyond, it is cut with `event: error` (code `slow_consumer`) and
 *   closed. It resumes from its last id without a gap or a repeat.
 * An entry the feed hands over with a gap before it (the session missed one) sends it back to
 * catch-up, so positions stay exact whatever the feed does.
 *
 * Frames: each event is `id: <position after it>` + `data: <event JSON>`; `event: heartbeat` with
 * the current position every `heartbeat_ms` (also after a filter skipped events, so a resume does
 * not scan them again); `event: error` with `{ "error": { code, message } }` before a close the
 * server decides on (slow_consumer, unauthorized, unavailable).
 */
import type { ServerResponse } from 'node:http';
import { DbxError, type EventRecord } from '../core/index.js';
import type { FeedListener, StreamHub, StreamValue } from './stream.js';

export interface SessionOptions {
  hub: StreamHub;
  tenant: string;
  /** The position to start after. */
  seqs: number[];
  /** Whether the caller may see an aggregate (token resources, hidden types). */
  allow: (type: string, id: string) => boolean;
  /** Whether an event passes the `filter=`. */
  matches: (event: EventRecord) => boolean;
  /** The event as this caller may see it (hidden fields stripped). */
  present: (event: EventRecord) => EventRecord;
  /** Throws a DbxError when the caller's token no longer holds (revoked, expired). */
  recheck: () => void;
}

/**
 * A cut session whose socket does not take its last frames within this (or 2 heartbeats, if
 * longer) is destroyed: what it holds meanwhile is the socket's buffers, not a queue.
 */
const CUT_GRACE_MS = 30_000;
/** A pass's frames are written once they reach this much text (and at the end of the pass). */
const BATCH_BYTES_MAX = 64 * 1024;
/** One catch-up pass reads for at most this long before other requests get a turn. */
const PASS_MS_MAX = 20;

export class StreamSession implements FeedListener {
  private readonly seqs: number[];
  private mode: 'catchup' | 'live' | 'closed' = 'catchup';
  private queue: string[] = [];
  private queuedBytes = 0;
  /** Frames of the current pass not yet written (see cork). */
  private batch: string[] | undefined;
  private batchBytes = 0;
  /** The last write was refused by the socket's buffer: wait for 'drain'. */
  private blocked = false;
  /** When `blocked` last became true (a socket that takes nothing for long is a dead reader). */
  private blockedAt = 0;
  private waiters: (() => void)[] = [];
  private detach: (() => void) | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly o: SessionOptions,
    private readonly onClosed: () => void,
  ) {
    this.seqs = [...o.seqs];
  }

  start(): void {
    const { res } = this;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // The response ends only when the server cuts it; the socket goes with it then.
      connection: 'close',
      // Proxies (nginx) must pass frames on as they come.
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    res.on('drain', () => this.onDrain());
    res.on('close', () => this.finish());
    res.on('error', () => this.finish());
    // `retry`: how long an EventSource waits before it reconnects; the heartbeat says where we start.
    this.write(`retry: 1000\n\n`);
    this.sendHeartbeat();
    this.heartbeat = setInterval(() => this.tick(), this.o.hub.settings.heartbeat_ms);
    this.heartbeat.unref();
    void this.catchUp();
  }

  /** Feed entry (live mode). */
  deliver(i: number, seq: number, value: StreamValue, event: () => EventRecord | undefined): void {
    if (this.mode !== 'live') return;
    const have = this.seqs[i] ?? 0;
    if (seq <= have) return;
    if (seq > have + 1) {
      // Missed an entry (the feed ran ahead while this session was attaching): read the gap.
      this.detach?.();
      this.detach = undefined;
      void this.catchUp();
      return;
    }
    this.take(i, seq, value, event);
  }

  /**
   * Frames of one pass are joined and written at once (one syscall instead of one per event).
   * Not socket.cork(): corked bytes count as buffered, so write() would report backpressure the
   * socket does not have and a fast reader would look slow.
   */
  cork(): void {
    if (this.mode !== 'closed') this.batch ??= [];
  }

  uncork(): void {
    this.flushBatch();
    this.batch = undefined;
  }

  private flushBatch(): void {
    if (!this.batch || this.batch.length === 0) return;
    const text = this.batch.length === 1 ? (this.batch[0] as string) : this.batch.join('');
    this.batch = [];
    this.batchBytes = 0;
    this.write(text);
  }

  /** Server shutdown: tell the client why, then close. */
  shutdown(): void {
    this.cut('unavailable', 'the server is shutting down; reconnect with Last-Event-ID to resume');
  }

  private async catchUp(): Promise<void> {
    const { hub, tenant } = this.o;
    this.mode = 'catchup';
    while (this.mode === 'catchup') {
      if (this.blocked || this.queue.length > 0) {
        await this.drained();
        continue;
      }
      let bounds: number[];
      try {
        bounds = await hub.bounds(tenant);
      } catch (err) {
        this.cut('unavailable', err instanceof DbxError ? err.message : 'the stream could not be read');
        return;
      }
      if (this.mode !== 'catchup') return;
      this.cork();
      let exhausted: boolean;
      try {
        ({ exhausted } = hub.scan(tenant, this.seqs, bounds, hub.settings.read_batch_max, PASS_MS_MAX, (i, seq, value) => {
          this.take(i, seq, value, () => hub.event(tenant, i, value));
          return !this.blocked;
        }));
      } finally {
        this.uncork();
      }
      if (exhausted) {
        // At the head: from here the feed brings what commits next (same turn: nothing in between).
        this.mode = 'live';
        this.detach = hub.attach(tenant, this.seqs, bounds, this);
        return;
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Consumes one entry: the position moves whether or not the caller gets to see the event. */
  private take(i: number, seq: number, value: StreamValue, load: () => EventRecord | undefined): void {
    this.seqs[i] = seq;
    if (!this.o.allow(value[0], value[1])) return;
    const event = load();
    if (event === undefined || !this.o.matches(event)) return;
    // Before every event, not only at heartbeats: a token revoked (or expired) since the last one
    // must not receive what commits next (the ledger check is a set lookup on a cached token).
    if (!this.stillAuthorized()) return;
    const id = this.o.hub.encode(this.o.tenant, this.seqs);
    this.send(`id: ${id}\ndata: ${JSON.stringify(this.o.present(event))}\n\n`);
  }

  private send(frame: string): void {
    if (this.mode === 'closed') return;
    if (!this.blocked && this.queue.length === 0) {
      if (!this.batch) return this.write(frame);
      this.batch.push(frame);
      this.batchBytes += frame.length;
      if (this.batchBytes >= BATCH_BYTES_MAX) this.flushBatch();
      return;
    }
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    const { max_buffered_events, max_buffered_bytes } = this.o.hub.settings;
    if (this.queue.length > max_buffered_events || this.queuedBytes > max_buffered_bytes) {
      this.cut(
        'slow_consumer',
        `the subscriber did not keep up: more than ${max_buffered_events} events or ${max_buffered_bytes} bytes waited for its socket ([stream] max_buffered_events / max_buffered_bytes); reconnect with Last-Event-ID to resume`,
      );
    }
  }

  private write(frame: string): void {
    if (!this.res.write(frame) && !this.blocked) {
      this.blocked = true;
      this.blockedAt = Date.now();
    }
  }

  private onDrain(): void {
    this.blocked = false;
    while (this.queue.length > 0 && !this.blocked) {
      const frame = this.queue.shift() as string;
      this.queuedBytes -= frame.length;
      this.write(frame);
    }
    if (!this.blocked) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    }
  }

  private drained(): Promise<void> {
    if (this.mode === 'closed') return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private tick(): void {
    const { heartbeat_ms } = this.o.hub.settings;
    if (this.blocked && Date.now() - this.blockedAt > 2 * heartbeat_ms) {
      this.cut('slow_consumer', `the subscriber took nothing from its socket for ${2 * heartbeat_ms} ms (2 × [stream] heartbeat_ms); reconnect with Last-Event-ID to resume`);
      return;
    }
    if (!this.stillAuthorized()) return;
    this.sendHeartbeat();
  }

  /** Re-checks the caller's token; cuts the stream (with the reason) when it no longer holds. */
  private stillAuthorized(): boolean {
    try {
      this.o.recheck();
      return true;
    } catch (err) {
      const e = err instanceof DbxError ? err : new DbxError('unauthorized', 'the token is no longer valid');
      this.cut(e.code, e.message);
      return false;
    }
  }

  /** Only when nothing waits: a heartbeat behind queued events would claim a position not yet sent. */
  private sendHeartbeat(): void {
    if (this.mode === 'closed' || this.blocked || this.queue.length > 0) return;
    const position = this.o.hub.encode(this.o.tenant, this.seqs);
    this.write(`id: ${position}\nevent: heartbeat\ndata: ${JSON.stringify({ position })}\n\n`);
  }

  /** Ends the stream with a reason the client can read (the frame is appended even to a full socket). */
  private cut(code: string, message: string): void {
    if (this.mode === 'closed') return;
    const { res } = this;
    this.queue = [];
    this.queuedBytes = 0;
    this.batch = undefined;
    res.write(`event: error\ndata: ${JSON.stringify({ error: { code, message } })}\n\n`);
    res.end();
    const destroy = setTimeout(() => res.destroy(), Math.max(CUT_GRACE_MS, 2 * this.o.hub.settings.heartbeat_ms));
    destroy.unref();
    res.once('close', () => clearTimeout(destroy));
    this.finish();
  }

  private finish(): void {
    if (this.mode === 'closed') return;
    this.mode = 'closed';
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.detach?.();
    this.detach = undefined;
    this.queue = [];
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    this.onClosed();
  }
}
