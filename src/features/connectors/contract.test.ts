import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { makeOrg, makeUser, type TestUser } from '../../../test/helpers/factories.ts';
import { startFakePlatform, type FakePlatform } from '../../../test/helpers/fake-platform.ts';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { KITS, type KitAuth, type KitInbox, type RunningKit } from '../../../test/helpers/platform-kits.ts';
import { waitFor } from '../../../test/helpers/platform-app.ts';

/**
 * The connector contract (STYLE.md T.2): every platform connector, driven through its kit
 * (test/helpers/platform-kits.ts), passes the same cases through the public interface — the
 * webhook route, the dispatcher, the API — against a fake of its platform:
 * authentication, one message per delivery (also ten at once), unknown shapes, media in, replies
 * out (once, with the platform's id; notes never; retried on 5xx), statuses (highest wins) and
 * echoes of our own sends. What a platform cannot do is a capability of its kit, with the reason.
 */

const OUTBOX_ENV = { OUTBOX_POLL_MS: '20', OUTBOX_RETRY_BASE_MS: '20', OUTBOX_RETRY_MAX_MS: '50', OUTBOX_MAX_ATTEMPTS: '4', RATE_LIMIT_MAX: '0', MEDIA_ALLOW_PRIVATE: 'true' };

/** A 1×1 PNG made unique by a tEXt chunk (so equal bytes prove they came from this fake). */
function uniquePng(label: string): Buffer {
  const base = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
  const data = Buffer.from(`Comment\0${label}`, 'latin1');
  const body = Buffer.concat([Buffer.from('tEXt', 'latin1'), data]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  // Before the 12-byte IEND chunk.
  return Buffer.concat([base.subarray(0, base.length - 12), len, body, crc, base.subarray(base.length - 12)]);
}

for (const dialect of testDialects()) {
  describe(`connector contract (${dialect})`, () => {
    let t: TestApp;
    let api: FakePlatform;
    let admin: TestUser;
    let agent: TestUser;
    const running: RunningKit[] = [];
    before(async () => {
      api = await startFakePlatform();
      t = await newTestApp({ dialect, env: { ...OUTBOX_ENV, ...api.env() } });
      const org = await makeOrg(t.services);
      admin = await makeUser(t.app, t.services, org.id, 'admin');
      agent = await makeUser(t.app, t.services, org.id, 'agent');
    });
    // The fakes first: a keep-alive connection of theirs would make the app's close wait ~70 s.
    after(async () => {
      for (const k of running) await k.close();
      await api?.close();
      await t?.close();
    });

    for (const kit of KITS) {
      describe(kit.platform, () => {
        const caps = kit.capabilities;
        let k: RunningKit;
        let inbox: KitInbox;
        before(async () => {
          k = await kit.start(api);
          running.push(k);
          const r = await call(t.app, 'POST', '/api/v1/inboxes', { token: admin.token, body: { name: `contract ${kit.platform}`, platform: kit.platform, credentials: k.credentials } });
          assert.equal(r.statusCode, 201, r.body);
          inbox = { id: r.data.id, verify_token: r.data.verify_token };
          const member = await call(t.app, 'POST', `/api/v1/inboxes/${inbox.id}/members`, { token: admin.token, body: { user_id: agent.id } });
          assert.ok(member.statusCode < 300, member.body);
        });

        const db = () => t.db.db;
        const rawOf = (body: unknown) => (typeof body === 'string' ? body : JSON.stringify(body));
        /** POST the delivery as the platform would (or with `auth` / the bytes `raw` instead). */
        const post = (body: unknown, opts: { auth?: KitAuth; raw?: string } = {}) => {
          const raw = rawOf(body);
          const a = opts.auth ?? k.auth(raw, inbox);
          return t.app.inject({ method: 'POST', url: `/webhooks/${kit.platform}/${inbox.id}${a.query}`, payload: opts.raw ?? raw, headers: { 'content-type': 'application/json', ...a.headers } });
        };
        const deliver = async (body: unknown) => {
          const r = await post(body);
          assert.equal(r.statusCode, 200, r.body);
          return processed();
        };
        /** Waits until every delivery of the inbox was processed; the newest one. */
        const processed = async () => {
          await waitFor(async () => {
            const open = await db().selectFrom('webhook_events').select(['status', 'error']).where('inbox_id', '=', inbox.id).where('status', '!=', 'processed').execute();
            return open.length === 0;
          });
          return db().selectFrom('webhook_events').select(['id', 'status', 'summary', 'body']).where('inbox_id', '=', inbox.id).orderBy('id', 'desc').executeTakeFirstOrThrow();
        };
        const count = async (table: 'webhook_events' | 'inbound') => {
          const q =
            table === 'webhook_events'
              ? db().selectFrom('webhook_events').select((e) => e.fn.countAll<number>().as('n')).where('inbox_id', '=', inbox.id)
              : db().selectFrom('messages as m').innerJoin('conversations as c', 'c.id', 'm.conversation_id').select((e) => e.fn.countAll<number>().as('n')).where('c.inbox_id', '=', inbox.id);
          return Number((await q.executeTakeFirstOrThrow()).n);
        };
        /** The inbox's messages with this platform id. */
        const byExternal = (externalId: string) =>
          db()
            .selectFrom('messages as m')
            .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
            .select(['m.id', 'm.type', 'm.body', 'm.sender_type', 'm.sender_id', 'm.metadata', 'm.conversation_id', 'c.contact_id', 'c.kind'])
            .where('c.inbox_id', '=', inbox.id)
            .where('m.external_id', '=', externalId)
            .execute();
        /** The contact Parley keeps for the platform's person in this inbox. */
        const contactOf = async (contact: string) => db().selectFrom('contact_identities').select('contact_id').where('inbox_id', '=', inbox.id).where('external_id', '=', k.identity(contact)).execute();
        const message = async (id: string) => (await call(t.app, 'GET', `/api/v1/messages/${id}`, { token: agent.token })).data;
        const history = async (conversationId: string) => (await call(t.app, 'GET', `/api/v1/conversations/${conversationId}/messages`, { token: agent.token })).data.data as Array<{ id: string; body: string; sender_type: string; delivery_status: string | null }>;
        /** A customer writes (a fresh contact): their conversation. */
        const converse = async (i: number, text = 'Olá, preciso de ajuda', at?: number) => {
          const d = k.textIn(k.contact(i), i, text, at);
          await deliver(d.body);
          const [m] = await byExternal(d.externalId);
          assert.ok(m, 'the customer’s message is stored');
          return m.conversation_id;
        };
        /** An agent's reply, waited for until it left `pending`. */
        const reply = async (conversationId: string, text: string, until = 'sent') => {
          const r = await call(t.app, 'POST', `/api/v1/conversations/${conversationId}/messages`, { token: agent.token, body: { body: text } });
          assert.equal(r.statusCode, 201, r.body);
          assert.equal(r.data.delivery_status, 'pending');
          await waitFor(async () => (await message(r.data.id)).delivery_status === until);
          const row = await db().selectFrom('messages').select(['external_id', 'delivery_error']).where('id', '=', r.data.id).executeTakeFirstOrThrow();
          return { id: r.data.id as string, externalId: row.external_id, error: row.delivery_error };
        };

        it('refuses a delivery without authentication (401) or with a wrong one (403), storing nothing; the same bytes signed are accepted', async () => {
          const raw = rawOf(k.textIn(k.contact(90), 90, 'forjada').body);
          const events = await count('webhook_events');
          const messages = await count('inbound');
          const missing = await post(raw, { auth: { headers: {}, query: '' } });
          assert.equal(missing.statusCode, 401, missing.body);
          const bad = k.badAuth(raw, inbox);
          assert.ok(bad.length >= 2, 'every kit knows at least two wrong authentications');
          for (const b of bad) {
            const r = await post(raw, { auth: b.auth, ...(b.raw ? { raw: b.raw } : {}) });
            assert.equal(r.statusCode, 403, `${b.name}: ${r.body}`);
          }
          assert.equal(await count('webhook_events'), events, 'no delivery logged');
          assert.equal(await count('inbound'), messages, 'no message stored');
          assert.equal((await post(raw)).statusCode, 200);
          assert.equal(await count('webhook_events'), events + 1);
        });

        it('a text arrives as one message of the contact, in their conversation', async () => {
          const c = k.contact(1);
          const d = k.textIn(c, 1, 'Olá, preciso de ajuda com meu pedido');
          const r = await post(d.body);
          assert.equal(r.statusCode, 200, r.body);
          assert.deepEqual(JSON.parse(r.body), { received: true });
          const ev = await processed();
          assert.equal(JSON.parse(ev.summary ?? '{}').messages, 1);
          const rows = await byExternal(d.externalId);
          assert.equal(rows.length, 1);
          const m = rows[0]!;
          assert.deepEqual([m.type, m.body, m.sender_type, m.sender_id, m.kind], ['text', 'Olá, preciso de ajuda com meu pedido', 'contact', m.contact_id, 'support']);
          assert.deepEqual((await contactOf(c)).map((x) => x.contact_id), [m.contact_id], 'the platform’s person is this contact');
          const seen = await history(m.conversation_id);
          assert.deepEqual(seen.map((x) => [x.body, x.sender_type]), [['Olá, preciso de ajuda com meu pedido', 'contact']]);
        });

        it('the same delivery ten times at once: one contact, one conversation, one message', async () => {
          const c = k.contact(2);
          const d = k.textIn(c, 2, 'só uma vez');
          const events = await count('webhook_events');
          const answers = await Promise.all(Array.from({ length: 10 }, () => post(d.body)));
          assert.deepEqual(answers.map((a) => a.statusCode), Array(10).fill(200));
          await processed();
          assert.equal(await count('webhook_events'), events + 10, 'every delivery logged');
          const rows = await byExternal(d.externalId);
          assert.equal(rows.length, 1, 'stored once');
          assert.equal((await contactOf(c)).length, 1);
          const convs = await db().selectFrom('conversations').select('id').where('inbox_id', '=', inbox.id).where('contact_id', '=', rows[0]!.contact_id).execute();
          assert.equal(convs.length, 1);
        });

        it('a shape the parser does not know is acknowledged and logged, never a 5xx: an unknown message type is stored as unsupported, a body that is no delivery stores nothing', async () => {
          const c = k.contact(3);
          const d = k.unknownIn(c, 3);
          const r = await post(d.body);
          assert.equal(r.statusCode, 200, r.body);
          const ev = await processed();
          assert.equal(ev.status, 'processed');
          const [m] = await byExternal(d.externalId);
          assert.ok(m, `stored (${ev.summary})`);
          assert.deepEqual([m.type, m.sender_type, m.sender_id], ['unsupported', 'contact', m.contact_id]);
          assert.deepEqual((await contactOf(c)).map((x) => x.contact_id), [m.contact_id]);
          for (const raw of ['{"unexpected":{"shape":[1,2,3]}}', '[]', 'null', '"hello"', '{"entry":"x","data":7,"message":null}']) {
            const before = await count('inbound');
            const got = await post(raw);
            assert.equal(got.statusCode, 200, `${raw}: ${got.body}`);
            const logged = await processed();
            assert.deepEqual([logged.body, logged.status], [raw, 'processed']);
            assert.equal(await count('inbound'), before, `${raw} stores nothing`);
          }
        });

        it('an image is downloaded through the platform into file storage', async () => {
          const png = uniquePng(`${dialect}:${kit.platform}:image`);
          const d = k.imageIn(k.contact(4), 4, png);
          await deliver(d.body);
          const [m] = await byExternal(d.externalId);
          assert.ok(m);
          assert.deepEqual([m.type, m.sender_type], ['image', 'contact']);
          const done = await waitFor(async () => {
            const dto = await message(m.id);
            return dto.attachments.length > 0 || dto.metadata?.media?.download === 'failed' ? dto : null;
          });
          assert.equal(done.metadata.media.download, 'done', JSON.stringify(done.metadata.media));
          assert.equal(done.attachments.length, 1);
          assert.equal(done.attachments[0].content_type, 'image/png');
          const file = await t.app.inject({ method: 'GET', url: `/api/v1/files/${done.attachments[0].id}`, headers: { authorization: `Bearer ${agent.token}` } });
          assert.equal(file.statusCode, 200);
          assert.ok(file.rawPayload.equals(png), 'the bytes the platform served');
        });

        it('an agent reply goes out once, to the contact, and moves pending → sent with the platform’s id', async () => {
          const conversationId = await converse(5);
          const before = k.sends().length;
          const sent = await reply(conversationId, 'Claro! Como posso ajudar?');
          const calls = k.sends().slice(before);
          assert.deepEqual(calls.map((s) => [s.to, s.text, s.ok]), [[k.contact(5), 'Claro! Como posso ajudar?', true]]);
          assert.ok(calls[0]!.externalId);
          assert.equal(sent.externalId, calls[0]!.externalId);
        });

        it('a private note never reaches the platform', async () => {
          const conversationId = await converse(6);
          const note = await call(t.app, 'POST', `/api/v1/conversations/${conversationId}/messages`, { token: agent.token, body: { body: 'NOTA-INTERNA: cliente difícil', private: true } });
          assert.equal(note.statusCode, 201, note.body);
          assert.equal(note.data.delivery_status, null);
          // A reply after it went out: had the note been queued, it would have gone first.
          await reply(conversationId, 'resposta pública');
          assert.ok(k.transcript().includes('resposta pública'), 'the transcript shows what was sent');
          assert.ok(!k.transcript().includes('NOTA-INTERNA'));
          const jobs = await db().selectFrom('outbox').select('id').where('event_id', '=', note.data.id).execute();
          assert.equal(jobs.length, 0, 'nothing queued for the note');
          assert.equal((await message(note.data.id)).delivery_status, null);
        });

        it('the platform fails the send twice (5xx), then accepts: one message at the platform, status sent', async () => {
          const conversationId = await converse(7);
          k.failNext(2, 503);
          const sent = await reply(conversationId, 'depois de duas falhas');
          const tries = k.sends().filter((s) => s.text === 'depois de duas falhas');
          assert.deepEqual(tries.map((s) => s.ok), [false, false, true]);
          assert.equal(sent.externalId, tries[2]!.externalId);
          assert.equal(sent.error, null);
        });

        it(`statuses move our message on: ${caps.statuses.join(' then ') || 'none'}`, { skip: caps.statuses.length === 0 && `${kit.platform} reports no delivery statuses (kit capability)` }, async () => {
          const conversationId = await converse(8);
          const sent = await reply(conversationId, 'acompanhe o status');
          for (const status of caps.statuses) {
            const ev = await deliver(k.statusIn(sent.externalId!, k.contact(8), status));
            assert.ok(JSON.parse(ev.summary ?? '{}').statuses >= 1, `${status}: ${ev.summary}`);
            assert.equal((await message(sent.id)).delivery_status, status);
          }
          assert.equal((await history(conversationId)).length, 2, 'a status is no message');
        });

        it('a status arriving out of order does not move our message back (read, then delivered)', { skip: !(caps.statuses.includes('delivered') && caps.statuses.includes('read')) && `${kit.platform} does not report both delivered and read (kit capability)` }, async () => {
          const conversationId = await converse(9);
          const sent = await reply(conversationId, 'fora de ordem');
          await deliver(k.statusIn(sent.externalId!, k.contact(9), 'read'));
          assert.equal((await message(sent.id)).delivery_status, 'read');
          const ev = await deliver(k.statusIn(sent.externalId!, k.contact(9), 'delivered'));
          assert.ok(JSON.parse(ev.summary ?? '{}').statuses >= 1, `the late status was matched to our message (${ev.summary})`);
          assert.equal((await message(sent.id)).delivery_status, 'read');
        });

        it('a read of our latest reply also reads the earlier ones', { skip: !caps.readCoversEarlier && `${kit.platform} reports each message read on its own (kit capability)` }, async () => {
          const conversationId = await converse(11);
          const first = await reply(conversationId, 'primeira');
          const second = await reply(conversationId, 'segunda');
          const ev = await deliver(k.statusIn(second.externalId!, k.contact(11), 'read'));
          assert.ok(JSON.parse(ev.summary ?? '{}').statuses >= 1, String(ev.summary));
          assert.equal((await message(second.id)).delivery_status, 'read');
          assert.equal((await message(first.id)).delivery_status, 'read', 'the earlier reply is read too');
        });

        it('the platform’s echo of our reply is not stored a second time', { skip: !caps.echoes && `${kit.platform} does not echo our sends (kit capability)` }, async () => {
          const conversationId = await converse(10);
          const sent = await reply(conversationId, 'eco de volta');
          const ev = await deliver(k.echoIn(sent.externalId!, k.contact(10), 'eco de volta'));
          assert.equal(JSON.parse(ev.summary ?? '{}').echoes, 1, `recognized as our echo (${ev.summary})`);
          assert.equal((await byExternal(sent.externalId!)).length, 1);
          assert.deepEqual((await history(conversationId)).map((m) => m.body), ['Olá, preciso de ajuda', 'eco de volta']);
        });

        it(caps.window24h ? 'a reply more than 24 h after the customer last wrote fails without calling the platform' : 'a reply more than 24 h after the customer last wrote still goes out (no window here)', async () => {
          const conversationId = await converse(11, 'ontem', Math.floor(Date.now() / 1000) - 25 * 3600);
          const before = k.sends().length;
          if (caps.window24h) {
            const r = await reply(conversationId, 'tarde demais', 'failed');
            assert.match(r.error ?? '', /window_closed/);
            assert.equal(k.sends().length, before);
          } else {
            await reply(conversationId, 'ainda a tempo');
            assert.deepEqual(k.sends().slice(before).map((s) => [s.text, s.ok]), [['ainda a tempo', true]]);
          }
        });
      });
    }
  });
}
