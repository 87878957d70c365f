import { Type, type Static } from 'typebox';
import { Nullable } from '../../platform/schema.ts';

export const PLATFORMS = ['whatsapp', 'telegram', 'instagram', 'messenger', 'codechat', 'evolution', 'api', 'web'] as const;
export type Platform = (typeof PLATFORMS)[number];
const PlatformSchema = Type.Union([
  Type.Literal('whatsapp'),
  Type.Literal('telegram'),
  Type.Literal('instagram'),
  Type.Literal('messenger'),
  Type.Literal('codechat'),
  Type.Literal('evolution'),
  Type.Literal('api'),
  Type.Literal('web'),
]);

export const Inbox = Type.Object({
  id: Type.String(),
  name: Type.String(),
  platform: PlatformSchema,
  has_credentials: Type.Boolean({ description: 'credentials are stored (encrypted); they are never returned' }),
  settings: Type.Record(Type.String(), Type.Unknown()),
  auto_assign: Type.Boolean(),
  agent_capacity: Type.Integer({ description: 'open conversations per agent before auto-assignment skips them (0 = no limit)' }),
  reassign_offline: Type.Boolean({ description: 'reassign an agent’s open conversations when they go offline' }),
  webhook_url: Nullable(Type.String({ description: 'where the platform delivers (admins only)' })),
  verify_token: Nullable(Type.String({ description: 'the Meta verify token / Telegram secret_token (admins only)' })),
  created_at: Type.String(),
  updated_at: Type.String(),
});
export type InboxDto = Static<typeof Inbox>;

const Credentials = Type.Record(Type.String({ maxLength: 100 }), Type.String({ maxLength: 4096 }), { maxProperties: 20, description: 'platform credentials (tokens, app secret, API key): write-only' });
const Settings = Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), { maxProperties: 50 });

export const CreateInboxBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    platform: PlatformSchema,
    credentials: Type.Optional(Credentials),
    settings: Type.Optional(Settings),
    auto_assign: Type.Optional(Type.Boolean()),
    agent_capacity: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
    reassign_offline: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type CreateInboxBody = Static<typeof CreateInboxBody>;

export const UpdateInboxBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    credentials: Type.Optional(Credentials),
    settings: Type.Optional(Settings),
    auto_assign: Type.Optional(Type.Boolean()),
    agent_capacity: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
    reassign_offline: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateInboxBody = Static<typeof UpdateInboxBody>;

export const InboxList = Type.Object({ data: Type.Array(Inbox) });
export const InboxParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
export const InboxMemberParams = Type.Object({ id: Type.String({ format: 'uuid' }), userId: Type.String({ format: 'uuid' }) });
export const InboxMemberBody = Type.Object({ user_id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });
export const InboxMembers = Type.Object({ data: Type.Array(Type.Object({ user_id: Type.String(), username: Type.String(), name: Nullable(Type.String()), role: Type.String() })) });
