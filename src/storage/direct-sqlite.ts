import type { Kysely } from 'kysely';

/** What the direct path needs of better-sqlite3 (the app's one connection). */
export interface SqliteHandle {
  /** True between BEGIN and COMMIT / ROLLBACK. */
  readonly inTransaction: boolean;
}
export interface SqliteStatement {
  readonly reader: boolean;
  all(params: readonly unknown[]): unknown[];
  run(params: readonly unknown[]): unknown;
}

interface Direct {
  /** The Kysely instance createDb made (its transactions and connections are other objects). */
  root: object;
  handle: SqliteHandle;
  /** Prepared statements, cached (createDb's statement cache, shared with Kysely's driver). */
  prepare(sql: string): SqliteStatement;
}

type HasExecutor = Pick<Kysely<unknown>, 'getExecutor'>;

/** Keyed by the Kysely adapter, which a database's transactions and connections share with it. */
const direct = new WeakMap<object, Direct>();

/** createDb: statements on this SQLite database may run directly (see runDirect). */
export function registerDirectSqlite(root: HasExecutor, handle: SqliteHandle, prepare: (sql: string) => SqliteStatement): void {
  direct.set(root.getExecutor().adapter, { root, handle, prepare });
}

/**
 * Runs compiled SQL straight on better-sqlite3, without Kysely's layers, when that is exactly what
 * Kysely would do; returns undefined when it is not (PostgreSQL, or the connection busy with someone
 * else's transaction: the caller then goes through Kysely, which waits for it).
 *
 * Kysely's SQLite driver serializes the one connection with a mutex and wraps each statement in
 * several promises; for the hot statements (a send runs four) that cost more than the statements:
 * ~2.5 µs and a few KB of short-lived garbage each. Running directly is safe:
 * - with a transaction or connection of the database (not the root instance): the caller holds the
 *   connection, so nobody else's statement can be in between — as through Kysely;
 * - with the root instance while no transaction is open on the connection: the statement runs in
 *   autocommit, as Kysely would run it once the mutex is free (better-sqlite3 is synchronous, so no
 *   other statement is half-way). While a transaction is open (someone else's, between two of its
 *   awaits), the statement must wait for it, or it would read uncommitted rows or join it.
 */
export function runDirect<R>(db: HasExecutor, sql: string, params: readonly unknown[]): R[] | undefined {
  const d = direct.get(db.getExecutor().adapter);
  if (!d || (db === d.root && d.handle.inTransaction)) return undefined;
  const stmt = d.prepare(sql);
  if (stmt.reader) return stmt.all(params) as R[];
  stmt.run(params);
  return [];
}
