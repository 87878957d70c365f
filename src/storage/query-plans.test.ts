import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import SQLite from 'better-sqlite3';
import { CompiledQuery } from 'kysely';
import { ArrivalOrder } from '../features/connectors/arrival-order.ts';
import { FtsIndexer } from '../features/search/fts-indexer.ts';
import { SupportRepo } from '../features/support/support.repo.ts';
import { newTestDb, testDialects, type TestDb } from '../../test/helpers/new-test-db.ts';

/**
 * SQLite's planner has no statistics on a young database and can pick an index that walks a whole
 * organization, or a whole table. Each statement here runs once per message or per batch of
 * messages and was once slow because of its plan (inbound and send benchmarks): the plan SQLite
 * makes for the SQL our code really sends is checked here.
 */
if (testDialects().includes('sqlite')) {
  describe('SQLite query plans of the message paths', () => {
    let t: TestDb;
    const seen: string[] = [];
    const prepare = SQLite.prototype.prepare;
    before(async () => {
      t = await newTestDb('sqlite');
      // Record the SQL text of every statement prepared from here on.
      SQLite.prototype.prepare = function (this: SQLite.Database, source: string) {
        seen.push(source);
        return prepare.call(this, source);
      } as typeof prepare;
    });
    after(async () => {
      SQLite.prototype.prepare = prepare;
      await t.drop();
    });

    /** The plan of the recorded statement that starts with `start` (parameters bound to placeholders). */
    async function planOf(start: string): Promise<string> {
      const text = seen.find((s) => s.startsWith(start));
      assert.ok(text, `no statement starting with ${start} was run; saw:\n${seen.join('\n')}`);
      const params = (text.match(/\?/g) ?? []).map(() => 'x');
      const { rows } = await t.db.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${text}`, params));
      return rows.map((r) => r.detail).join(' | ');
    }

    it("a contact's open conversation is found through (inbox_id, contact_id, created_at), without a sort", async () => {
      await new SupportRepo(t.db).currentForContact('org', 'inbox', 'contact');
      const plan = await planOf('select "id" from "conversations"');
      assert.match(plan, /USING INDEX conversations_inbox_contact_idx \(inbox_id=\? AND contact_id=\?\)/);
      assert.doesNotMatch(plan, /TEMP B-TREE|SCAN/);
    });

    it("a delivery's earlier untried ones are found through the partial index of waiting deliveries", async () => {
      const now = new Date().toISOString();
      // Only the delivery row matters here: no organization or inbox behind it.
      await t.db.executeQuery(CompiledQuery.raw('pragma foreign_keys = off'));
      await t.db.insertInto('webhook_events').values({ id: 'ev-2', org_id: 'org', inbox_id: 'inbox', platform: 'whatsapp', body: '{}', status: 'received', summary: null, error: null, received_at: now, processed_at: null, order_key: 'chat' }).execute();
      let ran = '';
      await new ArrivalOrder(t.db).run('ev-2', { inboxId: 'inbox', key: 'chat' }, async (id) => (ran = id));
      assert.equal(ran, 'ev-2');
      const plan = await planOf('select "id" from "webhook_events" where "inbox_id"');
      // Keyed by arrival (inbox, id): the range is the inbox's untried deliveries older than this one.
      assert.match(plan, /USING COVERING INDEX webhook_events_waiting_idx \(inbox_id=\? AND id<\?\)/);
      assert.doesNotMatch(plan, /TEMP B-TREE|SCAN/);
    });

    it('the search indexer reads the messages above its mark as a rowid range, not every message', async () => {
      await t.db.executeQuery(CompiledQuery.raw('pragma foreign_keys = off'));
      // Only the message row matters here (the other columns take their defaults).
      await t.db.executeQuery(CompiledQuery.raw(`insert into messages (id, org_id, conversation_id, seq, sender_type, type, body, created_at) values ('m-1', 'org', 'conv', 1, 'user', 'text', 'hello', '2026-01-01T00:00:00.000Z')`));
      await new FtsIndexer(t.db, t.writes, { intervalMs: 60_000 }).flush();
      const plan = await planOf('insert into messages_fts(rowid, body, conversation_id)');
      assert.match(plan, /^SEARCH messages USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)$/);
    });
  });
}
