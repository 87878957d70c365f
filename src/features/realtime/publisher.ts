import type { EventBus } from '../../bus/event-bus.ts';
import { type Clock, isoNow } from '../../platform/clock.ts';

/** Bus topics of the realtime gateway. */
export const topics = {
  conversation: (id: string) => `conv:${id}`,
  user: (id: string) => `user:${id}`,
  org: (id: string) => `org:${id}`,
};

/**
 * Server → client event types (DESIGN.md). Conversation events that change stored messages carry
 * the conversation's event `seq` (its messages_version after the change): message,
 * message_update, message_delete, reaction, pin. The others are not replayed on resume.
 */
export type ServerEventType =
  | 'message'
  | 'message_update'
  | 'message_delete'
  | 'reaction'
  | 'pin'
  | 'read'
  | 'typing'
  | 'presence'
  | 'member_join'
  | 'member_leave'
  | 'membership'
  | 'conversation_new'
  | 'conversation_update'
  | 'mention';

/**
 * Publishes every change to the gateways of every node, after the change is committed. The event
 * is serialized here, once, into the exact text clients receive; on the bus it travels as
 * `<seq>[!]\n<envelope JSON>` (seq empty for events without one; `!` for staff-only events) so that
 * gateways order, dedupe and filter conversation events without parsing them.
 */
export class RealtimePublisher {
  constructor(
    private readonly bus: EventBus,
    private readonly clock: Clock,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** `staffOnly`: a private note (or a change to one) — never delivered to a support conversation's customer. */
  toConversation(conversationId: string, type: ServerEventType, payload: unknown, seq?: number, staffOnly = false): void {
    const topic = topics.conversation(conversationId);
    if (this.#unheard(topic)) return;
    this.#publish(topic, envelope(type, payload, isoNow(this.clock), conversationId, seq), seq, staffOnly);
  }

  toUser(userId: string, type: ServerEventType, payload: unknown, conversationId?: string, seq?: number): void {
    const topic = topics.user(userId);
    if (this.#unheard(topic)) return;
    this.#publish(topic, envelope(type, payload, isoNow(this.clock), conversationId, seq), seq);
  }

  toOrg(orgId: string, type: ServerEventType, payload: unknown): void {
    const topic = topics.org(orgId);
    if (this.#unheard(topic)) return;
    this.#publish(topic, envelope(type, payload, isoNow(this.clock)), undefined);
  }

  /** Nobody would hear it (the in-process bus, no socket here subscribed): not even built. */
  #unheard(topic: string): boolean {
    return this.bus.hasListeners?.(topic) === false;
  }

  #publish(topic: string, json: string, seq: number | undefined, staffOnly = false): void {
    this.bus.publish(topic, `${seq ?? ''}${staffOnly ? '!' : ''}\n${json}`).catch(this.onError);
  }
}

/**
 * The envelope of DESIGN.md: { type, channel_id?, payload, timestamp, seq?, id? }. `timestamp`: an
 * ISO 8601 time, from `isoNow` (formatting a Date for every event cost more than the JSON).
 */
export function envelope(type: string, payload: unknown, timestamp: string, channelId?: string, seq?: number, id?: string): string {
  // Built in key order (the order clients see), without spreads.
  const e: { type: string; channel_id?: string; payload?: unknown; timestamp?: string; seq?: number; id?: string } = { type };
  if (channelId !== undefined) e.channel_id = channelId;
  e.payload = payload;
  e.timestamp = timestamp;
  if (seq !== undefined) e.seq = seq;
  if (id !== undefined) e.id = id;
  return JSON.stringify(e);
}

/** Splits a bus frame into its seq (undefined when none), whether it is for staff only, and the envelope text. */
export function parseFrame(frame: string): { seq: number | undefined; staffOnly: boolean; json: string } {
  const nl = frame.indexOf('\n');
  let head = frame.slice(0, nl);
  const staffOnly = head.endsWith('!');
  if (staffOnly) head = head.slice(0, -1);
  return { seq: head === '' ? undefined : Number(head), staffOnly, json: frame.slice(nl + 1) };
}
