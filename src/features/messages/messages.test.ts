import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUser, makeUsers, type TestUser } from '../../../test/helpers/factories.ts';
import { randomUUID } from 'node:crypto';
import { newOrderedId } from '../../platform/ids.ts';
import { MessagesRepo } from './messages.repo.ts';

for (const dialect of testDialects()) {
  describe(`messages (${dialect})`, () => {
    let t: TestApp;
    let alice: TestUser;
    let bob: TestUser;
    before(async () => {
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0' } });
      const org = await makeOrg(t.services);
      alice = await makeUser(t.app, t.services, org.id, 'member');
      bob = await makeUser(t.app, t.services, org.id, 'member');
    });
    after(() => t.close());

    let n = 0;
    const channel = async (members: TestUser[] = [bob]) => {
      const r = await call(t.app, 'POST', '/api/v1/channels', { token: alice.token, body: { name: `c-${dialect}-${++n}`, members: members.map((m) => m.id) } });
      assert.equal(r.statusCode, 201, r.body);
      return r.data.id as string;
    };
    const send = (id: string, body: Record<string, unknown>, who: TestUser = alice) => call(t.app, 'POST', `/api/v1/channels/${id}/messages`, { token: who.token, body });
    const history = (id: string, query = '', who: TestUser = alice) => call(t.app, 'GET', `/api/v1/channels/${id}/messages${query}`, { token: who.token });

    it('sends and reads back messages with gapless seq, newest page last', async () => {
      const id = await channel();
      for (let i = 1; i <= 5; i++) assert.equal((await send(id, { body: `m${i}` })).data.seq, i);
      const r = await history(id);
      assert.equal(r.statusCode, 200);
      assert.deepEqual(r.data.data.map((m: { body: string }) => m.body), ['m1', 'm2', 'm3', 'm4', 'm5']);
      assert.equal(r.data.has_more_before, false);
      const conv = await call(t.app, 'GET', `/api/v1/channels/${id}`, { token: bob.token });
      assert.equal(conv.data.last_seq, 5);
    });

    it('8 parallel senders x 200 messages get seq 1..1600 with no gap and no duplicate', async () => {
      const id = await channel();
      const senders = Array.from({ length: 8 }, (_, s) => (async () => {
        for (let i = 0; i < 200; i++) {
          const r = await send(id, { body: `s${s}-${i}` }, s % 2 ? bob : alice);
          assert.equal(r.statusCode, 201, r.body);
        }
      })());
      await Promise.all(senders);
      const rows = await t.db.db.selectFrom('messages').select('seq').where('conversation_id', '=', id).orderBy('seq').execute();
      assert.deepEqual(rows.map((r) => Number(r.seq)), Array.from({ length: 1600 }, (_, i) => i + 1));
    });

    it('insertAsMember stores only a member’s message to an unarchived team conversation, and changes nothing otherwise', async () => {
      const repo = new MessagesRepo(t.db.db, t.db.writes);
      const id = await channel([]);
      const row = (conversationId: string, senderId: string, body: string) => ({
        id: newOrderedId(), org_id: alice.orgId, conversation_id: conversationId, sender_type: 'user', sender_id: senderId, type: 'text', body, metadata: null, parent_id: null,
        client_msg_id: null, private: 0, edited_at: null, deleted_at: null, created_at: new Date().toISOString(), in_channel: 1, mentions: null, external_id: null, delivery_status: null, delivery_error: null,
      });
      const lastSeq = async (cid: string) => Number((await t.db.db.selectFrom('conversations').select('last_seq').where('id', '=', cid).executeTakeFirstOrThrow()).last_seq);
      const stored = await repo.insertAsMember(row(id, alice.id, 'by the owner'));
      assert.equal(stored?.message.seq, 1);
      assert.equal(stored?.kind, 'public');
      // Not a member (bob), another organization's id for the same conversation, a missing conversation.
      assert.equal(await repo.insertAsMember(row(id, bob.id, 'not a member')), null);
      assert.equal(await repo.insertAsMember({ ...row(id, alice.id, 'wrong org'), org_id: (await makeOrg(t.services)).id }), null);
      assert.equal(await repo.insertAsMember(row(randomUUID(), alice.id, 'nowhere')), null);
      // Archived.
      await t.db.db.updateTable('conversations').set({ archived_at: new Date().toISOString() }).where('id', '=', id).execute();
      assert.equal(await repo.insertAsMember(row(id, alice.id, 'archived')), null);
      assert.equal(await lastSeq(id), 1);
      // A support conversation, even for a member: its checks and hooks are the long way's.
      await t.db.db.updateTable('conversations').set({ archived_at: null, kind: 'support' }).where('id', '=', id).execute();
      assert.equal(await repo.insertAsMember(row(id, alice.id, 'support')), null);
      assert.equal(await lastSeq(id), 1);
      const bodies = await t.db.db.selectFrom('messages').select('body').where('conversation_id', '=', id).execute();
      assert.deepEqual(bodies.map((b) => b.body), ['by the owner']);
    });

    it('a retried send with the same client_msg_id returns the first message, also when retries race', async () => {
      const id = await channel();
      const first = await send(id, { body: 'hello', client_msg_id: 'c-1' });
      assert.equal(first.statusCode, 201);
      const retry = await send(id, { body: 'hello (retry)', client_msg_id: 'c-1' });
      assert.equal(retry.statusCode, 200);
      assert.equal(retry.data.id, first.data.id);
      assert.equal(retry.data.body, 'hello');
      const racing = await Promise.all(Array.from({ length: 10 }, () => send(id, { body: 'race', client_msg_id: 'c-2' })));
      assert.equal(new Set(racing.map((r) => r.data.id)).size, 1, 'one message for ten racing retries');
      assert.equal(racing.filter((r) => r.statusCode === 201).length, 1);
      // Another sender may use the same client id: it is theirs.
      const bobs = await send(id, { body: 'bob', client_msg_id: 'c-1' }, bob);
      assert.equal(bobs.statusCode, 201);
      // And no seq was burnt by the duplicates.
      const rows = await t.db.db.selectFrom('messages').select('seq').where('conversation_id', '=', id).orderBy('seq').execute();
      assert.deepEqual(rows.map((r) => Number(r.seq)), [1, 2, 3]);
    });

    it('paginates before, after and around a message, and by seq, at the edges', async () => {
      const id = await channel();
      const ids: string[] = [];
      for (let i = 1; i <= 10; i++) ids.push((await send(id, { body: `p${i}` })).data.id);
      const bodies = (r: { data: { data: Array<{ body: string }> } }) => r.data.data.map((m) => m.body);
      const latest = await history(id, '?limit=4');
      assert.deepEqual(bodies(latest), ['p7', 'p8', 'p9', 'p10']);
      assert.equal(latest.data.has_more_before, true);
      const before = await history(id, `?limit=4&before=${ids[6]}`);
      assert.deepEqual(bodies(before), ['p3', 'p4', 'p5', 'p6']);
      assert.equal(before.data.has_more_before, true);
      const first = await history(id, `?limit=4&before=${ids[2]}`);
      assert.deepEqual(bodies(first), ['p1', 'p2']);
      assert.equal(first.data.has_more_before, false);
      const afterR = await history(id, `?limit=4&after=${ids[7]}`);
      assert.deepEqual(bodies(afterR), ['p9', 'p10']);
      assert.equal(afterR.data.has_more_after, false);
      const afterSeq = await history(id, '?after_seq=0&limit=3');
      assert.deepEqual(bodies(afterSeq), ['p1', 'p2', 'p3']);
      assert.equal(afterSeq.data.has_more_after, true);
      const around = await history(id, `?limit=5&around=${ids[4]}`);
      assert.deepEqual(bodies(around), ['p3', 'p4', 'p5', 'p6', 'p7']);
      assert.equal(around.data.has_more_before, true);
      assert.equal(around.data.has_more_after, true);
      const edge = await history(id, `?limit=5&around=${ids[0]}`);
      assert.equal(bodies(edge)[0], 'p1');
      assert.equal(edge.data.has_more_before, false);
      const exact = await history(id, '?limit=10');
      assert.equal(exact.data.data.length, 10);
      assert.equal(exact.data.has_more_before, false, 'a page that holds everything has nothing before');
      const other = await channel();
      const foreign = await history(other, `?before=${ids[3]}`);
      assert.equal(foreign.statusCode, 404, 'a cursor from another conversation is refused');
      assert.equal((await history(id, '?limit=201')).statusCode, 400);
    });

    it('edits by the author only; deletes leave a tombstone without content', async () => {
      const id = await channel();
      const m = (await send(id, { body: 'original', metadata: { k: 'v' } })).data;
      const byBob = await call(t.app, 'PUT', `/api/v1/messages/${m.id}`, { token: bob.token, body: { body: 'hijack' } });
      assert.equal(byBob.statusCode, 403);
      const edit = await call(t.app, 'PUT', `/api/v1/messages/${m.id}`, { token: alice.token, body: { body: 'edited' } });
      assert.equal(edit.statusCode, 200);
      assert.equal(edit.data.body, 'edited');
      assert.ok(edit.data.edited_at);
      const bobDel = await call(t.app, 'DELETE', `/api/v1/messages/${m.id}`, { token: bob.token });
      assert.equal(bobDel.statusCode, 403, 'bob is neither the author nor a channel admin');
      assert.equal((await call(t.app, 'DELETE', `/api/v1/messages/${m.id}`, { token: alice.token })).statusCode, 204);
      const got = await call(t.app, 'GET', `/api/v1/messages/${m.id}`, { token: bob.token });
      assert.equal(got.data.deleted, true);
      assert.equal(got.data.body, '');
      assert.equal(got.data.metadata, null);
      assert.equal((await history(id)).data.data.length, 1, 'the tombstone stays in history');
      const reEdit = await call(t.app, 'PUT', `/api/v1/messages/${m.id}`, { token: alice.token, body: { body: 'again' } });
      assert.equal(reEdit.statusCode, 409);
    });

    it('validates messages: empty text, unknown type, 40,000 characters', async () => {
      const id = await channel();
      assert.equal((await send(id, { body: '   ' })).statusCode, 400);
      assert.equal((await send(id, { body: 'x', type: 'system' })).statusCode, 400, 'clients cannot send system messages');
      assert.equal((await send(id, { body: 'x'.repeat(40_000) })).statusCode, 201);
      assert.equal((await send(id, { body: 'x'.repeat(40_001) })).statusCode, 400);
      assert.equal((await send(id, { body: '', type: 'location', metadata: { lat: 1, lng: 2 } })).statusCode, 201);
    });

    it('history pages (messages as JSON built by the database) equal the messages as GET /messages/:id shows them', async () => {
      const id = await channel();
      const boundary = 'parley-test-boundary';
      const payload = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="note.txt"\r\nContent-Type: text/plain\r\n\r\n`),
        Buffer.from('hello file'),
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const up = await t.app.inject({ method: 'POST', url: '/api/v1/upload', payload, headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: `Bearer ${alice.token}` } });
      assert.equal(up.statusCode, 201, up.body);
      const fileId = JSON.parse(up.body).id as string;
      const ids: string[] = [];
      const post = async (body: Record<string, unknown>, who: TestUser = alice) => {
        const r = await send(id, body, who);
        assert.equal(r.statusCode, 201, r.body);
        ids.push(r.data.id);
        return r.data.id as string;
      };
      await post({ body: 'plain ünïcödé "quoted" \\ back\nslash\ttab \u2028 😀' });
      await post({ body: 'with metadata', type: 'location', metadata: { lat: -23.5, lng: -46.6, label: 'São Paulo', nested: { a: [1, null, true] } } });
      await post({ body: `hi @${bob.username} and @channel`, client_msg_id: 'json-1' });
      const edited = await post({ body: 'before edit' });
      assert.equal((await call(t.app, 'PUT', `/api/v1/messages/${edited}`, { token: alice.token, body: { body: 'after edit' } })).statusCode, 200);
      const deleted = await post({ body: 'to delete', attachments: [fileId] });
      assert.equal((await call(t.app, 'DELETE', `/api/v1/messages/${deleted}`, { token: alice.token })).statusCode, 204);
      await post({ body: 'carries a file', attachments: [fileId] });
      const pinned = await post({ body: 'pin me' }, bob);
      assert.equal((await call(t.app, 'POST', `/api/v1/messages/${pinned}/pin`, { token: alice.token })).statusCode, 200);
      const root = await post({ body: 'thread root' });
      for (const who of [bob, alice]) {
        const r = await call(t.app, 'POST', `/api/v1/messages/${root}/thread`, { token: who.token, body: { body: 'a reply', also_send_to_channel: who === bob } });
        assert.equal(r.statusCode, 201, r.body);
        if (who === bob) ids.push(r.data.id);
      }
      for (const [who, emoji] of [[alice, '👍'], [bob, '👍'], [bob, ':tada:']] as const) {
        await new Promise((r) => setTimeout(r, 3)); // listed by first use: one instant each
        assert.equal((await call(t.app, 'POST', `/api/v1/messages/${root}/reactions`, { token: who.token, body: { emoji } })).statusCode, 200);
      }
      for (const who of [alice, bob]) {
        const page = await history(id, '?limit=200', who);
        assert.equal(page.statusCode, 200);
        assert.match(String(page.headers['content-type']), /^application\/json/);
        assert.deepEqual(page.data.data.map((m: { id: string }) => m.id), ids, 'the channel view, in order');
        for (const m of page.data.data) {
          const one = await call(t.app, 'GET', `/api/v1/messages/${m.id}`, { token: who.token });
          assert.deepEqual(m, one.data, `message ${m.body} as ${who.username}`);
        }
        const r = page.data.data.find((m: { id: string }) => m.id === root);
        assert.deepEqual(r.reactions, [{ emoji: '👍', count: 2, me: true }, { emoji: ':tada:', count: 1, me: who === bob }]);
        assert.equal(r.reply_count, 2);
        assert.equal(page.data.data.find((m: { body: string }) => m.body === 'carries a file').attachments[0].id, fileId);
      }
    });

    it('HTML in a message is stored and returned as text, never rendered', async () => {
      const id = await channel();
      const evil = '<script>alert(1)</script><img src=x onerror=alert(2)>';
      const r = await send(id, { body: evil });
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(r.data.body, evil, 'raw text back, escaping is the renderer’s job');
    });
  });
}

for (const dialect of testDialects()) {
  describe(`threads, reactions, pins, mentions (${dialect})`, () => {
    let t: TestApp;
    let alice: TestUser;
    let bob: TestUser;
    let carol: TestUser;
    let chan: string;
    before(async () => {
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0' } });
      const org = await makeOrg(t.services);
      [alice, bob, carol] = (await makeUsers(t.app, t.services, org.id, 3)) as [TestUser, TestUser, TestUser];
      chan = (await call(t.app, 'POST', '/api/v1/channels', { token: alice.token, body: { name: `t-${dialect}`, members: [bob.id, carol.id] } })).data.id;
    });
    after(() => t.close());
    const send = (who: TestUser, body: Record<string, unknown>) => call(t.app, 'POST', `/api/v1/channels/${chan}/messages`, { token: who.token, body });

    it('replies go to the thread; the root carries reply_count, last_reply_at and participants; also_send_to_channel shows a reply in the channel', async () => {
      const root = (await send(alice, { body: 'root' })).data;
      const r1 = await call(t.app, 'POST', `/api/v1/messages/${root.id}/thread`, { token: bob.token, body: { body: 'first reply' } });
      assert.equal(r1.statusCode, 201, r1.body);
      assert.equal(r1.data.parent_id, root.id);
      assert.equal(r1.data.in_channel, false);
      const r2 = await call(t.app, 'POST', `/api/v1/messages/${root.id}/thread`, { token: carol.token, body: { body: 'loud reply', also_send_to_channel: true } });
      assert.equal(r2.data.in_channel, true);
      const th = await call(t.app, 'GET', `/api/v1/messages/${root.id}/thread`, { token: alice.token });
      assert.equal(th.statusCode, 200);
      assert.equal(th.data.root.reply_count, 2);
      assert.ok(th.data.root.last_reply_at);
      assert.deepEqual([...th.data.root.thread_participants].sort(), [bob.id, carol.id].sort());
      assert.deepEqual(th.data.replies.map((m: { body: string }) => m.body), ['first reply', 'loud reply']);
      const hist = await call(t.app, 'GET', `/api/v1/channels/${chan}/messages`, { token: alice.token });
      const bodies = hist.data.data.map((m: { body: string }) => m.body);
      assert.ok(bodies.includes('loud reply') && !bodies.includes('first reply'), 'only the reply sent to the channel is in its history');
      const nested = await call(t.app, 'POST', `/api/v1/messages/${r1.data.id}/thread`, { token: alice.token, body: { body: 'nested' } });
      assert.equal(nested.statusCode, 409, 'no threads inside threads');
    });

    it('reactions: one per user and emoji, aggregated with "me"; removal; non-members cannot react', async () => {
      const m = (await send(alice, { body: 'react to me' })).data;
      // Reactions are listed by first use; a few ms apart so that each one has its own instant.
      const react = async (who: TestUser, emoji: string) => {
        await new Promise((r) => setTimeout(r, 3));
        return call(t.app, 'POST', `/api/v1/messages/${m.id}/reactions`, { token: who.token, body: { emoji } });
      };
      await react(alice, '👍');
      await react(alice, '👍');
      await react(bob, '👍');
      const last = await react(bob, ':tada:');
      assert.equal(last.statusCode, 200);
      const asAlice = await call(t.app, 'GET', `/api/v1/messages/${m.id}`, { token: alice.token });
      assert.deepEqual(asAlice.data.reactions, [{ emoji: '👍', count: 2, me: true }, { emoji: ':tada:', count: 1, me: false }]);
      const asCarol = await call(t.app, 'GET', `/api/v1/channels/${chan}/messages?around=${m.id}&limit=1`, { token: carol.token });
      assert.deepEqual(asCarol.data.data[0].reactions, [{ emoji: '👍', count: 2, me: false }, { emoji: ':tada:', count: 1, me: false }]);
      const del = await call(t.app, 'DELETE', `/api/v1/messages/${m.id}/reactions/${encodeURIComponent('👍')}`, { token: alice.token });
      assert.deepEqual(del.data.reactions, [{ emoji: '👍', count: 1, me: false }, { emoji: ':tada:', count: 1, me: false }]);
      assert.equal((await call(t.app, 'DELETE', `/api/v1/messages/${m.id}/reactions/${encodeURIComponent('👍')}`, { token: alice.token })).statusCode, 404);
      assert.equal((await react(alice, 'two words')).statusCode, 400);
      const org = await t.services.orgs.getRow(alice.orgId);
      const outsider = await makeUser(t.app, t.services, org!.id, 'member');
      assert.equal((await react(outsider, '👀')).statusCode, 403, 'a non-member of a public channel reads but does not react');
    });

    it('pins: pin, list with who and when, unpin', async () => {
      const m = (await send(alice, { body: 'pin me' })).data;
      const pin = await call(t.app, 'POST', `/api/v1/messages/${m.id}/pin`, { token: bob.token });
      assert.equal(pin.statusCode, 200);
      assert.equal(pin.data.pinned, true);
      assert.equal(pin.data.pinned_by, bob.id);
      const list = await call(t.app, 'GET', `/api/v1/channels/${chan}/messages/pinned`, { token: carol.token });
      assert.deepEqual(list.data.data.map((x: { id: string }) => x.id), [m.id]);
      assert.ok(list.data.data[0].pinned_at);
      await call(t.app, 'DELETE', `/api/v1/messages/${m.id}/pin`, { token: alice.token });
      assert.deepEqual((await call(t.app, 'GET', `/api/v1/channels/${chan}/messages/pinned`, { token: carol.token })).data.data, []);
    });

    it('mentions: @username of members, @channel to all members, never the author; edits update them', async () => {
      const m = await send(alice, { body: `hey @${bob.username} and @nobody-here` });
      assert.deepEqual(m.data.mentions, { users: [bob.id], channel: false, here: false });
      const all = await send(alice, { body: 'attention @channel' });
      assert.deepEqual([...all.data.mentions.users].sort(), [bob.id, carol.id].sort());
      assert.equal(all.data.mentions.channel, true);
      const edited = await call(t.app, 'PUT', `/api/v1/messages/${m.data.id}`, { token: alice.token, body: { body: `now @${carol.username}` } });
      assert.deepEqual(edited.data.mentions.users, [carol.id]);
      const rows = await t.db.db.selectFrom('message_mentions').select('user_id').where('message_id', '=', m.data.id).execute();
      assert.deepEqual(rows.map((r) => r.user_id), [carol.id]);
    });
  });
}

describe('send rate limit and message metrics', () => {
  it('limits sends per user (429 with Retry-After), counts what was sent by type and conversation kind', async () => {
    const t = await newTestApp({ env: { RATE_LIMIT_MAX: '0', SEND_RATE_LIMIT_MAX: '3', SEND_RATE_LIMIT_WINDOW_MS: '60000' } });
    try {
      const org = await makeOrg(t.services);
      const a = await makeUser(t.app, t.services, org.id, 'member');
      const b = await makeUser(t.app, t.services, org.id, 'member');
      const chan = (await call(t.app, 'POST', '/api/v1/channels', { token: a.token, body: { name: 'limits', members: [b.id] } })).data.id;
      const send = (who: TestUser, body: Record<string, unknown>) => call(t.app, 'POST', `/api/v1/channels/${chan}/messages`, { token: who.token, body });
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await send(a, { body: `m${i}`, client_msg_id: `k${i}` })).statusCode);
      assert.deepEqual(statuses, [201, 201, 201, 429]);
      const limited = await send(a, { body: 'again' });
      assert.equal(limited.data.error.code, 'rate_limited');
      assert.equal(limited.data.error.details.scope, 'send');
      assert.ok(Number(limited.headers['retry-after']) > 0);
      assert.equal((await send(b, { body: 'b is not limited by a' })).statusCode, 201);
      const text = await t.app.metrics.registry.metrics();
      assert.match(text, /chat_messages_sent_total\{type="text"\} 4/);
      assert.match(text, /chat_messages_by_channel\{kind="public"\} 4/);
      assert.doesNotMatch(text, new RegExp(chan), 'no conversation id in any label');
    } finally {
      await t.close();
    }
  });
});
