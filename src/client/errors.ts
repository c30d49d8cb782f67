/**
 * The one error a client call throws. `code` is the API's stable snake_case code (DESIGN §6), or
 * `unavailable` when the server could not be reached; `status` is the HTTP status (0 = no answer).
 */
export class EventDbxError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details?: unknown;

  constructor(code: string, message: string, options: { status?: number; details?: unknown; cause?: unknown } = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'EventDbxError';
    this.code = code;
    this.status = options.status ?? 0;
    if (options.details !== undefined) this.details = options.details;
  }
}

export function isEventDbxError(value: unknown): value is EventDbxError {
  return value instanceof EventDbxError;
}

/** Builds the error from an answer; a body that is not the error envelope still yields a code. */
export function errorFromResponse(status: number, body: unknown): EventDbxError {
  const envelope = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  if (envelope && typeof envelope.code === 'string') {
    return new EventDbxError(envelope.code, typeof envelope.message === 'string' ? envelope.message : envelope.code, {
      status,
      details: envelope.details,
    });
  }
  const code = status === 503 ? 'unavailable' : status === 404 ? 'not_found' : status >= 500 ? 'internal' : 'invalid_input';
  return new EventDbxError(code, `HTTP ${status}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`, { status });
}
