import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { eventBusContract } from './event-bus.contract.ts';
import { MemoryEventBus } from './memory-event-bus.ts';
import { RedisEventBus } from './redis-event-bus.ts';

eventBusContract('memory', { make: async () => new MemoryEventBus(), makePeer: null });

const url = process.env.PARLEY_TEST_REDIS_URL;
if (url) {
  const prefixes = new WeakMap<object, string>();
  const make = (prefix: string) => {
    const redis = new Redis(url);
    const bus = new RedisEventBus(redis, prefix);
    prefixes.set(bus, prefix);
    const close = bus.close.bind(bus);
    bus.close = async () => {
      await close();
      await redis.quit();
    };
    return bus;
  };
  eventBusContract('redis', {
    make: async () => make(`t:${randomBytes(6).toString('hex')}:`),
    makePeer: async (first) => make(prefixes.get(first)!),
  });
} else {
  describe('EventBus contract: redis', () => it('needs Redis', (t) => t.skip('SKIPPED: no Redis in this run')));
}
