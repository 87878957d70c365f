import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUser, type TestUser } from '../../../test/helpers/factories.ts';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/platforms/', import.meta.url));
const fixture = (path: string): string => readFileSync(`${FIXTURES}${path}.json`, 'utf8');
const APP_SECRET = 'meta-app-secret-for-tests';
const sign = (body: string, secret = APP_SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

for (const dialect of testDialects()) {
  describe(`platform webhooks in (${dialect})`, () => {
    let t: TestApp;
    let admin: TestUser;
    let agent: TestUser;
    let wa: { id: string; verify_token: string };
    let tg: { id: string; verify_token: string };
    before(async () => {
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0', OUTBOX_POLL_MS: '20' } });
      const org = await makeOrg(t.services);
      admin = await makeUser(t.app, t.services, org.id, 'admin');
      agent = await makeUser(t.app, t.services, org.id, 'agent');
      wa = (await call(t.app, 'POST', '/api/v1/inboxes', { token: admin.token, body: { name: 'WA', platform: 'whatsapp', credentials: { app_secret: APP_SECRET, access_token: 'x' } } })).data;
      tg = (await call(t.app, 'POST', '/api/v1/inboxes', { token: admin.token, body: { name: 'TG', platform: 'telegram', credentials: { bot_token: '123:abc' } } })).data;
      await call(t.app, 'POST', `/api/v1/inboxes/${wa.id}/members`, { token: admin.token, body: { user_id: agent.id } });
    });
    after(() => t.close());

    const deliver = (platform: string, inboxId: string, body: string, headers: Record<string, string>) =>
      t.app.inject({ method: 'POST', url: `/webhooks/${platform}/${inboxId}`, payload: body, headers: { 'content-type': 'application/json', ...headers } });
    const waDeliver = (body: string, headers: Record<string, string> = { 'x-hub-signature-256': sign(body) }) => deliver('whatsapp', wa.id, body, headers);
    /** Waits until the stored deliveries are processed. */
    const settled = async () => {
      for (let i = 0; i < 200; i++) {
        const pending = await t.db.db.selectFrom('webhook_events').select('id').where('status', '=', 'received').execute();
        if (pending.length === 0) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error('deliveries not processed in time');
    };

    it('Meta verification handshake: the challenge with the right verify token only', async () => {
      const ok = await t.app.inject({ method: 'GET', url: `/webhooks/whatsapp/${wa.id}?hub.mode=subscribe&hub.verify_token=${wa.verify_token}&hub.challenge=12345` });
      assert.equal(ok.statusCode, 200);
      assert.equal(ok.body, '12345');
      const bad = await t.app.inject({ method: 'GET', url: `/webhooks/whatsapp/${wa.id}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=12345` });
      assert.equal(bad.statusCode, 403);
    });

    it('signatures on the raw body: valid 200, missing 401, invalid / tampered / wrong secret 403; unknown inbox 404', async () => {
      const body = fixture('whatsapp/status_read');
      assert.equal((await waDeliver(body, {})).statusCode, 401);
      assert.equal((await waDeliver(body, { 'x-hub-signature-256': 'sha256=deadbeef' })).statusCode, 403);
      assert.equal((await waDeliver(body.replace('read', 'sent'), { 'x-hub-signature-256': sign(body) })).statusCode, 403, 'tampered');
      assert.equal((await waDeliver(body, { 'x-hub-signature-256': sign(body, 'another-secret') })).statusCode, 403, 'wrong secret');
      // The same JSON re-serialized is not the signed bytes.
      const reformatted = JSON.stringify(JSON.parse(body));
      assert.equal((await waDeliver(reformatted, { 'x-hub-signature-256': sign(body) })).statusCode, 403);
      assert.equal((await waDeliver(body)).statusCode, 200);
      assert.equal((await deliver('whatsapp', '00000000-0000-4000-8000-000000000000', body, { 'x-hub-signature-256': sign(body) })).statusCode, 404);
      assert.equal((await deliver('telegram', wa.id, body, {})).statusCode, 404, 'the platform must match the inbox');
      const tgBody = fixture('telegram/text_private_link_preview');
      assert.equal((await deliver('telegram', tg.id, tgBody, { 'x-telegram-bot-api-secret-token': 'nope' })).statusCode, 403);
      assert.equal((await deliver('telegram', tg.id, tgBody, { 'x-telegram-bot-api-secret-token': tg.verify_token })).statusCode, 200);
      await settled();
    });

    it('a changed app secret applies to the next delivery (the inbox row kept for acks is dropped); a deleted inbox answers 404 at once', async () => {
      const spare = (await call(t.app, 'POST', '/api/v1/inboxes', { token: admin.token, body: { name: 'WA-rotate', platform: 'whatsapp', credentials: { app_secret: 'old-secret', access_token: 'x' } } })).data as { id: string };
      const body = fixture('whatsapp/status_read');
      const post = (secret: string) => deliver('whatsapp', spare.id, body, { 'x-hub-signature-256': sign(body, secret) });
      assert.equal((await post('old-secret')).statusCode, 200);
      assert.equal((await call(t.app, 'PATCH', `/api/v1/inboxes/${spare.id}`, { token: admin.token, body: { credentials: { app_secret: 'new-secret', access_token: 'x' } } })).statusCode, 200);
      assert.equal((await post('old-secret')).statusCode, 403, 'the old secret no longer passes');
      assert.equal((await post('new-secret')).statusCode, 200);
      assert.equal((await call(t.app, 'DELETE', `/api/v1/inboxes/${spare.id}`, { token: admin.token })).statusCode, 204);
      assert.equal((await post('new-secret')).statusCode, 404);
    });

    it('deliveries acknowledged in the same turn are stored together, each once, and share one job', async () => {
      const own = (await call(t.app, 'POST', '/api/v1/inboxes', { token: admin.token, body: { name: 'WA-batch', platform: 'whatsapp', credentials: { app_secret: APP_SECRET, access_token: 'x' } } })).data as { id: string };
      const bodies = Array.from({ length: 150 }, (_, i) =>
        JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: 'W', changes: [{ field: 'messages', value: { contacts: [{ profile: { name: `B${i}` }, wa_id: `55819900${String(i).padStart(5, '0')}` }], messages: [{ from: `55819900${String(i).padStart(5, '0')}`, id: `wamid.BATCH${i}`, timestamp: '1700000000', type: 'text', text: { body: `batch ${i}` } }] } }] }] }),
      );
      const answers = await Promise.all(bodies.map((b) => deliver('whatsapp', own.id, b, { 'x-hub-signature-256': sign(b) })));
      assert.deepEqual(new Set(answers.map((a) => a.statusCode)), new Set([200]));
      const events = await t.db.db.selectFrom('webhook_events').select('id').where('inbox_id', '=', own.id).execute();
      assert.equal(events.length, 150);
      const jobs = await t.db.db.selectFrom('outbox').select(['event_id', 'payload']).where('target', '=', 'inbound').where('event_id', 'in', events.map((e) => e.id)).execute();
      const listed = jobs.flatMap((j) => (JSON.parse(j.payload) as { deliveries: Array<[string, string, string, string]> }).deliveries.map((d) => d[0]));
      assert.deepEqual(listed.toSorted(), events.map((e) => e.id).toSorted(), 'every delivery in exactly one job');
      assert.ok(jobs.length < 150, `deliveries of one turn share a job (${jobs.length} jobs)`);
      await settled();
      const stored = await t.db.db.selectFrom('messages').select('body').where('external_id', 'like', 'wamid.BATCH%').execute();
      assert.equal(stored.length, 150);
      assert.equal(new Set(stored.map((m) => m.body)).size, 150);
    });

    it('a message lands as contact, conversation and message; the same delivery 10 times, concurrently, stores it once', async () => {
      const body = fixture('whatsapp/text');
      const answers = await Promise.all(Array.from({ length: 10 }, () => waDeliver(body)));
      assert.deepEqual([...new Set(answers.map((a) => a.statusCode))], [200]);
      await settled();
      const convs = (await call(t.app, 'GET', `/api/v1/conversations?inbox_id=${wa.id}`, { token: agent.token })).data.data;
      assert.equal(convs.length, 1);
      // The fixture's number is not a valid Israeli number: the contact keeps its wa_id identity, no phone.
      assert.equal(convs[0].contact.phone, null);
      assert.equal(convs[0].contact.name, 'Test Name');
      const msgs = (await call(t.app, 'GET', `/api/v1/conversations/${convs[0].id}/messages`, { token: agent.token })).data.data;
      assert.deepEqual(msgs.map((m: { body: string; sender_type: string }) => [m.body, m.sender_type]), [['Body Text', 'contact']]);
      const events = await t.db.db.selectFrom('webhook_events').select(['status', 'summary']).where('inbox_id', '=', wa.id).execute();
      assert.ok(events.filter((e) => e.summary?.includes('"duplicates":1')).length >= 9, 'nine deliveries were duplicates');
    });

    it('media, reaction, reply, unknown types; statuses update our outbound message, highest rank wins', async () => {
      for (const f of ['whatsapp/image', 'whatsapp/audio_voice']) {
        // Fixture ids repeat across files: give each its own wamid.
        const body = fixture(f).replace('wamid.xyzxyz', `wamid.${f.replace(/\W/g, '')}`);
        assert.equal((await waDeliver(body)).statusCode, 200);
      }
      const unknown = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: 'W', changes: [{ field: 'messages', value: { messages: [{ from: '972987654321', id: 'wamid.UNK', timestamp: '1700000000', type: 'hologram', hologram: { x: 1 } }] } }] }] });
      assert.equal((await waDeliver(unknown)).statusCode, 200);
      await settled();
      const conv = (await call(t.app, 'GET', `/api/v1/conversations?inbox_id=${wa.id}`, { token: agent.token })).data.data[0];
      const msgs = (await call(t.app, 'GET', `/api/v1/conversations/${conv.id}/messages`, { token: agent.token })).data.data as Array<{ id: string; type: string; metadata: Record<string, unknown> | null; body: string }>;
      // Deliveries are processed concurrently: the order of different deliveries is not kept.
      assert.deepEqual(msgs.map((m) => m.type).sort(), ['audio', 'image', 'text', 'unsupported']);
      const byType = (type: string) => msgs.find((m) => m.type === type)!;
      assert.equal((byType('audio').metadata as { media: { voice: boolean } }).media.voice, true);
      assert.deepEqual((byType('unsupported').metadata as { raw: { hologram: unknown } }).raw.hologram, { x: 1 });
      // An agent's reply that went out (its platform id set as the send would), then statuses out of order.
      const reply = (await call(t.app, 'POST', `/api/v1/conversations/${conv.id}/messages`, { token: agent.token, body: { body: 'Hi!' } })).data;
      await t.db.db.updateTable('messages').set({ external_id: 'wamid.OUT', delivery_status: 'sent' }).where('id', '=', reply.id).execute();
      const status = (s: string, ts: number) => JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: 'W', changes: [{ field: 'messages', value: { statuses: [{ id: 'wamid.OUT', status: s, timestamp: String(ts), recipient_id: '972987654321' }] } }] }] });
      await waDeliver(status('read', 1700000100));
      await settled();
      await waDeliver(status('delivered', 1700000050));
      await settled();
      const after = (await call(t.app, 'GET', `/api/v1/messages/${reply.id}`, { token: agent.token })).data;
      assert.equal(after.delivery_status, 'read', 'a late delivered does not undo read');
      // A reaction from the contact on our reply.
      await waDeliver(JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: 'W', changes: [{ field: 'messages', value: { messages: [{ from: '972987654321', id: 'wamid.R', timestamp: '1700000200', type: 'reaction', reaction: { message_id: 'wamid.OUT', emoji: '👍' } }] } }] }] }));
      await settled();
      const reacted = (await call(t.app, 'GET', `/api/v1/messages/${reply.id}`, { token: agent.token })).data;
      assert.equal(reacted.metadata.contact_reaction, '👍');
      // The delivery log and replay.
      const log = (await call(t.app, 'GET', `/api/v1/webhook-events?inbox_id=${wa.id}`, { token: admin.token })).data.data;
      assert.ok(log.length >= 5 && log.every((e: { status: string }) => e.status === 'processed'));
      assert.equal((await call(t.app, 'POST', `/api/v1/webhook-events/${log[0].id}/replay`, { token: admin.token })).statusCode, 204);
      await settled();
      assert.equal((await call(t.app, 'GET', `/api/v1/webhook-events`, { token: agent.token })).statusCode, 403);
    });
  });
}
