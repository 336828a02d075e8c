// The API's one error shape, {code, message, details?}, and the one handler that produces it.
// Validation problems become 4xx that name the field; anything unexpected is a 500 that says
// nothing about internals (the details go to the log).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown[],
  ) {
    super(message);
  }
}

export const notFound = (what: string, id: string) => new ApiError(404, 'not_found', `${what} ${id} does not exist`);

interface Issue {
  path: string;
  message: string;
}

function zodIssues(err: FastifyError): Issue[] {
  const where = err.validationContext ?? 'body';
  return (err.validation ?? []).map((v: any) => {
    const segments: (string | number)[] = v.params?.issue?.path ?? v.instancePath?.split('/').filter(Boolean) ?? [];
    return { path: [where, ...segments].join('.'), message: v.message ?? 'invalid' };
  });
}

/**
 * Fastify's `frameworkErrors` option: errors the router raises before any route or hook runs
 * (they bypass setErrorHandler). Same shape as every other error, and no echo of the path.
 */
export function frameworkErrors(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    reply.code(414).send({ code: 'uri_too_long', message: 'params: a path parameter is longer than the router accepts (100 characters)' });
  } else if (err.code === 'FST_ERR_BAD_URL') {
    reply.code(400).send({ code: 'bad_url', message: 'params: the path is not valid percent-encoded UTF-8' });
  } else {
    reply.code(500).send({ code: 'internal', message: 'internal error' });
  }
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof ApiError) {
      return reply.code(err.statusCode).send({ code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) });
    }
    if (hasZodFastifySchemaValidationErrors(err) || err.validation) {
      const details = zodIssues(err);
      const message = details.map((d) => `${d.path}: ${d.message}`).join('; ') || 'invalid request';
      return reply.code(400).send({ code: 'validation_error', message, details });
    }
    switch (err.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return reply.code(400).send({ code: 'invalid_json', message: `body: ${err.message}` });
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        // The route's own limit (POST /v1/events has HOOKLINE_MAX_EVENT_BYTES), not the app's.
        return reply.code(413).send({ code: 'payload_too_large', message: `body: larger than the ${request.routeOptions.bodyLimit ?? app.initialConfig.bodyLimit} byte limit of this route` });
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply.code(415).send({ code: 'unsupported_media_type', message: 'content-type: send application/json' });
    }
    if (err instanceof SyntaxError || (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)) {
      return reply.code(err.statusCode ?? 400).send({ code: 'bad_request', message: err.message });
    }
    if (isDataException(err)) {
      // A backstop: input checks should have refused this value before SQL saw it. Postgres
      // names the problem, not the field, so the message points at the request as a whole.
      request.log.warn({ err: err.message, code: err.code }, 'data exception from Postgres');
      return reply.code(400).send({ code: 'invalid_value', message: `request: a value cannot be stored (${err.message})` });
    }
    if (isUnavailable(err)) {
      // The database (or Temporal) is unreachable: nothing was recorded, the client may retry.
      request.log.warn({ err: err.message }, 'dependency unavailable');
      return reply.code(503).header('retry-after', '5').send({ code: 'unavailable', message: 'storage is unavailable; retry shortly' });
    }
    request.log.error({ err }, 'unhandled error');
    return reply.code(500).send({ code: 'internal', message: 'internal error' });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` });
  });
}

// Connection-level failures (refused, reset, Postgres shutting down or not accepting
// connections) as opposed to bugs: the request can be retried as it is.
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006']);

// SQLSTATE class 22, "data exception": out of range, invalid text or encoding, bad datetime —
// always the value's fault, never the server's. pg errors carry the 5-character code.
function isDataException(err: { code?: unknown }): boolean {
  return typeof err.code === 'string' && err.code.length === 5 && err.code.startsWith('22');
}

function isUnavailable(err: FastifyError & { code?: string }): boolean {
  return (
    (err.code !== undefined && UNAVAILABLE_CODES.has(err.code)) ||
    /Connection terminated|connection timeout|Client has encountered a connection error/i.test(err.message)
  );
}
