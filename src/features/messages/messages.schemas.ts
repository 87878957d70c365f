import { Type, type Static } from 'typebox';
import { Nullable } from '../../platform/schema.ts';
import { AttachmentIds, FileInfo } from '../files/files.schemas.ts';

/** A reaction: a Unicode emoji or a :shortcode:, no whitespace. */
export const Emoji = Type.String({ minLength: 1, maxLength: 64, pattern: '^[^\\s]+$' });

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
  in_channel: Type.Boolean({ description: 'shown in the channel: top-level messages, and thread replies also sent there' }),
  reply_count: Type.Integer(),
  last_reply_at: Nullable(Type.String()),
  thread_participants: Type.Array(Type.String(), { description: 'user ids of the people who replied' }),
  pinned: Type.Boolean(),
  pinned_at: Nullable(Type.String()),
  pinned_by: Nullable(Type.String()),
  mentions: Type.Object({ users: Type.Array(Type.String()), channel: Type.Boolean(), here: Type.Boolean() }),
  reactions: Type.Array(Type.Object({ emoji: Type.String(), count: Type.Integer(), me: Type.Boolean({ description: 'whether the caller reacted' }) })),
  attachments: Type.Array(FileInfo, { description: 'files carried by the message, in order (none once deleted)' }),
  private: Type.Boolean({ description: 'a private note of a support conversation: staff only, never sent to a platform' }),
  delivery_status: Nullable(Type.String({ description: 'a message sent to a platform: pending, sent, delivered, read, played or failed' })),
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
    attachments: Type.Optional(AttachmentIds),
    private: Type.Optional(Type.Boolean({ description: 'support conversations, staff only: a private note (never seen by the customer nor sent out)' })),
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

export const ReplyBody = Type.Object(
  { ...SendMessageBody.properties, also_send_to_channel: Type.Optional(Type.Boolean({ description: 'show the reply in the channel too' })) },
  { additionalProperties: false },
);

export const ReactionBody = Type.Object({ emoji: Emoji }, { additionalProperties: false });
export const ReactionParams = Type.Object({ id: Type.String({ format: 'uuid' }), emoji: Emoji });

export const ThreadPage = Type.Object({ root: Message, replies: Type.Array(Message), has_more: Type.Boolean() });
export const ThreadQuery = Type.Object({
  after_seq: Type.Optional(Type.Integer({ minimum: 0 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
});

export const ConversationParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
export const MessageParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
