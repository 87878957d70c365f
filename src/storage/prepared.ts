import { CompiledQuery, type Compilable, type Kysely } from 'kysely';
import { dialectOf } from './dialect.ts';
import { runDirect } from './direct-sqlite.ts';

/**
 * A query built with Kysely once and then run many times with new parameters. Building and
 * compiling a query costs more than running a simple indexed read on SQLite (measured: the access
 * check of every conversation request took 48 µs built each time, 11 µs prepared), so the hot
 * queries are built once per shape: `build` receives `param(i)`, a marker for the i-th argument,
 * and the compiled parameters are remembered as "argument i" or "this constant".
 */
export class PreparedQuery<A extends readonly unknown[], R> {
  /** Per dialect: the SQL text depends on nothing else, so transactions and connections share it. */
  readonly #compiled = new Map<string, { sql: string; slots: Array<{ arg: number } | { value: unknown }>; identity: boolean }>();

  constructor(private readonly build: (db: Kysely<any>, param: (i: number) => any) => Compilable<R>) {} // eslint-disable-line @typescript-eslint/no-explicit-any

  async execute(db: Kysely<any>, args: A): Promise<R[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const dialect = dialectOf(db);
    let c = this.#compiled.get(dialect);
    if (!c) {
      const compiled = this.build(db, (i) => `${MARK}${i}`).compile();
      const slots = compiled.parameters.map((v) => (typeof v === 'string' && v.startsWith(MARK) ? { arg: Number(v.slice(MARK.length)) } : { value: v }));
      c = { sql: compiled.sql, slots, identity: slots.length === args.length && slots.every((s, i) => 'arg' in s && s.arg === i) };
      this.#compiled.set(dialect, c);
    }
    // The parameters are the arguments in order (a multi-row insert's ~1,000 of them): no copy.
    const params = c.identity && args.length === c.slots.length ? args : c.slots.map((s) => ('arg' in s ? args[s.arg] : s.value));
    // SQLite: straight on better-sqlite3 when that is what Kysely would do (see runDirect).
    return runDirect<R>(db, c.sql, params) ?? (await db.executeQuery<R>(CompiledQuery.raw(c.sql, params as unknown[]))).rows;
  }
}

/** A prefix real parameter values never have. */
const MARK = '\u0000parley-param:';

/**
 * A multi-row INSERT prepared per row count (see PreparedQuery): `rows` are arrays of values in
 * `columns` order, written in chunks of at most `chunk` rows. One statement for a batch instead of
 * one per row: a group-committed batch of webhook acks spent ~16 µs per row in single-row inserts.
 */
export class PreparedInsert {
  readonly #bySize = new Map<number, PreparedQuery<unknown[], never>>();

  constructor(
    private readonly table: string,
    private readonly columns: readonly string[],
    /** e.g. `(oc) => oc.column('idempotency_key').doNothing()` */
    private readonly onConflict?: (oc: any) => any, // eslint-disable-line @typescript-eslint/no-explicit-any
    private readonly chunk = 64,
  ) {}

  async execute(db: Kysely<any>, rows: ReadonlyArray<readonly unknown[]>): Promise<void> { // eslint-disable-line @typescript-eslint/no-explicit-any
    for (let at = 0; at < rows.length; at += this.chunk) {
      const part = rows.length <= this.chunk ? rows : rows.slice(at, at + this.chunk);
      await this.#query(part.length).execute(db, part.flat());
    }
  }

  #query(n: number): PreparedQuery<unknown[], never> {
    let q = this.#bySize.get(n);
    if (!q) {
      const { table, columns, onConflict } = this;
      q = new PreparedQuery<unknown[], never>((db, param) => {
        const values = Array.from({ length: n }, (_, r) => Object.fromEntries(columns.map((c, j) => [c, param(r * columns.length + j)])));
        const insert = db.insertInto(table).values(values);
        return onConflict ? insert.onConflict(onConflict) : insert;
      });
      this.#bySize.set(n, q);
    }
    return q;
  }
}
