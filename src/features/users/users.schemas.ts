import { Nullable } from '../../platform/schema.ts';
import { Type, type Static } from 'typebox';
import { ROLE_PATTERN } from '../../access/roles.ts';

export const PRESENCE_STATUSES = ['online', 'away', 'dnd', 'offline'] as const;
export type PresenceStatus = (typeof PRESENCE_STATUSES)[number];

export const Role = Type.String({ pattern: ROLE_PATTERN, description: 'admin, super-agent, agent, member, customer, or a host-defined role' });
export const Username = Type.String({ minLength: 2, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' });
export const Email = Type.String({ format: 'email', maxLength: 254 });
export const Password = Type.String({ minLength: 8, maxLength: 256 });
export const Uuid = Type.String({ format: 'uuid' });

export const User = Type.Object({
  id: Type.String(),
  org_id: Type.String(),
  username: Type.String(),
  email: Nullable(Type.String()),
  name: Type.String(),
  role: Type.String(),
  status: Type.String(),
  status_text: Nullable(Type.String()),
  is_online: Type.Boolean(),
  avatar_url: Nullable(Type.String()),
  external_ref: Nullable(Type.String()),
  active: Type.Boolean(),
  platform_admin: Type.Boolean(),
  last_seen_at: Nullable(Type.String()),
  created_at: Type.String(),
  updated_at: Type.String(),
});
export type UserDto = Static<typeof User>;

export const UserList = Type.Object({
  data: Type.Array(User),
  next_cursor: Nullable(Type.String()),
});

export const ListUsersQuery = Type.Object({
  role: Type.Optional(Role),
  online: Type.Optional(Type.Boolean()),
  active: Type.Optional(Type.Boolean()),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'matches username, name or email (prefix)' })),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
});
export type ListUsersQuery = Static<typeof ListUsersQuery>;

export const PresenceEntry = Type.Object({
  user_id: Type.String(),
  username: Type.String(),
  name: Type.String(),
  status: Type.String(),
  status_text: Nullable(Type.String()),
  last_seen_at: Nullable(Type.String()),
});

export const UpdateStatusBody = Type.Object(
  {
    status: Type.Optional(Type.Union(PRESENCE_STATUSES.map((s) => Type.Literal(s)))),
    status_text: Type.Optional(Nullable(Type.String({ maxLength: 140 }))),
    isOnline: Type.Optional(Type.Boolean({ description: "seed 004's shape: true = online, false = offline" })),
  },
  { additionalProperties: false },
);
export type UpdateStatusBody = Static<typeof UpdateStatusBody>;

export const UpdateProfileBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    email: Type.Optional(Nullable(Email)),
    avatar_url: Type.Optional(Nullable(Type.String({ format: 'uri', maxLength: 2048 }))),
  },
  { additionalProperties: false },
);
export type UpdateProfileBody = Static<typeof UpdateProfileBody>;

export const ChangePasswordBody = Type.Object(
  { current_password: Type.String({ maxLength: 256 }), new_password: Password },
  { additionalProperties: false },
);

export const AdminUpdateUserBody = Type.Object(
  {
    role: Type.Optional(Role),
    active: Type.Optional(Type.Boolean()),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  },
  { additionalProperties: false },
);
export type AdminUpdateUserBody = Static<typeof AdminUpdateUserBody>;

export const UserIdParams = Type.Object({ id: Uuid });
export const RoleParams = Type.Object({ role: Role });
