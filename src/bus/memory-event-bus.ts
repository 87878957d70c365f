import { LocalTopics, type EventBus } from './event-bus.ts';

/** In-process bus. Single node only: other processes never hear these messages. */
export class MemoryEventBus implements EventBus {
  readonly #topics = new LocalTopics();

  constructor(private readonly onError: (err: unknown) => void = () => undefined) {}

  async publish(topic: string, payload: string): Promise<void> {
    this.#topics.deliver(topic, payload, this.onError);
  }

  async subscribe(topic: string, handler: (payload: string) => void): Promise<() => Promise<void>> {
    const { remove } = this.#topics.add(topic, handler);
    return async () => void remove();
  }

  hasListeners(topic: string): boolean {
    return this.#topics.has(topic);
  }

  async close(): Promise<void> {
    this.#topics.clear();
  }
}
