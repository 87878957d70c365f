import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryEventBus } from '../bus/memory-event-bus.ts';
import type { Principal } from './access.ts';
import { PrincipalCache } from './principal-cache.ts';

const principal = (over: Partial<Principal> = {}): Principal => ({
  kind: 'user',
  orgId: 'o1',
  userId: 'u1',
  role: 'member',
  platformAdmin: false,
  sessionId: 's1',
  apiKeyId: null,
  user: null,
  ...over,
});

describe('PrincipalCache', () => {
  const make = (ttl = 10_000) => {
    let now = 1_000;
    const cache = new PrincipalCache(new MemoryEventBus(), ttl, () => now);
    return { cache, advance: (ms: number) => (now += ms) };
  };

  it('remembers until the TTL or the token expiry, whichever is first', async () => {
    const { cache, advance } = make(10_000);
    await cache.start();
    cache.set('a', principal(), cache.generation);
    cache.set('b', principal(), cache.generation, 1_000 + 2_000);
    assert.ok(cache.get('a'));
    advance(2_500);
    assert.equal(cache.get('b'), undefined, 'expired with its token');
    assert.ok(cache.get('a'));
    advance(8_000);
    assert.equal(cache.get('a'), undefined, 'expired with the TTL');
  });

  it('invalidation drops entries by session, user, key and organization', async () => {
    const { cache } = make();
    await cache.start();
    const g = cache.generation;
    cache.set('s', principal({ sessionId: 'S' }), g);
    cache.set('u', principal({ userId: 'U', sessionId: null }), g);
    cache.set('k', principal({ kind: 'api_key', apiKeyId: 'K', userId: null, sessionId: null }), g);
    cache.set('o', principal({ orgId: 'O', userId: 'x', sessionId: null }), g);
    await cache.invalidate({ sessionId: 'S' });
    assert.equal(cache.get('s'), undefined);
    assert.ok(cache.get('u') && cache.get('k') && cache.get('o'));
    await cache.invalidate({ userId: 'U' });
    await cache.invalidate({ apiKeyId: 'K' });
    await cache.invalidate({ orgId: 'O' });
    assert.equal(cache.get('u') ?? cache.get('k') ?? cache.get('o'), undefined);
  });

  it('a lookup that began before an invalidation does not store its stale result', async () => {
    const { cache } = make();
    await cache.start();
    const before = cache.generation;
    await cache.invalidate({ sessionId: 'other' });
    cache.set('late', principal(), before);
    assert.equal(cache.get('late'), undefined);
  });

  it('TTL 0 disables caching', async () => {
    const { cache } = make(0);
    await cache.start();
    cache.set('a', principal(), cache.generation);
    assert.equal(cache.get('a'), undefined);
  });
});
