import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUser, type TestUser } from '../../../test/helpers/factories.ts';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/platforms/', import.meta.url));
const APP_SECRET = 'fixtures-app-secret';

type Platform = 'whatsapp' | 'telegram' | 'instagram' | 'messenger' | 'codechat' | 'evolution';

/**
 * Every platform sample, delivered through the real route (authenticated as its platform does) and
 * processed by the real dispatcher, lands as what it is: a message in the contact's conversation,
 * or a status of one of our messages. Plus each signed platform's authentication cases.
 */
const CASES: Array<{ platform: Platform; file: string; expect: { body?: string; type?: string; kind: 'message' | 'echo' | 'status' | 'nothing' } }> = [
  { platform: 'whatsapp', file: 'whatsapp/text', expect: { kind: 'message', body: 'Body Text', type: 'text' } },
  { platform: 'whatsapp', file: 'whatsapp/image', expect: { kind: 'message', type: 'image' } },
  { platform: 'whatsapp', file: 'whatsapp/audio_voice', expect: { kind: 'message', type: 'audio' } },
  { platform: 'whatsapp', file: 'whatsapp/reply_text', expect: { kind: 'message', body: 'replied text', type: 'text' } },
  { platform: 'telegram', file: 'telegram/text_private_link_preview', expect: { kind: 'message', type: 'text' } },
  { platform: 'telegram', file: 'telegram/group_text', expect: { kind: 'message', type: 'text' } },
  { platform: 'telegram', file: 'telegram/voice_private', expect: { kind: 'message', type: 'audio' } },
  { platform: 'telegram', file: 'telegram/command_start_with_entities', expect: { kind: 'message', type: 'text' } },
  { platform: 'instagram', file: 'instagram/cwfactory_text', expect: { kind: 'message', type: 'text' } },
  { platform: 'instagram', file: 'instagram/CONSTRUCTED_echo_text_from_business', expect: { kind: 'echo' } },
  { platform: 'instagram', file: 'instagram/cwfactory_messaging_seen', expect: { kind: 'nothing' } },
  { platform: 'messenger', file: 'messenger/CONSTRUCTED_text_with_quick_reply', expect: { kind: 'message', body: 'Quero falar com atendente', type: 'text' } },
  { platform: 'messenger', file: 'messenger/CONSTRUCTED_delivery', expect: { kind: 'nothing' } },
  { platform: 'codechat', file: 'codechat/go_messages_upsert_text', expect: { kind: 'message', body: 'Ola', type: 'text' } },
  { platform: 'codechat', file: 'codechat/CONSTRUCTED_v1_messages_upsert_audio_ptt', expect: { kind: 'message', type: 'audio' } },
  { platform: 'evolution', file: 'evolution/CONSTRUCTED_messages_upsert_audio_ptt_with_base64', expect: { kind: 'message', type: 'audio' } },
  { platform: 'evolution', file: 'evolution/messages_upsert_text_fromme_redacted', expect: { kind: 'echo' } },
];

for (const dialect of testDialects()) {
  describe(`every platform sample through the webhook route (${dialect})`, () => {
    let t: TestApp;
    let admin: TestUser;
    const inboxes = new Map<Platform, { id: string; verify_token: string; webhook_url: string }>();
    let n = 0;
    /** A fresh inbox of the platform (samples of one platform share message ids: each gets its own inbox). */
    const freshInbox = async (platform: Platform) => {
      const credentials = { app_secret: APP_SECRET, access_token: 't', bot_token: '1:x', base_url: 'http://127.0.0.1:9', instance: 'i', api_key: 'k' };
      const inbox = (await call(t.app, 'POST', '/api/v1/inboxes', { token: admin.token, body: { name: `${platform}-${++n}`, platform, credentials } })).data;
      inboxes.set(platform, inbox);
      return inbox as { id: string; verify_token: string };
    };
    before(async () => {
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0', OUTBOX_POLL_MS: '20', OUTBOX_MAX_ATTEMPTS: '1' } });
      const org = await makeOrg(t.services);
      admin = await makeUser(t.app, t.services, org.id, 'admin');
    });
    after(() => t.close());

    /** The authentication a platform sends with `body`. */
    const auth = (platform: Platform, body: string): { headers: Record<string, string>; query: string } => {
      const inbox = inboxes.get(platform)!;
      if (platform === 'telegram') return { headers: { 'x-telegram-bot-api-secret-token': inbox.verify_token }, query: '' };
      if (platform === 'codechat' || platform === 'evolution') return { headers: {}, query: `?token=${encodeURIComponent(inbox.verify_token)}` };
      return { headers: { 'x-hub-signature-256': `sha256=${createHmac('sha256', APP_SECRET).update(body).digest('hex')}` }, query: '' };
    };
    const post = (platform: Platform, body: string, a = auth(platform, body)) =>
      t.app.inject({ method: 'POST', url: `/webhooks/${platform}/${inboxes.get(platform)!.id}${a.query}`, payload: body, headers: { 'content-type': 'application/json', ...a.headers } });
    const processed = async (inboxId: string) => {
      for (let i = 0; i < 200; i++) {
        const left = await t.db.db.selectFrom('webhook_events').select('id').where('inbox_id', '=', inboxId).where('status', '=', 'received').execute();
        if (left.length === 0) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error('not processed in time');
    };

    for (const c of CASES) {
      it(`${c.file} → ${c.expect.kind}`, async () => {
        const inbox = await freshInbox(c.platform);
        const body = readFileSync(`${FIXTURES}${c.file}.json`, 'utf8');
        const before = await t.db.db.selectFrom('messages as m').innerJoin('conversations as cv', 'cv.id', 'm.conversation_id').select('m.id').where('cv.inbox_id', '=', inbox.id).execute();
        const r = await post(c.platform, body);
        assert.equal(r.statusCode, 200, r.body);
        await processed(inbox.id);
        const ev = await t.db.db.selectFrom('webhook_events').select(['status', 'summary', 'error']).where('inbox_id', '=', inbox.id).orderBy('received_at', 'desc').executeTakeFirstOrThrow();
        assert.equal(ev.status, 'processed', `${ev.error}`);
        const rows = await t.db.db
          .selectFrom('messages as m')
          .innerJoin('conversations as cv', 'cv.id', 'm.conversation_id')
          .select(['m.id', 'm.body', 'm.type', 'm.sender_type', 'cv.contact_id'])
          .where('cv.inbox_id', '=', inbox.id)
          .where('m.id', 'not in', before.length ? before.map((b) => b.id) : [''])
          .execute();
        const summary = JSON.parse(ev.summary ?? '{}') as Record<string, number>;
        if (c.expect.kind === 'message') {
          assert.equal(rows.length, 1, `one new message (${ev.summary})`);
          const m = rows[0]!;
          assert.equal(m.sender_type, 'contact');
          assert.ok(m.contact_id);
          if (c.expect.body !== undefined) assert.equal(m.body, c.expect.body);
          if (c.expect.type !== undefined) assert.equal(m.type, c.expect.type);
          // The same delivery again is stored once.
          assert.equal((await post(c.platform, body)).statusCode, 200);
          await processed(inbox.id);
          const again = await t.db.db.selectFrom('messages').select('id').where('external_id', 'is not', null).where('id', '=', m.id).execute();
          assert.equal(again.length, 1);
        } else if (c.expect.kind === 'echo') {
          // The business's own message (sent outside Parley): stored as the business's, never as the contact's.
          assert.ok(rows.every((m) => m.sender_type === 'business'), JSON.stringify(rows));
        } else {
          assert.equal(rows.length, 0, `nothing stored (${ev.summary})`);
          assert.equal(summary.messages ?? 0, 0);
        }
      });
    }

    it('authentication for each platform: missing 401, wrong or tampered 403, valid 200', async () => {
      for (const platform of ['whatsapp', 'instagram', 'messenger', 'telegram', 'codechat', 'evolution'] as const) {
        await freshInbox(platform);
        const body = JSON.stringify({ object: 'x', entry: [], update_id: 1 });
        assert.equal((await post(platform, body, { headers: {}, query: '' })).statusCode, 401, `${platform} missing`);
        const wrong: { headers: Record<string, string>; query: string } = platform === 'telegram' ? { headers: { 'x-telegram-bot-api-secret-token': 'wrong' }, query: '' } : platform === 'codechat' || platform === 'evolution' ? { headers: {}, query: '?token=wrong' } : { headers: { 'x-hub-signature-256': `sha256=${createHmac('sha256', 'other-secret').update(body).digest('hex')}` }, query: '' };
        assert.equal((await post(platform, body, wrong)).statusCode, 403, `${platform} wrong secret`);
        if (platform === 'whatsapp' || platform === 'instagram' || platform === 'messenger') {
          assert.equal((await post(platform, `${body} `, auth(platform, body))).statusCode, 403, `${platform} tampered`);
        }
        assert.equal((await post(platform, body)).statusCode, 200, `${platform} valid`);
      }
    });
  });
}
