import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { MemoryRateLimiter } from './memory-rate-limiter.ts';
import { rateLimiterContract } from './rate-limiter.contract.ts';
import { RedisRateLimiter, RedisRateLimiterWithFallback } from './redis-rate-limiter.ts';
import { freePort } from '../../test/helpers/process.ts';

rateLimiterContract('memory', async () => {
  const limiter = new MemoryRateLimiter();
  return { limiter, done: () => limiter.close() };
});

const redisUrl = process.env.PARLEY_TEST_REDIS_URL;
if (redisUrl) {
  rateLimiterContract('redis', async () => {
    const redis = new Redis(redisUrl);
    const limiter = new RedisRateLimiter(redis, `t:${randomBytes(6).toString('hex')}:`);
    return {
      limiter,
      done: async () => {
        await limiter.close();
        await redis.quit();
      },
    };
  });
} else {
  describe('RateLimiter contract: redis', () => {
    it('needs Redis', (t) => t.skip('SKIPPED: no Redis server in this run (see the test harness banner)'));
  });
}

if (redisUrl) {
  // The fallback limiter is a full limiter while Redis is up (shared counts) ...
  rateLimiterContract('redis with per-process fallback', async () => {
    const redis = new Redis(redisUrl);
    const limiter = new RedisRateLimiterWithFallback(redis, `t:${randomBytes(6).toString('hex')}:`);
    await new Promise<void>((resolve) => (redis.status === 'ready' ? resolve() : redis.once('ready', () => resolve())));
    return {
      limiter,
      done: async () => {
        await limiter.close();
        await redis.quit();
      },
    };
  });
}

// ... and keeps limiting, per process, while Redis is unreachable, instead of failing requests.
rateLimiterContract('redis unreachable, per-process fallback', async () => {
  const port = await freePort();
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  const limiter = new RedisRateLimiterWithFallback(redis);
  return {
    limiter,
    done: async () => {
      await limiter.close();
      redis.disconnect();
    },
  };
});
