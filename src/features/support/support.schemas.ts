import { Type, type Static } from 'typebox';
import { Nullable } from '../../platform/schema.ts';

export const STATUSES = ['open', 'pending', 'snoozed', 'resolved', 'closed'] as const;
export type SupportStatus = (typeof STATUSES)[number];
const Status = Type.Union([Type.Literal('open'), Type.Literal('pending'), Type.Literal('snoozed'), Type.Literal('resolved'), Type.Literal('closed')]);
const Priority = Type.Union([Type.Literal('urgent'), Type.Literal('high'), Type.Literal('medium'), Type.Literal('low')]);

export const SupportConversation = Type.Object({
  id: Type.String(),
  inbox_id: Type.String(),
  contact: Type.Object({ id: Type.String(), name: Nullable(Type.String()), phone: Nullable(Type.String()), email: Nullable(Type.String()) }),
  status: Status,
  assignee_id: Nullable(Type.String()),
  team_id: Nullable(Type.String()),
  priority: Type.Union([Priority, Type.Null()]),
  snoozed_until: Nullable(Type.String()),
  archived: Type.Boolean(),
  last_seq: Type.Integer(),
  last_message_at: Nullable(Type.String()),
  created_at: Type.String(),
  updated_at: Type.String(),
});
export type SupportConversationDto = Static<typeof SupportConversation>;

export const SupportList = Type.Object({ data: Type.Array(SupportConversation), next_cursor: Nullable(Type.String()) });

export const ListSupportQuery = Type.Object({
  status: Type.Optional(Status),
  assignee_id: Type.Optional(Type.String({ format: 'uuid' })),
  inbox_id: Type.Optional(Type.String({ format: 'uuid' })),
  team_id: Type.Optional(Type.String({ format: 'uuid' })),
  unassigned: Type.Optional(Type.Boolean()),
  mine: Type.Optional(Type.Boolean({ description: 'assigned to you' })),
  archived: Type.Optional(Type.Boolean({ description: 'archived conversations instead of live ones' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 500 })),
});
export type ListSupportQuery = Static<typeof ListSupportQuery>;

export const StartSupportBody = Type.Object(
  {
    inbox_id: Type.Optional(Type.String({ format: 'uuid', description: 'staff: required; customers: a web inbox (default: the organization’s first)' })),
    contact_id: Type.Optional(Type.String({ format: 'uuid', description: 'staff only: who the conversation is with' })),
    body: Type.Optional(Type.String({ minLength: 1, maxLength: 40_000, description: 'a first message' })),
  },
  { additionalProperties: false },
);
export type StartSupportBody = Static<typeof StartSupportBody>;

export const AssignBody = Type.Object(
  { assignee_id: Type.Optional(Nullable(Type.String({ format: 'uuid' }))), team_id: Type.Optional(Nullable(Type.String({ format: 'uuid' }))) },
  { additionalProperties: false, minProperties: 1 },
);
export type AssignBody = Static<typeof AssignBody>;
export const StatusBody = Type.Object({ status: Status, snoozed_until: Type.Optional(Type.String({ format: 'date-time' })) }, { additionalProperties: false });
export type StatusBody = Static<typeof StatusBody>;
export const PriorityBody = Type.Object({ priority: Type.Union([Priority, Type.Null()]) }, { additionalProperties: false });
export const SupportParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
