import type { Redis } from 'ioredis';
import { MemoryRateLimiter } from './memory-rate-limiter.ts';
import type { RateLimiter, RateWindow } from './rate-limiter.ts';

// INCR and set the expiry on the first hit, atomically; return the count and the time left.
const HIT_SCRIPT = `
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {c, ttl}`;

/** Fixed windows in Redis, shared by every node. Keys are `<prefix>rl:<key>`. */
export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'parley:',
  ) {}

  async hit(key: string, windowMs: number): Promise<RateWindow> {
    const [count, ttl] = (await this.redis.eval(HIT_SCRIPT, 1, this.#key(key), String(windowMs))) as [number, number];
    return { count, retryAfterMs: Math.max(1, ttl) };
  }

  async peek(key: string): Promise<RateWindow> {
    const [count, ttl] = await this.redis.multi().get(this.#key(key)).pttl(this.#key(key)).exec().then((r) => [r?.[0]?.[1], r?.[1]?.[1]]);
    if (count === null || count === undefined) return { count: 0, retryAfterMs: 0 };
    return { count: Number(count), retryAfterMs: Math.max(1, Number(ttl)) };
  }

  async reset(key: string): Promise<void> {
    await this.redis.del(this.#key(key));
  }

  /** The Redis connection belongs to the caller; nothing to release here. */
  async close(): Promise<void> {}

  #key(key: string): string {
    return `${this.prefix}rl:${key}`;
  }
}

/**
 * The Redis limiter, falling back to per-process counting while Redis is unreachable: a request
 * is then limited by this node's counters instead of failing (or waiting for Redis to come back).
 * Limits are looser during an outage (each node counts alone) and shared again once it is over.
 */
export class RedisRateLimiterWithFallback implements RateLimiter {
  readonly #redis: RedisRateLimiter;
  readonly #local: MemoryRateLimiter;

  constructor(
    private readonly client: Redis,
    prefix = 'parley:',
    now: () => number = Date.now,
    private readonly onFallback: (err: unknown) => void = () => undefined,
  ) {
    this.#redis = new RedisRateLimiter(client, prefix);
    this.#local = new MemoryRateLimiter(now);
  }

  hit(key: string, windowMs: number): Promise<RateWindow> {
    return this.#either((l) => l.hit(key, windowMs));
  }

  peek(key: string): Promise<RateWindow> {
    return this.#either((l) => l.peek(key));
  }

  async reset(key: string): Promise<void> {
    await Promise.all([this.#either((l) => l.reset(key)), this.#local.reset(key)]);
  }

  close(): Promise<void> {
    return this.#local.close();
  }

  async #either<T>(op: (l: RateLimiter) => Promise<T>): Promise<T> {
    if (this.client.status !== 'ready') return op(this.#local);
    try {
      return await op(this.#redis);
    } catch (err) {
      this.onFallback(err);
      return op(this.#local);
    }
  }
}

export type { RateLimiter };
