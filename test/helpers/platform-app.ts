import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { DialectName } from '../../src/storage/dialect.ts';
import { makeOrg, makeUser, type TestUser } from './factories.ts';
import { call, newTestApp, type TestApp } from './new-test-app.ts';

/** Polls `probe` until it gives something truthy; fails after `ms`. */
export async function waitFor<T>(probe: () => Promise<T | undefined | null | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface PlatformApp {
  t: TestApp;
  admin: TestUser;
  agent: TestUser;
  /** Inbox ids: WhatsApp (signed with `appSecret`, phone_number_id PNID1) and Telegram (bot 42:tg-token). */
  wa: string;
  tg: string;
  /** A customer's WhatsApp text arrives (signed delivery) and is processed; returns its conversation. */
  inboundWhatsApp(from: string, id: string, text?: string, ts?: number): Promise<{ id: string; contact: { id: string; phone: string | null } }>;
}

/**
 * An app whose platform APIs point at `apiBase` (a local fake platform), with a WhatsApp and a
 * Telegram inbox and an agent of both: the setup of the replies-out tests.
 */
export async function platformApp(dialect: DialectName, apiBase: string, appSecret: string): Promise<PlatformApp> {
  const t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0', OUTBOX_POLL_MS: '20', OUTBOX_RETRY_BASE_MS: '20', OUTBOX_RETRY_MAX_MS: '50', OUTBOX_MAX_ATTEMPTS: '4', WHATSAPP_API_BASE: apiBase, TELEGRAM_API_BASE: apiBase } });
  const org = await makeOrg(t.services);
  const admin = await makeUser(t.app, t.services, org.id, 'admin');
  const agent = await makeUser(t.app, t.services, org.id, 'agent');
  const wa = (await call(t.app, 'POST', '/api/v1/inboxes', { token: admin.token, body: { name: 'WA', platform: 'whatsapp', credentials: { app_secret: appSecret, access_token: 'wa-token', phone_number_id: 'PNID1' } } })).data.id as string;
  const tg = (await call(t.app, 'POST', '/api/v1/inboxes', { token: admin.token, body: { name: 'TG', platform: 'telegram', credentials: { bot_token: '42:tg-token' } } })).data.id as string;
  for (const i of [wa, tg]) await call(t.app, 'POST', `/api/v1/inboxes/${i}/members`, { token: admin.token, body: { user_id: agent.id } });
  const inboundWhatsApp = async (from: string, id: string, text = 'oi', ts = Math.floor(Date.now() / 1000)) => {
    const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: 'W', changes: [{ field: 'messages', value: { contacts: [{ profile: { name: 'Cliente' }, wa_id: from }], messages: [{ from, id, timestamp: String(ts), type: 'text', text: { body: text } }] } }] }] });
    const signature = `sha256=${createHmac('sha256', appSecret).update(body).digest('hex')}`;
    const r = await t.app.inject({ method: 'POST', url: `/webhooks/whatsapp/${wa}`, payload: body, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature } });
    assert.equal(r.statusCode, 200);
    // Processed: the conversation exists AND the message is stored (the conversation is created first).
    const conv = await waitFor(async () => (await call(t.app, 'GET', `/api/v1/conversations?inbox_id=${wa}`, { token: agent.token })).data.data.find((c: { contact: { phone: string | null } }) => c.contact.phone === `+${from}`));
    await waitFor(async () => (await t.db.db.selectFrom('messages').select('id').where('external_id', '=', id).executeTakeFirst()) !== undefined);
    return conv;
  };
  return { t, admin, agent, wa, tg, inboundWhatsApp };
}
