import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUser, makeUsers, type TestUser } from '../../../test/helpers/factories.ts';

for (const dialect of testDialects()) {
  describe(`read state and unread counts (${dialect})`, () => {
    let t: TestApp;
    let alice: TestUser;
    let bob: TestUser;
    let carol: TestUser;
    before(async () => {
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0' } });
      const org = await makeOrg(t.services);
      [alice, bob, carol] = (await makeUsers(t.app, t.services, org.id, 3)) as [TestUser, TestUser, TestUser];
    });
    after(() => t.close());
    const send = (who: TestUser, conv: string, body: string) => call(t.app, 'POST', `/api/v1/channels/${conv}/messages`, { token: who.token, body: { body } });
    const unread = async (who: TestUser) => (await call(t.app, 'GET', '/api/v1/unread', { token: who.token })).data;

    it('counts unread messages and mentions per conversation; own messages and deleted ones do not count; mark read clears', async () => {
      const chan = (await call(t.app, 'POST', '/api/v1/channels', { token: alice.token, body: { name: `r-${dialect}`, members: [bob.id] } })).data.id;
      const m1 = (await send(alice, chan, 'one')).data;
      await send(alice, chan, `two @${bob.username}`);
      const gone = (await send(alice, chan, 'three')).data;
      await send(bob, chan, 'bob writes');
      let u = await unread(bob);
      // bob's own message moved his read position past alice's three: nothing unread for him.
      assert.equal(u.conversations.find((c: { conversation_id: string }) => c.conversation_id === chan), undefined);
      const back = await call(t.app, 'POST', `/api/v1/channels/${chan}/read`, { token: bob.token, body: { message_id: m1.id } });
      assert.equal(back.statusCode, 200, back.body);
      assert.equal(back.data.last_read_seq, 1);
      u = await unread(bob);
      const row = u.conversations.find((c: { conversation_id: string }) => c.conversation_id === chan);
      assert.equal(row.unread, 2, 'two and three (his own message is not unread)');
      assert.equal(row.mentions, 1);
      assert.equal(u.total_mentions, 1);
      await call(t.app, 'DELETE', `/api/v1/messages/${gone.id}`, { token: alice.token });
      assert.equal((await unread(bob)).conversations.find((c: { conversation_id: string }) => c.conversation_id === chan).unread, 1, 'a deleted message is not unread');
      const all = await call(t.app, 'POST', `/api/v1/channels/${chan}/read`, { token: bob.token });
      assert.equal(all.data.unread, 0);
      assert.equal(all.data.mentions, 0);
      assert.equal((await unread(bob)).total_unread, 0);
    });

    it('DM read receipts and the conversation list by last activity with last message and unread count', async () => {
      const dm = (await call(t.app, 'POST', '/api/v1/dm', { token: alice.token, body: { user_id: carol.id } })).data.id;
      const chan = (await call(t.app, 'POST', '/api/v1/channels', { token: carol.token, body: { name: `l-${dialect}` } })).data.id;
      await send(alice, dm, 'hi carol');
      await send(alice, dm, 'are you there?');
      await send(carol, chan, 'my own channel');
      const receipts = await call(t.app, 'GET', `/api/v1/channels/${dm}/read-receipts`, { token: carol.token });
      assert.deepEqual(Object.fromEntries(receipts.data.data.map((r: { user_id: string; last_read_seq: number }) => [r.user_id, r.last_read_seq])), { [alice.id]: 2, [carol.id]: 0 });
      assert.equal((await call(t.app, 'GET', `/api/v1/channels/${chan}/read-receipts`, { token: carol.token })).statusCode, 400);
      const list = await call(t.app, 'GET', '/api/v1/users/me/conversations?limit=1', { token: carol.token });
      assert.equal(list.data.data[0].conversation_id, chan, 'the most recent activity first');
      assert.equal(list.data.data[0].last_message.body, 'my own channel');
      const next = await call(t.app, 'GET', `/api/v1/users/me/conversations?limit=1&cursor=${list.data.next_cursor}`, { token: carol.token });
      assert.equal(next.data.data[0].conversation_id, dm);
      assert.equal(next.data.data[0].unread, 2);
      assert.equal(next.data.data[0].last_message.body, 'are you there?');
      assert.equal(next.data.next_cursor, null);
    });

    it('followed threads count unread replies; marking the thread read clears them', async () => {
      const chan = (await call(t.app, 'POST', '/api/v1/channels', { token: alice.token, body: { name: `th-${dialect}`, members: [bob.id, carol.id] } })).data.id;
      const root = (await send(alice, chan, 'thread root')).data;
      await call(t.app, 'POST', `/api/v1/messages/${root.id}/thread`, { token: bob.token, body: { body: 'r1' } });
      await call(t.app, 'POST', `/api/v1/messages/${root.id}/thread`, { token: bob.token, body: { body: 'r2' } });
      // alice follows as the root's author; carol follows explicitly after the first replies.
      assert.equal((await call(t.app, 'POST', `/api/v1/messages/${root.id}/follow`, { token: carol.token })).statusCode, 204);
      await call(t.app, 'POST', `/api/v1/messages/${root.id}/thread`, { token: bob.token, body: { body: 'r3' } });
      const a = (await unread(alice)).threads.find((x: { root_id: string }) => x.root_id === root.id);
      assert.equal(a.unread, 3);
      const c = (await unread(carol)).threads.find((x: { root_id: string }) => x.root_id === root.id);
      assert.equal(c.unread, 1, 'carol follows from r2 on');
      assert.equal((await unread(bob)).threads.find((x: { root_id: string }) => x.root_id === root.id), undefined, 'bob wrote every reply');
      assert.equal((await call(t.app, 'POST', `/api/v1/messages/${root.id}/thread/read`, { token: alice.token })).statusCode, 204);
      assert.equal((await unread(alice)).threads.find((x: { root_id: string }) => x.root_id === root.id), undefined);
      assert.equal((await call(t.app, 'DELETE', `/api/v1/messages/${root.id}/follow`, { token: carol.token })).statusCode, 204);
      assert.equal((await unread(carol)).threads.length, 0);
    });

    it('a non-member cannot mark read, and another organization sees nothing', async () => {
      const chan = (await call(t.app, 'POST', '/api/v1/channels', { token: alice.token, body: { name: `p-${dialect}`, private: true } })).data.id;
      assert.equal((await call(t.app, 'POST', `/api/v1/channels/${chan}/read`, { token: bob.token })).statusCode, 404);
      const other = await makeOrg(t.services);
      const stranger = await makeUser(t.app, t.services, other.id, 'member');
      assert.equal((await call(t.app, 'POST', `/api/v1/channels/${chan}/read`, { token: stranger.token })).statusCode, 404);
      assert.deepEqual((await unread(stranger)).conversations, []);
    });
  });
}
