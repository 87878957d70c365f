import { Nullable } from '../../platform/schema.ts';
import { Type } from 'typebox';

export const ApiKey = Type.Object({
  id: Type.String(),
  name: Type.String(),
  prefix: Type.String({ description: 'the public part of the key, shown in lists' }),
  created_by: Nullable(Type.String()),
  created_at: Type.String(),
  last_used_at: Nullable(Type.String()),
  revoked_at: Nullable(Type.String()),
});

export const CreatedApiKey = Type.Intersect([ApiKey, Type.Object({ key: Type.String({ description: 'the secret key; shown only in this response' }) })]);

export const ApiKeyList = Type.Object({ data: Type.Array(ApiKey) });

export const CreateApiKeyBody = Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false });

export const ApiKeyIdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
