import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUser } from '../../../test/helpers/factories.ts';
import { GroupCommit } from '../../storage/group-commit.ts';
import { DuplicateDelivery } from './messages.service.ts';

/**
 * Platform messages are stored once per inbox (dedupe on inbox and external id). A repeat must
 * write nothing and fail nothing else: on SQLite the messages stored in one event-loop turn share
 * a transaction (group commit), and a repeat among them must not roll that transaction back.
 */
for (const dialect of testDialects()) {
  describe(`storing platform messages once (${dialect})`, () => {
    let t: TestApp;
    let orgId: string;
    let inboxId: string;
    before(async () => {
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0', OUTBOX_DISPATCHER: 'false' } });
      orgId = (await makeOrg(t.services)).id;
      const admin = await makeUser(t.app, t.services, orgId, 'admin');
      inboxId = (await call(t.app, 'POST', '/api/v1/inboxes', { token: admin.token, body: { name: 'WA', platform: 'whatsapp', credentials: { app_secret: 's', access_token: 'x' } } })).data.id;
    });
    after(() => t.close());

    it('repeats among new messages of one turn: each new one stored once, each repeat refused, no seq skipped, no batch rolled back', async () => {
      const customers = await Promise.all(
        Array.from({ length: 4 }, async (_, i) => {
          const { contact } = await t.services.contacts.resolve(orgId, inboxId, `5511900000${i}`, { name: `C${i}`, phone: null });
          return t.services.support.openForContact(orgId, inboxId, contact.id);
        }),
      );
      const store = (conversationId: string, externalId: string) =>
        t.services.messages.storeInbound(orgId, conversationId, {
          senderType: 'contact',
          senderId: null,
          type: 'text',
          body: externalId,
          metadata: null,
          externalId,
          createdAt: new Date().toISOString(),
          dedupe: { inboxId, externalId },
        });
      // Already stored: the first message of each conversation.
      await Promise.all(customers.map((c, i) => store(c, `wamid.first.${i}`)));
      const gc = t.db.writes instanceof GroupCommit ? t.db.writes : null;
      const before = gc ? { ...gc.stats } : null;
      // One turn: a new message and a repeat of the first in each conversation, plus a repeat within the turn.
      const results = await Promise.allSettled(customers.flatMap((c, i) => [store(c, `wamid.second.${i}`), store(c, `wamid.first.${i}`), store(c, `wamid.second.${i}`)]));
      const outcome = results.map((r) => (r.status === 'fulfilled' ? 'stored' : r.reason instanceof DuplicateDelivery ? 'duplicate' : String(r.reason)));
      for (const i of customers.keys()) {
        const [second, first, secondAgain] = outcome.slice(3 * i, 3 * i + 3);
        assert.equal(first, 'duplicate', 'the repeat of a stored message');
        // Two deliveries of one new message at once: either may win (PostgreSQL runs them side by side).
        assert.deepEqual([second, secondAgain].sort(), ['duplicate', 'stored']);
      }
      if (gc && before) {
        assert.ok(gc.stats.batches - before.batches < results.length, 'the calls shared transactions');
        assert.equal(gc.stats.retried - before.retried, 0, 'no batch was rolled back and run again');
      }
      for (const [i, c] of customers.entries()) {
        const rows = await t.db.db.selectFrom('messages').select(['external_id', 'seq']).where('conversation_id', '=', c).orderBy('seq').execute();
        assert.deepEqual(rows.map((r) => r.external_id), [`wamid.first.${i}`, `wamid.second.${i}`]);
        const conv = await t.db.db.selectFrom('conversations').select('last_seq').where('id', '=', c).executeTakeFirstOrThrow();
        assert.equal(Number(conv.last_seq), rows.at(-1)!.seq, 'a repeat takes no seq');
      }
    });

    it('a claim is never kept without its message: a conversation that is gone fails the store, and the message can be stored later', async () => {
      const missing = '00000000-0000-4000-8000-000000000000';
      const m = { senderType: 'contact' as const, senderId: null, type: 'text', body: 'x', metadata: null, externalId: 'wamid.lost', createdAt: new Date().toISOString(), dedupe: { inboxId, externalId: 'wamid.lost' } };
      await assert.rejects(t.services.messages.storeInbound(orgId, missing, m), /not found/);
      const { contact } = await t.services.contacts.resolve(orgId, inboxId, '5511988888888', { name: 'Late', phone: null });
      const conv = await t.services.support.openForContact(orgId, inboxId, contact.id);
      const stored = await t.services.messages.storeInbound(orgId, conv, m);
      assert.equal(stored.body, 'x');
    });
  });
}
