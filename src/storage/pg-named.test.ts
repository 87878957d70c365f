import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { newTestDb, testDialects } from '../../test/helpers/new-test-db.ts';
import type { DB } from './schema.ts';

/** The prepared statements of the connection `db` runs on, by their text. */
async function prepared(db: Kysely<DB>): Promise<Map<string, string[]>> {
  const rows = (await sql<{ name: string; statement: string }>`select name, statement from pg_prepared_statements`.execute(db)).rows;
  const byText = new Map<string, string[]>();
  for (const r of rows) byText.set(r.statement, [...(byText.get(r.statement) ?? []), r.name]);
  return byText;
}

if (!testDialects().includes('postgres')) {
  describe('PostgreSQL named statements', () => it('needs PostgreSQL', (t) => t.skip('SKIPPED: no PostgreSQL in this run')));
} else {
  describe('PostgreSQL named statements (pg-named.ts)', () => {
    it('a statement text is parsed once per connection and then run by its name', async () => {
      // One connection: every statement below runs on it.
      const d = await newTestDb('postgres', { migrate: false, db: { poolSize: 1 } });
      try {
        const text = 'select $1::int + 1 as n';
        for (let i = 0; i < 3; i++) assert.equal((await sql<{ n: number }>`select ${i}::int + 1 as n`.execute(d.db)).rows[0]!.n, i + 1);
        const names = (await prepared(d.db)).get(text);
        assert.equal(names?.length, 1, `one prepared statement for "${text}"`);
        assert.match(names[0]!, /^parley_\d+$/);
      } finally {
        await d.drop();
      }
    });

    it('DATABASE_PREPARED_STATEMENTS=false: nothing is prepared', async () => {
      const d = await newTestDb('postgres', { migrate: false, db: { poolSize: 1, preparedStatements: false } });
      try {
        for (let i = 0; i < 3; i++) await sql`select ${i}::int + 1 as n`.execute(d.db);
        assert.deepEqual([...(await prepared(d.db)).keys()], []);
      } finally {
        await d.drop();
      }
    });

    it('past the cap, new statement texts run unnamed', async () => {
      const d = await newTestDb('postgres', { migrate: false, db: { poolSize: 1, maxPreparedStatements: 2 } });
      try {
        assert.equal((await sql<{ n: number }>`select 1 as n`.execute(d.db)).rows[0]!.n, 1);
        assert.equal((await sql<{ n: number }>`select 2 as n`.execute(d.db)).rows[0]!.n, 2);
        assert.equal((await sql<{ n: number }>`select 3 as n`.execute(d.db)).rows[0]!.n, 3);
        // The look at pg_prepared_statements is a fourth text: unnamed too.
        const texts = [...(await prepared(d.db)).keys()].sort();
        assert.deepEqual(texts, ['select 1 as n', 'select 2 as n']);
      } finally {
        await d.drop();
      }
    });

    it('a column added under a prepared `select *`: run again under a new name; inside a transaction the next attempt works', async () => {
      const d = await newTestDb('postgres', { migrate: false, db: { poolSize: 1 } });
      try {
        const db = d.db as unknown as Kysely<{ t: { a: number; b?: number; c?: number; d?: number } }>;
        await sql`create table t (a int)`.execute(db);
        await sql`insert into t values (1)`.execute(db);
        const all = () => db.selectFrom('t').selectAll().execute();
        assert.deepEqual(await all(), [{ a: 1 }]);
        await sql`alter table t add column b int default 7`.execute(db);
        // Outside a transaction: answered, with the new column.
        assert.deepEqual(await all(), [{ a: 1, b: 7 }]);

        const one = (trx: typeof db) => trx.selectFrom('t').selectAll().where('a', '=', 1).execute();
        assert.deepEqual(await one(db), [{ a: 1, b: 7 }]);
        await sql`alter table t add column c int default 8`.execute(db);
        // Inside a transaction the statement cannot be run again: the transaction fails...
        await assert.rejects(
          db.transaction().execute((trx) => one(trx)),
          (err: { code?: string }) => err.code === '0A000',
        );
        // ...and the next one prepares the text under its new name.
        assert.deepEqual(await db.transaction().execute((trx) => one(trx)), [{ a: 1, b: 7, c: 8 }]);
        // The same in a transaction opened with an isolation level (`start transaction …`, not `begin`).
        await sql`alter table t add column d int default 9`.execute(db);
        await assert.rejects(
          db.transaction().setIsolationLevel('serializable').execute((trx) => one(trx)),
          (err: { code?: string }) => err.code === '0A000',
        );
        assert.deepEqual(await db.transaction().setIsolationLevel('serializable').execute((trx) => one(trx)), [{ a: 1, b: 7, c: 8, d: 9 }]);
      } finally {
        await d.drop();
      }
    });
  });
}
