import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { call, type TestApp } from '../../../../test/helpers/new-test-app.ts';
import { platformApp, waitFor, type PlatformApp } from '../../../../test/helpers/platform-app.ts';
import { testDialects } from '../../../../test/helpers/new-test-db.ts';
import type { TestUser } from '../../../../test/helpers/factories.ts';

/**
 * A local server speaking the documented send endpoints: WhatsApp Cloud `POST /{phone_number_id}/messages`
 * (Bearer token) and Telegram `POST /bot<token>/sendMessage`. It records what it got and can be
 * told to fail the next calls.
 */
class FakePlatform {
  readonly calls: Array<{ path: string; auth: string | undefined; body: Record<string, unknown>; ok: boolean }> = [];
  failNext: Array<{ status: number; body: unknown }> = [];
  #server: Server;
  #n = 0;
  constructor() {
    this.#server = createServer((req, res) => void this.#handle(req).then(({ status, body }) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))));
  }
  async start(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }
  stop(): Promise<void> {
    return new Promise((r) => this.#server.close(() => r()));
  }
  async #handle(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = JSON.parse(raw || '{}') as Record<string, unknown>;
    const fail = this.failNext.shift();
    this.calls.push({ path: req.url ?? '', auth: req.headers.authorization, body, ok: !fail });
    if (fail) return fail;
    const n = ++this.#n;
    if (req.url?.endsWith('/setWebhook')) return body.url ? { status: 200, body: { ok: true, result: true, description: 'Webhook was set' } } : { status: 400, body: { ok: false, description: 'Bad Request: bad webhook' } };
    if (req.url?.includes('/sendMessage')) return { status: 200, body: { ok: true, result: { message_id: 500 + n, chat: { id: Number(body.chat_id) } } } };
    return { status: 200, body: { messaging_product: 'whatsapp', contacts: [{ input: body.to, wa_id: body.to }], messages: [{ id: `wamid.OUT${n}` }] } };
  }
}

const APP_SECRET = 'app-secret-outbound';
const sign = (body: string) => `sha256=${createHmac('sha256', APP_SECRET).update(body).digest('hex')}`;

for (const dialect of testDialects()) {
  describe(`replies out to platforms (${dialect})`, () => {
    let t: TestApp;
    let fake: FakePlatform;
    let admin: TestUser;
    let agent: TestUser;
    let wa: string;
    let tg: string;
    let inboundWhatsApp: PlatformApp['inboundWhatsApp'];
    before(async () => {
      fake = new FakePlatform();
      ({ t, admin, agent, wa, tg, inboundWhatsApp } = await platformApp(dialect, await fake.start(), APP_SECRET));
    });
    after(async () => {
      await t.close();
      await fake.stop();
    });

    const message = async (id: string) => (await call(t.app, 'GET', `/api/v1/messages/${id}`, { token: agent.token })).data;

    it('an agent reply goes out through the WhatsApp send API; pending → sent with the platform id; private notes never go out', async () => {
      const conv = await inboundWhatsApp('5581987885943', 'wamid.IN1', 'Olá, preciso de ajuda');
      const before = fake.calls.length;
      const note = await call(t.app, 'POST', `/api/v1/conversations/${conv.id}/messages`, { token: agent.token, body: { body: 'internal only', private: true } });
      assert.equal(note.data.delivery_status, null);
      const reply = await call(t.app, 'POST', `/api/v1/conversations/${conv.id}/messages`, { token: agent.token, body: { body: 'Claro! Como posso ajudar?' } });
      assert.equal(reply.data.delivery_status, 'pending');
      const sent = await waitFor(async () => ((await message(reply.data.id)).delivery_status === 'sent' ? message(reply.data.id) : null));
      assert.equal(sent.delivery_status, 'sent');
      const calls = fake.calls.slice(before);
      assert.equal(calls.length, 1, 'one send, not the note');
      assert.equal(calls[0]!.path, '/PNID1/messages');
      assert.equal(calls[0]!.auth, 'Bearer wa-token');
      assert.deepEqual(calls[0]!.body, { messaging_product: 'whatsapp', recipient_type: 'individual', to: '5581987885943', type: 'text', text: { body: 'Claro! Como posso ajudar?', preview_url: false } });
      assert.ok(!JSON.stringify(fake.calls).includes('internal only'));
      // The platform's statuses then move it on.
      const row = await t.db.db.selectFrom('messages').select('external_id').where('id', '=', reply.data.id).executeTakeFirstOrThrow();
      const status = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: 'W', changes: [{ field: 'messages', value: { statuses: [{ id: row.external_id, status: 'delivered', timestamp: String(Math.floor(Date.now() / 1000)), recipient_id: '5581987885943' }] } }] }] });
      await t.app.inject({ method: 'POST', url: `/webhooks/whatsapp/${wa}`, payload: status, headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(status) } });
      await waitFor(async () => (await message(reply.data.id)).delivery_status === 'delivered');
      // Echo of our own send: not stored twice.
      const echo = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: 'W', changes: [{ field: 'smb_message_echoes', value: { message_echoes: [{ from: '15550001111', to: '5581987885943', id: row.external_id, timestamp: '1700000000', type: 'text', text: { body: 'Claro! Como posso ajudar?' } }] } }] }] });
      await t.app.inject({ method: 'POST', url: `/webhooks/whatsapp/${wa}`, payload: echo, headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(echo) } });
      await new Promise((r) => setTimeout(r, 300));
      const all = (await call(t.app, 'GET', `/api/v1/conversations/${conv.id}/messages`, { token: agent.token })).data.data;
      assert.equal(all.filter((m: { body: string }) => m.body === 'Claro! Como posso ajudar?').length, 1);
    });

    it('an agent reaction and reading the conversation reach WhatsApp (reaction and its removal, status read)', async () => {
      const conv = await inboundWhatsApp('5581933334444', 'wamid.IN9', 'reagir a isto');
      const incoming = (await call(t.app, 'GET', `/api/v1/conversations/${conv.id}/messages`, { token: agent.token })).data.data[0];
      assert.equal((await call(t.app, 'POST', `/api/v1/messages/${incoming.id}/reactions`, { token: agent.token, body: { emoji: '👍' } })).statusCode, 200);
      const reaction = await waitFor(async () => fake.calls.find((c) => (c.body.reaction as { message_id?: string } | undefined)?.message_id === 'wamid.IN9'));
      assert.deepEqual(reaction.body, { messaging_product: 'whatsapp', recipient_type: 'individual', to: '5581933334444', type: 'reaction', reaction: { message_id: 'wamid.IN9', emoji: '👍' } });
      assert.equal((await call(t.app, 'DELETE', `/api/v1/messages/${incoming.id}/reactions/${encodeURIComponent('👍')}`, { token: agent.token })).statusCode, 200);
      await waitFor(async () => fake.calls.find((c) => (c.body.reaction as { emoji?: string } | undefined)?.emoji === ''));
      assert.ok((await call(t.app, 'POST', `/api/v1/channels/${conv.id}/read`, { token: agent.token, body: {} })).statusCode < 300);
      const read = await waitFor(async () => fake.calls.find((c) => c.body.status === 'read'));
      assert.deepEqual(read.body, { messaging_product: 'whatsapp', status: 'read', message_id: 'wamid.IN9' });
    });

    it('retries a failing platform with backoff, and reports a refusal as failed with the platform error', async () => {
      const conv = await inboundWhatsApp('5581912345678', 'wamid.IN2', 'oi');
      fake.failNext.push({ status: 503, body: { error: { code: 1, message: 'temporarily unavailable' } } }, { status: 500, body: {} });
      const reply = await call(t.app, 'POST', `/api/v1/conversations/${conv.id}/messages`, { token: agent.token, body: { body: 'after two failures' } });
      await waitFor(async () => (await message(reply.data.id)).delivery_status === 'sent');
      const tries = fake.calls.filter((c) => (c.body.text as { body?: string } | undefined)?.body === 'after two failures');
      assert.deepEqual(tries.map((c) => c.ok), [false, false, true], 'two failures, then exactly one message at the platform');
      fake.failNext.push({ status: 400, body: { error: { code: 131026, message: 'Message undeliverable' } } });
      const refused = await call(t.app, 'POST', `/api/v1/conversations/${conv.id}/messages`, { token: agent.token, body: { body: 'refused' } });
      const failed = await waitFor(async () => ((await message(refused.data.id)).delivery_status === 'failed' ? t.db.db.selectFrom('messages').select('delivery_error').where('id', '=', refused.data.id).executeTakeFirst() : null));
      assert.match(failed!.delivery_error ?? '', /131026 Message undeliverable/);
    });

    it('WhatsApp 24-hour window: a reply after it closed fails with a clear error, without calling the platform', async () => {
      const old = Math.floor(Date.now() / 1000) - 25 * 3600;
      const conv = await inboundWhatsApp('5581999990000', 'wamid.IN3', 'yesterday', old);
      const before = fake.calls.length;
      const reply = await call(t.app, 'POST', `/api/v1/conversations/${conv.id}/messages`, { token: agent.token, body: { body: 'too late' } });
      await waitFor(async () => (await message(reply.data.id)).delivery_status === 'failed');
      const row = await t.db.db.selectFrom('messages').select('delivery_error').where('id', '=', reply.data.id).executeTakeFirstOrThrow();
      assert.match(row.delivery_error ?? '', /^whatsapp\.window_closed/);
      assert.equal(fake.calls.length, before);
    });

    it('Telegram webhook registration: one setWebhook call with the inbox URL and its secret token (admins only)', async () => {
      const inbox = (await call(t.app, 'GET', `/api/v1/inboxes/${tg}`, { token: admin.token })).data;
      const r = await call(t.app, 'POST', `/api/v1/inboxes/${tg}/register-webhook`, { token: admin.token });
      assert.equal(r.statusCode, 200, r.body);
      const c = fake.calls.findLast((x) => x.path === '/bot42:tg-token/setWebhook')!;
      assert.equal(c.body.url, inbox.webhook_url);
      assert.equal(c.body.secret_token, inbox.verify_token);
      assert.ok((c.body.allowed_updates as string[]).includes('message_reaction'));
      assert.equal((await call(t.app, 'POST', `/api/v1/inboxes/${tg}/register-webhook`, { token: agent.token })).statusCode, 403);
      assert.equal((await call(t.app, 'POST', `/api/v1/inboxes/${wa}/register-webhook`, { token: admin.token })).statusCode, 400);
    });

    it('Telegram replies go out through sendMessage with the bot token', async () => {
      const update = JSON.stringify({ update_id: 9001, message: { message_id: 7, date: Math.floor(Date.now() / 1000), chat: { id: 777, type: 'private', first_name: 'Tg' }, from: { id: 777, is_bot: false, first_name: 'Tg' }, text: 'hello bot' } });
      const inbox = (await call(t.app, 'GET', `/api/v1/inboxes/${tg}`, { token: admin.token })).data;
      const r = await t.app.inject({ method: 'POST', url: `/webhooks/telegram/${tg}`, payload: update, headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': inbox.verify_token } });
      assert.equal(r.statusCode, 200);
      const conv = await waitFor(async () => (await call(t.app, 'GET', `/api/v1/conversations?inbox_id=${tg}`, { token: agent.token })).data.data[0]);
      const reply = await call(t.app, 'POST', `/api/v1/conversations/${conv.id}/messages`, { token: agent.token, body: { body: 'hi from support' } });
      await waitFor(async () => (await message(reply.data.id)).delivery_status === 'sent');
      const c = fake.calls.find((x) => x.path === '/bot42:tg-token/sendMessage')!;
      assert.deepEqual(c.body, { chat_id: '777', text: 'hi from support' });
    });
  });
}
