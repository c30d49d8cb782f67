/**
 * `dbx import <file.jsonl>`: bulk-loads event records (one per line, as the API returns them)
 * through POST /v1/import, with the server running or, when stopped, with the engine in-process.
 *
 * The file is streamed in requests of `--request-lines` lines: one HTTP request must arrive within
 * the server's `[http] request_timeout_ms`, and a file of any size never sits in memory. Requests
 * go one after another, so a failure stops the import at its line; everything answered before it
 * stays committed, and running the same command again skips what is already stored.
 */
import { createReadStream } from 'node:fs';
import { Command, Option } from 'commander';
import { EventDbxError, createError, toWire, type ImportSummary as ClientImportSummary, type Wire } from '../client/index.js';
import { parsePositiveInt, withConnectionOptions, type ConnectionFlags } from './options.js';
import { UsageError, keyValues, printJson, printLine, readableInputFile } from './output.js';
import { withClient } from './session.js';

/** Counts as the API names them (what the summary prints). */
type ImportSummary = Wire<ClientImportSummary>;

type ImportFlags = ConnectionFlags & { verify: boolean; requestLines: number; json?: boolean };

/** Cuts a byte stream into consecutive pieces of at most `linesMax` lines each, without copying. */
class LineSegments {
  private readonly chunks: AsyncIterator<Buffer>;
  private rest: Buffer | undefined;

  constructor(source: AsyncIterable<Buffer>) {
    this.chunks = source[Symbol.asyncIterator]();
  }

  /** True while bytes remain (pulls one chunk ahead to know). */
  async more(): Promise<boolean> {
    if (this.rest && this.rest.length > 0) return true;
    const next = await this.chunks.next();
    if (next.done) return false;
    this.rest = next.value;
    return true;
  }

  async *segment(linesMax: number): AsyncGenerator<Buffer> {
    let lines = 0;
    for (;;) {
      let buf = this.rest;
      this.rest = undefined;
      if (!buf) {
        const next = await this.chunks.next();
        if (next.done) return;
        buf = next.value;
      }
      let pos = 0;
      while (lines < linesMax) {
        const nl = buf.indexOf(10, pos);
        if (nl < 0) break;
        lines++;
        pos = nl + 1;
      }
      if (lines >= linesMax) {
        if (pos < buf.length) this.rest = buf.subarray(pos);
        yield buf.subarray(0, pos);
        return;
      }
      yield buf;
    }
  }
}

export function importCommand(): Command {
  return withConnectionOptions(new Command('import').argument('<file>', 'NDJSON file of event records ("-" reads standard input)'))
    .description('Bulk-load event records, one JSON record per line as the API returns them (GET /v1/events items)')
    .option('--verify', 'refuse a line whose given hash or merkle_root differs from the recomputed one (default)')
    .option('--no-verify', 'recompute hashes and roots and store those, ignoring the given ones')
    .addOption(
      new Option('--request-lines <n>', 'lines per HTTP request (each must arrive within [http] request_timeout_ms)').argParser(parsePositiveInt).default(50_000),
    )
    .option('--json', 'print the summary as JSON')
    .addHelpText(
      'after',
      '\nEach aggregate\'s events must appear in version order, continuing what is stored. Atomic per chunk;\nre-running the same file skips versions already stored with the same hash.\n\nExample:\n  dbx import events.jsonl\n',
    )
    .action(async (file: string, opts: ImportFlags) => {
      if (opts.requestLines < 1) throw new UsageError('--request-lines must be at least 1');
      const source = readableInputFile(file) === '-' ? (process.stdin as AsyncIterable<Buffer>) : createReadStream(file, { highWaterMark: 256 * 1024 });
      const started = process.hrtime.bigint();
      const total: ImportSummary = { lines: 0, imported: 0, skipped: 0, aggregates_created: 0 };
      await withClient(opts, async (client) => {
        const segments = new LineSegments(source);
        let offset = 0;
        while (await segments.more()) {
          let answer: ImportSummary;
          try {
            answer = toWire(await client.importEvents(segments.segment(opts.requestLines), { verify: opts.verify }));
          } catch (err) {
            throw inFile(err, offset, total);
          }
          total.imported += answer.imported;
          total.skipped += answer.skipped;
          total.aggregates_created += answer.aggregates_created;
          total.lines = offset + answer.lines;
          offset += opts.requestLines;
        }
      });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const summary = { file, ...total, seconds: Math.round(seconds * 1000) / 1000, events_per_sec: Math.round(total.imported / Math.max(seconds, 1e-9)) };
      if (opts.json) printJson(summary);
      else printLine(keyValues(summary));
    });
}

/** A request's line number becomes the file's, and the message says what stayed committed. */
function inFile(err: unknown, offset: number, total: ImportSummary): unknown {
  if (!(err instanceof EventDbxError)) return err;
  const details = (err.details ?? {}) as Partial<ImportSummary> & { line?: number };
  const committed = total.imported + (details.imported ?? 0);
  const where = typeof details.line === 'number' ? offset + details.line : undefined;
  const message = where !== undefined ? err.message.replace(/^line \d+: /, `line ${where}: `) : err.message;
  // A refused line fails again on a rerun until it is fixed; anything else (a lost connection, a
  // restart) may pass: either way, what is stored is skipped on the next run.
  const next = where !== undefined ? `fix line ${where}, then run the same command again: stored events are skipped` : 'run the same command again to continue';
  return createError(err.code, `${message} (${committed} events committed by this run; ${next})`, {
    status: err.status,
    details: { ...details, ...(where !== undefined ? { line: where } : {}), imported: committed },
  });
}
