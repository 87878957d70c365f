import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { makeOrg, makeUser, type TestUser } from '../../../test/helpers/factories.ts';
import { startFakeChatwoot, type CwMessage, type FakeChatwoot } from '../../../test/helpers/fake-chatwoot.ts';
import { startFakeGateway, type FakeGateway, type GatewayKind } from '../../../test/helpers/fake-gateway.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { waitFor } from '../../../test/helpers/platform-app.ts';
import { probeCodec } from '../../platform/ffmpeg.ts';
import type { DialectName } from '../../storage/dialect.ts';

const tone = (format: 'ogg' | 'mp3', seconds = 2): Buffer =>
  format === 'ogg'
    ? execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`, '-c:a', 'libopus', '-f', 'ogg', 'pipe:1'])
    : execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`, '-f', 'mp3', 'pipe:1']);
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');

interface Relay {
  t: TestApp;
  admin: TestUser;
  gw: FakeGateway;
  cw: FakeChatwoot;
  sessionId: string;
  /** Parley's base URL (listening on loopback). */
  base: string;
  /** The Chatwoot webhook URL of the session (with its token). */
  cwHook: string;
  close(): Promise<void>;
}

/** An app on loopback, a fake gateway and a fake Chatwoot wired both ways through one session. */
async function relay(dialect: DialectName, kind: GatewayKind, opts: { webhookSecret?: string } = {}): Promise<Relay> {
  const gw = await startFakeGateway({ kind });
  const cw = await startFakeChatwoot();
  const t = await newTestApp({
    dialect,
    env: { RATE_LIMIT_MAX: '0', OUTBOX_POLL_MS: '20', OUTBOX_RETRY_BASE_MS: '20', OUTBOX_RETRY_MAX_MS: '100', OUTBOX_MAX_ATTEMPTS: '200', CHATWOOT_ALLOW_PRIVATE: 'true', MEDIA_ALLOW_PRIVATE: 'true', CHATWOOT_TIMEOUT_MS: '3000' },
  });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  const org = await makeOrg(t.services);
  const admin = await makeUser(t.app, t.services, org.id, 'admin');
  const r = await call(t.app, 'POST', '/api/v1/sessions', {
    token: admin.token,
    body: {
      description: `${kind} relay`,
      chatwoot: { url: cw.url, account_id: cw.accountId, inbox_id: cw.inboxId, token: cw.token, ...(opts.webhookSecret ? { webhook_secret: opts.webhookSecret } : {}) },
      gateway: { kind, base_url: gw.url, instance: gw.instance, api_key: gw.apiKey },
    },
  });
  assert.equal(r.statusCode, 201, r.body);
  const local = (u: string) => `${base}${new URL(u).pathname}${new URL(u).search}`;
  gw.webhookUrl = local(r.data.gateway.webhook_url as string);
  const cwHook = local(r.data.chatwoot.webhook_url as string);
  cw.webhookUrl = cwHook;
  if (opts.webhookSecret) cw.webhookSecret = opts.webhookSecret;
  return {
    t,
    admin,
    gw,
    cw,
    sessionId: r.data.session_id as string,
    base,
    cwHook,
    close: async () => {
      // The fakes first: a webhook of theirs still arriving would hold Parley's keep-alive
      // connection open, and the app's close would wait for it (Fastify's 72-s keep-alive).
      await gw.close();
      await cw.close();
      await t.close();
    },
  };
}

/** Waits until every job of the outbox is done (nothing pending or being delivered). */
async function settled(t: TestApp): Promise<void> {
  await waitFor(async () => (await t.db.db.selectFrom('outbox').select('id').where('status', 'in', ['pending', 'delivering']).executeTakeFirst()) === undefined, 20_000);
}

const incoming = (cw: FakeChatwoot) => cw.messages().filter((m) => m.message_type === 'incoming' && !m.private);

for (const dialect of testDialects()) {
  describe(`Codechat / Evolution ↔ Chatwoot relay (${dialect})`, () => {
    for (const kind of ['evolution', 'codechat'] as const) {
      it(`${kind}: text both ways — contact by phone, one conversation, formatting converted, statuses back, no loop`, async () => {
        const r = await relay(dialect, kind);
        try {
          const { id } = await r.gw.deliverInbound({ from: '5511987654321', pushName: 'Maria', text: 'Olá *mundo*' });
          const first = await waitFor(() => Promise.resolve(incoming(r.cw)[0]));
          assert.equal(first.content, 'Olá **mundo**');
          assert.equal(first.source_id, `parley:${(await r.t.db.db.selectFrom('messages').select('id').where('external_id', '=', id).executeTakeFirstOrThrow()).id}`);
          assert.equal(r.cw.contacts.length, 1);
          assert.equal(r.cw.contacts[0]!.phone_number, '+5511987654321');
          assert.equal(r.cw.contacts[0]!.name, 'Maria');
          assert.equal(r.cw.conversations.length, 1);
          const conv = r.cw.conversations[0]!;
          assert.equal(conv.inbox_id, r.cw.inboxId);

          // The agent answers quoting the customer's message: the gateway quotes it too (Codechat v1 by its own row id).
          const reply = await r.cw.agentReply(conv.id, { content: '**Oi** Maria, _tudo_ ~~bem~~?', agentName: 'Ana', inReplyTo: first.id });
          const sent = await waitFor(() => Promise.resolve(r.gw.sends.find((s) => s.kind === 'text')));
          const text = kind === 'evolution' ? sent.body.text : (sent.body.textMessage as { text: string }).text;
          assert.equal(text, '*Oi* Maria, _tudo_ ~bem~?');
          assert.equal(sent.jid, '5511987654321@s.whatsapp.net');
          assert.equal(sent.replyTo, id, 'quoted');
          // Read events the other way: the agent answered, so the customer's message shows read on WhatsApp.
          const read = await waitFor(() => Promise.resolve(r.gw.sends.find((s) => s.kind === 'read')));
          assert.equal(read.keyId, id);
          // Chatwoot hears the platform's verdict on the agent's message.
          await waitFor(async () => r.cw.messages().find((m) => m.id === reply.id)?.status === 'sent');
          // The gateway's echo of our send and Chatwoot's webhooks of what we wrote there come back: nothing is doubled.
          await r.gw.idle();
          await r.cw.idle();
          await settled(r.t);
          assert.equal(r.gw.sends.filter((s) => s.kind === 'text').length, 1, 'sent once');
          assert.equal(r.cw.messages().filter((m) => !m.private).length, 2, 'Chatwoot has the customer’s message and the agent’s reply, nothing else');
          const parley = await r.t.db.db.selectFrom('messages').select(['sender_type', 'external_id']).where('conversation_id', '=', (await r.t.db.db.selectFrom('conversations').select('id').where('inbox_id', '=', r.sessionId).executeTakeFirstOrThrow()).id).orderBy('seq').execute();
          assert.deepEqual(parley.map((m) => m.sender_type), ['contact', 'business']);
          assert.equal(parley[1]!.external_id, sent.keyId);
          // Read events: the gateway says the customer read the reply → Chatwoot shows it read.
          await r.gw.deliverStatus(sent.keyId, sent.jid, 'READ');
          await waitFor(async () => r.cw.messages().find((m) => m.id === reply.id)?.status === 'read');
          // The agent deletes the reply in Chatwoot: gone in Parley, and deleted for everyone on WhatsApp (Codechat v1 by its own row id).
          await r.cw.agentDelete(reply.id);
          await waitFor(async () => (await r.t.db.db.selectFrom('messages').select('deleted_at').where('external_id', '=', sent.keyId).executeTakeFirst())?.deleted_at != null);
          const del = await waitFor(() => Promise.resolve(r.gw.sends.find((s) => s.kind === 'delete')));
          assert.equal(del.keyId, sent.keyId, 'the right message deleted for everyone');
        } finally {
          await r.close();
        }
      });
    }

    it('a voice note both ways through ffmpeg: OGG/Opus → MP3 for Chatwoot, MP3 → OGG/Opus voice note for WhatsApp', async () => {
      const r = await relay(dialect, 'evolution');
      try {
        await r.gw.deliverInbound({ from: '5511987654321', audio: tone('ogg'), ptt: true, media: 'by_id' });
        const voice = await waitFor(() => Promise.resolve(incoming(r.cw).find((m) => m.attachments.length > 0)));
        assert.equal(voice.attachments[0]!.file_type, 'audio');
        assert.equal((await probeCodec(voice.attachments[0]!.bytes)).codec, 'mp3');
        const conv = r.cw.conversations[0]!;
        await r.cw.agentReply(conv.id, { attachments: [{ bytes: tone('mp3'), contentType: 'audio/mpeg', fileName: 'resposta.mp3', fileType: 'audio' }] });
        const sent = await waitFor(() => Promise.resolve(r.gw.sends.find((s) => s.kind === 'audio')));
        const probe = await probeCodec(sent.bytes!);
        assert.equal(probe.codec, 'opus');
        assert.equal(probe.format, 'ogg');
      } finally {
        await r.close();
      }
    });

    it('documents both ways, bytes intact, with their captions', async () => {
      const r = await relay(dialect, 'codechat');
      try {
        await r.gw.deliverInbound({ from: '5511987654321', document: PDF, mimetype: 'application/pdf', fileName: 'boleto.pdf', caption: 'segue', media: 'url' });
        const doc = await waitFor(() => Promise.resolve(incoming(r.cw).find((m) => m.attachments.length > 0)));
        assert.equal(doc.attachments[0]!.file_type, 'file');
        assert.ok(doc.attachments[0]!.bytes.equals(PDF));
        assert.equal(doc.content, 'segue');
        await r.cw.agentReply(r.cw.conversations[0]!.id, { content: 'recibo', attachments: [{ bytes: PDF, contentType: 'application/pdf', fileName: 'recibo.pdf', fileType: 'file' }] });
        const sent = await waitFor(() => Promise.resolve(r.gw.sends.find((s) => s.kind === 'media')));
        assert.ok(sent.bytes!.equals(PDF));
        assert.equal((sent.body.mediaMessage as { mediatype: string; caption?: string }).mediatype, 'document');
        assert.equal((sent.body.mediaMessage as { caption?: string }).caption, 'recibo');
      } finally {
        await r.close();
      }
    });

    it('the other kinds of seed 001’s roadmap: image, location, contact, a reply and a reaction', async () => {
      const r = await relay(dialect, 'evolution');
      try {
        const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64');
        const from = '5511987654321';
        const { id: first } = await r.gw.deliverInbound({ from, text: 'primeira' });
        await r.gw.deliverInbound({ from, image: png, mimetype: 'image/png', caption: 'foto', media: 'base64' });
        await r.gw.deliverInbound({ from, location: { latitude: -23.55, longitude: -46.63, name: 'Escritório', address: 'Av. Paulista, 1000' } });
        await r.gw.deliverInbound({ from, contact: { displayName: 'João Silva', vcard: 'BEGIN:VCARD\nVERSION:3.0\nFN:João Silva\nTEL;type=CELL;waid=5511912345678:+55 11 91234-5678\nEND:VCARD' } });
        await r.gw.deliverInbound({ from, text: 'respondendo', replyTo: first });
        await r.gw.deliverInbound({ from, reaction: { targetId: first, emoji: '👍' } });
        const all = await waitFor(() => Promise.resolve(incoming(r.cw).length >= 6 ? incoming(r.cw) : undefined));
        // The five messages in the chat's order; the reaction (a change to the first) whenever it lands.
        const reaction = all.find((m) => m.content === '👍');
        const [text, image, location, contact, reply] = all.filter((m) => m !== reaction);
        assert.equal(text!.content, 'primeira');
        assert.equal(image!.content, 'foto');
        assert.equal(image!.attachments[0]!.file_type, 'image');
        assert.ok(image!.attachments[0]!.bytes.equals(png));
        assert.match(location!.content ?? '', /Escritório\nAv\. Paulista, 1000\nhttps:\/\/www\.google\.com\/maps\/search\/\?api=1&query=-23\.55,-46\.63/);
        assert.match(contact!.content ?? '', /João Silva/);
        assert.match(contact!.content ?? '', /\+55 11 91234-5678/);
        assert.equal(reply!.content, 'respondendo');
        assert.equal(reply!.content_attributes.in_reply_to, text!.id);
        assert.equal(reaction!.content, '👍');
        assert.equal(reaction!.content_attributes.in_reply_to, text!.id);
      } finally {
        await r.close();
      }
    });

    it('a Parley agent’s reply is mirrored into Chatwoot (outgoing, never sent back), and deleting it deletes it on WhatsApp and in Chatwoot', async () => {
      const r = await relay(dialect, 'evolution');
      try {
        await r.gw.deliverInbound({ from: '5511987654321', text: 'oi' });
        await waitFor(() => Promise.resolve(incoming(r.cw)[0]));
        const conv = (await r.t.db.db.selectFrom('conversations').select('id').where('inbox_id', '=', r.sessionId).executeTakeFirstOrThrow()).id;
        const sent = await call(r.t.app, 'POST', `/api/v1/conversations/${conv}/messages`, { token: r.admin.token, body: { body: 'resposta pelo Parley' } });
        assert.equal(sent.statusCode, 201, sent.body);
        const out = await waitFor(() => Promise.resolve(r.gw.sends.find((x) => x.kind === 'text')));
        const mirrored = await waitFor(() => Promise.resolve(r.cw.messages().find((m) => m.content === 'resposta pelo Parley')));
        assert.equal(mirrored.message_type, 'outgoing');
        const note = await call(r.t.app, 'POST', `/api/v1/conversations/${conv}/messages`, { token: r.admin.token, body: { body: 'nota interna', private: true } });
        assert.equal(note.statusCode, 201);
        assert.equal((await waitFor(() => Promise.resolve(r.cw.messages().find((m) => m.content === 'nota interna')))).private, true, 'a private note stays private in Chatwoot');
        await waitFor(async () => (await r.t.db.db.selectFrom('messages').select('external_id').where('id', '=', sent.data.id).executeTakeFirst())?.external_id === out.keyId);
        assert.equal((await call(r.t.app, 'DELETE', `/api/v1/messages/${sent.data.id}`, { token: r.admin.token })).statusCode, 204);
        const del = await waitFor(() => Promise.resolve(r.gw.sends.find((x) => x.kind === 'delete')));
        assert.equal(del.keyId, out.keyId);
        await waitFor(async () => r.cw.messages().find((m) => m.id === mirrored.id)?.deleted === true);
        await settled(r.t);
        assert.equal(r.gw.sends.filter((x) => x.kind === 'text').length, 1, 'the mirrored copy in Chatwoot was not sent out again, nor the note');
      } finally {
        await r.close();
      }
    });

    it('the customer edits and deletes on WhatsApp: Chatwoot shows the edit and loses the message; an undecodable voice note goes as it is, with a warning', async () => {
      const r = await relay(dialect, 'evolution');
      try {
        const from = '5511987654321';
        const { id } = await r.gw.deliverInbound({ from, text: 'versão um' });
        const original = await waitFor(() => Promise.resolve(incoming(r.cw)[0]));
        const protocol = (node: Record<string, unknown>) => {
          const body = r.gw.inboundBody({ from, text: 'x' }) as { data: Record<string, unknown> };
          body.data.message = { protocolMessage: { key: { remoteJid: `${from}@s.whatsapp.net`, fromMe: false, id }, ...node } };
          body.data.messageType = 'protocolMessage';
          return fetch(r.gw.webhookUrl!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        };
        assert.equal((await protocol({ type: 'MESSAGE_EDIT', editedMessage: { conversation: 'versão dois' } })).status, 200);
        const edit = await waitFor(() => Promise.resolve(incoming(r.cw).find((m) => m.content === '✏️ versão dois')));
        assert.equal(edit.content_attributes.in_reply_to, original.id);
        assert.equal((await protocol({ type: 'REVOKE' })).status, 200);
        await waitFor(() => Promise.resolve(r.cw.messages().find((m) => m.id === original.id)?.deleted === true));
        // An OGG/Opus voice note cut after its first page: sniffed as audio, but ffmpeg finds no audio in it.
        const broken = tone('ogg').subarray(0, 60);
        await r.gw.deliverInbound({ from, audio: broken, ptt: true, media: 'base64' });
        const voice = await waitFor(() => Promise.resolve(incoming(r.cw).find((m) => m.attachments.length > 0)));
        assert.ok(voice.attachments[0]!.bytes.equals(broken), 'the original is delivered');
        assert.ok(r.t.logs.some((l) => l.includes('voice note transcoding to MP3 failed')), 'and the failure logged');
      } finally {
        await r.close();
      }
    });

    it('no loop when the gateway’s echo overtakes the answer to our send', async () => {
      const r = await relay(dialect, 'evolution');
      try {
        r.gw.echo = 'before';
        await r.gw.deliverInbound({ from: '5511987654321', text: 'oi' });
        await waitFor(() => Promise.resolve(incoming(r.cw)[0]));
        await r.cw.agentReply(r.cw.conversations[0]!.id, { content: 'olá' });
        await waitFor(() => Promise.resolve(r.gw.sends.find((s) => s.kind === 'text')));
        await r.gw.idle();
        await r.cw.idle();
        await settled(r.t);
        assert.equal(r.gw.sends.length, r.gw.sends.filter((s) => s.kind !== 'text').length + 1, 'one text sent');
        assert.equal(r.cw.messages().filter((m) => !m.private).length, 2);
        const rows = await r.t.db.db.selectFrom('messages').select('id').where('body', '=', 'olá').execute();
        assert.equal(rows.length, 1, 'the echo is not stored as a second message');
        // The race made certain: while a send is pending (the gateway is down), an echo for that
        // chat is not stored — its processing waits and is retried — and goes in once the send settled.
        r.gw.down = true;
        await r.cw.agentReply(r.cw.conversations[0]!.id, { content: 'segunda' });
        await waitFor(async () => (await r.t.db.db.selectFrom('messages').select('id').where('body', '=', 'segunda').where('delivery_status', '=', 'pending').executeTakeFirst()) !== undefined);
        const echo = r.gw.inboundBody({ from: '5511987654321', id: 'PHONE-ECHO-1', fromMe: true, text: 'escrito no celular' });
        assert.equal((await fetch(r.gw.webhookUrl!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(echo) })).status, 200);
        await waitFor(async () => (await r.t.db.db.selectFrom('webhook_events').select('error').where('error', 'like', '%pending%').executeTakeFirst()) !== undefined);
        assert.equal((await r.t.db.db.selectFrom('messages').select('id').where('external_id', '=', 'PHONE-ECHO-1').executeTakeFirst()), undefined, 'not stored while our send is pending');
        r.gw.down = false;
        await waitFor(async () => (await r.t.db.db.selectFrom('messages').select('id').where('external_id', '=', 'PHONE-ECHO-1').executeTakeFirst()) !== undefined);
        await r.gw.idle();
        await settled(r.t);
        assert.equal(r.gw.sends.filter((s) => s.kind === 'text').length, 2);
        const outgoing = r.cw.messages().filter((m) => m.message_type === 'outgoing' && !m.private).map((m) => m.content);
        assert.deepEqual(outgoing.sort(), ['escrito no celular', 'olá', 'segunda'].sort(), 'the phone’s own message is mirrored once; ours are not mirrored back');
      } finally {
        await r.close();
      }
    });

    it('duplicate deliveries from either side make one message', async () => {
      const r = await relay(dialect, 'evolution');
      try {
        const body = r.gw.inboundBody({ from: '5511987654321', id: 'DUP1', text: 'uma vez' });
        for (let i = 0; i < 3; i++) {
          const res = await fetch(r.gw.webhookUrl!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
          assert.equal(res.status, 200);
        }
        await waitFor(() => Promise.resolve(incoming(r.cw)[0]));
        const conv = r.cw.conversations[0]!;
        r.cw.webhookUrl = undefined; // the agent's reply is delivered by hand below, three times
        const reply = await r.cw.agentReply(conv.id, { content: 'só uma' });
        const raw = JSON.stringify(r.cw.webhookPayload('message_created', reply));
        for (let i = 0; i < 3; i++) {
          const res = await fetch(r.cwHook, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw });
          assert.equal(res.status, 200);
        }
        await settled(r.t);
        assert.equal(incoming(r.cw).length, 1);
        assert.equal(r.gw.sends.filter((s) => s.kind === 'text').length, 1);
      } finally {
        await r.close();
      }
    });

    it('Chatwoot down, then back: every message arrives once, in order', async () => {
      const r = await relay(dialect, 'evolution');
      try {
        r.cw.down = true;
        // Three quick messages: their deliveries are processed in arrival order, and their mirror
        // jobs all fail and retry concurrently; Chatwoot must still get them in the chat's order.
        for (const text of ['um', 'dois', 'três']) await r.gw.deliverInbound({ from: '5511987654321', text });
        await waitFor(async () => r.cw.requests.filter((q) => q.status === 503).length >= 3);
        assert.equal(r.cw.messages().length, 0);
        const failing = await r.t.db.db.selectFrom('outbox').select(['attempts', 'last_error']).where('target', '=', 'chatwoot_mirror').where('last_error', 'like', '%HTTP 503%').executeTakeFirst();
        assert.ok(failing && failing.attempts >= 1, 'the failure is visible on the job');
        r.cw.down = false;
        await waitFor(() => Promise.resolve(incoming(r.cw).length === 3));
        await settled(r.t);
        assert.deepEqual(incoming(r.cw).map((m: CwMessage) => m.content), ['um', 'dois', 'três']);
        const metrics = await r.t.app.metrics.registry.metrics();
        assert.match(metrics, /chat_relay_total\{direction="to_chatwoot",outcome="retry"\} [1-9]/, 'the failures are in the metrics');
        assert.match(metrics, /chat_relay_total\{direction="to_chatwoot",outcome="mirrored"\} [3-9]/);
        assert.equal(r.cw.conversations.length, 1);
        assert.equal(r.cw.contacts.length, 1);
      } finally {
        await r.close();
      }
    });

    it('quick messages keep their order both ways (deliveries are processed in arrival order)', async () => {
      const r = await relay(dialect, 'evolution');
      try {
        const texts = Array.from({ length: 8 }, (_, i) => `cliente ${i + 1}`);
        for (const text of texts) await r.gw.deliverInbound({ from: '5511987654321', text });
        await waitFor(() => Promise.resolve(incoming(r.cw).length === texts.length));
        assert.deepEqual(incoming(r.cw).map((m) => m.content), texts);
        const seqs = await r.t.db.db.selectFrom('messages').select(['body']).where('body', 'like', 'cliente %').orderBy('seq').execute();
        assert.deepEqual(seqs.map((m) => m.body), texts, 'stored in Parley in arrival order');
        const replies = Array.from({ length: 8 }, (_, i) => `agente ${i + 1}`);
        for (const content of replies) await r.cw.agentReply(r.cw.conversations[0]!.id, { content });
        await waitFor(() => Promise.resolve(r.gw.sends.filter((s) => s.kind === 'text').length === replies.length));
        assert.deepEqual(r.gw.sends.filter((s) => s.kind === 'text').map((s) => s.body.text), replies);
      } finally {
        await r.close();
      }
    });

    it('Brazilian numbers with and without the ninth digit are one contact and one conversation, in Parley and in Chatwoot', async () => {
      const r = await relay(dialect, 'evolution');
      try {
        await r.gw.deliverInbound({ from: '5511987654321', text: 'com o nove' });
        await waitFor(() => Promise.resolve(incoming(r.cw).length === 1));
        await r.gw.deliverInbound({ from: '551187654321', text: 'sem o nove' });
        await waitFor(() => Promise.resolve(incoming(r.cw).length === 2));
        assert.equal(r.cw.contacts.length, 1);
        assert.equal(r.cw.conversations.length, 1);
        const contacts = await r.t.db.db.selectFrom('contacts').select(['id', 'phone']).execute();
        assert.deepEqual(contacts.map((c) => c.phone), ['+5511987654321']);
      } finally {
        await r.close();
      }
    });

    it('invalid numbers: a gateway contact without a valid phone is mirrored by identifier; a Chatwoot contact with an invalid phone gets a clear error, not a send', async () => {
      const r = await relay(dialect, 'evolution');
      try {
        await r.gw.deliverInbound({ from: '12345', text: 'número estranho' });
        await waitFor(() => Promise.resolve(incoming(r.cw).length === 1));
        assert.equal(r.cw.contacts[0]!.phone_number, null, 'no broken phone number in Chatwoot');
        assert.equal(r.cw.contacts[0]!.identifier, '12345@s.whatsapp.net');
        // A conversation made in Chatwoot for a contact whose number does not exist.
        const api = (path: string, body: unknown) => fetch(`${r.cw.url}/api/v1/accounts/${r.cw.accountId}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', api_access_token: r.cw.token }, body: JSON.stringify(body) }).then(async (x) => (await x.json()) as Record<string, unknown>);
        const made = await api('/contacts', { inbox_id: r.cw.inboxId, name: 'Ninguém', phone_number: '+5500123' });
        const payload = made.payload as { contact: { id: number }; contact_inbox: { source_id: string } };
        const conv = await api('/conversations', { source_id: payload.contact_inbox.source_id, inbox_id: r.cw.inboxId, contact_id: payload.contact.id });
        const reply = await r.cw.agentReply(conv.id as number, { content: 'olá?' });
        const note = await waitFor(() => Promise.resolve(r.cw.messages().find((m) => m.private && m.conversation_id === conv.id)));
        assert.match(note.content ?? '', /phone\.invalid/);
        await waitFor(async () => r.cw.messages().find((m) => m.id === reply.id)?.status === 'failed');
        const events = await call(r.t.app, 'GET', `/api/v1/webhook-events?inbox_id=${r.sessionId}`, { token: r.admin.token });
        const ev = events.data.data.find((e: { platform: string; status: string }) => e.platform === 'chatwoot' && e.status === 'failed');
        assert.match(ev?.error ?? '', /phone\.invalid/, 'the failure is in the API');
        assert.match(await r.t.app.metrics.registry.metrics(), /chat_relay_total\{direction="from_chatwoot",outcome="refused"\} 1/);
        assert.equal(r.gw.sends.filter((s) => s.kind === 'text').length, 0);
      } finally {
        await r.close();
      }
    });

    it('webhooks in: JSON only (415), 2 MB at most (413), the URL token and Chatwoot’s signature checked', async () => {
      const r = await relay(dialect, 'evolution', { webhookSecret: 'cw-secret' });
      try {
        for (const url of [r.cwHook, r.gw.webhookUrl!]) {
          const wrongType = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"event":"message_created"}' });
          assert.equal(wrongType.status, 415);
          assert.equal(((await wrongType.json()) as { error: { code: string } }).error.code, 'request.unsupported_media_type');
          const big = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(2 * 1024 * 1024) }) });
          assert.equal(big.status, 413);
          assert.equal(((await big.json()) as { error: { code: string } }).error.code, 'request.too_large');
        }
        const raw = JSON.stringify({ event: 'message_created', id: 1, message_type: 'outgoing', private: false, content: 'x', conversation: { id: 1 } });
        const post = (headers: Record<string, string>, url = r.cwHook) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw });
        assert.equal((await post({})).status, 401, 'unsigned');
        assert.equal((await post(r.cw.signatureHeaders(raw, 'not-the-secret'))).status, 403, 'wrong secret');
        assert.equal((await post(r.cw.signatureHeaders(raw, 'cw-secret', Math.floor(Date.now() / 1000) - 3600))).status, 403, 'an old timestamp (replay)');
        assert.equal((await post(r.cw.signatureHeaders(raw, 'cw-secret', undefined), r.cwHook.replace(/token=[^&]+/, 'token=wrong'))).status, 403, 'wrong URL token');
        assert.equal((await post(r.cw.signatureHeaders(raw, 'cw-secret'))).status, 200, 'signed right');
        // The fake signs its own deliveries: the whole flow passes the check.
        await r.gw.deliverInbound({ from: '5511987654321', text: 'oi' });
        await waitFor(() => Promise.resolve(incoming(r.cw)[0]));
        await r.cw.agentReply(r.cw.conversations[0]!.id, { content: 'assinado' });
        await waitFor(() => Promise.resolve(r.gw.sends.find((s) => s.kind === 'text')));
      } finally {
        await r.close();
      }
    });

    it('sessions: create (with or without an id), list, get, update, delete; secrets sealed and never shown', async () => {
      const r = await relay(dialect, 'codechat');
      try {
        const get = await call(r.t.app, 'GET', `/api/v1/sessions/${r.sessionId}`, { token: r.admin.token });
        assert.equal(get.statusCode, 200);
        assert.equal(get.data.description, 'codechat relay');
        assert.equal(get.data.gateway.kind, 'codechat');
        assert.equal(get.data.gateway.base_url, r.gw.url);
        assert.equal(get.data.chatwoot.chatwoot_inbox_id, r.cw.inboxId);
        assert.ok(!get.body.includes(r.gw.apiKey) && !get.body.includes(r.cw.token), 'no secret in the answer');
        const row = await r.t.db.db.selectFrom('chatwoot_mirrors').select('token_enc').where('inbox_id', '=', r.sessionId).executeTakeFirstOrThrow();
        assert.ok(!row.token_enc.includes(r.cw.token), 'the token is sealed at rest');
        const own = '0f6a3c55-8a39-4d5e-9a43-0d6d1bb3f001';
        const body = { session_id: own, chatwoot: { url: r.cw.url, account_id: 1, inbox_id: 9, token: 'tok-2' }, gateway: { kind: 'evolution', base_url: 'http://127.0.0.1:9', instance: 'second', api_key: 'key-2' } };
        const made = await call(r.t.app, 'POST', '/api/v1/sessions', { token: r.admin.token, body });
        assert.equal(made.statusCode, 201, made.body);
        assert.equal(made.data.session_id, own);
        assert.equal((await call(r.t.app, 'POST', '/api/v1/sessions', { token: r.admin.token, body })).data.error.code, 'session.exists');
        const list = await call(r.t.app, 'GET', '/api/v1/sessions', { token: r.admin.token });
        assert.deepEqual(list.data.data.map((s: { session_id: string }) => s.session_id).sort(), [r.sessionId, own].sort());
        const patched = await call(r.t.app, 'PATCH', `/api/v1/sessions/${own}`, { token: r.admin.token, body: { description: 'renamed', chatwoot: { inbox_id: 10 }, gateway: { instance: 'third' } } });
        assert.equal(patched.statusCode, 200, patched.body);
        assert.equal(patched.data.description, 'renamed');
        assert.equal(patched.data.chatwoot.chatwoot_inbox_id, 10);
        assert.equal(patched.data.gateway.instance, 'third');
        assert.equal((await call(r.t.app, 'PATCH', `/api/v1/sessions/${own}`, { token: r.admin.token, body: { gateway: { kind: 'codechat' } } })).statusCode, 400);
        const bad = await call(r.t.app, 'POST', '/api/v1/sessions', { token: r.admin.token, body: { ...body, session_id: undefined, chatwoot: { ...body.chatwoot, url: 'not a url' } } });
        assert.equal(bad.statusCode, 400);
        assert.equal((await call(r.t.app, 'DELETE', `/api/v1/sessions/${own}`, { token: r.admin.token })).statusCode, 204);
        assert.equal((await call(r.t.app, 'GET', `/api/v1/sessions/${own}`, { token: r.admin.token })).data.error.code, 'session.not_found');
        // Chatwoot refusing the mirror (a revoked token): the job gives up at once and the API shows why.
        assert.equal((await call(r.t.app, 'PATCH', `/api/v1/sessions/${r.sessionId}`, { token: r.admin.token, body: { chatwoot: { token: 'revoked' } } })).statusCode, 200);
        await r.gw.deliverInbound({ from: '5511987654321', text: 'oi' });
        const failed = await waitFor(async () => (await call(r.t.app, 'GET', `/api/v1/inboxes/${r.sessionId}/chatwoot/failures`, { token: r.admin.token })).data.data[0]);
        assert.match(failed.last_error, /401/);
        const agent = await makeUser(r.t.app, r.t.services, r.admin.orgId, 'agent');
        assert.equal((await call(r.t.app, 'GET', '/api/v1/sessions', { token: agent.token })).statusCode, 403);
      } finally {
        await r.close();
      }
    });
  });
}

