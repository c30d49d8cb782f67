/**
 * `dbx aggregate export --verify <path>`: checks a JSON export (a file, a directory of them, or
 * an archive made with --zip) against the store, streaming both sides.
 *
 * Each file holds one type, sorted by aggregate id. It is merge-joined with a fresh export of the
 * same type (`GET /v1/export?format=json`, one snapshot, same order), so an aggregate the store
 * still holds at the exported version costs no request of its own: its `__merkle_root` and its
 * state (canonical JSON) must equal the store's. An aggregate the store has moved past since is
 * checked at the exported version (`GET …?version=N`: the root of events 1..N and the state
 * rebuilt at N), which must match too: the history was only appended to. Anything else is a
 * mismatch: the aggregate is missing, the store is behind the export (events lost, an older
 * backup restored), or the root or state differs (the file was edited, or the history rewritten).
 * Roots compared are the stored ones; `dbx aggregate verify <type> <id>` recomputes an aggregate's
 * hashes and root from its events.
 */
import { readdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { canonicalize, type JsonObject } from '../core/index.js';
import type { StreamOpener } from '../client/stream.js';
import { CliError, UsageError } from './output.js';
import { jsonArrayElements } from './json-scan.js';
import { readZipEntries } from './zip.js';

const RESERVED = ['__aggregate_type', '__aggregate_id', '__version', '__merkle_root'];
const ESCAPE = 'field:';
export const VERIFY_PROBLEMS_MAX = 1000;

export type ProblemKind = 'missing' | 'behind' | 'root_mismatch' | 'state_mismatch';

export interface VerifyProblem {
  aggregate_type: string;
  aggregate_id: string;
  version: number;
  problem: ProblemKind;
  message: string;
}

export interface VerifyReport {
  sources: string[];
  /** Rows of the export checked. */
  checked: number;
  /** Still at the exported version, root and state equal. */
  unchanged: number;
  /** Moved on since the export; its root and state at the exported version still match. */
  changed_since: number;
  mismatched: number;
  /** Active aggregates of the exported types that the export does not hold (created since). */
  added_since: number;
  problems: VerifyProblem[];
  problems_truncated: boolean;
}

interface ExportRow {
  type: string;
  id: string;
  version: number;
  root: string;
  /** Canonical JSON of the state the row carries. */
  state: string;
}

function rowOf(value: unknown, where: string): ExportRow {
  const row = value as Record<string, unknown>;
  const { __aggregate_type: type, __aggregate_id: id, __version: version, __merkle_root: root } = row ?? {};
  if (typeof type !== 'string' || typeof id !== 'string' || !Number.isSafeInteger(version) || typeof root !== 'string' || !/^[0-9a-f]{64}$/.test(root)) {
    throw new CliError(`${where}: not a row of a JSON export (needs __aggregate_type, __aggregate_id, __version and __merkle_root; a CSV export cannot be verified)`);
  }
  const state: JsonObject = {};
  for (const [key, v] of Object.entries(row)) {
    if (RESERVED.includes(key)) continue;
    Object.defineProperty(state, key.startsWith(ESCAPE) ? key.slice(ESCAPE.length) : key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return { type, id, version: version as number, root, state: canonicalize(state) };
}

interface Source {
  label: string;
  body: () => AsyncIterable<Buffer>;
}

async function isZip(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await file.read(head, 0, 4, 0);
    return bytesRead === 4 && head.readUInt32LE(0) === 0x04034b50;
  } finally {
    await file.close();
  }
}

async function fileSource(path: string): Promise<Source[]> {
  if (await isZip(path)) {
    const entries = (await readZipEntries(path)).filter((e) => extname(e.name).toLowerCase() === '.json');
    if (entries.length === 0) throw new CliError(`${path} holds no .json export (a CSV export cannot be verified)`);
    return entries.map((e) => ({ label: `${path}:${e.name}`, body: () => e.body() }));
  }
  if (extname(path).toLowerCase() === '.csv') throw new UsageError(`${path}: a CSV export carries no versions or Merkle roots; verify a --format json export`);
  return [{ label: path, body: () => readBody(path) }];
}

async function* readBody(path: string): AsyncGenerator<Buffer> {
  const file = await open(path, 'r');
  try {
    for await (const chunk of file.createReadStream({ autoClose: false })) yield chunk as Buffer;
  } finally {
    await file.close();
  }
}

async function sourcesOf(path: string): Promise<Source[]> {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new CliError(`${path} does not exist`, 1, 'not_found');
  }
  if (!stat.isDirectory()) return fileSource(path);
  const names = readdirSync(path)
    .filter((name) => ['.json', '.zip'].includes(extname(name).toLowerCase()))
    .sort();
  if (names.length === 0) throw new CliError(`${path} holds no .json export or .zip archive`);
  const out: Source[] = [];
  for (const name of names) out.push(...(await fileSource(join(path, name))));
  return out;
}

/** Checks every source; the report lists what does not match (at most VERIFY_PROBLEMS_MAX). */
export async function verifyExport(opener: StreamOpener, path: string, onRow?: () => void): Promise<VerifyReport> {
  const sources = await sourcesOf(path);
  const report: VerifyReport = { sources: sources.map((s) => s.label), checked: 0, unchanged: 0, changed_since: 0, mismatched: 0, added_since: 0, problems: [], problems_truncated: false };
  const problem = (row: ExportRow, kind: ProblemKind, message: string): void => {
    report.mismatched++;
    if (report.problems.length < VERIFY_PROBLEMS_MAX) report.problems.push({ aggregate_type: row.type, aggregate_id: row.id, version: row.version, problem: kind, message });
    else report.problems_truncated = true;
  };
  for (const source of sources) await verifySource(opener, source, report, problem, onRow);
  return report;
}

async function verifySource(
  opener: StreamOpener,
  source: Source,
  report: VerifyReport,
  problem: (row: ExportRow, kind: ProblemKind, message: string) => void,
  onRow: (() => void) | undefined,
): Promise<void> {
  let current: { iterator: AsyncIterator<unknown>; destroy: () => void } | undefined;
  let cur: ExportRow | undefined;
  const advance = async (): Promise<void> => {
    const next = await current!.iterator.next();
    cur = next.done ? undefined : rowOf(next.value, 'the store');
  };
  let type: string | undefined;
  let previous: string | undefined;
  let n = 0;
  try {
    for await (const element of fileElements(source)) {
      n++;
      const row = rowOf(element, `${source.label}: row ${n}`);
      if (type === undefined) {
        type = row.type;
        const { body } = await opener.open('/v1/export', { type, format: 'json' }, 'application/json');
        current = { iterator: jsonArrayElements(body)[Symbol.asyncIterator](), destroy: () => body.destroy() };
        await advance();
      } else if (row.type !== type) {
        throw new CliError(`${source.label}: row ${n} is of type ${row.type}, the file's rows are of type ${type} (one type per file)`);
      }
      if (previous !== undefined && !(row.id > previous)) throw new CliError(`${source.label}: row ${n} (${row.id}) is not after ${previous}: an export is sorted by __aggregate_id`);
      previous = row.id;
      while (cur && cur.id < row.id) {
        report.added_since++;
        await advance();
      }
      report.checked++;
      if (cur && cur.id === row.id) {
        const now = cur;
        await advance();
        if (now.version === row.version) {
          if (now.root !== row.root) problem(row, 'root_mismatch', `merkle_root differs at version ${row.version} (store ${now.root})`);
          else if (now.state !== row.state) problem(row, 'state_mismatch', `state differs at version ${row.version}`);
          else report.unchanged++;
        } else if (now.version < row.version) {
          problem(row, 'behind', `the store is at version ${now.version}, before the exported version ${row.version}`);
        } else await checkAt(opener, row, report, problem);
      } else {
        // Not active now: archived since (still readable at the version), or gone.
        await checkAt(opener, row, report, problem);
      }
      onRow?.();
    }
    while (cur) {
      report.added_since++;
      await advance();
    }
  } finally {
    current?.destroy();
  }
}

/** The rows of an export file; a file that is not one (an NDJSON tenant export, a cut file) is the user's input, not our bug. */
async function* fileElements(source: Source): AsyncGenerator<unknown> {
  try {
    yield* jsonArrayElements(source.body());
  } catch (err) {
    if (err instanceof SyntaxError) throw new CliError(`${source.label} is not a JSON export of \`dbx aggregate export --format json\`: ${err.message}`);
    throw err;
  }
}

/** The aggregate as of the exported version (root of events 1..N, state rebuilt at N). */
async function checkAt(opener: StreamOpener, row: ExportRow, report: VerifyReport, problem: (row: ExportRow, kind: ProblemKind, message: string) => void): Promise<void> {
  let stored: { version: number; merkle_root: string; state: JsonObject };
  try {
    stored = (await opener.json(`/v1/aggregates/${encodeURIComponent(row.type)}/${encodeURIComponent(row.id)}`, { version: row.version })) as typeof stored;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'not_found') return problem(row, 'missing', 'the store does not hold this aggregate');
    throw err;
  }
  if (stored.version < row.version) return problem(row, 'behind', `the store is at version ${stored.version}, before the exported version ${row.version}`);
  if (stored.merkle_root !== row.root) return problem(row, 'root_mismatch', `merkle_root at version ${row.version} differs (store ${stored.merkle_root}): the history was rewritten or the file edited`);
  if (canonicalize(stored.state) !== row.state) return problem(row, 'state_mismatch', `state at version ${row.version} differs`);
  report.changed_since++;
}
