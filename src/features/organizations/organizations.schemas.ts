import { Type, type Static } from 'typebox';
import { Email, Password, Role, Username } from '../users/users.schemas.ts';

export const Slug = Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9][a-z0-9-]*$' });

export const Organization = Type.Object({
  id: Type.String(),
  name: Type.String(),
  slug: Type.String(),
  registration_open: Type.Boolean(),
  default_role: Type.String(),
  settings: Type.Record(Type.String(), Type.Unknown()),
  created_at: Type.String(),
  updated_at: Type.String(),
});
export type OrganizationDto = Static<typeof Organization>;

export const OrganizationList = Type.Object({ data: Type.Array(Organization) });

const Settings = Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 100 });

export const CreateOrganizationBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    slug: Type.Optional(Slug),
    registration_open: Type.Optional(Type.Boolean()),
    default_role: Type.Optional(Role),
    settings: Type.Optional(Settings),
    admin: Type.Optional(
      Type.Object(
        { username: Username, password: Password, email: Type.Optional(Email), name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })) },
        { additionalProperties: false, description: 'the first admin of the new organization' },
      ),
    ),
  },
  { additionalProperties: false },
);
export type CreateOrganizationBody = Static<typeof CreateOrganizationBody>;

export const UpdateOrganizationBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    registration_open: Type.Optional(Type.Boolean()),
    default_role: Type.Optional(Role),
    settings: Type.Optional(Settings),
  },
  { additionalProperties: false },
);
export type UpdateOrganizationBody = Static<typeof UpdateOrganizationBody>;

export const OrganizationIdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
