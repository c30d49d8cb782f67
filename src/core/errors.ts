/**
 * The one error catalogue (DESIGN §6). Every failure that reaches a client is a `DbxError` with a
 * stable snake_case `code`; the HTTP status comes from the catalogue, never from the throw site.
 * Errors cross worker threads as plain data (`toWire` / `fromWire`) so nothing is lost in transit.
 */
export const ERROR_CATALOGUE = {
  invalid_input: { status: 400, summary: 'The request is malformed (bad JSON, bad name, bad cursor).' },
  validation_failed: { status: 400, summary: 'The body, params or query failed validation; details list each field.' },
  unauthorized: { status: 401, summary: 'No token, or the token is invalid, expired or revoked.' },
  forbidden: { status: 403, summary: 'The token is valid but lacks the action, resource or tenant.' },
  not_found: { status: 404, summary: 'The aggregate, event, snapshot or route does not exist.' },
  already_exists: { status: 409, summary: 'Create on an existing aggregate, or an idempotency key reused with other content.' },
  version_conflict: { status: 409, summary: 'expected_version does not match; details.current_version says what is stored.' },
  aggregate_archived: { status: 409, summary: 'A write to an archived aggregate.' },
  schema_locked: { status: 409, summary: 'The schema is locked against this change.' },
  payload_too_large: { status: 413, summary: 'Payload over 256 KiB, metadata over 64 KiB, or body over the limit.' },
  uri_too_long: { status: 414, summary: 'The path and query string are longer than [http] url_bytes_max.' },
  headers_too_large: { status: 431, summary: 'The request line and headers are larger than [http] header_bytes_max.' },
  quota_exceeded: { status: 403, summary: "The write would create an aggregate beyond its tenant's quota (`dbx tenant quota set`); nothing was written." },
  tenant_not_empty: { status: 409, summary: 'The tenant holds data on its current shard, so its placement cannot just be changed (that would orphan the data) and no live move is available.' },
  tenant_busy: { status: 409, summary: 'Another tenant-wide operation (a live move, an export, an import or a removal) holds the tenant, or a removal would drop undelivered plugin jobs; retry once it has finished (or remove with force).' },
  write_limit_exhausted: { status: 429, summary: "The token's write allowance is used up." },
  rate_limited: { status: 429, summary: 'The token made more requests per second than [http.rate_limit] allows, or the tenant wrote more events per second than its limit (`dbx tenant limit`); the Retry-After header says when to try again (nothing was done).' },
  request_timeout: { status: 408, summary: 'The request did not arrive completely within [http] request_timeout_ms.' },
  unavailable: { status: 503, summary: 'The server is starting or draining, a shard worker is down or stopped after a failed commit, or it did not answer in time. A write answered 503 may or may not have been applied: retry it with its idempotency key.' },
  internal: { status: 500, summary: 'An unexpected failure; the server log has the cause.' },
  integrity_failed: { status: 500, summary: 'The stored aggregate failed an integrity check (its Merkle frontier does not match its root); run verify and restore it.' },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface WireError {
  code: ErrorCode;
  message: string;
  details?: unknown;
  /**
   * What really failed (message and stack), for the server log only: it crosses the worker hop so
   * the coordinator can log it, and `toWire()` (what answers carry) never includes it.
   */
  cause?: string;
}

export class DbxError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DbxError';
    this.code = code;
    if (details !== undefined) this.details = code === 'validation_failed' ? describeFields(details) : details;
  }

  get status(): number {
    return ERROR_CATALOGUE[this.code].status;
  }

  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message };
    if (this.details !== undefined) wire.details = this.details;
    return wire;
  }

  static fromWire(wire: WireError): DbxError {
    const code = wire.code in ERROR_CATALOGUE ? wire.code : 'internal';
    return new DbxError(code, wire.message, wire.details, wire.cause !== undefined ? { cause: wire.cause } : undefined);
  }
}

/**
 * `validation_failed` details list each field as `{ field, rule, message }` (DESIGN §6), whichever
 * check found the problem: a schema violation carries them already; a request check names `path`
 * (where in the request: `body.payload.x`), which stays beside and gives `field` (`payload.x`),
 * with `rule: 'invalid'` unless it says which. Also inside a batch item's `{ index, violations }`.
 */
function describeFields(details: unknown): unknown {
  if (Array.isArray(details)) return details.map(describeField);
  const violations = (details as { violations?: unknown } | null)?.violations;
  if (typeof details === 'object' && details !== null && Array.isArray(violations)) return { ...details, violations: violations.map(describeField) };
  return details;
}

function describeField(entry: unknown): unknown {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return entry;
  const { path, field, rule } = entry as Record<string, unknown>;
  if (typeof field === 'string' && typeof rule === 'string') return entry;
  if (typeof field !== 'string' && typeof path !== 'string') return entry;
  return {
    ...entry,
    field: typeof field === 'string' ? field : (path as string).replace(/^(body|query|params)\./, ''),
    rule: typeof rule === 'string' ? rule : 'invalid',
  };
}

export function isErrorCode(value: string): value is ErrorCode {
  return value in ERROR_CATALOGUE;
}

/** Converts anything thrown into wire form; unknown errors never leak their message or stack. */
export function toWireError(err: unknown): WireError {
  if (err instanceof DbxError) {
    const wire = err.toWire();
    if (err.code === 'internal' && err.cause !== undefined) wire.cause = describeCause(err.cause);
    else if (err.code === 'internal') wire.cause = describeCause(err);
    return wire;
  }
  return { code: 'internal', message: 'internal error', cause: describeCause(err) };
}

/** The log text of a failure: its stack when it has one (stacks never reach an answer). */
export function describeCause(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  try {
    return typeof err === 'string' ? err : JSON.stringify(err);
  } catch {
    return String(err);
  }
}

export const notFound = (what: string): DbxError => new DbxError('not_found', `${what} not found`);
export const invalidInput = (message: string, details?: unknown): DbxError =>
  new DbxError('invalid_input', message, details);
