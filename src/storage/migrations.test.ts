import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { newTestDb, testDialects } from '../../test/helpers/new-test-db.ts';
import { createDb } from './db.ts';
import { MIGRATION_NAMES, migrateToLatest } from './migrate.ts';
import type { Kysely } from 'kysely';

const MIGRATION_COUNT = MIGRATION_NAMES.length;
// The tables the migrations must create (engines may add their own, e.g. FTS5 shadow tables).
const TABLES = ['api_keys', 'conversation_members', 'conversations', 'files', 'message_attachments', 'message_mentions', 'messages', 'organizations', 'reactions', 'refresh_tokens', 'sessions', 'thread_follows', 'users'];
const assertHasTables = (names: string[]) => {
  for (const t of TABLES) assert.ok(names.includes(t), `table ${t} exists (got ${names.join(', ')})`);
};

async function tableNames(db: Kysely<unknown>): Promise<string[]> {
  const tables = await db.introspection.getTables();
  return tables.map((t) => t.name).filter((n) => !n.startsWith('kysely_')).sort();
}

describe('migrations', () => {
  it('migrate an empty SQLite file, in WAL mode with foreign keys on; a second run does nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-mig-'));
    try {
      const database = createDb(join(dir, 'nested', 'parley.db'));
      const first = await migrateToLatest(database.db as unknown as Kysely<unknown>);
      assert.deepEqual(first.results?.map((r) => r.status), Array(MIGRATION_COUNT).fill('Success'));
      assertHasTables(await tableNames(database.db as unknown as Kysely<unknown>));
      const second = await migrateToLatest(database.db as unknown as Kysely<unknown>);
      assert.deepEqual(second.results, []);
      const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(database.db);
      assert.equal(mode.rows[0]?.journal_mode, 'wal');
      const fk = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(database.db);
      assert.equal(fk.rows[0]?.foreign_keys, 1);
      await database.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const dialect of testDialects().filter((d) => d === 'postgres')) {
    it('migrate an empty PostgreSQL database, also from several processes at once', async () => {
      const empty = await newTestDb(dialect, { migrate: false });
      try {
        assert.deepEqual(await tableNames(empty.db as unknown as Kysely<unknown>), []);
        // Several nodes starting together: Kysely's migration lock lets exactly one apply it.
        const others = [createDb(empty.url), createDb(empty.url), createDb(empty.url)];
        const results = await Promise.all(others.map((o) => migrateToLatest(o.db as unknown as Kysely<unknown>)));
        const appliedBy = results.map((r) => (r.results ?? []).filter((x) => x.status === 'Success').length);
        assert.equal(appliedBy.filter((n) => n > 0).length, 1, `exactly one process migrates: ${appliedBy}`);
        assert.equal(Math.max(...appliedBy), MIGRATION_COUNT, 'and it applies every migration');
        assertHasTables(await tableNames(empty.db as unknown as Kysely<unknown>));
        await Promise.all(others.map((o) => o.close()));
      } finally {
        await empty.drop();
      }
    });
  }

  it('the same rows read back identically on every engine (timestamps as ISO strings, counters as numbers)', async () => {
    for (const dialect of testDialects()) {
      const t = await newTestDb(dialect);
      try {
        const at = '2026-11-21T10:00:00.123Z';
        await t.db.insertInto('organizations').values({ id: 'o1', name: 'O', slug: 'o', registration_open: 1, default_role: 'member', settings: '{}', created_at: at, updated_at: at }).execute();
        const row = await t.db.selectFrom('organizations').selectAll().executeTakeFirstOrThrow();
        assert.equal(row.created_at, at, dialect);
        assert.equal(row.registration_open, 1, dialect);
        const n = await t.db.selectFrom('organizations').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
        assert.equal(Number(n.n), 1);
      } finally {
        await t.drop();
      }
    }
  });
});
