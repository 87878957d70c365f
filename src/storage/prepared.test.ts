import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newTestDb, testDialects, type TestDb } from '../../test/helpers/new-test-db.ts';
import { PreparedInsert } from './prepared.ts';

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
  });
}
