import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { MemoryRateLimiter } from './memory-rate-limiter.ts';
import { rateLimiterContract } from './rate-limiter.contract.ts';
import { RedisRateLimiter } from './redis-rate-limiter.ts';

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
