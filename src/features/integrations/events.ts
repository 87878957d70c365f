import type { Kysely } from 'kysely';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { newId, newOrderedId } from '../../platform/ids.ts';
import type { DB } from '../../storage/schema.ts';
import type { OutboxRepo, OutboxRow } from './outbox.repo.ts';
import type { WebhooksRepo } from './webhooks.repo.ts';

/** Event names: dotted lower-case words, e.g. chat.message.new (docs/events.md has the catalogue). */
export const EVENT_NAME_RE = /^[a-z0-9_]+(\.[a-z0-9_]+)+$/;

/** Does an endpoint's filter (`["*"]`, exact names, or `prefix.*`) take this event? */
export function eventMatches(filter: readonly string[], name: string): boolean {
  return filter.some((f) => f === '*' || f === name || (f.endsWith('.*') && name.startsWith(f.slice(0, -1))));
}

/** One row for OutboxDispatcher to deliver through the handler registered for `target`. */
export interface OutboxDelivery {
  orgId: string;
  target: string;
  endpointId?: string | null;
  eventName: string;
  eventId: string;
  /** The body to deliver (JSON text). */
  payload: string;
  /** Unique across the outbox: a second enqueue with the same key is ignored. */
  idempotencyKey: string;
  /** Earliest delivery time (default: now). */
  notBefore?: string;
}

/**
 * The producer side of the outbox. NOTE: record() and enqueue() are called INSIDE the producer's
 * transaction (`trx`), so the rows commit or roll back with the change they report. Writing rows
 * makes the dispatcher poll quickly for a moment (they usually leave within tens of milliseconds of
 * the commit); calling kick() after the commit sends them at once.
 */
export class IntegrationEvents {
  constructor(
    private readonly outbox: OutboxRepo,
    private readonly endpoints: WebhooksRepo,
    private readonly clock: Clock,
    private readonly opts: { redis: boolean },
    private readonly hooks: { kick(): void; soon(): void } = { kick: () => undefined, soon: () => undefined },
  ) {}

  /**
   * Record integration event `name` for organization `orgId`. Writes one outbox row per target:
   * `redis` (when Redis events are on) and each active webhook endpoint of the organization whose
   * filter takes the event. The payload is `{ event_id, event, occurred_at, org_id, ...data }`
   * (those four keys always win over `data`); idempotency keys are `<event_id>:redis` and
   * `<event_id>:webhook:<endpoint id>`. Pass `eventId` to make a retried producer idempotent.
   * Returns the event id.
   */
  async record(trx: Kysely<DB>, orgId: string, name: string, data: Record<string, unknown>, options: { eventId?: string; occurredAt?: string } = {}): Promise<string> {
    if (!EVENT_NAME_RE.test(name)) throw new Error(`invalid integration event name "${name}"`);
    const eventId = options.eventId ?? newId();
    const occurredAt = options.occurredAt ?? isoNow(this.clock);
    const base = { event_id: eventId, event: name, occurred_at: occurredAt, org_id: orgId };
    const payload = JSON.stringify({ ...base, ...data, ...base });
    const deliveries: OutboxDelivery[] = [];
    const common = { orgId, eventName: name, eventId, payload, notBefore: occurredAt };
    if (this.opts.redis) deliveries.push({ ...common, target: 'redis', idempotencyKey: `${eventId}:redis` });
    for (const ep of await this.endpoints.listActive(trx, orgId)) {
      if (eventMatches(parseFilter(ep.events), name)) deliveries.push({ ...common, target: 'webhook', endpointId: ep.id, idempotencyKey: `${eventId}:webhook:${ep.id}` });
    }
    await this.enqueue(trx, deliveries);
    return eventId;
  }

  /**
   * Enqueue deliveries for any target (platform sends register their own handler with the
   * dispatcher and call this). Same transaction rule as record().
   */
  async enqueue(trx: Kysely<DB>, deliveries: OutboxDelivery[]): Promise<void> {
    const now = isoNow(this.clock);
    const rows: OutboxRow[] = deliveries.map((d) => ({
      // Time-ordered: the dispatcher starts a claim's rows oldest first.
      id: newOrderedId(),
      org_id: d.orgId,
      target: d.target,
      endpoint_id: d.endpointId ?? null,
      event_name: d.eventName,
      event_id: d.eventId,
      payload: d.payload,
      idempotency_key: d.idempotencyKey,
      status: 'pending',
      attempts: 0,
      next_attempt_at: d.notBefore ?? now,
      locked_until: null,
      last_error: null,
      response_status: null,
      created_at: now,
      delivered_at: null,
    }));
    await this.outbox.enqueue(trx, rows);
    if (rows.length) this.hooks.soon();
  }

  /** After the producer's commit: wake the dispatcher. */
  kick(): void {
    this.hooks.kick();
  }
}

/** The stored filter (JSON array); a damaged value matches nothing rather than everything. */
export function parseFilter(events: string): string[] {
  try {
    const v: unknown = JSON.parse(events);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
