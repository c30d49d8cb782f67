/**
 * `tcp` plugin kind. The original wrote one line per delivery on a fresh connection and read no
 * answer, so a job counted as delivered even when nobody took it. Here a job completes only when
 * the receiver acknowledges it.
 *
 * Protocol (one persistent connection, reopened on the next job after any failure):
 *   → the deliverer sends one line per job: `JSON.stringify(body) + "\n"` (body carries `event_id`).
 *   ← the receiver answers exactly one line per line received, in the order received:
 *       `ok`                       acknowledges that job;
 *       `{"ack":"<event_id>"}`     acknowledges it too (an id other than the job's = out of step);
 *       anything else              refuses that job (the text is quoted in the job's error).
 *   A close, a reset, or no answer within `timeout_ms` fails every job waiting on the connection.
 * Jobs may be pipelined: several lines can be in flight; answers are matched in order.
 * A job sent on a kept connection that had gone quiet, and lost before any answer, is sent once
 * more on a fresh connection: the receiver may have dropped an idle connection just as we wrote.
 * (It may then see the line twice; receivers deduplicate on `event_id`, delivery is at least once.)
 */
import { Socket, createConnection } from 'node:net';
import type { z } from 'zod';
import type { Deliverer, Delivery, tcpOptions } from '../types.js';
import type { DelivererContext } from './context.js';
import { LineSplitter, checkFailed, excerpt, shortReason } from './wire.js';

type TcpOptions = z.output<typeof tcpOptions>;

/** Jobs written but not yet answered on one connection. */
const IN_FLIGHT_MAX = 256;
/** An idle connection is closed before a receiver's own idle timeout can silently cut it. */
const IDLE_CLOSE_MS = 30_000;
const REPLY_QUOTE_CHARS = 128;

/** The connection went away (close, reset, end) rather than the receiver answering. */
class ConnectionLost extends Error {}
/** Lost before answering a job sent while the kept connection was quiet: worth one fresh try. */
class StaleConnection extends Error {}

interface Waiting {
  eventId: string;
  /** Sent while the connection was quiet after earlier answers: it may have been dead already. */
  quiet: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** What a reply line means for the job at the head of the queue. */
export function readReply(line: string, eventId: string): 'ack' | 'out-of-step' | 'refused' {
  const text = line.trim();
  if (text.toLowerCase() === 'ok') return 'ack';
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as { ack?: unknown };
      if (typeof parsed.ack === 'string') return parsed.ack === eventId ? 'ack' : 'out-of-step';
    } catch {
      // not JSON: a refusal like any other text
    }
  }
  return 'refused';
}

class Connection {
  readonly waiting: Waiting[] = [];
  readonly ready: Promise<void>;
  dead = false;
  /** Answers came and nothing is waiting and nothing has been heard since. */
  private quiet = false;
  /** The first failure: what a job still waiting for the connect is told. */
  private failure: Error | undefined;
  private readonly socket: Socket;
  private readonly timeoutMs: number;

  constructor(options: TcpOptions, onDead: (conn: Connection) => void) {
    this.timeoutMs = options.timeout_ms;
    this.socket = createConnection({ host: options.host, port: options.port, noDelay: true, keepAlive: true });
    const onDeadOnce = () => onDead(this);
    this.ready = new Promise<void>((resolve, reject) => {
      const connectTimer = setTimeout(() => this.fail(new Error(`tcp plugin connect timed out after ${options.timeout_ms} ms`)), options.timeout_ms);
      this.socket.once('connect', () => {
        clearTimeout(connectTimer);
        resolve();
      });
      this.socket.once('close', () => {
        clearTimeout(connectTimer);
        reject(this.failure ?? new Error('tcp plugin connection closed'));
      });
    });
    this.ready.catch(() => undefined); // observed by deliver(); never an unhandled rejection
    const lines = new LineSplitter(
      (line) => this.onLine(line),
      () => this.fail(new Error('tcp plugin receiver sent an over-long line')),
    );
    this.socket.on('data', (chunk: Buffer) => lines.push(chunk));
    this.socket.on('error', (err) => this.fail(new ConnectionLost(`tcp plugin connection failed: ${shortReason(err)}`)));
    this.socket.on('end', () => this.fail(new ConnectionLost('tcp plugin receiver closed the connection before acknowledging')));
    this.socket.on('close', () => {
      this.fail(new ConnectionLost('tcp plugin connection closed before the ack'));
      onDeadOnce();
    });
    this.socket.setTimeout(IDLE_CLOSE_MS, () => {
      if (this.waiting.length === 0) this.fail(new Error('tcp plugin connection idle'));
    });
  }

  /** `remainingMs`: what is left of the job's `timeout_ms` after connecting (and a stale first try). */
  send(eventId: string, line: string, remainingMs: number): Promise<void> {
    if (this.dead) return Promise.reject(new Error('tcp plugin connection closed'));
    if (this.waiting.length >= IN_FLIGHT_MAX) return Promise.reject(new Error('tcp plugin has too many jobs awaiting an ack'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        // A late answer would be read as the next job's: the connection is out of step, drop it.
        const index = this.waiting.findIndex((w) => w.timer === timer);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(new Error(`tcp plugin got no ack within ${this.timeoutMs} ms`));
        this.fail(new Error('tcp plugin connection dropped after another job timed out'));
      }, remainingMs);
      this.waiting.push({ eventId, quiet: this.quiet, resolve, reject, timer });
      this.socket.write(line);
    });
  }

  /** Fails every waiting job and closes the socket; idempotent. */
  fail(err: Error): void {
    this.dead = true;
    this.failure ??= err;
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err instanceof ConnectionLost && w.quiet ? new StaleConnection(err.message) : err);
    }
    this.socket.destroy();
  }

  private onLine(line: string): void {
    const head = this.waiting.shift();
    if (!head) {
      this.fail(new Error('tcp plugin receiver answered a job that was not sent'));
      return;
    }
    clearTimeout(head.timer);
    this.quiet = this.waiting.length === 0;
    const verdict = readReply(line, head.eventId);
    if (verdict === 'ack') head.resolve();
    else if (verdict === 'refused') head.reject(new Error(`tcp plugin receiver refused the job: ${excerpt(line, REPLY_QUOTE_CHARS) || '(empty line)'}`));
    else {
      head.reject(new Error('tcp plugin receiver acknowledged another event (out of step)'));
      this.fail(new Error('tcp plugin connection dropped: receiver out of step'));
    }
  }
}

export function createTcpDeliverer(options: TcpOptions, ctx: DelivererContext): Deliverer {
  let current: Connection | undefined;
  let closed = false;

  function connection(): Connection {
    if (!current || current.dead) {
      current = new Connection(options, (conn) => {
        if (current === conn) current = undefined;
      });
    }
    return current;
  }

  async function sendOnce(eventId: string, line: string, deadline: number): Promise<void> {
    if (closed) throw new Error('tcp plugin closed');
    const conn = connection();
    try {
      await conn.ready;
    } catch (err) {
      throw err instanceof Error && err.message.startsWith('tcp plugin') ? err : new Error('tcp plugin connection failed');
    }
    await conn.send(eventId, line, Math.max(1, deadline - Date.now()));
  }

  async function deliver(delivery: Delivery): Promise<void> {
    const deadline = Date.now() + options.timeout_ms;
    const line = `${JSON.stringify(delivery.body)}\n`;
    try {
      await sendOnce(delivery.body.event_id, line, deadline);
    } catch (err) {
      if (!(err instanceof StaleConnection)) throw err;
      await sendOnce(delivery.body.event_id, line, deadline);
    }
  }

  /** TCP connect on a separate, short-lived socket (reference §10.7). */
  function check(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const socket = createConnection({ host: options.host, port: options.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(checkFailed(ctx.name, `connect timed out after ${options.timeout_ms} ms`));
      }, options.timeout_ms);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.end();
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(checkFailed(ctx.name, shortReason(err)));
      });
    });
  }

  async function close(): Promise<void> {
    closed = true;
    current?.fail(new Error('tcp plugin closed'));
    current = undefined;
  }

  return { deliver, check, close };
}
