import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUser, makeUsers, type TestUser } from '../../../test/helpers/factories.ts';
import { SearchRepo } from './search.repo.ts';

/**
 * Search permissions and index updates on edit and delete, on every engine: what a caller finds is
 * what they may read now; the index follows sends, edits, deletes and cascades by itself.
 */
for (const dialect of testDialects()) {
  describe(`search (${dialect})`, () => {
    let t: TestApp;
    let alice: TestUser;
    let bob: TestUser;
    let carol: TestUser;
    let customer: TestUser;
    let eve: TestUser;
    before(async () => {
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0' } });
      const org = await makeOrg(t.services);
      [alice, bob, carol] = (await makeUsers(t.app, t.services, org.id, 3)) as [TestUser, TestUser, TestUser];
      customer = await makeUser(t.app, t.services, org.id, 'customer');
      const other = await makeOrg(t.services);
      eve = await makeUser(t.app, t.services, other.id, 'admin');
    });
    after(() => t.close());

    let n = 0;
    /** A word no other test uses, so tests sharing the app cannot see each other's messages. */
    const word = (stem = 'w') => `${stem}${dialect.slice(0, 2)}${++n}x`;
    const channel = async (opts: { private?: boolean; members?: TestUser[]; owner?: TestUser } = {}) => {
      const body = { name: `s-${dialect}-${++n}`, private: opts.private ?? false, members: (opts.members ?? [bob]).map((m) => m.id) };
      const r = await call(t.app, 'POST', '/api/v1/channels', { token: (opts.owner ?? alice).token, body });
      assert.equal(r.statusCode, 201, r.body);
      return { id: r.data.id as string, name: r.data.name as string };
    };
    const send = async (id: string, body: string, who: TestUser = alice) => {
      const r = await call(t.app, 'POST', `/api/v1/channels/${id}/messages`, { token: who.token, body: { body } });
      assert.equal(r.statusCode, 201, r.body);
      return r.data as { id: string; seq: number; created_at: string };
    };
    const search = (who: TestUser, q: string, extra = '') => call(t.app, 'GET', `/api/v1/search?q=${encodeURIComponent(q)}${extra}`, { token: who.token });
    const found = async (who: TestUser, q: string): Promise<string[]> => {
      const r = await search(who, q, '&limit=100');
      assert.equal(r.statusCode, 200, r.body);
      return r.data.data.map((h: { message: { id: string } }) => h.message.id);
    };
    /** SQLite only: the FTS5 index agrees with the messages table, row for row. */
    const assertIndexConsistent = async () => {
      if (dialect === 'sqlite') await sql`insert into messages_fts(messages_fts, rank) values ('integrity-check', 1)`.execute(t.db.db);
    };

    it('the migration made the index the engine searches', async () => {
      if (dialect === 'sqlite') {
        const r = await sql<{ name: string }>`select name from sqlite_master where name like 'messages_fts%' order by name`.execute(t.db.db);
        const names = r.rows.map((x) => x.name);
        for (const x of ['messages_fts', 'messages_fts_ad', 'messages_fts_au', 'messages_fts_state']) assert.ok(names.includes(x), `${x} in ${names.join(', ')}`);
        // New messages are indexed in batches above a mark (migration 0015): no trigger on insert.
        assert.ok(!names.includes('messages_fts_ai'), `no insert trigger in ${names.join(', ')}`);
      } else {
        const col = await sql<{ generated: string }>`select is_generated as generated from information_schema.columns where table_name = 'messages' and column_name = 'body_tsv'`.execute(t.db.db);
        assert.equal(col.rows[0]?.generated, 'ALWAYS');
        const idx = await sql<{ def: string }>`select indexdef as def from pg_indexes where indexname = 'messages_body_tsv_idx'`.execute(t.db.db);
        assert.match(idx.rows[0]?.def ?? '', /USING gin \(body_tsv\)/);
      }
    });

    it('finds a message by a word, with its conversation, a highlighted snippet and the message itself', async () => {
      const c = await channel();
      const w = word();
      const m = await send(c.id, `Deploy ${w} tonight, please`);
      await send(c.id, 'unrelated chatter');
      const r = await search(bob, w.toUpperCase());
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.data.data.length, 1);
      const hit = r.data.data[0];
      assert.equal(hit.message.id, m.id);
      assert.equal(hit.message.body, `Deploy ${w} tonight, please`);
      assert.equal(hit.message.seq, 1);
      assert.deepEqual(hit.conversation, { id: c.id, kind: 'public', name: c.name });
      assert.match(hit.snippet, new RegExp(`<mark>${w}</mark>`));
      assert.equal(typeof hit.rank, 'number');
      assert.equal(r.data.next_cursor, null);
      // Every word must occur; a "quoted phrase" must occur in that order.
      assert.deepEqual(await found(bob, `${w} tonight`), [m.id]);
      assert.deepEqual(await found(bob, `${w} tomorrow`), []);
      assert.deepEqual(await found(bob, `"${w} tonight"`), [m.id]);
      assert.deepEqual(await found(bob, `"tonight ${w}"`), []);
      // Ids are indexed for narrowing on SQLite, but words only ever match the text.
      assert.deepEqual(await found(bob, c.id.split('-').at(-1)!), []);
      assert.deepEqual(await found(bob, `"${c.id}"`), []);
      assert.deepEqual(await found(bob, `"conversation ${c.id.slice(-12)}"`), [], 'nor the conversation lexeme PostgreSQL indexes');
      assert.deepEqual(await found(bob, `~${c.id.slice(-12)}`), []);
    });

    it('ranks more hits in a shorter message first, equal ranks newest first', async () => {
      const c = await channel();
      const w = word();
      const once = await send(c.id, `${w} appears once in this rather long message about many other things entirely`);
      const twice = await send(c.id, `${w} ${w} twice`);
      const same1 = await send(c.id, `plain ${w}`);
      const same2 = await send(c.id, `plain ${w}`);
      const r = await search(alice, w);
      const ids = r.data.data.map((h: { message: { id: string } }) => h.message.id);
      assert.equal(ids[0], twice.id, 'the message with two hits first');
      assert.equal(ids.at(-1), once.id, 'one hit in a long message last');
      assert.ok(ids.indexOf(same2.id) < ids.indexOf(same1.id), 'equal rank: the newer one first');
      const ranks = r.data.data.map((h: { rank: number }) => h.rank);
      assert.deepEqual([...ranks].sort((a, b) => b - a), ranks, 'ranks descend');
    });

    it('filters: in:, from:, before:, after:, has:file, and all of them together', async () => {
      const general = await channel();
      const other = await channel();
      const w = word();
      const a1 = await send(general.id, `${w} from alice in general`);
      const b1 = await send(general.id, `${w} from bob in general`, bob);
      const a2 = await send(other.id, `${w} from alice elsewhere`);
      const sorted = (ids: string[]) => [...ids].sort();
      assert.deepEqual(sorted(await found(alice, `${w} in:${general.name}`)), sorted([a1.id, b1.id]));
      assert.deepEqual(sorted(await found(alice, `${w} in:#${general.name}`)), sorted([a1.id, b1.id]), 'a leading # is fine');
      assert.deepEqual(sorted(await found(alice, `${w} in:${other.id}`)), [a2.id], 'by id');
      assert.deepEqual(sorted(await found(alice, `${w} in:${other.id} in:${general.name}`)), sorted([a1.id, a2.id, b1.id]), 'any of several');
      assert.deepEqual(await found(alice, `${w} in:no-such-channel`), []);
      assert.deepEqual(sorted(await found(alice, `${w} from:@${bob.username.toUpperCase()}`)), [b1.id], 'by username, any case');
      assert.deepEqual(sorted(await found(alice, `${w} from:${alice.id}`)), sorted([a1.id, a2.id]), 'by user id');
      // Dates are UTC days; both bounds exclude the day named.
      await t.db.db.updateTable('messages').set({ created_at: '2024-03-10T12:00:00.000Z' }).where('id', '=', a1.id).execute();
      await t.db.db.updateTable('messages').set({ created_at: '2024-03-12T00:00:00.000Z' }).where('id', '=', b1.id).execute();
      assert.deepEqual(await found(alice, `${w} before:2024-03-11`), [a1.id]);
      assert.deepEqual(await found(alice, `${w} before:2024-03-10`), []);
      assert.deepEqual(sorted(await found(alice, `${w} after:2024-03-11`)), sorted([a2.id, b1.id]));
      assert.deepEqual(await found(alice, `${w} after:2024-03-10 before:2024-03-13`), [b1.id]);
      // has:file: messages that carry an attachment.
      const fileId = randomUUID();
      const at = new Date().toISOString();
      await t.db.db.insertInto('files').values({ id: fileId, org_id: alice.orgId, uploader_id: alice.id, storage_key: `${alice.orgId}/${fileId}`, filename: 'a.txt', content_type: 'text/plain', size: 1, sha256: '0'.repeat(64), width: null, height: null, created_at: at }).execute();
      await t.db.db.insertInto('message_attachments').values({ message_id: a2.id, file_id: fileId, org_id: alice.orgId, position: 0 }).execute();
      await t.db.db.updateTable('messages').set({ attachment_count: 1 }).where('id', '=', a2.id).execute(); // as sending with it does
      assert.deepEqual(await found(alice, `${w} has:file`), [a2.id]);
      const withFile = (await search(alice, `${w} has:file`)).data.data[0];
      assert.deepEqual(withFile.message.attachments.map((f: { id: string }) => f.id), [fileId], 'hits carry the message as the message endpoints show it');
      // All together.
      assert.deepEqual(await found(alice, `${w} has:file from:${alice.username} in:${other.name} after:2024-01-01`), [a2.id]);
      assert.deepEqual(await found(alice, `${w} has:file from:${bob.username}`), []);
      assert.deepEqual(await found(alice, `${w} in:${general.name} from:${alice.username} before:2024-03-11`), [a1.id]);
    });

    it('rejects malformed queries with 400 and a stable code', async () => {
      const cases: Array<[string, string]> = [
        ['in:general', 'search.invalid_query'],
        ['   ', 'search.invalid_query'],
        ['*** ^^^', 'search.invalid_query'],
        ['word before:2024-02-30', 'search.invalid_query'],
        ['word after:yesterday', 'search.invalid_query'],
        ['word after:9999-12-31', 'search.invalid_query'],
        ['word before:0099-01-01', 'search.invalid_query'],
        ['word from:', 'search.invalid_query'],
        ['word has:image', 'search.unsupported_filter'],
        [Array.from({ length: 17 }, (_, i) => `w${i}`).join(' '), 'search.invalid_query'],
      ];
      for (const [q, code] of cases) {
        const r = await search(alice, q);
        assert.equal(r.statusCode, 400, `${q}: ${r.body}`);
        assert.equal(r.data.error.code, code, q);
      }
      assert.equal((await call(t.app, 'GET', '/api/v1/search', { token: alice.token })).statusCode, 400, 'q is required');
      assert.equal((await search(alice, 'word', '&limit=101')).statusCode, 400);
      assert.equal((await search(alice, 'x'.repeat(501))).statusCode, 400);
      assert.equal((await call(t.app, 'GET', '/api/v1/search?q=word')).statusCode, 401, 'anonymous');
    });

    it('paginates with a cursor: disjoint pages in one order, at the edges, unaffected by new messages', async () => {
      const c = await channel();
      const w = word();
      const sent: string[] = [];
      for (let i = 0; i < 5; i++) sent.push((await send(c.id, `same ${w}`)).id);
      const all = await found(alice, w);
      assert.deepEqual(all, [...sent].reverse(), 'equal ranks: newest first');
      const pages: string[][] = [];
      let cursor: string | null = null;
      do {
        const r = await search(alice, w, `&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(r.statusCode, 200, r.body);
        pages.push(r.data.data.map((h: { message: { id: string } }) => h.message.id));
        cursor = r.data.next_cursor;
        // A new matching message after the first page does not shift the next pages.
        if (pages.length === 1) await send(c.id, `same ${w}`);
      } while (cursor);
      assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
      assert.deepEqual(pages.flat(), all);
      const exact = await search(alice, w, '&limit=6');
      assert.equal(exact.data.data.length, 6);
      assert.equal(exact.data.next_cursor, null, 'a page that holds everything has no next page');
      const first = await search(alice, w, '&limit=1');
      assert.ok(first.data.next_cursor);
      const otherQuery = await search(alice, `${w} same`, `&cursor=${first.data.next_cursor}`);
      assert.equal(otherQuery.statusCode, 400, 'a cursor belongs to its query');
      for (const bad of ['garbage', Buffer.from(JSON.stringify({ r: '1', t: "2024-01-01' or 1=1 --", i: 'x', q: 'y' })).toString('base64url')]) {
        const r = await search(alice, w, `&cursor=${bad}`);
        assert.equal(r.statusCode, 400, r.body);
        assert.equal(r.data.error.code, 'validation.failed');
      }
    });

    it('ranks the newest matches of a common word, and the cursor keeps that window across pages', async () => {
      const rankWindow3 = new SearchRepo(t.db.db, { rankWindow: 3 });
      // The repository reads the index as it is: on SQLite new messages are in it once the indexer
      // has flushed (SearchService flushes before every search).
      const repo = { search: async (...args: Parameters<SearchRepo['search']>) => (await t.services.ftsIndexer?.flush(), rankWindow3.search(...args)) };
      const c = await channel();
      const w = word();
      // Same length, different counts of the word: the rank follows the count on both engines.
      const bodies = [`${w} ${w} ${w} ${w}`, `${w} a b c`, `${w} ${w} a b`, `${w} ${w} ${w} a`, `${w} a b c`, `${w} ${w} a b`];
      const ids: string[] = [];
      for (const [i, body] of bodies.entries()) {
        const m = await send(c.id, body);
        await t.db.db.updateTable('messages').set({ created_at: `2025-01-01T00:0${i}:00.000Z` }).where('id', '=', m.id).execute();
        ids.push(m.id);
      }
      const spec = { orgId: alice.orgId, userId: alice.id, includePublic: true, words: [w], phrases: [], in: [], from: [], hasFile: false };
      const first = await repo.search(spec, undefined, 2);
      // The window is the 3 newest (4th, 5th, 6th), ranked: 3 hits, 2 hits, 1 hit.
      assert.deepEqual(first.hits.map((h) => h.message.id), [ids[3], ids[5]]);
      assert.equal(first.floor?.id, ids[3], 'the oldest message of the full window');
      // New messages arrive, one of them the best match of all; then the next page.
      const best = await send(c.id, `${w} ${w} ${w} ${w}`);
      await send(c.id, 'unrelated words only');
      const last = first.hits.at(-1)!;
      const second = await repo.search(spec, { position: { rank: last.rank, createdAt: last.message.created_at, id: last.message.id }, floor: first.floor }, 2);
      assert.deepEqual(second.hits.map((h) => h.message.id), [ids[4]], 'the rest of the same window, nothing twice, nothing older');
      assert.deepEqual(second.floor, first.floor);
      // A new search sees the new message first.
      assert.equal((await repo.search(spec, undefined, 1)).hits[0]?.message.id, best.id);
    });

    it('permissions: members and public channels only; not a non-member, a former member, a customer or another organization', async () => {
      const w = word();
      const pub = await channel({ members: [bob] });
      const priv = await channel({ private: true, members: [bob, customer] });
      const pubMsg = await send(pub.id, `${w} in public`);
      const privMsg = await send(priv.id, `${w} in private`);
      // Another organization says the same thing: never found from here, and it never finds ours.
      const eveChannel = await channel({ owner: eve, members: [] });
      const eveMsg = await send(eveChannel.id, `${w} elsewhere`, eve);
      const sorted = (ids: string[]) => [...ids].sort();
      assert.deepEqual(sorted(await found(bob, w)), sorted([pubMsg.id, privMsg.id]), 'a member finds both');
      assert.deepEqual(await found(carol, w), [pubMsg.id], 'a non-member finds the public channel only');
      assert.deepEqual(await found(carol, `${w} in:${priv.name}`), [], 'naming the private channel changes nothing');
      assert.deepEqual(await found(carol, `${w} in:${priv.id}`), []);
      assert.deepEqual(await found(customer, w), [privMsg.id], 'a customer finds their own conversation, never a public channel');
      assert.deepEqual(await found(eve, w), [eveMsg.id], 'another organization finds its own only');
      assert.deepEqual(await found(eve, `${w} in:${priv.id} from:${alice.id}`), []);
      // Bob is removed: from now on he finds nothing of that channel, while alice still does.
      const removed = await call(t.app, 'DELETE', `/api/v1/channels/${priv.id}/members/${bob.id}`, { token: alice.token });
      assert.equal(removed.statusCode, 204, removed.body);
      assert.deepEqual(await found(bob, w), [pubMsg.id], 'a former member no longer finds the private channel');
      assert.deepEqual(await found(bob, `${w} in:${priv.name}`), []);
      assert.deepEqual(sorted(await found(alice, w)), sorted([pubMsg.id, privMsg.id]));
      // Leaving works the same way.
      assert.equal((await call(t.app, 'POST', `/api/v1/channels/${priv.id}/leave`, { token: customer.token })).statusCode, 204);
      assert.deepEqual(await found(customer, w), []);
    });

    it('the index follows edits and deletes, also of a whole conversation', async () => {
      const c = await channel();
      const [before1, after1, gone] = [word('old'), word('new'), word('del')];
      const m = await send(c.id, `${before1} draft`);
      const d = await send(c.id, `${gone} soon`);
      assert.deepEqual(await found(bob, before1), [m.id]);
      const edit = await call(t.app, 'PUT', `/api/v1/messages/${m.id}`, { token: alice.token, body: { body: `${after1} final` } });
      assert.equal(edit.statusCode, 200, edit.body);
      assert.deepEqual(await found(bob, before1), [], 'the old word is gone');
      assert.deepEqual(await found(bob, after1), [m.id], 'the new word is found');
      const hit = (await search(bob, after1)).data.data[0];
      assert.equal(hit.message.body, `${after1} final`);
      assert.ok(hit.message.edited_at);
      assert.deepEqual(await found(bob, gone), [d.id]);
      assert.equal((await call(t.app, 'DELETE', `/api/v1/messages/${d.id}`, { token: alice.token })).statusCode, 204);
      assert.deepEqual(await found(bob, gone), [], 'a deleted message is not found');
      assert.deepEqual(await found(bob, 'soon'), [], 'nor by any other of its words');
      await assertIndexConsistent();
      // Deleting the channel removes its messages (a cascade): the index follows.
      assert.equal((await call(t.app, 'DELETE', `/api/v1/channels/${c.id}`, { token: alice.token })).statusCode, 204);
      assert.deepEqual(await found(alice, after1), []);
      await assertIndexConsistent();
    });

    it('escapes HTML in snippets; only the <mark> tags are markup', async () => {
      const c = await channel();
      const w = word();
      // PostgreSQL's ts_headline leaves tags out of snippets, SQLite's snippet() keeps them: either
      // way, whatever text comes back is escaped.
      await send(c.id, `<script>alert("x")</script> ${w} & <b onclick='y'>bold</b> <img src=x onerror=alert(1)>`);
      const cmp = await send(c.id, `if 1 < 2 && 3 > 2 then "${w}" it's`);
      const fake = await send(c.id, `\uE000fake\uE001 ${w} marks`);
      const r = await search(alice, w);
      assert.equal(r.data.data.length, 3);
      for (const hit of r.data.data) {
        const withoutMarks = hit.snippet.replaceAll('<mark>', '').replaceAll('</mark>', '');
        assert.doesNotMatch(withoutMarks, /[<>"']/, `only escaped markup: ${hit.snippet}`);
        assert.doesNotMatch(hit.snippet, /\uE000|\uE001/);
      }
      const snippetOf = (id: string) => r.data.data.find((h: { message: { id: string } }) => h.message.id === id).snippet as string;
      assert.match(snippetOf(cmp.id), new RegExp(`1 &lt; 2 &amp;&amp; 3 &gt; 2 then &quot;<mark>${w}</mark>&quot; it&#39;s`));
      assert.equal(r.data.data.find((h: { message: { id: string } }) => h.message.id === cmp.id).message.body, `if 1 < 2 && 3 > 2 then "${w}" it's`, 'the message itself is raw text');
      // A body containing the marker characters gets no marks rather than forged ones.
      assert.doesNotMatch(snippetOf(fake.id), /<mark>/);
    });

    it('injection attempts answer 200 or 400, never 500, and never escape the filters', async () => {
      const w = word();
      const priv = await channel({ private: true, members: [bob] });
      const secret = await send(priv.id, `${w} secret`);
      const eveChannel = await channel({ owner: eve, members: [] });
      await send(eveChannel.id, `${w} other org`, eve);
      const attempts = [
        `") OR 1=1 --`,
        `${w}") OR 1=1 --`,
        `${w}' OR '1'='1`,
        `${w}; drop table messages; --`,
        `"${w}`,
        `${w}"`,
        `${w}*`,
        `*`,
        `NEAR(${w} secret)`,
        `NEAR(`,
        `^${w}`,
        `${w} OR secret`,
        `${w} NOT secret`,
        `body:${w}`,
        `{body}:${w}`,
        `-${w}`,
        `${w} & secret | x`,
        `${w}:* !secret <-> x`,
        `${w} \\ % _ '`,
        `${w} \u0000 \u0007`,
        `in:' OR 1=1 -- ${w}`,
        `from:") OR 1=1 -- ${w}`,
        `in:${priv.id}' OR '1'='1 ${w}`,
        `${w} after:2024-01-01' OR 1=1`,
        `${w} \uE000 \uE001`,
      ];
      for (const q of attempts) {
        for (const who of [carol, eve]) {
          const r = await search(who, q);
          assert.ok(r.statusCode === 200 || r.statusCode === 400, `${q}: ${r.statusCode} ${r.body}`);
          if (r.statusCode !== 200) continue;
          for (const h of r.data.data) {
            assert.notEqual(h.message.id, secret.id, `${q} leaked a private message`);
            assert.equal(h.message.conversation_id === eveChannel.id, who === eve, `${q} crossed organizations`);
          }
        }
      }
      const count = await t.db.db.selectFrom('messages').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
      assert.ok(Number(count.n) > 0, 'the messages table is still there');
      assert.deepEqual(await found(bob, `${w} secret`), [secret.id], 'and the search still works');
    });
  });
}
