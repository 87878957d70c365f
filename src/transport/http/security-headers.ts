import type { FastifyInstance } from 'fastify';

/**
 * The response headers OWASP's REST Security Cheat Sheet asks of a JSON API, set on every answer
 * in one call. (helmet's set is made for HTML pages: DNS prefetch, download options, XSS auditor...
 * which a JSON API does not need and which more than doubled our response headers.) Routes that
 * serve something else (Swagger UI's page sets its own CSP, files later set their own caching)
 * overwrite these in their handlers.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // API answers are per user: never stored by shared caches (SECURITY.md class K).
  'cache-control': 'private, no-store',
});

/**
 * Security headers, no-store caching and the request id on every answer (set early; handlers may
 * override). HSTS is added when the public URL is https (browsers ignore it over plain HTTP).
 */
export function registerSecurityHeaders(app: FastifyInstance, publicUrl: string): void {
  const headers = publicUrl.startsWith('https:') ? { ...SECURITY_HEADERS, 'strict-transport-security': 'max-age=31536000; includeSubDomains' } : SECURITY_HEADERS;
  app.addHook('onRequest', (req, reply, done) => {
    reply.headers(headers);
    reply.header('x-request-id', req.id);
    done();
  });
}
