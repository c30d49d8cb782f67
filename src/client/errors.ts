/**
 * What a client call throws: one class per kind of failure under `EventDbxError` (like pg's
 * `DatabaseError` or the KurrentDB client's `WrongExpectedVersionError`), each with the API's
 * stable `code` (DESIGN §6) typed as a union. The server's codes come from its own catalogue
 * (src/core/errors.ts); a code added there without a class here fails to compile (`CLASS_OF`).
 *
 * Failures that never got an answer: `ConnectionError` (code `unavailable`, status 0: the server
 * could not be reached), `TimeoutError` (code `timeout`: the call's `timeoutMs` passed) and
 * `AbortError` (code `aborted`: the caller's `signal` fired).
 *
 * `details` is the server's `error.details` exactly as sent (snake_case, like the HTTP API); the
 * typed fields (`currentVersion`, `violations`, `index`, `retryAfterSecs`) are read from it here.
 */
import type { ErrorCode as ServerErrorCode } from '../core/errors.js';

export type { ServerErrorCode };
/** Codes of failures the client detects itself (no answer arrived). */
export type ClientErrorCode = 'timeout' | 'aborted';
export type ErrorCode = ServerErrorCode | ClientErrorCode;

/** One field that failed validation: `path` is dotted (`body.events.1.payload.age`, `age`), `rule` names the schema rule when a schema refused it. */
export interface ValidationViolation {
  path: string;
  message: string;
  rule?: string;
}

export interface ErrorOptions {
  status?: number;
  details?: unknown;
  cause?: unknown;
  /** The Retry-After header of the answer, in seconds. */
  retryAfterSecs?: number;
}

/**
 * Marks errors of this package so `instanceof` also holds for an error made by another copy of it
 * (two installs in one process): every instance lists the class names of its chain.
 */
const BRAND = Symbol.for('eventdbx.client.error');

export class EventDbxError extends Error {
  readonly code: ErrorCode;
  /** HTTP status of the answer; 0 when none arrived. */
  readonly status: number;
  readonly details?: unknown;
  /** For a failed `batch` item: its position in the batch (from `details.index`). */
  readonly index?: number;
  declare readonly [BRAND]: readonly string[];

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 0;
    if (options.details !== undefined) this.details = options.details;
    const index = batchIndex(options.details);
    if (index !== undefined) this.index = index;
    const chain: string[] = [];
    for (let p: unknown = new.target; typeof p === 'function' && p !== Error; p = Object.getPrototypeOf(p)) chain.push(p.name);
    Object.defineProperty(this, BRAND, { value: chain });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    const chain = typeof value === 'object' && value !== null ? (value as { [BRAND]?: unknown })[BRAND] : undefined;
    return Array.isArray(chain) && chain.includes(this.name);
  }
}

/** 400 `invalid_input`: a malformed request (bad JSON, bad name, bad cursor). */
export class InvalidInputError extends EventDbxError {
  declare readonly code: 'invalid_input';
}

/** 400 `validation_failed`: every field that failed, from `details`. */
export class ValidationError extends EventDbxError {
  declare readonly code: 'validation_failed';
  readonly violations: ValidationViolation[];
  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(code, message, options);
    this.violations = violationsOf(options.details);
  }
}

export class UnauthorizedError extends EventDbxError {
  declare readonly code: 'unauthorized';
}

export class ForbiddenError extends EventDbxError {
  declare readonly code: 'forbidden';
}

export class NotFoundError extends EventDbxError {
  declare readonly code: 'not_found';
}

export class AlreadyExistsError extends EventDbxError {
  declare readonly code: 'already_exists';
}

/** 403 `quota_exceeded`: the write would create an aggregate beyond the tenant's quota; nothing was written. */
export class QuotaExceededError extends EventDbxError {
  declare readonly code: 'quota_exceeded';
}

/** 409 `tenant_not_empty`: the tenant's placement cannot change while it holds data and no live move is available. */
export class TenantNotEmptyError extends EventDbxError {
  declare readonly code: 'tenant_not_empty';
}

/** 409 `tenant_busy`: a move, export, import or removal holds the tenant (or a removal would drop undelivered plugin jobs). */
export class TenantBusyError extends EventDbxError {
  declare readonly code: 'tenant_busy';
}

/** 409 `version_conflict`: `expectedVersion` did not match; `currentVersion` is what is stored. */
export class VersionConflictError extends EventDbxError {
  declare readonly code: 'version_conflict';
  readonly currentVersion?: number;
  readonly expectedVersion?: number;
  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(code, message, options);
    const current = numberField(options.details, 'current_version');
    const expected = numberField(options.details, 'expected_version');
    if (current !== undefined) this.currentVersion = current;
    if (expected !== undefined) this.expectedVersion = expected;
  }
}

/** 409 `aggregate_archived`: a write to an archived aggregate. */
export class ArchivedError extends EventDbxError {
  declare readonly code: 'aggregate_archived';
}

export class SchemaLockedError extends EventDbxError {
  declare readonly code: 'schema_locked';
}

/** 413 / 414 / 431: the payload, URL or headers are over the server's limit. */
export class TooLargeError extends EventDbxError {
  declare readonly code: 'payload_too_large' | 'uri_too_long' | 'headers_too_large';
}

/** 429 `rate_limited`: too many requests per second for this token; nothing was done. */
export class RateLimitedError extends EventDbxError {
  declare readonly code: 'rate_limited';
  /** When to try again, from the Retry-After header (or `details.retry_after_secs`). */
  readonly retryAfterSecs?: number;
  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(code, message, options);
    const secs = options.retryAfterSecs ?? numberField(options.details, 'retry_after_secs');
    if (secs !== undefined) this.retryAfterSecs = secs;
  }
}

/** 429 `write_limit_exhausted`: the token's write allowance is used up (a new token is needed). */
export class WriteLimitError extends EventDbxError {
  declare readonly code: 'write_limit_exhausted';
  /** Set only if the server sent Retry-After (today it does not: the allowance does not refill). */
  readonly retryAfterSecs?: number;
  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(code, message, options);
    if (options.retryAfterSecs !== undefined) this.retryAfterSecs = options.retryAfterSecs;
  }
}

/** 408 `request_timeout`: the server did not receive the whole request in time. */
export class RequestTimeoutError extends EventDbxError {
  declare readonly code: 'request_timeout';
}

/** 503 `unavailable`: starting, draining or a shard down. A write may or may not have happened: retry it with its idempotency key. */
export class UnavailableError extends EventDbxError {
  declare readonly code: 'unavailable';
}

/** No answer: the connection was refused, reset or failed TLS (status 0, code `unavailable`). */
export class ConnectionError extends UnavailableError {}

/** 500 `internal` / `integrity_failed`. */
export class ServerError extends EventDbxError {
  declare readonly code: 'internal' | 'integrity_failed';
}

/** The call's `timeoutMs` passed before an answer (retries included); status 0. */
export class TimeoutError extends EventDbxError {
  declare readonly code: 'timeout';
}

/** The caller's `signal` aborted the call; status 0; `cause` is the signal's reason. */
export class AbortError extends EventDbxError {
  declare readonly code: 'aborted';
}

type ErrorClass = new (code: ErrorCode, message: string, options?: ErrorOptions) => EventDbxError;

/** Every code the server can answer, and the class it becomes. */
const CLASS_OF = {
  invalid_input: InvalidInputError,
  validation_failed: ValidationError,
  unauthorized: UnauthorizedError,
  forbidden: ForbiddenError,
  not_found: NotFoundError,
  already_exists: AlreadyExistsError,
  quota_exceeded: QuotaExceededError,
  tenant_not_empty: TenantNotEmptyError,
  tenant_busy: TenantBusyError,
  version_conflict: VersionConflictError,
  aggregate_archived: ArchivedError,
  schema_locked: SchemaLockedError,
  payload_too_large: TooLargeError,
  uri_too_long: TooLargeError,
  headers_too_large: TooLargeError,
  write_limit_exhausted: WriteLimitError,
  rate_limited: RateLimitedError,
  request_timeout: RequestTimeoutError,
  unavailable: UnavailableError,
  internal: ServerError,
  integrity_failed: ServerError,
  timeout: TimeoutError,
  aborted: AbortError,
} satisfies Record<ErrorCode, ErrorClass>;

/** Every code a call can reject with (the server's catalogue and the client's own). */
export const ERROR_CODES = Object.keys(CLASS_OF) as ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(CLASS_OF, value);
}

/** The error of this code as its class; an unknown code (a newer server) stays a plain EventDbxError. */
export function createError(code: string, message: string, options: ErrorOptions = {}): EventDbxError {
  if (!isErrorCode(code)) return new EventDbxError('internal', `${code}: ${message}`, options);
  return new CLASS_OF[code](code, message, options);
}

export function isEventDbxError(value: unknown): value is EventDbxError {
  return value instanceof EventDbxError;
}

/** Builds the error from an answer; a body that is not the error envelope still yields a code. */
export function errorFromResponse(status: number, body: unknown, retryAfter?: string): EventDbxError {
  const retryAfterSecs = parseRetryAfter(retryAfter);
  const extra = retryAfterSecs !== undefined ? { retryAfterSecs } : {};
  const envelope = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  if (envelope && typeof envelope.code === 'string') {
    const message = typeof envelope.message === 'string' ? envelope.message : envelope.code;
    return createError(envelope.code, message, { status, details: envelope.details, ...extra });
  }
  const code: ServerErrorCode =
    status === 503 || status === 502 || status === 504 ? 'unavailable' : status === 404 ? 'not_found' : status === 429 ? 'rate_limited' : status >= 500 ? 'internal' : 'invalid_input';
  return createError(code, `HTTP ${status}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`, { status, ...extra });
}

/** Retry-After is whole seconds or an HTTP date (RFC 9110 §10.2.3). */
function parseRetryAfter(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

function numberField(details: unknown, key: string): number | undefined {
  const value = typeof details === 'object' && details !== null && !Array.isArray(details) ? (details as Record<string, unknown>)[key] : undefined;
  return typeof value === 'number' ? value : undefined;
}

/** `details` is the list itself, or (a failed batch item) `{ index, violations }`. */
function violationsOf(details: unknown): ValidationViolation[] {
  const list = Array.isArray(details) ? details : (details as { violations?: unknown } | undefined)?.violations;
  if (!Array.isArray(list)) return [];
  return list.flatMap((d: unknown) => {
    if (typeof d !== 'object' || d === null) return [];
    const { path, field, message, rule } = d as Record<string, unknown>;
    const where = typeof path === 'string' ? path : typeof field === 'string' ? field : '';
    return [{ path: where, message: typeof message === 'string' ? message : String(message), ...(typeof rule === 'string' ? { rule } : {}) }];
  });
}

/** `details.index`, or the item a request-validation path names (`body.events.3.payload`). */
function batchIndex(details: unknown): number | undefined {
  const index = numberField(details, 'index');
  if (index !== undefined) return index;
  const first = violationsOf(details)[0];
  const match = first ? /^body\.events\.(\d+)(?:\.|$)/.exec(first.path) : null;
  return match ? Number(match[1]) : undefined;
}
