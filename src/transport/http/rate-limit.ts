import type { FastifyInstance } from 'fastify';
import type { RateLimiter, RateWindow } from '../../limits/rate-limiter.ts';
import { RateLimitedError } from '../../platform/errors.ts';

/**
 * Global request limit per client IP (the IP Fastify derives with the configured trustProxy, so a
 * spoofed X-Forwarded-For from an untrusted peer changes nothing). max = 0 disables it.
 * Health, readiness and docs are not limited, nor are platform deliveries (`/webhooks/<platform>/…`,
 * Chatwoot's `/webhooks/chatwoot/…`): each is authenticated on its own (signature or secret token),
 * and a platform or gateway delivers every inbox it serves from a few shared addresses — one
 * Evolution gateway or Chatwoot instance past the API budget would have its deliveries refused with
 * 429, and those that do not retry would be lost.
 */
export function registerRateLimit(app: FastifyInstance, limiter: RateLimiter, opts: { max: number; windowMs: number }): void {
  if (opts.max <= 0) return;
  const verdict = (w: RateWindow) => (w.count > opts.max ? new RateLimitedError(Math.ceil(w.retryAfterMs / 1000), 'ip') : undefined);
  // Callback style, and synchronous with the in-process limiter: no promise on the hot path.
  app.addHook('onRequest', (req, _reply, done) => {
    const url = req.url;
    if (url === '/health' || url === '/ready' || url.startsWith('/docs') || url.startsWith('/webhooks/')) return done();
    const key = `api:ip:${req.ip}`;
    if (limiter.hitNow) return done(verdict(limiter.hitNow(key, opts.windowMs)));
    limiter.hit(key, opts.windowMs).then((w) => done(verdict(w)), done);
  });
}
