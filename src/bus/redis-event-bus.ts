import type { Redis } from 'ioredis';
import { newId } from '../platform/ids.ts';
import { LocalTopics, type EventBus } from './event-bus.ts';

/**
 * Redis Pub/Sub bus for several nodes. Each message carries the publishing node's id, so a node
 * delivers its own messages locally at once and drops their echo from Redis (Hocuspocus
 * `identifier`). Channels are `<prefix>bus:<topic>`. While Redis is unreachable, local delivery
 * goes on and remote delivery is lost (at most once, see EventBus).
 */
export class RedisEventBus implements EventBus {
  readonly nodeId = newId();
  readonly #topics = new LocalTopics();
  readonly #sub: Redis;

  constructor(
    private readonly pub: Redis,
    private readonly prefix = 'parley:',
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    this.#sub = pub.duplicate();
    this.#sub.on('error', (err) => this.onError(err));
    this.#sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.#onMessage(channel.toString(), message.toString()));
    // ioredis resubscribes by itself after a reconnect; listeners learn that they may have missed messages.
    this.#sub.on('close', () => {
      this.#wasConnected = this.#wasConnected || this.#everReady;
    });
    this.#sub.on('ready', () => {
      if (this.#everReady && this.#wasConnected) for (const h of this.#reconnectHandlers) h();
      this.#everReady = true;
      this.#wasConnected = false;
    });
  }

  #everReady = false;
  #wasConnected = false;
  readonly #reconnectHandlers: Array<() => void> = [];

  onReconnect(handler: () => void): void {
    this.#reconnectHandlers.push(handler);
  }

  async publish(topic: string, payload: string): Promise<void> {
    // The command is written to Redis first, then local subscribers are served: other nodes need
    // not wait for this node's own fan-out (a big room's is milliseconds) before they hear of it.
    const remote = this.pub.publish(this.#channel(topic), `${this.nodeId}\n${payload}`);
    this.#topics.deliver(topic, payload, this.onError);
    try {
      await remote;
    } catch (err) {
      this.onError(err);
    }
  }

  async subscribe(topic: string, handler: (payload: string) => void): Promise<() => Promise<void>> {
    const { first, remove } = this.#topics.add(topic, handler);
    if (first) await this.#sub.subscribe(this.#channel(topic));
    return async () => {
      if (remove()) await this.#sub.unsubscribe(this.#channel(topic)).catch(this.onError);
    };
  }

  async close(): Promise<void> {
    this.#topics.clear();
    this.#sub.disconnect();
  }

  #channel(topic: string): string {
    return `${this.prefix}bus:${topic}`;
  }

  #onMessage(channel: string, message: string): void {
    const nl = message.indexOf('\n');
    if (nl < 0 || message.slice(0, nl) === this.nodeId) return;
    this.#topics.deliver(channel.slice(this.prefix.length + 4), message.slice(nl + 1), this.onError);
  }
}
