import { Type, type Static } from 'typebox';
import { Nullable } from '../../platform/schema.ts';

export const MESSAGE_TYPES = ['text', 'image', 'file', 'audio', 'video', 'location', 'system'] as const;
export const MAX_BODY = 40_000;

export const Message = Type.Object({
  id: Type.String(),
  conversation_id: Type.String(),
  seq: Type.Integer({ description: 'gapless position in the conversation, from 1' }),
  sender_type: Type.String(),
  sender_id: Nullable(Type.String()),
  type: Type.String(),
  body: Type.String(),
  metadata: Nullable(Type.Record(Type.String(), Type.Unknown())),
  parent_id: Nullable(Type.String()),
  client_msg_id: Nullable(Type.String()),
  edited_at: Nullable(Type.String()),
  deleted: Type.Boolean(),
  deleted_at: Nullable(Type.String()),
  created_at: Type.String(),
});
export type MessageDto = Static<typeof Message>;

export const MessagePage = Type.Object({
  data: Type.Array(Message, { description: 'ascending by seq' }),
  has_more_before: Type.Boolean(),
  has_more_after: Type.Boolean(),
});

export const SendMessageBody = Type.Object(
  {
    body: Type.String({ maxLength: MAX_BODY }),
    type: Type.Optional(Type.Union(MESSAGE_TYPES.filter((t) => t !== 'system').map((t) => Type.Literal(t)))),
    client_msg_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'makes the send idempotent: a retry returns the first message' })),
    metadata: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 50 })),
  },
  { additionalProperties: false },
);
export type SendMessageBody = Static<typeof SendMessageBody>;

export const EditMessageBody = Type.Object({ body: Type.String({ minLength: 1, maxLength: MAX_BODY }) }, { additionalProperties: false });

export const ListMessagesQuery = Type.Object({
  before: Type.Optional(Type.String({ format: 'uuid', description: 'messages before this one' })),
  after: Type.Optional(Type.String({ format: 'uuid', description: 'messages after this one' })),
  around: Type.Optional(Type.String({ format: 'uuid', description: 'this message and the ones around it' })),
  before_seq: Type.Optional(Type.Integer({ minimum: 1 })),
  after_seq: Type.Optional(Type.Integer({ minimum: 0, description: 'resume: what came after the last seq seen' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
});
export type ListMessagesQuery = Static<typeof ListMessagesQuery>;

export const ConversationParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
export const MessageParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
