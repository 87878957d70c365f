import { Type } from 'typebox';
import { Nullable } from '../../platform/schema.ts';

export const MarkReadBody = Type.Union([
  Type.Object({ message_id: Type.Optional(Type.String({ format: 'uuid', description: 'read up to this message; default: the latest' })) }, { additionalProperties: false }),
  Type.Null(),
]);

export const ReadPosition = Type.Object({ conversation_id: Type.String(), last_read_seq: Type.Integer(), unread: Type.Integer(), mentions: Type.Integer() });

const ConversationUnread = Type.Object({
  conversation_id: Type.String(),
  kind: Type.String(),
  name: Nullable(Type.String()),
  last_seq: Type.Integer(),
  last_read_seq: Type.Integer(),
  unread: Type.Integer(),
  mentions: Type.Integer(),
});

export const UnreadSummary = Type.Object({
  total_unread: Type.Integer(),
  total_mentions: Type.Integer(),
  conversations: Type.Array(ConversationUnread, { description: 'conversations with something unread' }),
  threads: Type.Array(Type.Object({ root_id: Type.String(), conversation_id: Type.String(), unread: Type.Integer() }), { description: 'followed threads with unread replies' }),
});

export const MyConversation = Type.Object({
  ...ConversationUnread.properties,
  last_message_at: Nullable(Type.String()),
  last_message: Nullable(
    Type.Object({ id: Type.String(), seq: Type.Integer(), body: Type.String(), sender_id: Nullable(Type.String()), type: Type.String(), created_at: Type.String(), deleted: Type.Boolean() }),
  ),
});
export const MyConversationList = Type.Object({ data: Type.Array(MyConversation), next_cursor: Nullable(Type.String()) });
export const MyConversationsQuery = Type.Object({
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
});

export const Receipts = Type.Object({ data: Type.Array(Type.Object({ user_id: Type.String(), last_read_seq: Type.Integer() })) });
