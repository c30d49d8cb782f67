/**
 * What the read-model kinds (postgres, csv, json) share: reading a delivery body's ids and state,
 * file placement under a read-model directory, and durable appends.
 */
import { mkdirDurably } from '../../core/durable-file.js';
import { accessSync, closeSync, constants, fdatasyncSync, fstatSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { fsyncDirectory, type JsonObject, type JsonValue } from '../../core/index.js';
import type { Deliverer, Delivery, DeliveryBody } from '../types.js';
import { shortReason } from './wire.js';

/**
 * The ids every kind relies on, checked again here because they become file and table names: the
 * body is built by our dispatcher, but a name that escapes its directory must never be written.
 */
const bodyIds = z.object({
  event_id: z.string().min(1).max(128),
  tenant: z.string().min(1).max(128),
  aggregate_type: z.string().regex(/^[a-z][a-z0-9_]*$/, 'aggregate_type must be lowercase snake_case').max(64),
  aggregate_id: z.string().min(1).max(1024),
  version: z.number().int().min(1),
  event_type: z.string().min(1).max(128),
});

/** Options through their zod schema (defaults filled), failing with `<kind>: invalid options: …`. */
export function parseOptions<S extends z.ZodType>(kind: string, schema: S, options: unknown): z.output<S> {
  const parsed = schema.safeParse(options);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new Error(`${kind}: invalid options${issue ? `: ${issue.path.join('.') || 'options'}: ${issue.message}` : ''}`);
}

export function checkBodyIds(body: DeliveryBody): void {
  const parsed = bodyIds.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`delivery body is malformed: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`);
  }
}

export interface StateParts {
  fields: JsonObject;
  merkle_root: string | null;
  archived: boolean | null;
  updated_at: string | null;
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * `body.state` is typed as the state object (DeliveryBody), while the original sent the whole
 * AggregateState (`{aggregate_type, aggregate_id, version, state, merkle_root, archived, …}`).
 * Both are accepted: a view is recognised only when its ids and version equal the body's, which
 * a plain field map cannot match by accident unless it copies all three. merkle_root falls back to
 * the event record's (the root after this event, the same value) when the state does not carry it.
 */
export function stateParts(body: DeliveryBody): StateParts | undefined {
  const state = body.state;
  if (!isObject(state)) return undefined;
  const eventRoot = typeof body.event?.merkle_root === 'string' ? body.event.merkle_root : null;
  const eventTime = typeof body.event?.metadata?.created_at === 'string' ? body.event.metadata.created_at : null;
  if (
    isObject(state['state']) &&
    state['aggregate_type'] === body.aggregate_type &&
    state['aggregate_id'] === body.aggregate_id &&
    state['version'] === body.version
  ) {
    return {
      fields: state['state'],
      merkle_root: typeof state['merkle_root'] === 'string' ? state['merkle_root'] : eventRoot,
      archived: typeof state['archived'] === 'boolean' ? state['archived'] : null,
      updated_at: typeof state['updated_at'] === 'string' ? state['updated_at'] : eventTime,
    };
  }
  return { fields: state, merkle_root: eventRoot, archived: null, updated_at: eventTime };
}

/** The fields a file row shows: the state after the event when sent, else the event's payload object. */
export function rowFields(body: DeliveryBody): JsonObject {
  const state = stateParts(body);
  if (state !== undefined) return state.fields;
  const payload = body.event?.payload;
  return isObject(payload) ? payload : {};
}

/** The event's creation time when the body has it (event record, or a state view's updated_at). */
export function eventTime(body: DeliveryBody): string {
  if (typeof body.event?.metadata?.created_at === 'string') return body.event.metadata.created_at;
  return stateParts(body)?.updated_at ?? '';
}

/** Compact text of a field value for a file cell: strings as they are, null empty, the rest JSON. */
export function cellText(value: JsonValue | undefined): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** A relative read-model directory lives under the server's data directory. */
export function readModelDir(dir: string, dataDir: string): string {
  return isAbsolute(dir) ? dir : resolve(dataDir, dir);
}

/** `<dir>/<aggregate_type><ext>`; the type was checked by checkBodyIds, so it cannot hold `/` or `..`. */
export function readModelFile(dir: string, aggregateType: string, ext: string): string {
  return join(dir, `${aggregateType}${ext}`);
}

export function ensureDir(dir: string): void {
  mkdirDurably(dir);
}

/**
 * Appends bytes and waits for them to reach the disk before the job counts as delivered (the
 * queue marks it done next). Cost: one fdatasync (~0.2 ms here) per delivery; a new file also
 * fsyncs its directory so the file itself survives a power cut. Returns the file size after.
 * Synchronous on purpose, like every file step of the csv and json kinds: one delivery's read,
 * widen and append then run to the end before the worker's event loop starts another, so two
 * deliveries to one file never interleave within a thread (the cost is a worker thread blocked
 * ~0.2 ms); withFileLock keeps other threads out.
 */
export function appendDurably(path: string, data: string): number {
  const bytes = Buffer.from(data, 'utf8');
  let created = false;
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL, 0o600);
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    fd = openSync(path, constants.O_WRONLY | constants.O_APPEND);
  }
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fdatasyncSync(fd);
    const size = fstatSync(fd).size;
    // A file this call created, or one a crash left empty right after its creation (its entry
    // perhaps never synced): the directory entry is made durable with the first bytes.
    if (created || size === bytes.length) fsyncDirectory(resolve(path, '..'));
    return size;
  } finally {
    closeSync(fd);
  }
}

// A lock is held for one append (sub-millisecond) or one header rewrite (a full file copy), so a
// lock this old was left by a thread that died holding it. A live holder in another process (two
// servers sharing an absolute dir) is waited for; a dead one's lock is broken at once.
const LOCK_STALE_MS = 120_000;
const LOCK_WAIT_MS_MAX = 30_000;
const LOCK_POLL_MS = 2;

/**
 * Runs `work` holding `<path>.lock` (created O_EXCL, holding our pid). Needed because the delivery
 * pool runs several threads (pool_threads, default 2), each with its own deliverer of the same
 * plugin: without it a csv header rewrite (rename) in one thread loses a row another thread appends
 * to the old file at the same moment, and a torn-tail cut could cut a line being written. Residual
 * hazard: two threads breaking the same stale lock at once can both proceed, once, after a crash.
 */
export async function withFileLock<T>(kind: string, path: string, work: () => T): Promise<T> {
  const lock = `${path}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS_MAX;
  while (!tryLock(lock)) {
    if (Date.now() > deadline) throw new Error(`${kind}: ${path.split(/[\\/]/).pop()} is locked by another writer (${lock.split(/[\\/]/).pop()})`);
    await new Promise((resolveSleep) => setTimeout(resolveSleep, LOCK_POLL_MS));
  }
  try {
    return work();
  } finally {
    rmSync(lock, { force: true });
  }
}

function tryLock(lock: string): boolean {
  try {
    const fd = openSync(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (isStaleLock(lock)) rmSync(lock, { force: true });
  return false;
}

function isStaleLock(lock: string): boolean {
  let pid: number;
  let ageMs: number;
  try {
    pid = Number.parseInt(readFileSync(lock, 'utf8'), 10);
    ageMs = Date.now() - statSync(lock).mtimeMs;
  } catch {
    return false; // released meanwhile: the next try takes it
  }
  if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true; // its process is gone
    }
  }
  return ageMs > LOCK_STALE_MS;
}

/** A short message for a file-system failure: the file's base name and the reason, not a full path. */
export function fileError(kind: string, file: string, err: unknown): Error {
  if (err instanceof Error && err.message.startsWith(`${kind}: `)) return err;
  const base = file.split(/[\\/]/).pop() ?? file;
  return new Error(`${kind}: cannot write ${base}: ${shortReason(err)}`, { cause: err });
}

/**
 * The deliverer of a file read model (csv, json): one file per aggregate type in `dir`, written
 * under the file's lock by `write`; `forget` drops what the kind remembers of its files.
 */
export function fileReadModelDeliverer(kind: string, dir: string, extension: string, write: (path: string, body: DeliveryBody) => void, forget: () => void): Deliverer {
  return {
    async deliver(delivery: Delivery): Promise<void> {
      checkBodyIds(delivery.body);
      const path = readModelFile(dir, delivery.body.aggregate_type, extension);
      try {
        ensureDir(dir);
        await withFileLock(kind, path, () => write(path, delivery.body));
      } catch (err) {
        throw fileError(kind, path, err);
      }
    },
    async check(): Promise<void> {
      try {
        ensureDir(dir);
        accessSync(dir, constants.W_OK);
      } catch (err) {
        throw fileError(kind, dir, err);
      }
    },
    async close(): Promise<void> {
      forget();
    },
  };
}
