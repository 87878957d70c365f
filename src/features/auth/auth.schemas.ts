import { Type, type Static } from 'typebox';
import { Email, Password, Role, User, Username } from '../users/users.schemas.ts';

export const RegisterBody = Type.Object(
  {
    username: Username,
    email: Type.Optional(Email),
    password: Password,
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    role: Type.Optional(Type.Union([Role], { description: 'a non-staff role; staff roles (admin, super-agent, agent) are refused' })),
    organization: Type.Optional(Type.String({ minLength: 1, maxLength: 63, description: 'organization slug; the default organization when absent' })),
  },
  { additionalProperties: false },
);
export type RegisterBody = Static<typeof RegisterBody>;

export const LoginBody = Type.Object(
  {
    username: Type.Optional(Type.String({ minLength: 1, maxLength: 254, description: 'username or email' })),
    email: Type.Optional(Type.String({ minLength: 1, maxLength: 254 })),
    password: Type.String({ minLength: 1, maxLength: 256 }),
    organization: Type.Optional(Type.String({ minLength: 1, maxLength: 63, description: 'organization slug, needed only when the same login exists in several' })),
  },
  { additionalProperties: false },
);
export type LoginBody = Static<typeof LoginBody>;

export const RefreshBody = Type.Object({ refresh_token: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });

export const LogoutBody = Type.Union([
  Type.Object({ all: Type.Optional(Type.Boolean({ description: 'revoke every session of the user' })) }, { additionalProperties: false }),
  Type.Null(),
]);

export const TokenResponse = Type.Object({
  token: Type.String(),
  refresh_token: Type.String(),
  expires_in: Type.Integer({ description: 'seconds until the access token expires' }),
  token_type: Type.Literal('Bearer'),
  user: User,
});
export type TokenResponse = Static<typeof TokenResponse>;
