import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newTestDb, testDialects, type TestDb } from '../../../test/helpers/new-test-db.ts';
import { ArrivalOrder, type Ordered } from './arrival-order.ts';

/**
 * ArrivalOrder.runAll: the deliveries of one batch job, each after its chat's earlier ones — the
 * batch's own, earlier jobs' queued in this process, and untried ones of other jobs found in the
 * database — and never one that is already processed.
 */
for (const dialect of testDialects()) {
  describe(`ArrivalOrder, batch jobs (${dialect})`, () => {
    let t: TestDb;
    const now = new Date().toISOString();
    before(async () => {
      t = await newTestDb(dialect);
      await t.db.insertInto('organizations').values({ id: 'org-a', name: 'A', slug: 'a', registration_open: 0, default_role: 'member', settings: '{}', created_at: now, updated_at: now }).execute();
      for (const id of ['inbox-1', 'inbox-2']) {
        await t.db.insertInto('inboxes').values({ id, org_id: 'org-a', name: id, platform: 'whatsapp', credentials_enc: null, webhook_token: id, settings: null, auto_assign: 0, agent_capacity: 0, reassign_offline: 0, created_at: now, updated_at: now }).execute();
      }
    });
    after(() => t.drop());

    /** Stores deliveries (ids sort in arrival order within a test: `prefix` + number). */
    async function store(rows: Array<{ id: string; inbox?: string; chat: string; status?: string; platform?: string }>) {
      await t.db
        .insertInto('webhook_events')
        .values(rows.map((r) => ({ id: r.id, org_id: 'org-a', inbox_id: r.inbox ?? 'inbox-1', platform: r.platform ?? 'whatsapp', body: '{}', status: r.status ?? 'received', summary: null, error: null, received_at: now, processed_at: null, order_key: r.chat })))
        .execute();
    }
    const item = (id: string, chat: string, inboxId = 'inbox-1'): Ordered => ({ id, inboxId, platform: 'whatsapp', key: chat });

    /** Processes a delivery as the inbound service does: records it and marks it processed. */
    function processor(fail: Set<string> = new Set()) {
      const ran: string[] = [];
      const one = async (id: string) => {
        ran.push(id);
        await new Promise((r) => setTimeout(r, 2));
        if (fail.has(id)) throw new Error(`failed ${id}`);
        await t.db.updateTable('webhook_events').set({ status: 'processed' }).where('id', '=', id).execute();
        return id;
      };
      return { ran, one };
    }

    it("runs a chat's untried deliveries of other jobs first, in order, skipping processed ones and other chats", async () => {
      await store([
        { id: 'a-01', chat: 'A' }, // another job's, never tried: swept before the batch's A
        { id: 'a-02', chat: 'B', status: 'processed' }, // done already: not run again
        { id: 'a-03', chat: 'C' }, // a chat the batch does not have: left to its own job
        { id: 'a-04', chat: 'B', platform: 'chatwoot' }, // same inbox and chat text, another platform: not this chat
        { id: 'a-05', chat: 'A' },
        { id: 'a-06', chat: 'B' },
        { id: 'a-07', chat: 'A' },
        { id: 'a-08', chat: 'D', status: 'processed' }, // in the batch but processed meanwhile: skipped
      ]);
      const { ran, one } = processor();
      const settled = await new ArrivalOrder(t.db).runAll([item('a-05', 'A'), item('a-06', 'B'), item('a-07', 'A'), item('a-08', 'D')], one);
      assert.deepEqual(
        settled.map((s) => (s.status === 'fulfilled' ? s.value : 'rejected')),
        ['a-05', 'a-06', 'a-07', null],
      );
      assert.deepEqual(ran.filter((id) => ['a-01', 'a-05', 'a-07'].includes(id)), ['a-01', 'a-05', 'a-07'], "chat A's in arrival order");
      assert.deepEqual(ran.toSorted(), ['a-01', 'a-05', 'a-06', 'a-07']);
      const left = await t.db.selectFrom('webhook_events').select('id').where('id', 'in', ['a-03', 'a-04']).where('status', '=', 'received').execute();
      assert.equal(left.length, 2, 'other chats are left to their own jobs');
    });

    it('a delivery that fails settles as rejected; the rest of the batch and its chat go on', async () => {
      await store([
        { id: 'b-01', chat: 'A' },
        { id: 'b-02', chat: 'A' },
        { id: 'b-03', chat: 'B' },
      ]);
      const { ran, one } = processor(new Set(['b-01']));
      const settled = await new ArrivalOrder(t.db).runAll([item('b-01', 'A'), item('b-02', 'A'), item('b-03', 'B')], one);
      assert.equal(settled[0]!.status, 'rejected');
      assert.deepEqual(settled.slice(1).map((s) => s.status === 'fulfilled' && s.value), ['b-02', 'b-03']);
      assert.deepEqual(ran.filter((id) => id.startsWith('b-0') && id !== 'b-03'), ['b-01', 'b-02']);
      // The retry runs only what is not processed.
      const again = processor();
      await new ArrivalOrder(t.db).runAll([item('b-01', 'A'), item('b-02', 'A'), item('b-03', 'B')], again.one);
      assert.deepEqual(again.ran, ['b-01']);
    });

    it('jobs started one after the other keep their order per chat, even when the first looks up two inboxes', async () => {
      await store([
        { id: 'c-01', chat: 'A', inbox: 'inbox-2' },
        { id: 'c-02', chat: 'A' },
        { id: 'c-03', chat: 'A' },
        { id: 'c-04', chat: 'A', inbox: 'inbox-2' },
      ]);
      const order = new ArrivalOrder(t.db);
      const { ran, one } = processor();
      // Started in the same turn, as the dispatcher starts a claim's jobs.
      const first = order.runAll([item('c-01', 'A', 'inbox-2'), item('c-02', 'A')], one);
      const second = order.runAll([item('c-03', 'A'), item('c-04', 'A', 'inbox-2')], one);
      await Promise.all([first, second]);
      assert.deepEqual(ran.filter((id) => id === 'c-02' || id === 'c-03'), ['c-02', 'c-03'], 'inbox-1 chat A in order');
      assert.deepEqual(ran.filter((id) => id === 'c-01' || id === 'c-04'), ['c-01', 'c-04'], 'inbox-2 chat A in order');
      assert.equal(ran.length, 4, 'each once');
    });
  });
}
