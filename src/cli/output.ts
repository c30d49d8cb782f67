/**
 * How the CLI reports. Errors are one line `error: <code>: <message>` (never a stack trace).
 * Exit codes: 0 ok, 1 failed, 2 usage (bad flags or arguments, commander's own errors included).
 */
import { accessSync, constants, statSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { CommanderError } from 'commander';
import { DbxError } from '../core/index.js';
import { EventDbxError } from '../client/index.js';
import { tableText } from './format.js';
import { paint } from './terminal.js';

export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A failure the CLI itself detected; `exitCode` 2 marks misuse. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILED,
    /** A code from the API's error catalogue, so scripts can match CLI and API errors alike. */
    readonly code: string = 'invalid_input',
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
    this.name = 'UsageError';
  }
}

function detailLines(details: unknown): string {
  // A refused batch item carries its violations as `{ index, violations }`.
  const list = Array.isArray(details) ? details : (details as { violations?: unknown } | undefined)?.violations;
  if (!Array.isArray(list) || list.length < 2) return '';
  return list
    .map((d: { path?: unknown; message?: unknown }) => `  - ${typeof d.path === 'string' ? `${d.path}: ` : ''}${String(d.message ?? JSON.stringify(d))}\n`)
    .join('');
}

/**
 * `--json` / `--format json` make errors JSON too, on stderr: `{"error":{"code","message","details"?}}`,
 * the API's error model, so a script reads one shape whether the failure was the server's or ours.
 */
let jsonErrors = false;

export function setErrorFormat(json: boolean): void {
  jsonErrors = json;
}

/** Whether argv asks for JSON output (read before parsing, so commander's usage errors follow it). */
export function wantsJson(argv: string[]): boolean {
  return argv.some((arg, i) => arg === '--json' || arg === '--format=json' || (arg === '--format' && argv[i + 1] === 'json'));
}

function writeError(code: string, message: string, details: unknown, lines: string): void {
  if (jsonErrors) {
    process.stderr.write(`${JSON.stringify({ error: { code, message, ...(details !== undefined ? { details } : {}) } })}\n`);
  } else {
    process.stderr.write(`${paint('error:', 'red', process.stderr)} ${code}: ${message}\n${lines}`);
  }
}

/** Commander's own messages (unknown option, missing argument), in our form; its hint stays text-only. */
export function formatUsageError(text: string): string {
  if (!jsonErrors) return text.replace(/^error: /, 'error: invalid_input: ');
  if (!text.startsWith('error: ')) return '';
  return `${JSON.stringify({ error: { code: 'invalid_input', message: text.slice('error: '.length).trim() } })}\n`;
}

/**
 * A DbxError of the server's own copy of src/core: the bundled CLI (main.ts) loads the server from
 * the compiled modules, so an error the server throws in this process is not `instanceof` ours.
 */
function isServerDbxError(err: unknown): err is DbxError {
  return err instanceof Error && err.name === 'DbxError' && typeof (err as { code?: unknown }).code === 'string';
}

/**
 * An input file named on the command line, checked before any work starts (a request, a server
 * start): missing, a directory or unreadable is `invalid_input` naming the file. '-' (standard
 * input) passes as it is.
 */
export function readableInputFile(file: string): string {
  if (file === '-') return file;
  try {
    if (statSync(file).isDirectory()) throw new CliError(`cannot read ${file}: it is a directory`);
    accessSync(file, constants.R_OK);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return file;
}

/** Errors of reading or writing a path the user named (ENOENT, EACCES…): their input, not our bug. */
const PATH_ERRORS = new Set(['ENOENT', 'EISDIR', 'ENOTDIR', 'EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'ENAMETOOLONG', 'ELOOP']);

function isPathError(err: unknown): err is NodeJS.ErrnoException & { path: string } {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).path === 'string' && PATH_ERRORS.has((err as NodeJS.ErrnoException).code ?? '');
}

export function exitWithError(err: unknown): never {
  if (err instanceof CommanderError) {
    // Commander has already printed its message; help and --version are not failures.
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  }
  if (err instanceof EventDbxError || err instanceof DbxError || isServerDbxError(err)) {
    writeError(err.code, err.message, err.details, detailLines(err.details));
    process.exit(EXIT_FAILED);
  }
  if (err instanceof CliError) {
    writeError(err.code, err.message, undefined, '');
    process.exit(err.exitCode);
  }
  if (isPathError(err)) {
    writeError('invalid_input', `cannot use ${err.path}: ${err.code}`, undefined, '');
    process.exit(EXIT_FAILED);
  }
  // Config and start-up failures name their cause in the message; anything else is unexpected.
  const name = err instanceof Error ? err.name : '';
  const code = name === 'ConfigError' ? 'invalid_input' : name === 'DataDirBusyError' || name === 'ServerStartError' ? 'unavailable' : 'internal';
  writeError(code, err instanceof Error ? err.message : String(err), undefined, '');
  process.exit(EXIT_FAILED);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** `key=value key=value`, the original CLI's one-line form. */
export function keyValues(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
}

/**
 * A table printed at once, in psql's aligned format and fitted to the terminal (format.ts); a
 * listing that should take --format uses printListing instead.
 */
export function printTable(head: string[], rows: unknown[][]): void {
  process.stdout.write(tableText(head, rows));
}

export function short(hash: string, length = 12): string {
  return hash.length > length ? `${hash.slice(0, length)}…` : hash;
}

/** Up to three of `Nd Nh Nm Ns`; `under 1s` for zero (the original's format). */
export function formatUptime(totalSecs: number): string {
  const secs = Math.max(0, Math.floor(totalSecs));
  if (secs === 0) return 'under 1s';
  const units: [string, number][] = [
    ['d', Math.floor(secs / 86_400)],
    ['h', Math.floor((secs % 86_400) / 3600)],
    ['m', Math.floor((secs % 3600) / 60)],
    ['s', secs % 60],
  ];
  return units
    .filter(([, n]) => n > 0)
    .slice(0, 3)
    .map(([unit, n]) => `${n}${unit}`)
    .join(' ');
}

export interface Progress {
  increment(by?: number): void;
  setTotal(total: number): void;
  stop(): void;
}

/** A progress bar on stderr, only when stderr is a terminal (never in pipes, logs or tests). */
export function progress(label: string, total = 0): Progress {
  if (!process.stderr.isTTY) return { increment: () => {}, setTotal: () => {}, stop: () => {} };
  const format = total > 0 ? `${label} [{bar}] {value}/{total}` : `${label} {value}`;
  const bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic);
  bar.start(total, 0);
  return {
    increment: (by = 1) => bar.increment(by),
    setTotal: (n) => bar.setTotal(n),
    stop: () => bar.stop(),
  };
}
