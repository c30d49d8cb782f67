/**
 * `dbx events --follow [--from POSITION] [--filter F]`: prints the tenant's events as they commit
 * (the global stream, GET /v1/stream over SSE, through `db.subscribe()`), one line each, until
 * Ctrl-C; then says on stderr where it stopped, so `--from` continues there. It reconnects by
 * itself when the server restarts (a line on stderr each time).
 */
import { toWire, type EventDbxClient } from '../client/index.js';
import { CliError, printLine } from './output.js';
import type { SessionContext } from './session.js';

export interface FollowFlags {
  from?: string;
  json?: boolean;
}

export async function follow(client: EventDbxClient, ctx: SessionContext, flags: FollowFlags, filter: string | undefined): Promise<void> {
  if (ctx.mode === 'direct') {
    throw new CliError('--follow needs a running server: start it with `dbx start` (a stopped data directory has nothing committing)', 1, 'unavailable');
  }
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const subscription = client.subscribe({
    from: flags.from ?? 'end',
    ...(filter !== undefined ? { filter } : {}),
    signal: stop.signal,
    onReconnect: ({ delayMs, error }) => process.stderr.write(`reconnecting in ${delayMs} ms: ${error.message}\n`),
  });
  try {
    for await (const { event, position } of subscription) {
      const wire = toWire(event);
      if (flags.json) printLine(JSON.stringify({ position, event: wire }));
      else {
        const issuer = wire.metadata.issued_by ? `${wire.metadata.issued_by.group}:${wire.metadata.issued_by.user}` : '-';
        printLine(`${wire.metadata.created_at} ${wire.aggregate_type}/${wire.aggregate_id} v${wire.version} ${wire.event_type} ${wire.metadata.event_id} ${issuer} position=${position}`);
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  // Ctrl-C is how a follow ends: exit 0 and say where to pick up.
  process.stderr.write(`stopped at position ${subscription.position} (continue with --from ${subscription.position})\n`);
}
