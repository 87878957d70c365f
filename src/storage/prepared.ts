import { CompiledQuery, type Compilable, type Kysely } from 'kysely';
import { dialectOf } from './dialect.ts';

/**
 * A query built with Kysely once and then run many times with new parameters. Building and
 * compiling a query costs more than running a simple indexed read on SQLite (measured: the access
 * check of every conversation request took 48 µs built each time, 11 µs prepared), so the hot
 * queries are built once per shape: `build` receives `param(i)`, a marker for the i-th argument,
 * and the compiled parameters are remembered as "argument i" or "this constant".
 */
export class PreparedQuery<A extends readonly unknown[], R> {
  /** Per dialect: the SQL text depends on nothing else, so transactions and connections share it. */
  readonly #compiled = new Map<string, { sql: string; slots: Array<{ arg: number } | { value: unknown }> }>();

  constructor(private readonly build: (db: Kysely<any>, param: (i: number) => any) => Compilable<R>) {} // eslint-disable-line @typescript-eslint/no-explicit-any

  async execute(db: Kysely<any>, args: A): Promise<R[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const dialect = dialectOf(db);
    let c = this.#compiled.get(dialect);
    if (!c) {
      const compiled = this.build(db, (i) => `${MARK}${i}`).compile();
      c = {
        sql: compiled.sql,
        slots: compiled.parameters.map((v) => (typeof v === 'string' && v.startsWith(MARK) ? { arg: Number(v.slice(MARK.length)) } : { value: v })),
      };
      this.#compiled.set(dialect, c);
    }
    const params = c.slots.map((s) => ('arg' in s ? args[s.arg] : s.value));
    return (await db.executeQuery<R>(CompiledQuery.raw(c.sql, params))).rows;
  }
}

/** A prefix real parameter values never have. */
const MARK = '\u0000parley-param:';
