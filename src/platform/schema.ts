import { Type, type Static, type TSchema } from 'typebox';

/**
 * `T | null` as `{"type": [T's type, "null"]}` instead of TypeBox's `anyOf`. fast-json-stringify
 * serializes a type array with a null check, but an `anyOf` by running an Ajv validation per
 * value to pick the branch — per nullable field, per response. Only for schemas with a single
 * primitive `type` (string, integer, number, boolean).
 */
export function Nullable<T extends TSchema>(schema: T) {
  const { type } = schema as unknown as { type?: unknown };
  if (typeof type !== 'string') throw new Error('Nullable() takes a schema with a single primitive type');
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [type, 'null'] });
}
