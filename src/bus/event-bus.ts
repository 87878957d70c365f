/**
 * Fan-out between the processes of one Parley deployment.
 *
 * Guarantees (Centrifuge's broker contract): `publish` delivers the payload to every current
 * subscriber of the topic on every node, this node included, **at most once** — a node that is
 * disconnected from the broker when a message passes misses it. Anything that must not be lost
 * goes through the database (outbox, seq-based catch-up); the bus only makes things fast.
 * Local subscribers are called synchronously inside `publish`; the order of messages on one topic
 * from one node is kept.
 */
export interface EventBus {
  /** Deliver `payload` to the topic's subscribers on every node. */
  publish(topic: string, payload: string): Promise<void>;
  /** Call `handler` for every message on `topic`; resolves once subscribed; returns the unsubscribe function. */
  subscribe(topic: string, handler: (payload: string) => void): Promise<() => Promise<void>>;
  /** Stop delivering and release connections owned by the bus. */
  close(): Promise<void>;
  /**
   * Called after the bus was cut off from other nodes and is connected again (messages may have
   * been missed meanwhile: see the at-most-once guarantee). Never called by a single-node bus.
   */
  onReconnect?(handler: () => void): void;
  /**
   * False when nobody can hear a message published on the topic now (a single-node bus without a
   * subscriber to it), so a publisher may skip building one. Left out by buses that cannot tell.
   */
  hasListeners?(topic: string): boolean;
}

/** Local subscriber registry shared by the implementations. */
export class LocalTopics {
  readonly #handlers = new Map<string, Set<(payload: string) => void>>();

  add(topic: string, handler: (payload: string) => void): { first: boolean; remove: () => boolean } {
    let set = this.#handlers.get(topic);
    const first = !set;
    if (!set) this.#handlers.set(topic, (set = new Set()));
    set.add(handler);
    return {
      first,
      remove: () => {
        set.delete(handler);
        if (set.size > 0) return false;
        this.#handlers.delete(topic);
        return true;
      },
    };
  }

  has(topic: string): boolean {
    return this.#handlers.has(topic);
  }

  /** Call every local handler of the topic; one throwing handler does not stop the others. */
  deliver(topic: string, payload: string, onError: (err: unknown) => void): void {
    const set = this.#handlers.get(topic);
    if (!set) return;
    for (const h of [...set]) {
      try {
        h(payload);
      } catch (err) {
        onError(err);
      }
    }
  }

  clear(): void {
    this.#handlers.clear();
  }
}
