import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { presenceStoreContract } from './presence-store.contract.ts';
import { MemoryPresenceStore, RedisPresenceStore } from './presence-store.ts';

presenceStoreContract('memory', async ({ ttlMs, now }) => {
  const store = new MemoryPresenceStore(ttlMs, now);
  return { store, peer: null, close: () => store.close() };
});

const url = process.env.PARLEY_TEST_REDIS_URL;
const newPrefix = () => `t:${randomBytes(6).toString('hex')}:`;

if (url) {
  presenceStoreContract('redis', async ({ ttlMs, now }) => {
    const prefix = newPrefix();
    const nodes: Array<{ redis: Redis; store: RedisPresenceStore }> = [];
    // Each node has its own connection, as separate processes would.
    const node = () => {
      const redis = new Redis(url);
      const store = new RedisPresenceStore(redis, ttlMs, prefix, now);
      nodes.push({ redis, store });
      return store;
    };
    return {
      store: node(),
      peer: async () => node(),
      close: async () => {
        for (const n of nodes) {
          await n.store.close();
          await n.redis.quit();
        }
      },
    };
  });

  describe('RedisPresenceStore: keys', () => {
    it('leaves no key behind: the hash expires in Redis with the TTL, and the last disconnect removes it', async () => {
      const redis = new Redis(url);
      const prefix = newPrefix();
      const store = new RedisPresenceStore(redis, 300, prefix);
      try {
        await store.connect('u1', 'c1');
        await store.connect('u2', 'c1');
        const pttl = await redis.pttl(`${prefix}presence:u1`);
        assert.ok(pttl > 0 && pttl <= 300, `pttl ${pttl}`);
        assert.deepEqual(await store.disconnect('u2', 'c1'), { connections: 0, active: 0 });
        assert.equal(await redis.exists(`${prefix}presence:u2`), 0);
        await new Promise((r) => setTimeout(r, 400));
        assert.deepEqual(await redis.keys(`${prefix}*`), []);
      } finally {
        await store.close();
        await redis.quit();
      }
    });

    it('stores on different prefixes do not see each other', async () => {
      const redis = new Redis(url);
      const a = new RedisPresenceStore(redis, 60_000, newPrefix());
      const b = new RedisPresenceStore(redis, 60_000, newPrefix());
      try {
        await a.connect('u1', 'c1');
        assert.deepEqual(await b.get(['u1']), new Map([['u1', { connections: 0, active: 0 }]]));
        await a.disconnect('u1', 'c1');
      } finally {
        await redis.quit();
      }
    });
  });
} else {
  describe('PresenceStore contract: redis', () => {
    it('needs Redis', (t) => t.skip('SKIPPED: no Redis server in this run (PARLEY_TEST_REDIS_URL is not set; see the test harness banner)'));
  });
}
