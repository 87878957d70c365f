import type { EventBus } from './event-bus.ts';

/**
 * Bus subscriptions shared by several holders in one process (the realtime gateway's sockets of
 * one user or organization): the first `acquire` of a topic subscribes, the last `release`
 * unsubscribes. One subscription per user and organization instead of per socket: less memory
 * per connection, and with Redis no SUBSCRIBE round trip per connect.
 */
export class SharedTopics {
  readonly #entries = new Map<string, { refs: number; ready: Promise<() => Promise<void>>; subscribed: boolean }>();

  constructor(private readonly bus: EventBus) {}

  /**
   * Counted in from the call. Returns undefined when the topic was already subscribed (the usual
   * case: nothing to wait for), else a promise of the subscription. When it fails, every caller
   * waiting on it gets the error and none is counted.
   */
  acquire(topic: string, handler: (payload: string) => void): Promise<void> | undefined {
    let e = this.#entries.get(topic);
    if (e?.subscribed) {
      e.refs += 1;
      return undefined;
    }
    if (!e) {
      const entry = { refs: 0, ready: this.bus.subscribe(topic, handler), subscribed: false };
      entry.ready.then(
        () => (entry.subscribed = true),
        () => this.#entries.get(topic) === entry && this.#entries.delete(topic),
      );
      this.#entries.set(topic, (e = entry));
    }
    e.refs += 1;
    return e.ready.then(() => undefined);
  }

  release(topic: string): void {
    const e = this.#entries.get(topic);
    if (!e) return;
    e.refs -= 1;
    if (e.refs > 0) return;
    this.#entries.delete(topic);
    void e.ready.then((unsubscribe) => unsubscribe()).catch(() => undefined);
  }

  get size(): number {
    return this.#entries.size;
  }
}
