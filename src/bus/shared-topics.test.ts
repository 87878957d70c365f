import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { EventBus } from './event-bus.ts';
import { MemoryEventBus } from './memory-event-bus.ts';
import { RedisEventBus } from './redis-event-bus.ts';
import { SharedTopics } from './shared-topics.ts';

/** Counts the bus's subscribe and unsubscribe calls (the real bus does the work). */
function counting(bus: EventBus) {
  const counts = { subscribed: 0, unsubscribed: 0 };
  const wrapped: EventBus = {
    publish: (topic, payload) => bus.publish(topic, payload),
    subscribe: async (topic, handler) => {
      counts.subscribed += 1;
      const unsubscribe = await bus.subscribe(topic, handler);
      return async () => {
        counts.unsubscribed += 1;
        await unsubscribe();
      };
    },
    close: () => bus.close(),
  };
  return { bus: wrapped, counts };
}

const settle = () => new Promise((r) => setTimeout(r, 50));

function sharedTopicsSuite(name: string, make: () => Promise<{ bus: EventBus; peer: EventBus; done: () => Promise<void> }>): void {
  describe(`SharedTopics (${name})`, () => {
    it('subscribes once for many holders, delivers while any holds, unsubscribes after the last release', async () => {
      const { bus: raw, peer, done } = await make();
      try {
        const { bus, counts } = counting(raw);
        const shared = new SharedTopics(bus);
        const got: string[] = [];
        // Three holders at once (as three sockets of one user connecting together): one subscription.
        await Promise.all([1, 2, 3].map(() => shared.acquire('user:u1', (p) => got.push(p))));
        // Already subscribed: counted at once, nothing to wait for.
        assert.equal(shared.acquire('user:u1', (p) => got.push(p)), undefined);
        shared.release('user:u1');
        assert.equal(counts.subscribed, 1);
        await peer.publish('user:u1', 'one');
        await settle();
        assert.deepEqual(got, ['one']);
        shared.release('user:u1');
        shared.release('user:u1');
        await peer.publish('user:u1', 'two');
        await settle();
        assert.deepEqual(got, ['one', 'two'], 'still subscribed while one holder is left');
        assert.equal(counts.unsubscribed, 0);
        shared.release('user:u1');
        await settle();
        assert.equal(counts.unsubscribed, 1);
        assert.equal(shared.size, 0);
        await peer.publish('user:u1', 'three');
        await settle();
        assert.deepEqual(got, ['one', 'two'], 'nothing after the last release');
        // Held again: subscribed afresh.
        await shared.acquire('user:u1', (p) => got.push(p));
        assert.equal(counts.subscribed, 2);
        await peer.publish('user:u1', 'four');
        await settle();
        assert.deepEqual(got, ['one', 'two', 'four']);
        shared.release('user:u1');
        shared.release('user:u1'); // one release too many is ignored
        assert.equal(shared.size, 0);
      } finally {
        await done();
      }
    });
  });
}

sharedTopicsSuite('memory', async () => {
  const bus = new MemoryEventBus();
  return { bus, peer: bus, done: () => bus.close() };
});

const url = process.env.PARLEY_TEST_REDIS_URL;
if (url) {
  sharedTopicsSuite('redis', async () => {
    const prefix = `t:${randomBytes(6).toString('hex')}:`;
    const a = new Redis(url);
    const b = new Redis(url);
    const bus = new RedisEventBus(a, prefix);
    const peer = new RedisEventBus(b, prefix); // another node: its messages come through Redis
    return {
      bus,
      peer,
      done: async () => {
        await bus.close();
        await peer.close();
        await a.quit();
        await b.quit();
      },
    };
  });
} else {
  describe('SharedTopics (redis)', () => it('needs Redis', (t) => t.skip('SKIPPED: no Redis in this run')));
}

describe('SharedTopics: a failed subscription', () => {
  it('fails every holder waiting on it, counts none of them, and the next acquire tries again', async () => {
    let fail = true;
    const memory = new MemoryEventBus();
    const bus: EventBus = {
      publish: (t, p) => memory.publish(t, p),
      subscribe: async (t, h) => {
        if (fail) throw new Error('bus down');
        return memory.subscribe(t, h);
      },
      close: () => memory.close(),
    };
    const shared = new SharedTopics(bus);
    const results = await Promise.allSettled([shared.acquire('org:o1', () => undefined), shared.acquire('org:o1', () => undefined)]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    assert.equal(shared.size, 0);
    fail = false;
    const got: string[] = [];
    await shared.acquire('org:o1', (p) => got.push(p));
    await memory.publish('org:o1', 'back');
    assert.deepEqual(got, ['back']);
  });
});
