/** Maps every failure onto the DESIGN §6 error model; nothing internal leaks into an answer. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DbxError } from '../core/index.js';

export function toDbxError(err: unknown): DbxError {
  if (err instanceof DbxError) return err;
  const fe = err as Partial<FastifyError>;
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new DbxError('payload_too_large', 'request body is larger than the configured limit');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new DbxError('invalid_input', `malformed JSON body: ${fe.message ?? 'invalid JSON'}`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new DbxError('invalid_input', 'unsupported Content-Type; send application/json');
    default:
      break;
  }
  if (err instanceof SyntaxError) return new DbxError('invalid_input', `malformed JSON body: ${err.message}`);
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new DbxError('invalid_input', fe.message ?? 'bad request');
  }
  return new DbxError('internal', 'internal error');
}

/** Longest path parameter the router passes on to validation (ids are ≤ 128, names ≤ 64). */
export const PATH_PARAM_CHARS_MAX = 256;

/** Errors fastify raises before routing (bad URL encoding, over-long path parameter). */
export function frameworkErrors(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const error = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? new DbxError('invalid_input', 'a path segment is too long') : toDbxError(err);
  void reply.code(error.status).send({ error: error.toWire() });
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const error = toDbxError(err);
    // The cause (a worker's stack, an LMDB error) goes to the log, never into the answer.
    if (error.status === 500) request.log.error({ err, cause: error.cause, url: request.url }, 'request failed');
    void reply.code(error.status).send({ error: error.toWire() });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } });
  });
}
