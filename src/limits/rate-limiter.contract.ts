import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RateLimiter } from './rate-limiter.ts';

/**
 * One suite for every RateLimiter backend (Centrifuge mapBrokerFactory). `make` returns a fresh
 * limiter whose keys do not collide with other tests.
 */
export function rateLimiterContract(name: string, make: () => Promise<{ limiter: RateLimiter; done: () => Promise<void> }>): void {
  describe(`RateLimiter contract: ${name}`, () => {
    it('counts hits in a window and reports the time left', async () => {
      const { limiter, done } = await make();
      try {
        assert.deepEqual((await limiter.peek('k')).count, 0);
        const a = await limiter.hit('k', 10_000);
        const b = await limiter.hit('k', 10_000);
        assert.equal(a.count, 1);
        assert.equal(b.count, 2);
        assert.ok(b.retryAfterMs > 0 && b.retryAfterMs <= 10_000, `retryAfterMs ${b.retryAfterMs}`);
        assert.equal((await limiter.peek('k')).count, 2);
        assert.equal((await limiter.hit('other', 10_000)).count, 1, 'keys are independent');
      } finally {
        await done();
      }
    });

    it('starts a new window after the old one expires', async () => {
      const { limiter, done } = await make();
      try {
        await limiter.hit('short', 50);
        await limiter.hit('short', 50);
        await new Promise((r) => setTimeout(r, 80));
        assert.equal((await limiter.peek('short')).count, 0);
        assert.equal((await limiter.hit('short', 50)).count, 1);
      } finally {
        await done();
      }
    });

    it('reset forgets a key', async () => {
      const { limiter, done } = await make();
      try {
        await limiter.hit('r', 10_000);
        await limiter.reset('r');
        assert.equal((await limiter.peek('r')).count, 0);
      } finally {
        await done();
      }
    });

    it('counts concurrent hits exactly', async () => {
      const { limiter, done } = await make();
      try {
        const results = await Promise.all(Array.from({ length: 50 }, () => limiter.hit('c', 10_000)));
        const counts = results.map((r) => r.count).sort((x, y) => x - y);
        assert.deepEqual(counts, Array.from({ length: 50 }, (_, i) => i + 1));
      } finally {
        await done();
      }
    });
  });
}
