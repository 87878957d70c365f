import { randomInt } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Clock } from '../../platform/clock.ts';
import type { Completion, OutboxRepo, OutboxRow } from './outbox.repo.ts';
import type { OutboxMetrics } from './integrations.metrics.ts';

/** The outcome of one delivery attempt, as a target handler reports it. */
export interface DeliveryResult {
  ok: boolean;
  /** HTTP status of a webhook answer; for Redis, how many subscribers heard the event. */
  responseStatus?: number | null;
  /** Why it failed (kept in the row's last_error; never include secrets). */
  error?: string;
  /** Retrying cannot help (the endpoint was deleted): mark failed at once. */
  permanent?: boolean;
}

/**
 * Delivers outbox rows of one `target` (redis, webhook; the next issue adds platform sends).
 * Register it with OutboxDispatcher.register(target, handler).
 */
export interface TargetHandler {
  /**
   * Deliver one row. At least once: the same row may be delivered again after a crash or a lost
   * answer, so receivers dedupe on event_id / the row's idempotency_key. A throw counts as a
   * retryable failure. Must give up when `signal` aborts (the process is stopping) and take less
   * time than the claim lease (OUTBOX_LOCK_MS).
   */
  deliver(row: OutboxRow, signal: AbortSignal): Promise<DeliveryResult>;
  /** Release listeners and resources when the dispatcher stops. */
  dispose?(): void;
}

export interface DispatcherOptions {
  pollMs: number;
  concurrency: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  lockMs: number;
  /** How long stop() lets running attempts finish before aborting them (default 5000). */
  stopGraceMs?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** With rows due, a claim waits up to CLAIM_BATCH_WAIT_MS for this many free slots (see #run). */
const CLAIM_BATCH = 4;
const CLAIM_BATCH_WAIT_MS = 10;

/** After rows were written, poll this often for a short while (their commit may be under way). */
const SOON_POLL_MS = 20;
const SOON_WINDOW_MS = 500;

/**
 * The one dispatcher for everything that leaves the process. It polls for due rows (and wakes at
 * once on kick(), which producers call after their commit), claims at most as many as it has free
 * delivery slots, and runs each through the handler of its target. Several dispatchers (processes
 * or nodes) can share one database: claims never overlap (see OutboxRepo.claim).
 *
 * Retries: a failed attempt is tried again after base × 2^(attempt − 1) ms, capped at the maximum,
 * with "equal jitter" (between half and all of it) so a recovering endpoint is not hit by every
 * waiting row at the same instant; after maxAttempts the row is `failed` (visible in the API and
 * metrics; it can be redelivered by hand).
 */
export class OutboxDispatcher {
  readonly #handlers = new Map<string, TargetHandler>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #opts: Required<DispatcherOptions>;
  #abort = new AbortController();
  #running = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #timer: NodeJS.Timeout | null = null;
  #kicked = false;
  /** performance.now() until which the dispatcher polls every SOON_POLL_MS. */
  #soonUntil = 0;
  /** The last claim filled every free slot: more rows may be due as soon as one frees. */
  #moreDue = false;
  /** performance.now() until which the loop waits for CLAIM_BATCH free slots (0: not waiting). */
  #batchUntil = 0;

  constructor(
    private readonly repo: OutboxRepo,
    opts: DispatcherOptions,
    private readonly clock: Clock,
    private readonly metrics: OutboxMetrics,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    this.#opts = Object.freeze({ stopGraceMs: 5000, ...opts });
  }

  /** Handle rows of `target` with `handler` (one handler per target; the last one wins). */
  register(target: string, handler: TargetHandler): void {
    this.#handlers.get(target)?.dispose?.();
    this.#handlers.set(target, handler);
  }

  get running(): boolean {
    return this.#running;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    // Every attempt in flight may listen for the stop signal.
    setMaxListeners(this.#opts.concurrency + 10, this.#abort.signal);
    this.#loop = this.#run();
  }

  /** Deliver what is due now instead of at the next poll (call after a commit that wrote rows). */
  kick(): void {
    this.#kicked = true;
    this.#wake?.();
  }

  /**
   * Rows are being written in a transaction that has not committed yet (IntegrationEvents calls
   * this): poll every few milliseconds for a short while, so they leave soon after the commit even
   * when the producer does not kick() afterwards.
   */
  soon(): void {
    this.#soonUntil = performance.now() + SOON_WINDOW_MS;
    if (this.#wake && this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(this.#wake, SOON_POLL_MS);
      this.#timer.unref();
    }
  }

  /** A target's backend is reachable again: make its waiting rows due now. */
  async expedite(target: string): Promise<void> {
    if (!this.#running) return;
    try {
      if ((await this.repo.expedite(target, iso(this.clock.now()))) > 0) this.kick();
    } catch (err) {
      this.onError(err);
    }
  }

  /**
   * Stop claiming, let running attempts finish (aborting them after the grace period; an aborted
   * attempt is retried later), release handlers. Leaves no timer behind.
   */
  async stop(): Promise<void> {
    if (!this.#running) {
      for (const h of this.#handlers.values()) h.dispose?.();
      return;
    }
    this.#running = false;
    this.#wake?.();
    await this.#loop;
    const grace = setTimeout(() => this.#abort.abort(), this.#opts.stopGraceMs);
    await Promise.allSettled([...this.#inflight]);
    clearTimeout(grace);
    for (const h of this.#handlers.values()) h.dispose?.();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const free = this.#opts.concurrency - this.#inflight.size;
      // A claim is a write (a commit): with rows due and attempts finishing one by one, wait briefly
      // for a few free slots rather than claim one row per finished attempt.
      const batch = Math.min(CLAIM_BATCH, this.#opts.concurrency);
      if (this.#moreDue && free > 0 && free < batch && this.#inflight.size > 0) {
        const now = performance.now();
        if (this.#batchUntil === 0) this.#batchUntil = now + CLAIM_BATCH_WAIT_MS;
        if (now < this.#batchUntil) {
          await this.#sleep(this.#batchUntil - now);
          continue;
        }
      }
      this.#batchUntil = 0;
      // With every slot taken nothing is claimed, and what was known stays known: rows still due
      // (the last claim filled every slot) are claimed as soon as attempts end. (Forgetting it here
      // left a backlog waiting for the next poll with every slot idle.)
      if (free > 0) {
        this.#moreDue = false;
        try {
          const now = this.clock.now();
          const rows = await this.repo.claim(iso(now), iso(now + this.#opts.lockMs), free);
          // Oldest first (ids are time-ordered): handlers that keep an order per key see rows in it.
          rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
          for (const row of rows) this.#track(this.#deliver(row));
          this.#moreDue = rows.length === free;
        } catch (err) {
          this.onError(err);
        }
      }
      if (!this.#running) break;
      if (this.#moreDue && this.#inflight.size < this.#opts.concurrency) continue;
      await this.#sleep();
    }
  }

  #sleep(atMost?: number): Promise<void> {
    if (this.#kicked) {
      this.#kicked = false;
      return Promise.resolve();
    }
    const poll = performance.now() < this.#soonUntil ? Math.min(SOON_POLL_MS, this.#opts.pollMs) : this.#opts.pollMs;
    const ms = atMost === undefined ? poll : Math.min(poll, Math.max(1, atMost));
    return new Promise((resolve) => {
      const done = () => {
        if (this.#timer) clearTimeout(this.#timer);
        this.#timer = null;
        this.#wake = null;
        this.#kicked = false;
        resolve();
      };
      this.#timer = setTimeout(done, ms);
      this.#timer.unref();
      this.#wake = done;
    });
  }

  #track(p: Promise<void>): void {
    this.#inflight.add(p);
    void p.finally(() => {
      this.#inflight.delete(p);
      if (this.#moreDue) this.kick();
    });
  }

  async #deliver(row: OutboxRow): Promise<void> {
    const handler = this.#handlers.get(row.target);
    let result: DeliveryResult;
    try {
      result = handler ? await handler.deliver(row, this.#abort.signal) : { ok: false, error: `no handler for target "${row.target}" in this process` };
    } catch (err) {
      result = { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    const completion = this.#completion(row, result);
    try {
      await this.repo.complete(row.id, row.locked_until!, completion);
    } catch (err) {
      // The lease runs out and the row is tried again: at least once.
      this.onError(err);
    }
    this.metrics.delivery(handler ? row.target : 'unknown', completion.outcome);
  }

  #completion(row: OutboxRow, r: DeliveryResult): Completion {
    const responseStatus = r.responseStatus ?? null;
    if (r.ok) return { outcome: 'delivered', at: iso(this.clock.now()), responseStatus };
    const error = r.error ?? 'delivery failed';
    if (r.permanent || row.attempts >= this.#opts.maxAttempts) return { outcome: 'failed', error, responseStatus };
    return { outcome: 'retry', nextAttemptAt: iso(this.clock.now() + this.backoffMs(row.attempts)), error, responseStatus };
  }

  /** Delay after the `attempt`-th failed attempt (1-based): exponential, capped, equal jitter. */
  backoffMs(attempt: number): number {
    const full = Math.min(this.#opts.retryMaxMs, this.#opts.retryBaseMs * 2 ** Math.min(attempt - 1, 40));
    const half = Math.floor(full / 2);
    return half + randomInt(0, full - half + 1);
  }
}
