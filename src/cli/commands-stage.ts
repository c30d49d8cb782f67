/**
 * Staging (reference §14.1): `aggregate apply|patch --stage` appends to <data_dir>/staged_events.json
 * after the same validation as a normal write (the API's zod schema, then the server's dry run of the
 * stage as the commit would send it: see stageEvent); `aggregate commit` sends the whole queue as
 * one atomic POST /v1/batch and empties the file only when that succeeded. The stage file is local;
 * the check and the commit go through whichever mode applies (a server, or the engine directly).
 *
 * With a data encryption key (the server's, from config.toml, the key file or the env var) the file
 * is `{"format": 1, "sealed": base64(seal(JSON array))}`: staged payloads are data at rest too. A
 * plaintext array (staged before a key existed) stays readable and is sealed at the next write.
 */
import { mkdirDurably } from '../core/durable-file.js';
import { existsSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Command } from 'commander';
import {
  BATCH_EVENTS_MAX,
  batchItemSchema,
  checkKeyRegistry,
  createValueCipher,
  ensureDataKey,
  parseInput,
  readConfig,
  resolveDataKeys,
  writeConfig,
  writeFileDurably,
  type BatchItem,
  type ValueCipher,
} from '../core/index.js';
import { toWire, type BatchEvent, type EventRecord, type Wire } from '../client/index.js';
import { resolveDataDir, withConnectionOptions, type ConnectionFlags } from './options.js';
import { formatOf, printListing, withFormatOptions, type FormatFlags, type ListingSpec } from './format.js';
import { CliError, UsageError, printJson, printLine, progress } from './output.js';
import { EVENT_LISTING } from './render.js';
import { withClient } from './session.js';

export const STAGE_FILE = 'staged_events.json';

function stagePath(dataDir: string): string {
  return join(dataDir, STAGE_FILE);
}

/**
 * The data dir's cipher, checked against the keys its data needs (a wrong key is refused here as at
 * start). Before any server start there is no key yet: one is generated into config.toml, as the
 * first start would, so nothing is ever staged in plaintext when encryption is on.
 */
function stageCipher(dataDir: string): ValueCipher | null {
  const { config } = readConfig(dataDir);
  if (ensureDataKey(config, dataDir)) {
    mkdirDurably(dataDir);
    writeConfig(dataDir, config);
  }
  const keys = resolveDataKeys(config, dataDir);
  checkKeyRegistry(dataDir, keys, { record: false });
  return keys ? createValueCipher(keys.keys) : null;
}

function stageText(path: string, text: string, cipher: () => ValueCipher | null): unknown {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${path} is not valid JSON (${err instanceof Error ? err.message : String(err)}); fix or delete it`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || typeof (raw as { sealed?: unknown }).sealed !== 'string') return raw;
  const key = cipher();
  if (!key) throw new CliError(`${path} is encrypted but no data encryption key is configured`);
  try {
    return JSON.parse(key.open(Buffer.from((raw as { sealed: string }).sealed, 'base64')).toString('utf8'));
  } catch (err) {
    throw new CliError(`${path} cannot be decrypted with the configured data encryption key (${err instanceof Error ? err.message : String(err)})`);
  }
}

export function readStage(dataDir: string): BatchItem[] {
  const path = stagePath(dataDir);
  if (!existsSync(path)) return [];
  const raw = stageText(path, readFileSync(path, 'utf8'), () => stageCipher(dataDir));
  if (!Array.isArray(raw)) throw new CliError(`${path} must hold a JSON array of staged events`);
  // Re-validated on every read: the file may have been edited by hand since it was staged.
  return raw.map((entry, i) => parseInput(batchItemSchema, entry, `staged[${i}]`));
}

/** Durable (temp file, fsync, rename): a crash never leaves half a queue. Mode 0600. */
function writeStage(dataDir: string, entries: BatchItem[]): void {
  mkdirDurably(dataDir);
  // An empty stage holds nothing to protect: plain `[]`, readable without the key.
  const cipher = entries.length > 0 ? stageCipher(dataDir) : null;
  const text = cipher ? JSON.stringify({ format: 1, sealed: cipher.seal(JSON.stringify(entries)).toString('base64') }) : JSON.stringify(entries, null, 2);
  writeFileDurably(stagePath(dataDir), `${text}\n`, 0o600);
}

/**
 * Stages one event after the validation a normal write gets (reference §1.1, §14.1): the request's
 * shape here, then the server's (or the direct engine's) check of the stage with it as the commit
 * would send it (POST /v1/batch/check: schemas, restrict mode, versions, a patch's result), which
 * writes nothing. A refused event is not staged, and the error says why, as the write would.
 */
export async function stageEvent(dataDir: string, body: Record<string, unknown>, connection: ConnectionFlags): Promise<BatchItem> {
  const entry = parseInput(batchItemSchema, body);
  const entries = readStage(dataDir);
  if (entries.length >= BATCH_EVENTS_MAX * 100) throw new CliError(`the stage already holds ${entries.length} events; commit them first`);
  // The commit's last chunk, the one this event goes in (a stage beyond one batch commits --chunked).
  const chunk = [...entries, entry].slice(-BATCH_EVENTS_MAX);
  await withClient(connection, (client) => client.checkBatch(chunk.map(toBatchEvent)));
  writeStage(dataDir, [...entries, entry]);
  return entry;
}

const staged = (e: BatchItem): unknown => ('patch' in e ? e.patch : e.payload);

/** `aggregate list --stage`: the staged events in any --format (the table shortens long payloads). */
const STAGE_LISTING: ListingSpec<BatchItem & { '#': number }> = {
  empty: 'no staged events',
  columns: [
    { name: '#', value: (e) => e['#'] },
    { name: 'aggregate_type', value: (e) => e.aggregate_type },
    { name: 'aggregate_id', value: (e) => e.aggregate_id },
    { name: 'event_type', value: (e) => e.event_type },
    {
      name: 'payload',
      value: (e) => staged(e),
      brief: (e) => {
        const payload = JSON.stringify(staged(e));
        return payload.length > 60 ? `${payload.slice(0, 59)}…` : payload;
      },
    },
  ],
};

export async function printStage(dataDir: string, type: string | undefined, flags: FormatFlags): Promise<void> {
  const entries = readStage(resolveDataDir(dataDir)).filter((e) => type === undefined || e.aggregate_type === type);
  if (formatOf(flags) === 'json') return printJson(entries);
  await printListing(flags, STAGE_LISTING, entries.map((e, i) => ({ ...e, '#': i + 1 })));
}

function toBatchEvent(e: BatchItem): BatchEvent {
  return {
    aggregateType: e.aggregate_type,
    aggregateId: e.aggregate_id,
    eventType: e.event_type,
    ...('patch' in e ? { patch: e.patch as BatchEvent['patch'] } : { payload: e.payload }),
    ...(e.metadata !== undefined ? { metadata: e.metadata } : {}),
    ...(e.note !== undefined ? { note: e.note } : {}),
    ...(e.expected_version !== undefined ? { expectedVersion: e.expected_version } : {}),
    ...(e.idempotency_key !== undefined ? { idempotencyKey: e.idempotency_key } : {}),
  };
}

/**
 * Every staged event gets an idempotency key, saved in the stage before anything is sent: a commit
 * interrupted between the server's answer and the stage's rewrite (a kill, a lost answer) is run
 * again as a replay of the same events, never as a second copy of them. Keys the user gave stay.
 */
function withIdempotencyKeys(dataDir: string, entries: BatchItem[]): BatchItem[] {
  if (entries.every((e) => e.idempotency_key !== undefined)) return entries;
  const keyed = entries.map((e) => (e.idempotency_key !== undefined ? e : { ...e, idempotency_key: `dbx-stage-${randomUUID()}` }));
  writeStage(dataDir, keyed);
  return keyed;
}

export function commitCommand(): Command {
  return withFormatOptions(withConnectionOptions(new Command('commit')).option('--json', 'print the committed events as a JSON array'))
    .description('Commit every staged event in one atomic batch')
    .option('--chunked', `commit a stage larger than one batch (${BATCH_EVENTS_MAX}) in atomic chunks, dropping each from the stage once committed`)
    .addHelpText('after', '\nExample:\n  dbx aggregate apply order o-1 order_paid --field amount=10 --stage\n  dbx aggregate commit\n')
    .action(async (opts: ConnectionFlags & FormatFlags & { chunked?: boolean }) => {
      // A bad --format combination is refused before anything is committed.
      const format = formatOf(opts);
      const dataDir = resolveDataDir(opts.dataDir);
      const entries = withIdempotencyKeys(dataDir, readStage(dataDir));
      if (entries.length === 0) return printLine('no staged events to commit');
      if (entries.length > BATCH_EVENTS_MAX && !opts.chunked) {
        throw new UsageError(`${entries.length} staged events exceed one atomic batch (${BATCH_EVENTS_MAX}); add --chunked to commit them in atomic chunks`);
      }
      const committed = await withClient(opts, async (client) => {
        const done: Wire<EventRecord<Record<string, unknown>>>[] = [];
        const bar = entries.length > BATCH_EVENTS_MAX ? progress('committing', entries.length) : undefined;
        try {
          for (let start = 0; start < entries.length; start += BATCH_EVENTS_MAX) {
            const chunk = entries.slice(start, start + BATCH_EVENTS_MAX);
            done.push(...toWire(await client.batch(chunk.map(toBatchEvent))));
            // The stage keeps exactly what is not committed yet.
            writeStage(dataDir, entries.slice(start + chunk.length));
            bar?.increment(chunk.length);
          }
        } finally {
          bar?.stop();
        }
        return done;
      });
      await printListing(opts, EVENT_LISTING, committed);
      if (format === 'table' || format === 'lines') printLine(`committed ${committed.length} event(s)`);
    });
}
