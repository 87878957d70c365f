import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { runMigrations } from '../../src/bootstrap.ts';
import { createDb, type CreateDbOptions, type Database } from '../../src/storage/db.ts';
import type { DialectName } from '../../src/storage/dialect.ts';

/**
 * The engines a storage test runs on: SQLite always; PostgreSQL when the harness started one
 * (PARLEY_TEST_PG_URL). TEST_DIALECTS=sqlite,postgres narrows the list.
 */
export function testDialects(): DialectName[] {
  const wanted = (process.env.TEST_DIALECTS ?? 'sqlite,postgres').split(',');
  const out: DialectName[] = [];
  if (wanted.includes('sqlite')) out.push('sqlite');
  if (wanted.includes('postgres') && process.env.PARLEY_TEST_PG_URL && process.env.PARLEY_TEST_SKIP_PG !== '1') out.push('postgres');
  return out;
}

export interface TestDb extends Database {
  /** The URL the database can be opened with again (another process, another pool). */
  url: string;
  /** Close and, for PostgreSQL, drop the database. */
  drop(): Promise<void>;
}

const silent = { info: () => undefined };

/** A new, empty, migrated database: in-memory SQLite, or a fresh PostgreSQL database. */
export async function newTestDb(dialect: DialectName, options: { migrate?: boolean; db?: CreateDbOptions } = {}): Promise<TestDb> {
  if (dialect === 'sqlite') {
    const database = createDb(':memory:', options.db);
    if (options.migrate !== false) await runMigrations(database.db, silent);
    return { ...database, url: ':memory:', drop: () => database.close() };
  }
  const adminUrl = process.env.PARLEY_TEST_PG_URL;
  if (!adminUrl) throw new Error('PostgreSQL is not available to this test run');
  const name = `parley_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const database = createDb(url.toString(), options.db);
  if (options.migrate !== false) await runMigrations(database.db, silent);
  return {
    ...database,
    url: url.toString(),
    drop: async () => {
      await database.close();
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}
