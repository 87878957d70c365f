import type { FastifyInstance } from 'fastify';
import helmet from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * helmet's headers, computed once. @fastify/helmet runs helmet's middleware on every request
 * (about 8 % of a simple authenticated GET); the headers never change, so we take helmet's output
 * once at start and set it in one call per request. Routes that need another CSP (Swagger UI's
 * staticCSP) overwrite it later in their handler.
 */
export function staticSecurityHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (k: string, v: string | number) => void (headers[k.toLowerCase()] = String(v)),
    removeHeader: (k: string) => void delete headers[k.toLowerCase()],
  } as unknown as ServerResponse;
  helmet({
    // The API serves JSON only.
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-site' },
  })({} as IncomingMessage, res, () => undefined);
  // API answers are per user: never stored by shared caches (SECURITY.md class K).
  headers['cache-control'] = 'private, no-store';
  return headers;
}

/** Security headers, no-store caching and the request id on every answer (set early; handlers may override). */
export function registerSecurityHeaders(app: FastifyInstance): void {
  const headers = staticSecurityHeaders();
  app.addHook('onRequest', (req, reply, done) => {
    reply.headers(headers);
    reply.header('x-request-id', req.id);
    done();
  });
}
