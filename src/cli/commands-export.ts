/**
 * `dbx aggregate replay` (reference §1.1) and `dbx aggregate export` (§14.4), both streamed: the
 * events or rows go from the server's LMDB ranges to stdout or to the file as they arrive, so
 * memory stays flat whatever the size (issue 13 items 5 and 6). Like every command they go through
 * the running server, or open the data directory themselves when it is stopped (session.ts).
 *
 * Streams use their own small connection pool (client/stream.ts) with the CLI's token and tenant,
 * and read the API's JSON as sent (never re-cased): what is printed or written is the server's.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { StreamOpener, ndjsonLines } from '../client/stream.js';
import { placeExport, DurableFile, type ExportFormat, type Placement } from './export-files.js';
import { verifyExport, type VerifyReport } from './export-verify.js';
import { CsvRowCounter, JsonArrayScanner } from './json-scan.js';
import { parsePositiveInt, withConnectionOptions, type ConnectionFlags } from './options.js';
import { UsageError, keyValues, printJson, printLine, progress, type Progress } from './output.js';
import { clientTrust, resolveToken, withClient, type SessionContext } from './session.js';
import { missingDataDirError } from './direct.js';
import { ZipWriter } from './zip.js';

/** A silence this long between two chunks of a stream fails it (a CSV header pass sends nothing first). */
const STREAM_IDLE_MS = 300_000;

async function withStreams<T>(flags: ConnectionFlags, fn: (opener: StreamOpener, ctx: SessionContext) => Promise<T>): Promise<T> {
  return withClient(flags, async (client, ctx) => {
    // A read of a data dir that does not exist says so (not that cli.token is missing).
    if (ctx.mode === 'direct' && !existsSync(ctx.dataDir)) throw missingDataDirError(ctx.dataDir);
    const trust = ctx.mode === 'server' ? clientTrust(flags, ctx.dataDir, ctx.config, flags.server === undefined) : {};
    const ca = trust.ca ?? (trust.caFile !== undefined ? readFileSync(trust.caFile) : undefined);
    const token = resolveToken(flags, ctx.dataDir, flags.server);
    const opener = new StreamOpener({ url: new URL(client.url), token, tenant: client.tenant, timeoutMs: STREAM_IDLE_MS, ...(ca !== undefined ? { ca } : {}) });
    try {
      return await fn(opener, ctx);
    } finally {
      await opener.close();
    }
  });
}

/** stdout with backpressure: a replay of a long history into a slow pipe must not queue it all. */
async function out(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
}

export function replayCommand(): Command {
  return withConnectionOptions(new Command('replay').argument('<aggregate>').argument('<aggregate_id>'))
    .description("Print an aggregate's events in version order (each a JSON document; --json: one JSON array)")
    .option('--skip <n>', 'pass over the first n events', parsePositiveInt, 0)
    .option('--take <n>', 'print at most n events', parsePositiveInt)
    .option('--json', 'print one JSON array')
    .addHelpText('after', '\nThe events are streamed (memory stays flat however long the history is); --skip is a key lookup, not a scan.\n\nExample:\n  dbx aggregate replay person p-1 --skip 10 --take 5 --json\n')
    .action(async (type: string, id: string, opts: ConnectionFlags & { skip: number; take?: number; json?: boolean }) => {
      await withStreams(opts, async (opener) => {
        const { body } = await opener.open(`/v1/aggregates/${encodeURIComponent(type)}/${encodeURIComponent(id)}/replay`, { skip: opts.skip, take: opts.take }, 'application/x-ndjson');
        let count = 0;
        for await (const event of ndjsonLines(body)) {
          const text = JSON.stringify(event, null, 2);
          // --json: exactly JSON.stringify(events, null, 2), built one event at a time.
          if (opts.json) await out(`${count === 0 ? '[\n' : ',\n'}  ${text.replace(/\n/g, '\n  ')}`);
          else await out(`${text}\n`);
          count++;
        }
        if (opts.json) await out(count === 0 ? '[]\n' : '\n]\n');
      });
    });
}

interface ExportFlags extends ConnectionFlags {
  all?: boolean;
  output?: string;
  format: ExportFormat;
  zip?: boolean;
  pretty?: boolean;
  json?: boolean;
  verify?: string;
}

interface FileResult {
  aggregate_type: string;
  path: string;
  aggregates: number;
  bytes: number;
}

/**
 * Progress on stderr: a bar on a terminal; with --json one JSON line per second and one per
 * finished type (`{"progress":"export",…}`), so a script can follow a long export.
 */
class ExportProgress {
  private readonly bar: Progress | undefined;
  private done = 0;
  private lastLine = 0;

  constructor(
    private readonly json: boolean,
    private readonly total: number,
    label: string,
  ) {
    this.bar = json ? undefined : progress(label, total);
  }

  update(type: string, rowsOfType: number, bytes: number, delta: number, final = false): void {
    this.done += delta;
    this.bar?.increment(delta);
    if (!this.json) return;
    const now = Date.now();
    if (!final && now - this.lastLine < 1000) return;
    this.lastLine = now;
    process.stderr.write(`${JSON.stringify({ progress: 'export', aggregate_type: type, type_aggregates: rowsOfType, aggregates: this.done, total: this.total, bytes })}\n`);
  }

  stop(): void {
    this.bar?.stop();
  }
}

/** The export body of one type, counted row by row as it passes to the file or the archive. */
async function* counted(body: AsyncIterable<Buffer>, format: ExportFormat, onRows: (rows: number, bytes: number, delta: number) => void): AsyncGenerator<Buffer> {
  const json = format === 'json' ? new JsonArrayScanner(false) : undefined;
  const csv = format === 'csv' ? new CsvRowCounter() : undefined;
  let bytes = 0;
  let rows = 0;
  for await (const chunk of body) {
    json?.feed(chunk);
    csv?.feed(chunk);
    bytes += chunk.length;
    const now = json ? json.rows : (csv as CsvRowCounter).rows;
    onRows(now, bytes, now - rows);
    rows = now;
    yield chunk;
  }
  // A transfer cut short fails here (or in the HTTP layer), so no short file is committed.
  json?.end();
}

async function exportTypes(opener: StreamOpener, type: string | undefined): Promise<{ aggregate_type: string; aggregates: number }[]> {
  const { items } = (await opener.json('/v1/export/types', { type })) as { items: { aggregate_type: string; aggregates: number }[] };
  return items.filter((t) => t.aggregates > 0);
}

async function runExport(opener: StreamOpener, type: string | undefined, opts: ExportFlags): Promise<void> {
  const started = performance.now();
  const types = await exportTypes(opener, type);
  const format = opts.format;
  if (types.length === 0) {
    if (opts.json) printJson({ format, zip: null, aggregate_types: 0, aggregates: 0, bytes: 0, seconds: 0, files: [] });
    else printLine(type !== undefined ? `no aggregates found for '${type}'` : 'no aggregates found');
    return;
  }
  const placement = placeExport(opts.output as string, types.map((t) => t.aggregate_type), format, opts.zip === true);
  const total = types.reduce((n, t) => n + t.aggregates, 0);
  const bar = new ExportProgress(opts.json === true, total, 'export');
  const files: FileResult[] = [];
  try {
    const stream = async (t: string, sink: (chunks: AsyncIterable<Buffer>) => Promise<void>): Promise<FileResult> => {
      const { body } = await opener.open('/v1/export', { type: t, format, pretty: opts.pretty === true && format === 'json' ? true : undefined }, format === 'json' ? 'application/json' : 'text/csv');
      const result = { aggregate_type: t, path: '', aggregates: 0, bytes: 0 };
      try {
        await sink(
          counted(body as AsyncIterable<Buffer>, format, (rows, bytes, delta) => {
            result.aggregates = rows;
            result.bytes = bytes;
            bar.update(t, rows, bytes, delta);
          }),
        );
      } finally {
        body.destroy();
      }
      bar.update(t, result.aggregates, result.bytes, 0, true);
      return result;
    };
    if (placement.kind === 'zip') await writeZip(placement, stream, files);
    else await writeFiles(placement, stream, files);
  } finally {
    bar.stop();
  }
  const seconds = Math.round((performance.now() - started) / 10) / 100;
  const summary = {
    format,
    zip: placement.kind === 'zip' ? placement.path : null,
    aggregate_types: files.length,
    aggregates: files.reduce((n, f) => n + f.aggregates, 0),
    bytes: files.reduce((n, f) => n + f.bytes, 0),
    seconds,
    files,
  };
  if (opts.json) return printJson(summary);
  if (placement.kind === 'zip') return printLine(`Exported ${files.length} aggregate type(s) to ${placement.path} (zip archive)`);
  for (const f of files) printLine(`wrote ${f.path}`);
  printLine(`Exported ${files.length} aggregate type(s) in ${format.toUpperCase()} format`);
}

type StreamType = (type: string, sink: (chunks: AsyncIterable<Buffer>) => Promise<void>) => Promise<FileResult>;

async function writeFiles(placement: Extract<Placement, { kind: 'files' }>, stream: StreamType, files: FileResult[]): Promise<void> {
  for (const { type, path } of placement.files) {
    const file = await DurableFile.create(path);
    try {
      const result = await stream(type, async (chunks) => {
        for await (const chunk of chunks) await file.write(chunk);
      });
      await file.commit();
      files.push({ ...result, path });
    } catch (err) {
      await file.abort();
      throw err;
    }
  }
}

async function writeZip(placement: Extract<Placement, { kind: 'zip' }>, stream: StreamType, files: FileResult[]): Promise<void> {
  const file = await DurableFile.create(placement.path);
  try {
    const zip = new ZipWriter(file.handle);
    for (const { type, name } of placement.entries) {
      const result = await stream(type, async (chunks) => {
        await zip.add(name, chunks);
      });
      files.push({ ...result, path: name });
    }
    await zip.finish();
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err;
  }
}

function printVerify(report: VerifyReport, json: boolean): void {
  if (json) printJson(report);
  else {
    printLine(keyValues({ checked: report.checked, unchanged: report.unchanged, changed_since: report.changed_since, mismatched: report.mismatched, added_since: report.added_since }));
    for (const p of report.problems) printLine(`mismatch ${keyValues({ aggregate_type: p.aggregate_type, aggregate_id: p.aggregate_id, version: p.version, problem: p.problem })} ${p.message}`);
    if (report.problems_truncated) printLine(`… ${report.mismatched - report.problems.length} more mismatches not listed`);
  }
  if (report.mismatched > 0) {
    process.stderr.write(`error: integrity_failed: ${report.mismatched} exported aggregate(s) do not match the store\n`);
    process.exitCode = 1;
  }
}

function checkFlags(type: string | undefined, opts: ExportFlags): void {
  if (opts.verify !== undefined) {
    const extra = [type !== undefined ? '<aggregate>' : '', opts.all ? '--all' : '', opts.output !== undefined ? '--output' : '', opts.zip ? '--zip' : '', opts.pretty ? '--pretty' : ''].filter(Boolean);
    if (extra.length > 0) throw new UsageError(`--verify cannot be combined with ${extra.join(', ')}`);
    return;
  }
  if (type !== undefined && opts.all) throw new UsageError('aggregate name cannot be provided when using --all');
  if (type === undefined && !opts.all) throw new UsageError('aggregate name must be provided unless --all is specified');
  if (opts.output === undefined) throw new UsageError('--output <path> is required');
}

export function exportCommand(): Command {
  return withConnectionOptions(new Command('export').argument('[aggregate]', 'the aggregate type to export'))
    .description('Export active aggregates to CSV or JSON files (one per type), or check a JSON export against the store (--verify)')
    .option('--all', 'export every aggregate type')
    .option('--output <path>', 'a file (one type) or a directory (one <type>.<format> per type); with --zip the archive or its directory')
    .addOption(new Option('--format <format>', 'csv or json (json rows carry __version and __merkle_root)').choices(['csv', 'json']).default('csv'))
    .option('--zip', 'write one zip archive (deflate) holding a <type>.<format> entry per type')
    .option('--pretty', 'indent JSON by two spaces')
    .option('--json', 'print a JSON summary on stdout and JSON progress lines on stderr')
    .option('--verify <path>', 'check a JSON export (file, directory or --zip archive) against the store; exit 1 on any mismatch')
    .addHelpText(
      'after',
      [
        '',
        'Rows are sorted by aggregate id and read from one point-in-time snapshot of the store; files are',
        'written under a temp name, fsynced and renamed, so a failed export leaves no partial file.',
        '',
        'Examples:',
        '  dbx aggregate export person --output person.csv',
        '  dbx aggregate export --all --format json --output exports/ --zip',
        '  dbx aggregate export --verify exports/aggregates_json.zip',
        '',
      ].join('\n'),
    )
    .action(async (type: string | undefined, opts: ExportFlags) => {
      checkFlags(type, opts);
      await withStreams(opts, async (opener) => {
        if (opts.verify !== undefined) return printVerify(await verifyExport(opener, opts.verify), opts.json === true);
        await runExport(opener, type, opts);
      });
    });
}
