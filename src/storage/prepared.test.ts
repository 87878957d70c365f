import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newTestDb, testDialects, type TestDb } from '../../test/helpers/new-test-db.ts';
import { PreparedInsert, PreparedQuery } from './prepared.ts';

for (const dialect of testDialects()) {
  describe(`PreparedInsert (${dialect})`, () => {
    let t: TestDb;
    before(async () => {
      t = await newTestDb(dialect);
      const now = new Date().toISOString();
      await t.db.insertInto('organizations').values({ id: 'org-p', name: 'P', slug: 'p', registration_open: 0, default_role: 'member', settings: '{}', created_at: now, updated_at: now }).execute();
    });
    after(() => t.drop());

    it('writes any number of rows in chunks, values in column order, and skips conflicts when told', async () => {
      const insert = new PreparedInsert('outbox', ['id', 'org_id', 'target', 'event_name', 'event_id', 'payload', 'idempotency_key', 'status', 'attempts', 'next_attempt_at', 'created_at'], (oc: { column(c: string): { doNothing(): unknown } }) => oc.column('idempotency_key').doNothing(), 64);
      const now = new Date().toISOString();
      const row = (i: number, key = `k${i}`) => [`id-${i}`, 'org-p', 'test', 'e', `ev${i}`, `{"n":${i}}`, key, 'pending', 0, now, now];
      await insert.execute(t.db, Array.from({ length: 150 }, (_, i) => row(i))); // chunks of 64, 64, 22
      await insert.execute(t.db, [row(1000, 'k5'), row(1001)]); // k5 exists: skipped, the other written
      const rows = await t.db.selectFrom('outbox').select(['id', 'payload', 'idempotency_key']).where('target', '=', 'test').orderBy('id').execute();
      assert.equal(rows.length, 151);
      assert.equal(rows.find((r) => r.id === 'id-149')?.payload, '{"n":149}');
      assert.equal(rows.find((r) => r.idempotency_key === 'k5')?.id, 'id-5');
      assert.ok(rows.some((r) => r.id === 'id-1001'));
      await insert.execute(t.db, []);
    });

    it('binds arguments used out of order, twice, or beside constants (the in-order case passes them as they are)', async () => {
      const now = new Date().toISOString();
      await t.db.insertInto('organizations').values({ id: 'org-q', name: 'Q', slug: 'q', registration_open: 1, default_role: 'member', settings: '{}', created_at: now, updated_at: now }).execute();
      // Arguments bound in order: passed through.
      const inOrder = new PreparedQuery<[id: string, slug: string], { name: string }>((db, param) => db.selectFrom('organizations').select('name').where('id', '=', param(0)).where('slug', '=', param(1)));
      assert.deepEqual(await inOrder.execute(t.db, ['org-q', 'q']), [{ name: 'Q' }]);
      assert.deepEqual(await inOrder.execute(t.db, ['org-q', 'p']), []);
      // Reversed, with a constant between them, and one argument used twice.
      const mixed = new PreparedQuery<[slug: string, id: string], { name: string }>((db, param) =>
        db.selectFrom('organizations').select('name').where('id', '=', param(1)).where('registration_open', '=', 1).where('slug', '=', param(0)).where('name', '!=', param(0)),
      );
      assert.deepEqual(await mixed.execute(t.db, ['q', 'org-q']), [{ name: 'Q' }]);
      assert.deepEqual(await mixed.execute(t.db, ['org-q', 'q']), []);
    });

    // On SQLite a PreparedQuery may run straight on better-sqlite3 (storage/direct-sqlite.ts); it
    // must behave as through Kysely: never inside someone else's open transaction.
    const slug = new PreparedQuery<[id: string], { slug: string }>((db, param) => db.selectFrom('organizations').select('slug').where('id', '=', param(0)));
    const rename = new PreparedQuery<[slug: string, id: string], never>((db, param) => db.updateTable('organizations').set({ slug: param(0) }).where('id', '=', param(1)));

    it('a read waits for a transaction open on the connection and never sees its uncommitted rows', async () => {
      for (const outcome of ['commit', 'rollback'] as const) {
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        let changed!: () => void;
        const inside = new Promise<void>((r) => (changed = r));
        const tx = t.db.transaction().execute(async (trx) => {
          await rename.execute(trx, [`p-${outcome}`, 'org-p']);
          // The transaction's own statements see its change.
          assert.deepEqual(await slug.execute(trx, ['org-p']), [{ slug: `p-${outcome}` }]);
          changed();
          await held;
          if (outcome === 'rollback') throw new Error('roll back');
        });
        await inside;
        let read: Array<{ slug: string }> | undefined;
        const reading = slug.execute(t.db, ['org-p']).then((r) => (read = r));
        await new Promise((r) => setTimeout(r, 20));
        if (dialect === 'sqlite') assert.equal(read, undefined, 'the read ran inside the open transaction');
        else assert.deepEqual(read, [{ slug: 'p' }], 'PostgreSQL: another connection reads the committed row');
        release();
        await tx.catch(() => undefined);
        await reading;
        const after = outcome === 'commit' ? 'p-commit' : 'p';
        // SQLite: the read ran once the transaction ended; PostgreSQL: it had read the committed row.
        assert.deepEqual(read, [{ slug: dialect === 'sqlite' ? after : 'p' }]);
        assert.deepEqual(await slug.execute(t.db, ['org-p']), [{ slug: after }]);
        await rename.execute(t.db, ['p', 'org-p']); // outside any transaction: autocommit
        assert.deepEqual(await slug.execute(t.db, ['org-p']), [{ slug: 'p' }]);
      }
    });
  });
}
