import type { FastifyInstance } from 'fastify';
import type { RateLimiter } from '../../limits/rate-limiter.ts';
import { RateLimitedError } from '../../platform/errors.ts';

/**
 * Global request limit per client IP (the IP Fastify derives with the configured trustProxy, so a
 * spoofed X-Forwarded-For from an untrusted peer changes nothing). max = 0 disables it.
 * Health, readiness and docs are not limited.
 */
export function registerRateLimit(app: FastifyInstance, limiter: RateLimiter, opts: { max: number; windowMs: number }): void {
  if (opts.max <= 0) return;
  app.addHook('onRequest', async (req) => {
    const url = req.url;
    if (url === '/health' || url === '/ready' || url.startsWith('/docs')) return;
    const w = await limiter.hit(`api:ip:${req.ip}`, opts.windowMs);
    if (w.count > opts.max) throw new RateLimitedError(Math.ceil(w.retryAfterMs / 1000), 'ip');
  });
}
