import { Type, type Static } from 'typebox';
import { Nullable } from '../../platform/schema.ts';

export const ChannelName = Type.String({ minLength: 1, maxLength: 80, pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'lower case letters, digits, - and _' });
const Text = (max: number) => Type.String({ maxLength: max });

export const Conversation = Type.Object({
  id: Type.String(),
  org_id: Type.String(),
  kind: Type.String({ description: 'public, private, direct or group' }),
  name: Nullable(Type.String()),
  topic: Nullable(Type.String()),
  purpose: Nullable(Type.String()),
  created_by: Nullable(Type.String()),
  archived: Type.Boolean(),
  archived_at: Nullable(Type.String()),
  last_seq: Type.Integer(),
  last_message_at: Nullable(Type.String()),
  is_member: Type.Boolean(),
  member_role: Nullable(Type.String()),
  created_at: Type.String(),
  updated_at: Type.String(),
});
export type ConversationDto = Static<typeof Conversation>;

export const ConversationList = Type.Object({ data: Type.Array(Conversation), next_cursor: Nullable(Type.String()) });

export const ListChannelsQuery = Type.Object({
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 80, description: 'name prefix' })),
  include_archived: Type.Optional(Type.Boolean()),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
});
export type ListChannelsQuery = Static<typeof ListChannelsQuery>;

export const CreateChannelBody = Type.Object(
  {
    name: ChannelName,
    private: Type.Optional(Type.Boolean({ description: 'invite-only and invisible to non-members' })),
    topic: Type.Optional(Text(250)),
    purpose: Type.Optional(Text(250)),
    members: Type.Optional(Type.Array(Type.String({ format: 'uuid' }), { maxItems: 500, uniqueItems: true })),
  },
  { additionalProperties: false },
);
export type CreateChannelBody = Static<typeof CreateChannelBody>;

export const UpdateChannelBody = Type.Object(
  { name: Type.Optional(ChannelName), topic: Type.Optional(Nullable(Text(250))), purpose: Type.Optional(Nullable(Text(250))) },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateChannelBody = Static<typeof UpdateChannelBody>;

export const Member = Type.Object({
  user_id: Type.String(),
  username: Type.String(),
  name: Type.String(),
  role: Type.String({ description: 'owner, admin or member' }),
  joined_at: Type.String(),
  last_read_seq: Type.Integer(),
});
export type MemberDto = Static<typeof Member>;
export const MemberList = Type.Object({ data: Type.Array(Member) });

export const AddMemberBody = Type.Object(
  { user_id: Type.String({ format: 'uuid' }), role: Type.Optional(Type.Union([Type.Literal('member'), Type.Literal('admin')])) },
  { additionalProperties: false },
);

export const MemberRoleBody = Type.Object(
  { role: Type.Union([Type.Literal('owner'), Type.Literal('admin'), Type.Literal('member')]) },
  { additionalProperties: false },
);

export const OpenDmBody = Type.Object(
  {
    user_id: Type.Optional(Type.String({ format: 'uuid', description: 'a direct conversation with this user' })),
    user_ids: Type.Optional(Type.Array(Type.String({ format: 'uuid' }), { minItems: 2, maxItems: 7, uniqueItems: true, description: 'a group of 3 to 8 people, you included' })),
  },
  { additionalProperties: false },
);
export type OpenDmBody = Static<typeof OpenDmBody>;

export const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
export const MemberParams = Type.Object({ id: Type.String({ format: 'uuid' }), userId: Type.String({ format: 'uuid' }) });
export const UserIdParams = Type.Object({ userId: Type.String({ format: 'uuid' }) });
