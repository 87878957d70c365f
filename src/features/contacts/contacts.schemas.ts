import { Type, type Static } from 'typebox';
import { Nullable } from '../../platform/schema.ts';

export const Contact = Type.Object({
  id: Type.String(),
  name: Nullable(Type.String()),
  email: Nullable(Type.String()),
  phone: Nullable(Type.String({ description: 'E.164' })),
  user_id: Nullable(Type.String({ description: 'the Parley user this contact is (a web customer)' })),
  custom_attributes: Type.Record(Type.String(), Type.Unknown()),
  identities: Type.Array(Type.Object({ inbox_id: Type.String(), external_id: Type.String() })),
  created_at: Type.String(),
  updated_at: Type.String(),
});
export type ContactDto = Static<typeof Contact>;

const Attributes = Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), { maxProperties: 100 });
const Fields = {
  name: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  email: Type.Optional(Nullable(Type.String({ format: 'email', maxLength: 320 }))),
  phone: Type.Optional(Nullable(Type.String({ maxLength: 40, description: 'any common format; stored in E.164' }))),
  user_id: Type.Optional(Nullable(Type.String({ format: 'uuid' }))),
  custom_attributes: Type.Optional(Attributes),
};
export const CreateContactBody = Type.Object(Fields, { additionalProperties: false });
export type CreateContactBody = Static<typeof CreateContactBody>;
export const UpdateContactBody = Type.Object(Fields, { additionalProperties: false, minProperties: 1 });
export type UpdateContactBody = Static<typeof UpdateContactBody>;

export const ContactList = Type.Object({ data: Type.Array(Contact), next_cursor: Nullable(Type.String()) });
export const ListContactsQuery = Type.Object({
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'name, email or phone (any form) starting with this' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 500 })),
});
export type ListContactsQuery = Static<typeof ListContactsQuery>;
export const ContactParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
export const MergeContactBody = Type.Object({ from_id: Type.String({ format: 'uuid', description: 'this contact is merged into the one in the path and removed' }) }, { additionalProperties: false });
