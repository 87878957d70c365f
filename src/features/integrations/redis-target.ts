import type { Redis } from 'ioredis';
import type { DeliveryResult, TargetHandler } from './dispatcher.ts';
import type { OutboxRow } from './outbox.repo.ts';

/** How long one PUBLISH may wait (for example in ioredis' offline queue) before the attempt fails. */
const PUBLISH_TIMEOUT_MS = 5000;

/**
 * Integration events on Redis Pub/Sub in the NestJS Redis transport format (CONNECTORS.md §7):
 * channel = event name, message `{"pattern": <name>, "data": <event>}` with no `id`, so a NestJS
 * `@EventPattern(<name>)` handler receives the event itself. Uses the app's Redis connection.
 *
 * Pub/Sub keeps nothing: a message published while nobody listens is gone. The row only leaves
 * the outbox when PUBLISH succeeds, so nothing is lost while Redis is down; with
 * `minSubscribers` > 0 a publish that fewer subscribers heard is retried too (the consumer is
 * down). When the connection becomes ready again, `onReady` lets the dispatcher retry at once.
 */
export class RedisTarget implements TargetHandler {
  readonly #onReady: () => void;

  constructor(
    private readonly redis: Redis,
    private readonly minSubscribers: number,
    onReady: () => void,
  ) {
    this.#onReady = onReady;
    redis.on('ready', this.#onReady);
  }

  /** The exact message published for a row (its payload is the event JSON). */
  static message(row: Pick<OutboxRow, 'event_name' | 'payload'>): string {
    return `{"pattern":${JSON.stringify(row.event_name)},"data":${row.payload}}`;
  }

  async deliver(row: OutboxRow, signal: AbortSignal): Promise<DeliveryResult> {
    let timer: NodeJS.Timeout | undefined;
    let onAbort = () => undefined as void;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer within ${PUBLISH_TIMEOUT_MS} ms`)), PUBLISH_TIMEOUT_MS);
      onAbort = () => reject(new Error('stopping'));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const heard = await Promise.race([this.redis.publish(row.event_name, RedisTarget.message(row)), limit]);
      if (heard < this.minSubscribers) return { ok: false, responseStatus: heard, error: `heard by ${heard} subscriber(s), at least ${this.minSubscribers} required` };
      return { ok: true, responseStatus: heard };
    } catch (err) {
      return { ok: false, error: `redis: ${err instanceof Error ? err.message : String(err)}` };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  dispose(): void {
    this.redis.off('ready', this.#onReady);
  }
}
