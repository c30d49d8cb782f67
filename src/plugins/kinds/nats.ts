/**
 * The `nats` kind: publishes each delivery body (JSON) to JetStream and waits for the stream's ack.
 *
 * - Subject: the `subject` template with `{tenant}`, `{aggregate}`, `{event}` substituted. A value
 *   is one subject token: characters a token cannot hold (`.`, `*`, `>`, whitespace, controls) become
 *   `_` (our ids never hold them; the guard keeps one value from spanning tokens).
 * - Deduplication: the `Nats-Msg-Id` header is the event id, so a redelivered job inside the
 *   stream's duplicate window is acknowledged as a duplicate and stored once. Receivers still dedupe
 *   on `event_id` for replays older than the window.
 * - `stream`: created on first use when missing, capturing the template with each substituted token
 *   replaced by `*` (`eventdbx.{tenant}.{aggregate}.{event}` → `eventdbx.*.*.*`), file storage and a
 *   DUPLICATE_WINDOW_MS window. An existing stream is used as it is. Publishes then expect that
 *   stream, so a subject captured by another stream fails instead of landing elsewhere.
 */
import { connect, DiscardPolicy, nanos, RetentionPolicy, StorageType, type JetStreamManager, type NatsConnection } from 'nats';
import type { z } from 'zod';
import { natsOptions, type Deliverer, type Delivery } from '../types.js';
import type { DelivererContext } from './context.js';
import { checkBodyIds, parseOptions } from './read-model.js';
import { shortReason } from './wire.js';

/** Long enough to cover a job's retries with backoff; ids older than this are not deduplicated. */
export const DUPLICATE_WINDOW_MS = 10 * 60_000;
const PLACEHOLDERS = ['{tenant}', '{aggregate}', '{event}'] as const;
const PLACEHOLDER = /\{(tenant|aggregate|event)\}/g;

/** Checks a subject template; throws with the reason. Every token non-empty, no wildcards, known placeholders only. */
export function checkSubjectTemplate(template: string): void {
  const tokens = template.split('.');
  for (const token of tokens) {
    if (token === '') throw new Error(`nats: subject '${template}' has an empty token`);
    if (/[\s*>]/.test(token.replace(PLACEHOLDER, ''))) throw new Error(`nats: subject '${template}' holds whitespace or a wildcard`);
    const unknown = /\{[^}]*\}/.exec(token.replace(PLACEHOLDER, ''));
    if (unknown !== null) throw new Error(`nats: subject '${template}' has an unknown placeholder ${unknown[0]} (known: ${PLACEHOLDERS.join(' ')})`);
  }
}

/** One substituted value as a single subject token. */
export function subjectToken(value: string): string {
  const token = value.replace(/[\s.*>\u0000-\u001f\u007f]/g, '_');
  return token === '' ? '_' : token;
}

export function renderSubject(template: string, values: { tenant: string; aggregate: string; event: string }): string {
  return template.replace(PLACEHOLDER, (_, name: 'tenant' | 'aggregate' | 'event') => subjectToken(values[name]));
}

/** The stream subject capturing every subject the template can produce. */
export function streamSubject(template: string): string {
  return template
    .split('.')
    .map((token) => (token.search(PLACEHOLDER) >= 0 ? '*' : token))
    .join('.');
}

const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const errCode = (err: unknown): string | undefined => (err as { code?: unknown })?.code as string | undefined;
const apiErrCode = (err: unknown): number | undefined => (err as { api_error?: { err_code?: number } })?.api_error?.err_code;

// JetStream API error codes (nats-server errors.json).
const STREAM_NOT_FOUND = 10059;
const STREAM_NAME_IN_USE = 10058;

export function createNatsDeliverer(options: z.input<typeof natsOptions>, ctx: DelivererContext): Deliverer {
  const opts = parseOptions('nats', natsOptions, options);
  checkSubjectTemplate(opts.subject);
  let connection: Promise<NatsConnection> | undefined;
  let streamReady: Promise<void> | undefined;

  function connected(): Promise<NatsConnection> {
    if (connection === undefined) {
      const attempt = connect({ servers: opts.servers, timeout: opts.timeout_ms, name: `eventdbx-plugin-${ctx.name}`, maxReconnectAttempts: -1 });
      connection = attempt;
      attempt.then(
        (nc) =>
          void nc.closed().then(() => {
            if (connection === attempt) connection = undefined; // closed for good: connect again next time
          }),
        () => {
          if (connection === attempt) connection = undefined;
        },
      );
    }
    return connection;
  }

  async function createStream(jsm: JetStreamManager, name: string): Promise<void> {
    const subject = streamSubject(opts.subject);
    try {
      const info = await jsm.streams.info(name);
      if (!info.config.subjects?.includes(subject)) {
        ctx.log('warn', `nats plugin ${ctx.name}: stream ${name} exists without subject ${subject}; publishing may fail`);
      }
      return;
    } catch (err) {
      if (apiErrCode(err) !== STREAM_NOT_FOUND) throw err;
    }
    try {
      await jsm.streams.add({
        name,
        subjects: [subject],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        duplicate_window: nanos(DUPLICATE_WINDOW_MS),
      });
      ctx.log('info', `nats plugin ${ctx.name}: created stream ${name} for ${subject}`);
    } catch (err) {
      if (apiErrCode(err) !== STREAM_NAME_IN_USE) throw err; // created meanwhile by another deliverer
    }
  }

  function ensureStream(nc: NatsConnection): Promise<void> {
    const name = opts.stream;
    if (name === undefined) return Promise.resolve();
    if (streamReady === undefined) {
      const attempt = nc.jetstreamManager({ timeout: opts.timeout_ms }).then((jsm) => createStream(jsm, name));
      streamReady = attempt;
      attempt.catch(() => {
        if (streamReady === attempt) streamReady = undefined; // try again on the next delivery
      });
    }
    return streamReady;
  }

  async function deliver(delivery: Delivery): Promise<void> {
    const body = delivery.body;
    checkBodyIds(body);
    const subject = renderSubject(opts.subject, { tenant: body.tenant, aggregate: body.aggregate_type, event: body.event_type });
    try {
      const nc = await connected();
      await ensureStream(nc);
      const js = nc.jetstream({ timeout: opts.timeout_ms });
      await js.publish(subject, Buffer.from(JSON.stringify(body), 'utf8'), {
        msgID: body.event_id,
        timeout: opts.timeout_ms,
        ...(opts.stream !== undefined ? { expect: { streamName: opts.stream } } : {}),
      });
    } catch (err) {
      if (errCode(err) === '503') streamReady = undefined; // the stream may have been deleted: create it again next time
      throw wrap(err, ctx, subject);
    }
  }

  return {
    deliver,
    async check(): Promise<void> {
      try {
        const nc = await connected();
        const jsm = await nc.jetstreamManager({ timeout: opts.timeout_ms });
        await jsm.getAccountInfo();
      } catch (err) {
        throw wrap(err, ctx);
      }
    },
    async close(): Promise<void> {
      const pending = connection;
      connection = undefined;
      streamReady = undefined;
      if (pending === undefined) return;
      const nc = await pending.catch(() => undefined);
      if (nc !== undefined && !nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}

const NATS_REASONS: Readonly<Record<string, string>> = {
  CONNECTION_REFUSED: 'connection refused',
  AUTHORIZATION_VIOLATION: 'authorization failed',
  AUTHENTICATION_EXPIRED: 'authorization failed',
  CONNECTION_CLOSED: 'connection closed',
  CONNECTION_DRAINING: 'connection closed',
  DISCONNECT: 'disconnected',
  JETSTREAM_NOT_ENABLED: 'JetStream is not enabled on the server',
};
const EXPECTED_STREAM_MISMATCH = 10060;

/**
 * A stable short reason for a job's `last_error` (no library text: it changes between versions);
 * the full message goes to the server log.
 */
function wrap(err: unknown, ctx: DelivererContext, subject?: string): Error {
  if (err instanceof Error && err.message.startsWith('nats: ')) return err;
  ctx.log('warn', `nats plugin ${ctx.name}: ${errText(err).slice(0, 500)}`);
  const code = errCode(err);
  const api = apiErrCode(err);
  let reason: string;
  if (code === '503') reason = `no JetStream stream captures subject ${subject ?? '?'} (no responders)`;
  else if (code === 'TIMEOUT' || code === 'CONNECTION_TIMEOUT' || code === '408') reason = `timed out${subject ? ` publishing to ${subject}` : ''}`;
  else if (api === EXPECTED_STREAM_MISMATCH) reason = `subject ${subject ?? '?'} is captured by another stream`;
  else if (api !== undefined) reason = `JetStream error ${api}`;
  else reason = (code !== undefined ? NATS_REASONS[code] : undefined) ?? shortReason(err);
  return new Error(`nats: ${reason}`, { cause: err });
}
