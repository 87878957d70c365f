/**
 * The one place where the two engines differ in DDL. Migrations ask this module for column types
 * instead of spelling them, so one migration file serves both dialects.
 */
import type { Kysely } from 'kysely';

export type DialectName = 'sqlite' | 'postgres';

export interface ColumnTypes {
  /** An ISO-8601 instant: TEXT on SQLite, timestamptz on PostgreSQL. */
  timestamp: 'text' | 'timestamptz';
  /** Large integer counters (seq numbers, sizes). */
  bigint: 'integer' | 'bigint';
}

export function columnTypes(dialect: DialectName): ColumnTypes {
  return dialect === 'postgres' ? { timestamp: 'timestamptz', bigint: 'bigint' } : { timestamp: 'text', bigint: 'integer' };
}

/** Any Kysely instance or transaction, whatever its table types. */
type HasExecutor = Pick<Kysely<unknown>, 'getExecutor'>;

const dialects = new WeakMap<object, DialectName>();

/** Remember which dialect a Kysely instance speaks (set once by createDb). */
export function tagDialect(db: HasExecutor, dialect: DialectName): void {
  dialects.set(db, dialect);
}

/** The dialect of a Kysely instance made by createDb (also works on transactions of it). */
export function dialectOf(db: HasExecutor): DialectName {
  const d = dialects.get(db);
  if (d) return d;
  // Transactions are new Kysely objects: fall back to the adapter's class name.
  const name = db.getExecutor().adapter.constructor.name;
  return name.toLowerCase().includes('postgres') ? 'postgres' : 'sqlite';
}
