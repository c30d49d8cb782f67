/**
 * The server's pino logger settings: level and format from `[log]` in config.toml, overridden for
 * one run by `EVENTDBX_LOG_LEVEL` / `EVENTDBX_LOG_FORMAT`. JSON lines (pino's own) for files,
 * pipes and log shippers; on a terminal a short coloured line a person can read, written in this
 * process (no transport thread: pino-pretty's worker costs a thread and ~10 dependencies for what
 * is ~60 lines here).
 */
import { LOG_FORMATS, LOG_LEVELS, type Config } from '../core/index.js';

export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];

export class LogSettingsError extends Error {}

function pick<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined || value === '') return undefined;
  const lower = value.toLowerCase();
  if (!(allowed as readonly string[]).includes(lower)) throw new LogSettingsError(`${name} must be one of ${allowed.join(', ')} (got '${value}')`);
  return lower as T;
}

/** Precedence: the caller's explicit level (tests, the CLI's direct mode) → environment → config.toml. */
export function resolveLogSettings(config: Config['log'], explicitLevel: string | undefined, env: NodeJS.ProcessEnv = process.env): { level: LogLevel; format: LogFormat } {
  const level = pick('the log level', explicitLevel, LOG_LEVELS) ?? pick('EVENTDBX_LOG_LEVEL', env.EVENTDBX_LOG_LEVEL, LOG_LEVELS) ?? config.level;
  const format = pick('EVENTDBX_LOG_FORMAT', env.EVENTDBX_LOG_FORMAT, LOG_FORMATS) ?? config.format;
  return { level, format };
}

/** https://no-color.org: NO_COLOR (non-empty) turns colour off; FORCE_COLOR turns it on off a terminal. */
export function wantsColour(out: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return out.isTTY === true;
}

/** The fastify `logger` option: pino's JSON to stdout, or the pretty line on a terminal. */
export function loggerOptions(settings: { level: LogLevel; format: LogFormat }, out: NodeJS.WriteStream = process.stdout): Record<string, unknown> {
  const pretty = settings.format === 'pretty' || (settings.format === 'auto' && out.isTTY === true);
  if (!pretty) return { level: settings.level };
  const colour = wantsColour(out);
  return { level: settings.level, stream: { write: (line: string) => out.write(prettyLine(line, colour)) } };
}

const LEVEL_NAMES: Record<number, [name: string, colour: number]> = {
  10: ['TRACE', 90],
  20: ['DEBUG', 34],
  30: ['INFO ', 32],
  40: ['WARN ', 33],
  50: ['ERROR', 31],
  60: ['FATAL', 35],
};
/** pino's own fields, shown in the line's fixed part or not at all. */
const FIXED = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'v', 'err']);
const REQUEST_FIELDS = new Set(['method', 'route', 'path', 'status', 'code']);
const NONE = new Set<string>();
const BARE = /^[A-Za-z0-9_.:/@+-]{1,200}$/;

const paint = (colour: boolean, code: number, text: string): string => (colour ? `\u001b[${code}m${text}\u001b[0m` : text);

function show(value: unknown): string {
  if (typeof value === 'string') return BARE.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * One pino JSON line → `12:04:05.123 WARN  message key=value …` (+ an error's stack, indented).
 * Strings with spaces or control characters are JSON-quoted, so a line can never forge another.
 */
export function prettyLine(line: string, colour: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const [name, code] = LEVEL_NAMES[Number(entry.level)] ?? ['LOG  ', 0];
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '';
  // A request line's message already reads `GET /route → 404 code`: do not repeat those fields.
  const inMessage = typeof entry.msg === 'string' && typeof entry.status === 'number' && entry.msg.includes(`→ ${entry.status}`) ? REQUEST_FIELDS : NONE;
  const fields = Object.entries(entry)
    .filter(([key, value]) => !FIXED.has(key) && !inMessage.has(key) && value !== undefined)
    .map(([key, value]) => `${paint(colour, 2, `${key}=`)}${show(value)}`);
  const message = typeof entry.msg === 'string' ? JSON.stringify(entry.msg).slice(1, -1) : '';
  let out = `${paint(colour, 2, time)} ${paint(colour, code, name)} ${paint(colour, 1, message)}${fields.length ? ` ${fields.join(' ')}` : ''}\n`;
  const err = entry.err as { message?: unknown; stack?: unknown } | undefined;
  if (err && typeof err === 'object') {
    const stack = typeof err.stack === 'string' ? err.stack : typeof err.message === 'string' ? err.message : JSON.stringify(err);
    out += `${stack.split('\n').map((l) => `    ${l}`).join('\n')}\n`;
  }
  return out;
}
