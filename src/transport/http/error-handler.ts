import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, RateLimitedError, type ErrorCode } from '../../platform/errors.ts';

/** The one error body: `{ error: { code, message, details? }, request_id }`. */
export function errorBody(code: string, message: string, requestId: string, details?: Record<string, unknown>) {
  return { error: details && Object.keys(details).length ? { code, message, details } : { code, message }, request_id: requestId };
}

// Fastify's own errors that are the client's fault, mapped to stable codes.
const FASTIFY_CODES: Record<string, { code: ErrorCode; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'request.too_large', message: 'The request body is too large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'request.unsupported_media_type', message: 'Unsupported Content-Type; send application/json' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'request.invalid_json', message: 'The JSON body is empty' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'request.invalid_json', message: 'The body is not valid JSON' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'request.invalid', message: 'Content-Length does not match the body' },
};

function validationDetails(err: FastifyError) {
  const fields = (err.validation ?? []).map((v) => {
    const missing = v.keyword === 'required' ? `/${String((v.params as { missingProperty?: string }).missingProperty ?? '')}` : '';
    const extra = v.keyword === 'additionalProperties' ? `/${String((v.params as { additionalProperty?: string }).additionalProperty ?? '')}` : '';
    return { field: `/${err.validationContext ?? 'body'}${v.instancePath}${missing}${extra}`, message: v.message ?? 'is invalid' };
  });
  return { fields };
}

/** Maps every thrown error to the JSON body and status, logging server faults with their cause. */
export function registerErrorHandling(app: FastifyInstance, onNotFound: (req: FastifyRequest, reply: FastifyReply) => void = () => undefined): void {
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof AppError) {
      if (err instanceof RateLimitedError) reply.header('retry-after', String(err.retryAfterSeconds));
      if (err.status >= 500) req.log.error({ err, reqId: req.id }, err.message);
      return reply.status(err.status).send(errorBody(err.code, err.message, req.id, err.data));
    }
    if (err.validation) {
      return reply.status(400).send(errorBody('validation.failed', 'The request is invalid', req.id, validationDetails(err)));
    }
    const known = err.code ? FASTIFY_CODES[err.code] : undefined;
    if (known) {
      const status = err.statusCode ?? 400;
      return reply.status(status).send(errorBody(known.code, known.message, req.id));
    }
    if (err instanceof SyntaxError && (err.statusCode ?? 0) === 400) {
      return reply.status(400).send(errorBody('request.invalid_json', 'The body is not valid JSON', req.id));
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.status(err.statusCode).send(errorBody('request.invalid', err.message, req.id));
    }
    req.log.error({ err, reqId: req.id }, 'unhandled error');
    return reply.status(500).send(errorBody('internal', 'Internal server error', req.id));
  });

  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send(errorBody('route.not_found', `No route ${req.method} ${req.url.split('?')[0]}`, req.id));
    onNotFound(req, reply);
  });
}
