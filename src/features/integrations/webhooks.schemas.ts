import { Type, type Static } from 'typebox';
import { Nullable } from '../../platform/schema.ts';

const EventFilter = Type.String({
  minLength: 1,
  maxLength: 100,
  pattern: '^(\\*|[a-z0-9_]+(\\.[a-z0-9_]+)*(\\.\\*)?)$',
  description: 'an event name (chat.message.new), a prefix (chat.message.*), or * for every event',
});

export const WebhookEndpoint = Type.Object({
  id: Type.String(),
  url: Type.String(),
  events: Type.Array(Type.String()),
  active: Type.Boolean(),
  created_at: Type.String(),
  updated_at: Type.String(),
});

export const WebhookSecret = Type.Object({
  secret: Type.String({ description: 'the signing secret; shown only in this response (docs/events.md: verifying a delivery)' }),
});

export const CreatedWebhookEndpoint = Type.Object({ ...WebhookEndpoint.properties, ...WebhookSecret.properties });

export const WebhookEndpointList = Type.Object({ data: Type.Array(WebhookEndpoint) });

export const CreateWebhookBody = Type.Object(
  {
    url: Type.String({ minLength: 8, maxLength: 2048, description: 'http(s) URL; private and loopback addresses are refused unless WEBHOOKS_ALLOW_PRIVATE=true' }),
    events: Type.Optional(Type.Array(EventFilter, { minItems: 1, maxItems: 100, default: ['*'] })),
    active: Type.Optional(Type.Boolean({ default: true })),
  },
  { additionalProperties: false },
);
export type CreateWebhookBody = Static<typeof CreateWebhookBody>;

export const UpdateWebhookBody = Type.Object(
  {
    url: Type.Optional(CreateWebhookBody.properties.url),
    events: Type.Optional(Type.Array(EventFilter, { minItems: 1, maxItems: 100 })),
    active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateWebhookBody = Static<typeof UpdateWebhookBody>;

export const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });

export const OutboxStatus = Type.Union([Type.Literal('pending'), Type.Literal('done'), Type.Literal('failed')]);

/** One outbox row: a delivery of one event to one target. */
export const Delivery = Type.Object({
  id: Type.String(),
  event_id: Type.String(),
  event: Type.String(),
  target: Type.String({ description: 'redis, webhook, ...' }),
  endpoint_id: Nullable(Type.String()),
  status: Type.String({ description: 'pending, done or failed' }),
  attempts: Type.Integer(),
  response_status: Nullable(Type.Integer({ description: 'webhooks: the HTTP status of the last answer; redis: how many subscribers heard the event' })),
  last_error: Nullable(Type.String()),
  created_at: Type.String(),
  next_attempt_at: Type.String({ description: 'pending: when the next attempt is due' }),
  delivered_at: Nullable(Type.String()),
});
export type DeliveryDto = Static<typeof Delivery>;

export const DeliveryList = Type.Object({ data: Type.Array(Delivery), next_cursor: Nullable(Type.String()) });

export const DeliveriesQuery = Type.Object({
  status: Type.Optional(OutboxStatus),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
});
export type DeliveriesQuery = Static<typeof DeliveriesQuery>;

export const OutboxQuery = Type.Object({
  ...DeliveriesQuery.properties,
  target: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9_-]+$' })),
});
export type OutboxQuery = Static<typeof OutboxQuery>;
