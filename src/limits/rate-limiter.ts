/**
 * Fixed-window counters behind rate limits and failed-login limits.
 *
 * Guarantees: `hit` increments atomically and returns the count in the current window, including
 * this hit; the window starts at the first hit of a key and lasts `windowMs`. `retryAfterMs` is the
 * time left in that window (>= 1 while the window is open). Keys are opaque strings; callers put
 * the scope in them (e.g. `login:acct:<org>:<name>`).
 */
export interface RateLimiter {
  /** Count one hit for `key` and return the window's count so far. */
  hit(key: string, windowMs: number): Promise<RateWindow>;
  /** The same as `hit`, answered synchronously, by backends that can (in-process ones). */
  hitNow?(key: string, windowMs: number): RateWindow;
  /** The window's count without counting a hit (0 when there is no open window). */
  peek(key: string): Promise<RateWindow>;
  /** Forget the key (e.g. after a successful login). */
  reset(key: string): Promise<void>;
  /** Release timers or connections owned by the limiter. */
  close(): Promise<void>;
}

export interface RateWindow {
  count: number;
  retryAfterMs: number;
}
