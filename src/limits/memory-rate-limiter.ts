import type { RateLimiter, RateWindow } from './rate-limiter.ts';

/** In-process fixed windows. Single node only: each process counts on its own. */
export class MemoryRateLimiter implements RateLimiter {
  readonly #windows = new Map<string, { count: number; resetAt: number }>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now, sweepEveryMs = 30_000) {
    // Expired windows are dropped periodically so memory stays bounded by the live keys.
    this.#sweeper = setInterval(() => this.#sweep(), sweepEveryMs);
    this.#sweeper.unref();
  }

  async hit(key: string, windowMs: number): Promise<RateWindow> {
    return this.hitNow(key, windowMs);
  }

  hitNow(key: string, windowMs: number): RateWindow {
    const now = this.now();
    let w = this.#windows.get(key);
    if (!w || w.resetAt <= now) {
      w = { count: 0, resetAt: now + windowMs };
      this.#windows.set(key, w);
    }
    w.count += 1;
    return { count: w.count, retryAfterMs: Math.max(1, w.resetAt - now) };
  }

  async peek(key: string): Promise<RateWindow> {
    const now = this.now();
    const w = this.#windows.get(key);
    if (!w || w.resetAt <= now) return { count: 0, retryAfterMs: 0 };
    return { count: w.count, retryAfterMs: Math.max(1, w.resetAt - now) };
  }

  async reset(key: string): Promise<void> {
    this.#windows.delete(key);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#windows.clear();
  }

  #sweep(): void {
    const now = this.now();
    for (const [k, w] of this.#windows) if (w.resetAt <= now) this.#windows.delete(k);
  }
}
