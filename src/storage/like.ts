import { sql, type Expression, type SqlBool } from 'kysely';

/** `expr LIKE 'input%'` with the input's wildcards escaped, so it is matched literally on both engines. */
export function startsWith(expr: Expression<unknown>, input: string): Expression<SqlBool> {
  const pattern = `${input.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  return sql<SqlBool>`${expr} like ${pattern} escape '\\'`;
}
