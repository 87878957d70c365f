import type { LoggerOptions } from 'pino';

/**
 * JSON logs (pino). Secrets never reach a log line: credentials in headers and bodies are
 * redacted by path, and request bodies are not logged at all.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.token',
  '*.refresh_token',
  '*.key',
  '*.secret',
];

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
  };
}

interface ChildCapable {
  isLevelEnabled(level: string): boolean;
  child(bindings: Record<string, unknown>, options?: object): unknown;
}

/**
 * Fastify's childLoggerFactory. A pino child per request (to bind the request id) measurably
 * slows every request; when the level is above `info` no per-request line is written anyway, so
 * requests share the parent logger, and the few lines logged at warn or error carry the request
 * id explicitly (see the error handler).
 */
export function requestLoggerFactory(logger: ChildCapable, bindings: Record<string, unknown>, options: object): unknown {
  return logger.isLevelEnabled('info') ? logger.child(bindings, options) : logger;
}
