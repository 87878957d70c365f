/**
 * Self-tests of the fake Chatwoot and the fake Codechat / Evolution gateway, over real HTTP: each
 * endpoint family answers as the product does, webhooks reach a local receiver in the product's
 * envelope (signed, ordered against the API answer as configured), and media round-trips byte for
 * byte. Inbound gateway bodies are checked through Parley's own Baileys parsers.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { parseCodechatWebhook, parseEvolutionWebhook } from '../../src/features/connectors/baileys/parse.ts';
import { sendCodechatMedia, sendEvolutionMedia } from '../../src/features/connectors/outbound/media-senders.ts';
import { sendCodechat, sendEvolution, type SendContext } from '../../src/features/connectors/outbound/senders.ts';
import { probeCodec } from '../../src/platform/ffmpeg.ts';
import { startFakeChatwoot, type FakeChatwoot } from './fake-chatwoot.ts';
import { startFakeGateway, type FakeGateway, type GatewayKind } from './fake-gateway.ts';

// ---------------------------------------------------------------- a local webhook receiver

interface Hit {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  body: any;
}
interface Receiver {
  url: string;
  hits: Hit[];
  /** The status the receiver answers. */
  status: number;
  /** Hold every answer until release() (the request is recorded on arrival). */
  hold(): void;
  release(): void;
  /** The n-th hit (1-based), waiting for it. */
  nth(n: number, ms?: number): Promise<Hit>;
  events(name: string): Hit[];
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  let gate: Promise<void> | null = null;
  let open = (): void => undefined;
  const waiters = new Set<() => void>();
  const rx: Receiver = {
    url: '',
    hits: [],
    status: 200,
    hold() {
      gate = new Promise((r) => (open = r));
    },
    release() {
      open();
      gate = null;
    },
    async nth(n, ms = 5000) {
      const end = Date.now() + ms;
      while (rx.hits.length < n) {
        if (Date.now() > end) throw new Error(`receiver: no hit #${n} after ${ms} ms (have ${rx.hits.length})`);
        await new Promise<void>((r) => {
          waiters.add(r);
          setTimeout(r, 50);
        });
      }
      return rx.hits[n - 1]!;
    },
    events: (name) => rx.hits.filter((h) => h.body?.event === name),
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = null;
      }
      rx.hits.push({ path: req.url ?? '/', headers: req.headers, raw, body });
      for (const w of waiters) w();
      waiters.clear();
      if (gate) await gate;
      res.writeHead(rx.status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  rx.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return rx;
}

async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setTimeout(r, ms));
  return done;
}

const ogg = (): Buffer => execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-c:a', 'libopus', '-f', 'ogg', 'pipe:1']);

// ---------------------------------------------------------------- Chatwoot

describe('fake Chatwoot', () => {
  const SECRET = 'cw-webhook-secret';
  let cw: FakeChatwoot;
  let rx: Receiver;
  let contactId: number;
  let sourceId: string;
  let convId: number;

  const api = async (method: string, path: string, body?: unknown, opts: { token?: string | null; account?: number } = {}) => {
    const headers: Record<string, string> = {};
    if (opts.token !== null) headers.api_access_token = opts.token ?? cw.token;
    let payload: FormData | string | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await fetch(`${cw.url}/api/v1/accounts/${opts.account ?? cw.accountId}${path}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
    const text = await res.text();
    return { status: res.status, contentType: res.headers.get('content-type'), json: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text };
  };
  /** The message_created / message_updated delivery of a message, waiting for it. */
  const delivery = async (event: string, id: number): Promise<Hit> => {
    const end = Date.now() + 5000;
    for (;;) {
      const hit = rx.hits.find((h) => h.body?.event === event && h.body?.id === id);
      if (hit) return hit;
      if (Date.now() > end) throw new Error(`no ${event} for message ${id}`);
      await rx.nth(rx.hits.length + 1, 500).catch(() => undefined);
    }
  };

  before(async () => {
    rx = await startReceiver();
    cw = await startFakeChatwoot({ token: 'cw-token', webhookSecret: SECRET, webhookUrl: `${rx.url}/webhooks/chatwoot/relay-1?token=t0k` });
  });
  after(async () => {
    await cw.close();
    await rx.close();
  });

  it('refuses a missing or wrong token and another account, and answers 503 while down', async () => {
    assert.deepEqual(await api('GET', '/contacts/search?q=x', undefined, { token: null }), { status: 401, contentType: 'application/json; charset=utf-8', json: { error: 'Invalid Access Token' } });
    assert.deepEqual((await api('GET', '/contacts/search?q=x', undefined, { token: 'nope' })).json, { error: 'Invalid Access Token' });
    assert.equal((await api('GET', '/contacts/search?q=x', undefined, { account: 2 })).status, 404);
    const ok = await api('GET', '/contacts/search?q=x');
    assert.deepEqual(ok.json, { meta: { count: 0, current_page: 1 }, payload: [] });
    cw.down = true;
    const down = await api('GET', '/contacts/search?q=x');
    cw.down = false;
    assert.equal(down.status, 503);
    assert.match(down.contentType ?? '', /text\/html/);
    assert.deepEqual(cw.requests.slice(-5).map((r) => r.status), [401, 401, 404, 200, 503]);
    assert.equal(cw.requests.at(-1)?.path, `/api/v1/accounts/1/contacts/search?q=x`);
  });

  it('creates a contact only with an E.164 phone and unique phone / identifier, linked to the inbox', async () => {
    const bad = await api('POST', '/contacts', { inbox_id: cw.inboxId, name: 'Maria', phone_number: '5511987654321' });
    assert.deepEqual(bad, { status: 422, contentType: 'application/json; charset=utf-8', json: { message: 'Phone number should be in e164 format', attributes: ['phone_number'] } });
    const made = await api('POST', '/contacts', { inbox_id: cw.inboxId, name: 'Maria Silva', phone_number: '+5511987654321', identifier: '5511987654321@s.whatsapp.net' });
    assert.equal(made.status, 200);
    const { contact, contact_inbox } = made.json.payload;
    contactId = contact.id;
    sourceId = contact_inbox.source_id;
    assert.match(sourceId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(contact_inbox.inbox.id, cw.inboxId);
    assert.deepEqual(contact.contact_inboxes, [{ source_id: sourceId, inbox: contact_inbox.inbox }]);
    assert.deepEqual(cw.contacts.map((c) => [c.id, c.phone_number, c.identifier, c.contact_inboxes.map((l) => l.source_id)]), [[contactId, '+5511987654321', '5511987654321@s.whatsapp.net', [sourceId]]]);
    const samePhone = await api('POST', '/contacts', { inbox_id: cw.inboxId, name: 'Other', phone_number: '+5511987654321' });
    assert.deepEqual(samePhone.json, { message: 'Phone number has already been taken', attributes: ['phone_number'] });
    const sameId = await api('POST', '/contacts', { inbox_id: cw.inboxId, name: 'Other', phone_number: '+5511900000000', identifier: '5511987654321@s.whatsapp.net' });
    assert.deepEqual(sameId.json, { message: 'Identifier has already been taken', attributes: ['identifier'] });
    assert.equal((await api('POST', '/contacts', { inbox_id: 99, name: 'X', phone_number: '+5511911111111' })).status, 404);
    assert.equal(cw.contacts.length, 1);
  });

  it("searches (ILIKE on name / phone, case-sensitive identifier) and filters (values[0] only, '+' prefixed) as Chatwoot does", async () => {
    const ids = (r: { json: any }) => r.json.payload.map((c: { id: number }) => c.id);
    assert.deepEqual(ids(await api('GET', '/contacts/search?q=MARIA')), [contactId]);
    assert.deepEqual(ids(await api('GET', '/contacts/search?q=98765')), [contactId]);
    assert.deepEqual(ids(await api('GET', '/contacts/search?q=S.WHATSAPP.NET')), []);
    assert.deepEqual(ids(await api('GET', '/contacts/search?q=s.whatsapp.net')), [contactId]);
    assert.deepEqual((await api('GET', '/contacts/search?q=')).json, { error: 'Specify search string with parameter q' });
    const filter = (payload: unknown[]) => api('POST', '/contacts/filter', { payload });
    const phone = (values: string[], op: string | null = null) => ({ attribute_key: 'phone_number', filter_operator: 'equal_to', values, query_operator: op });
    assert.deepEqual(ids(await filter([phone(['5511987654321'])])), [contactId]);
    assert.deepEqual(ids(await filter([phone(['+5511987654321'])])), [], "Chatwoot prefixes '+' itself: '++55…' matches nothing");
    assert.deepEqual(ids(await filter([phone(['5500000000000', '5511987654321'])])), [], 'only values[0] is used');
    const byIdentifier = { attribute_key: 'identifier', filter_operator: 'equal_to', values: ['5511987654321@s.whatsapp.net'], query_operator: null };
    assert.deepEqual(ids(await filter([phone(['5500000000000'], 'OR'), byIdentifier])), [contactId]);
    assert.deepEqual(ids(await filter([phone(['5500000000000'], 'AND'), byIdentifier])), []);
    const dangling = await filter([phone(['5511987654321'], 'OR')]);
    assert.equal(dangling.status, 500, 'a query_operator on the last condition is a SQL syntax error');
    assert.equal((await filter([{ attribute_key: 'nope', filter_operator: 'equal_to', values: ['x'], query_operator: null }])).status, 422);
  });

  it('links a contact to the inbox again: a known source_id is returned as is, none creates a new link', async () => {
    const same = await api('POST', `/contacts/${contactId}/contact_inboxes`, { inbox_id: cw.inboxId, source_id: sourceId });
    assert.equal(same.status, 200);
    assert.equal(same.json.source_id, sourceId);
    assert.equal(same.json.inbox.id, cw.inboxId);
    const fresh = await api('POST', `/contacts/${contactId}/contact_inboxes`, { inbox_id: cw.inboxId });
    assert.notEqual(fresh.json.source_id, sourceId);
    assert.deepEqual(cw.contacts[0]?.contact_inboxes.map((l) => l.source_id), [sourceId, fresh.json.source_id]);
    assert.equal((await api('POST', '/contacts/424242/contact_inboxes', { inbox_id: cw.inboxId })).status, 404);
  });

  it('opens a conversation by source_id, lists it, toggles its status, and delivers the conversation events', async () => {
    assert.deepEqual(await api('POST', '/conversations', { source_id: 'not-a-source', inbox_id: cw.inboxId }), { status: 404, contentType: 'application/json; charset=utf-8', json: { error: 'Resource could not be found' } });
    const conv = await api('POST', '/conversations', { source_id: sourceId, inbox_id: cw.inboxId });
    assert.equal(conv.status, 200);
    convId = conv.json.id;
    assert.deepEqual([conv.json.inbox_id, conv.json.status, conv.json.meta.sender.id, conv.json.contact_inbox.source_id, conv.json.account_id], [cw.inboxId, 'open', contactId, sourceId, cw.accountId]);
    const listed = await api('GET', `/contacts/${contactId}/conversations`);
    assert.deepEqual(listed.json.payload.map((c: { id: number }) => c.id), [convId]);
    assert.equal((await api('GET', `/conversations/${convId}`)).json.id, convId);
    const toggled = await api('POST', `/conversations/${convId}/toggle_status`, { status: 'resolved' });
    assert.deepEqual(toggled.json, { meta: {}, payload: { success: true, current_status: 'resolved', conversation_id: convId } });
    assert.equal(cw.conversations[0]?.status, 'resolved');
    await cw.idle();
    assert.deepEqual(rx.events('conversation_created').map((h) => h.body.id), [convId]);
    const changed = rx.events('conversation_status_changed').at(-1)?.body;
    assert.equal(changed?.status, 'resolved');
    assert.deepEqual(changed?.changed_attributes, [{ status: { previous_value: 'open', current_value: 'resolved' } }]);
  });

  it('posts a JSON message, reopens the resolved conversation, and delivers message_created signed — for API messages too', async () => {
    const r = await api('POST', `/conversations/${convId}/messages`, { content: 'Olá, preciso de ajuda', message_type: 'incoming', source_id: 'WAID:3A0000000000000001' });
    assert.equal(r.status, 200);
    assert.deepEqual([r.json.message_type, r.json.content, r.json.source_id, r.json.private, r.json.status, r.json.sender.type, r.json.sender.id, r.json.conversation_id], [0, 'Olá, preciso de ajuda', 'WAID:3A0000000000000001', false, 'sent', 'contact', contactId, convId]);
    assert.equal(r.json.attachments, undefined);
    assert.equal(cw.conversations[0]?.status, 'open', 'an incoming message reopens a resolved conversation');
    const hit = await delivery('message_created', r.json.id);
    // The signature: sha256=HMAC(secret, "<timestamp>.<raw body>"), with a UUID delivery id.
    const ts = String(hit.headers['x-chatwoot-timestamp']);
    assert.ok(Math.abs(Number(ts) - Date.now() / 1000) < 30);
    assert.equal(hit.headers['x-chatwoot-signature'], `sha256=${createHmac('sha256', SECRET).update(`${ts}.${hit.raw}`).digest('hex')}`);
    assert.match(String(hit.headers['x-chatwoot-delivery']), /^[0-9a-f-]{36}$/);
    assert.equal(hit.headers['content-type'], 'application/json');
    assert.equal(hit.path, '/webhooks/chatwoot/relay-1?token=t0k');
    const b = hit.body;
    assert.deepEqual([b.event, b.id, b.message_type, b.content, b.source_id, b.private, b.content_type, b.sender.type, b.inbox.id, b.account.id], ['message_created', r.json.id, 'incoming', 'Olá, preciso de ajuda', 'WAID:3A0000000000000001', false, 'text', 'contact', cw.inboxId, cw.accountId]);
    assert.match(b.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    assert.deepEqual([b.conversation.id, b.conversation.channel, b.conversation.status, b.conversation.contact_inbox.source_id, b.conversation.meta.sender.identifier, b.conversation.meta.sender.phone_number], [convId, 'Channel::Api', 'open', sourceId, '5511987654321@s.whatsapp.net', '+5511987654321']);
    assert.deepEqual([b.conversation.messages.length, b.conversation.messages[0].id, b.conversation.messages[0].message_type, b.conversation.messages[0].source_id], [1, r.json.id, 0, 'WAID:3A0000000000000001']);
    // The reopening was delivered first, then the message.
    const order = rx.hits.map((h) => h.body?.event);
    assert.ok(order.lastIndexOf('conversation_status_changed') < order.lastIndexOf('message_created'));
    // An outgoing message created through the API is delivered too (what a relay's loop guard must skip).
    const out = await api('POST', `/conversations/${convId}/messages`, { content: 'Espelho', message_type: 'outgoing', source_id: 'WAID:3EB0000000000000000002', content_attributes: { in_reply_to: r.json.id } });
    assert.equal(out.json.message_type, 1);
    assert.deepEqual(out.json.content_attributes, { in_reply_to: r.json.id, in_reply_to_external_id: 'WAID:3A0000000000000001' });
    const outHit = await delivery('message_created', out.json.id);
    assert.deepEqual([outHit.body.message_type, outHit.body.sender.type, outHit.body.source_id], ['outgoing', 'user', 'WAID:3EB0000000000000000002']);
    assert.deepEqual(await api('POST', `/conversations/${convId}/messages`, { content: '', message_type: 'incoming' }), { status: 422, contentType: 'application/json; charset=utf-8', json: { error: "Validation failed: Content can't be blank" } });
    const listed = await api('GET', `/conversations/${convId}/messages`);
    assert.deepEqual(listed.json.payload.map((m: { id: number }) => m.id), [r.json.id, out.json.id]);
  });

  it('parses multipart messages with attachments[] and serves each at its data_url (302 to the file, no auth)', async () => {
    const png = randomBytes(300);
    const voice = randomBytes(500);
    const form = new FormData();
    form.set('content', 'Foto e áudio');
    form.set('message_type', 'incoming');
    form.set('private', 'false');
    form.set('source_id', 'WAID:3A0000000000000003');
    form.set('content_attributes', JSON.stringify({ in_reply_to_external_id: 'WAID:3EB0000000000000000002' }));
    form.append('attachments[]', new Blob([png], { type: 'image/png' }), 'foto.png');
    form.append('attachments[]', new Blob([voice], { type: 'audio/ogg' }), 'voz.ogg');
    const r = await api('POST', `/conversations/${convId}/messages`, form);
    assert.equal(r.status, 200);
    assert.match(cw.requests.at(-1)?.contentType ?? '', /^multipart\/form-data; boundary=/);
    assert.equal(r.json.private, false);
    assert.equal(r.json.content_attributes.in_reply_to, cw.messages().find((m) => m.source_id === 'WAID:3EB0000000000000000002')?.id);
    assert.deepEqual(r.json.attachments.map((a: any) => [a.file_type, a.extension, a.file_size]), [['image', 'png', 300], ['audio', 'ogg', 500]]);
    const [img, aud] = r.json.attachments as Array<{ data_url: string }>;
    const direct = await fetch(img!.data_url, { redirect: 'manual' });
    assert.equal(direct.status, 302);
    assert.match(direct.headers.get('location') ?? '', /\/rails\/active_storage\/disk\//);
    const got = await fetch(aud!.data_url);
    assert.equal(got.headers.get('content-type'), 'audio/ogg');
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(voice));
    assert.ok(Buffer.from(await (await fetch(img!.data_url)).arrayBuffer()).equals(png));
    const hit = await delivery('message_created', r.json.id);
    assert.deepEqual(hit.body.attachments.map((a: any) => [a.file_type, a.data_url]), [['image', img!.data_url], ['audio', aud!.data_url]]);
    const tooMany = new FormData();
    tooMany.set('content', 'x');
    for (let i = 0; i < 16; i++) tooMany.append('attachments[]', new Blob([Buffer.from([i])], { type: 'text/plain' }), `${i}.txt`);
    assert.deepEqual((await api('POST', `/conversations/${convId}/messages`, tooMany)).json, { error: 'Validation failed: Attachments exceeded maximum allowed' });
  });

  it('PATCHes a message status (read → delivered ignored, external_error only when failed) and delivers message_updated', async () => {
    const m = cw.messages().find((x) => x.source_id === 'WAID:3EB0000000000000000002')!;
    const path = `/conversations/${convId}/messages/${m.id}`;
    assert.equal((await api('PATCH', path, { status: 'read' })).json.status, 'read');
    assert.equal((await api('PATCH', path, { status: 'delivered' })).json.status, 'read');
    const failed = await api('PATCH', path, { status: 'failed', external_error: 'WhatsApp refused' });
    assert.deepEqual([failed.json.status, failed.json.content_attributes.external_error, m.external_error], ['failed', 'WhatsApp refused', 'WhatsApp refused']);
    assert.equal((await api('PATCH', `/conversations/${convId}/messages/1`, { status: 'read' })).status, 404);
    await cw.idle();
    const updates = rx.events('message_updated').filter((h) => h.body.id === m.id);
    assert.deepEqual(updates.map((h) => [h.body.conversation.messages.length > 0, h.body.content_attributes.external_error ?? null]), [[true, null], [true, 'WhatsApp refused']]);
  });

  it('DELETE replaces the content, purges the attachments, and delivers message_updated with deleted', async () => {
    const m = cw.messages().find((x) => x.attachments.length === 2)!;
    const url = m.attachments[0]!.data_url;
    const r = await api('DELETE', `/conversations/${convId}/messages/${m.id}`);
    assert.deepEqual([r.status, r.json.content, r.json.content_attributes, r.json.attachments], [200, 'This message was deleted', { deleted: true }, undefined]);
    assert.equal(m.deleted, true);
    assert.equal((await fetch(url)).status, 404);
    const hit = await delivery('message_updated', m.id);
    assert.deepEqual(hit.body.content_attributes, { deleted: true });
  });

  it('agentReply: an outgoing message with its attachment and reply, delivered; a private note is not conversation.messages[0]', async () => {
    const customer = cw.messages().find((x) => x.source_id === 'WAID:3A0000000000000001')!;
    const pdf = randomBytes(1200);
    const m = await cw.agentReply(convId, { content: 'Segue o boleto', inReplyTo: customer.id, agentName: 'Ana', attachments: [{ bytes: pdf, contentType: 'application/pdf', fileName: 'boleto.pdf', fileType: 'file' }] });
    assert.equal(cw.webhookDeliveries.at(-1)?.event, 'message_created', 'resolved after its delivery');
    const hit = await delivery('message_created', m.id);
    assert.deepEqual([hit.body.message_type, hit.body.private, hit.body.sender.name, hit.body.sender.type, hit.body.source_id], ['outgoing', false, 'Ana', 'user', null]);
    assert.deepEqual(hit.body.content_attributes, { in_reply_to: customer.id, in_reply_to_external_id: 'WAID:3A0000000000000001' });
    assert.deepEqual(hit.body.conversation.messages[0].attachments.map((a: any) => a.file_type), ['file']);
    const file = await fetch(hit.body.attachments[0].data_url);
    assert.equal(file.headers.get('content-type'), 'application/pdf');
    assert.ok(Buffer.from(await file.arrayBuffer()).equals(pdf));
    const note = await cw.agentReply(convId, { content: 'nota interna', private: true });
    const noteHit = await delivery('message_created', note.id);
    assert.equal(noteHit.body.private, true);
    assert.equal(noteHit.body.conversation.messages[0].id, m.id, 'messages.chat excludes private notes');
    await cw.agentDelete(m.id);
    const deleted = await delivery('message_updated', m.id);
    assert.deepEqual([deleted.body.content, deleted.body.content_attributes], ['This message was deleted', { deleted: true }]);
  });

  it('a failed delivery marks the message failed with the receiver status, then delivers that as message_updated', async () => {
    rx.status = 500;
    try {
      const m = await cw.agentReply(convId, { content: 'vai falhar' });
      await cw.idle();
      assert.deepEqual([m.status, m.external_error, m.content_attributes.external_error], ['failed', '500 Internal Server Error', '500 Internal Server Error']);
      assert.deepEqual(cw.webhookDeliveries.slice(-2), [{ event: 'message_created', status: 500 }, { event: 'message_updated', status: 500 }]);
    } finally {
      rx.status = 200;
    }
  });

  it('webhookPayload and signatureHeaders give what a delivery carries', async () => {
    const m = cw.messages().find((x) => x.source_id === 'WAID:3A0000000000000001')!;
    const built = cw.webhookPayload('message_created', m);
    const sent = (await delivery('message_created', m.id)).body;
    for (const k of ['id', 'content', 'message_type', 'source_id', 'private', 'created_at', 'content_attributes', 'sender', 'inbox', 'account', 'event']) assert.deepEqual(built[k], sent[k], k);
    const raw = JSON.stringify(built);
    const h = cw.signatureHeaders(raw, 's3cret', 1_700_000_000, 'delivery-1');
    assert.deepEqual(h, { 'X-Chatwoot-Signature': `sha256=${createHmac('sha256', 's3cret').update(`1700000000.${raw}`).digest('hex')}`, 'X-Chatwoot-Timestamp': '1700000000', 'X-Chatwoot-Delivery': 'delivery-1' });
  });

  it("webhookTiming 'before' holds the API answer until the delivery ended; 'after' answers first", async () => {
    const post = () => api('POST', `/conversations/${convId}/messages`, { content: 'timing', message_type: 'incoming' });
    cw.webhookTiming = 'before';
    rx.hold();
    try {
      const n = rx.hits.length;
      const p = post();
      await rx.nth(n + 1);
      assert.equal(await settledWithin(p, 100), false, 'the answer waits for the delivery');
      rx.release();
      assert.equal((await p).status, 200);
      cw.webhookTiming = 'after';
      rx.hold();
      const q = await post();
      assert.equal(q.status, 200, 'answered while the receiver still holds the delivery');
      await rx.nth(n + 2);
      rx.release();
      await cw.idle();
      assert.equal(rx.hits.at(-1)?.body.id, q.json.id);
    } finally {
      rx.release();
      cw.webhookTiming = 'after';
    }
  });
});

// ---------------------------------------------------------------- Codechat / Evolution

for (const kind of ['codechat', 'evolution'] as const satisfies readonly GatewayKind[]) {
  describe(`fake ${kind} gateway`, () => {
    const CUSTOMER = '5511987654321';
    const JID = `${CUSTOMER}@s.whatsapp.net`;
    let gw: FakeGateway;
    let rx: Receiver;
    const parse = (body: unknown) => (kind === 'codechat' ? parseCodechatWebhook(body) : parseEvolutionWebhook(body));
    const idOf = (json: any): string => (kind === 'codechat' ? json.keyId : json.key.id);
    const call = async (method: string, path: string, body?: unknown, apikey: string | null = gw.apiKey) => {
      const res = await fetch(`${gw.url}${path}`, { method, headers: { ...(apikey !== null ? { apikey } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      const type = res.headers.get('content-type') ?? '';
      const buf = Buffer.from(await res.arrayBuffer());
      return { status: res.status, type, buf, json: type.includes('json') ? JSON.parse(buf.toString('utf8')) : undefined };
    };
    const text = (t: string, extra: Record<string, unknown> = {}) => (kind === 'codechat' ? { number: CUSTOMER, options: { delay: 0, ...extra }, textMessage: { text: t } } : { number: CUSTOMER, text: t, ...extra });
    const ctx = (): SendContext => ({ base: '', credentials: { base_url: gw.url, instance: gw.instance, api_key: gw.apiKey }, timeoutMs: 10_000, signal: new AbortController().signal });

    before(async () => {
      rx = await startReceiver();
      gw = await startFakeGateway({ kind, apiKey: 'gw-global-key' });
      gw.webhookUrl = `${rx.url}/webhooks/${kind}/inbox-1?token=abc`;
    });
    after(async () => {
      await gw.close();
      await rx.close();
    });
    afterEach(async () => {
      rx.release();
      await gw.idle();
    });

    it('refuses a wrong apikey and an unknown instance in its product shape, and answers 503 while down', async () => {
      const path = `/message/sendText/${gw.instance}`;
      const noKey = await call('POST', path, text('x'), null);
      assert.equal(noKey.status, 401);
      assert.deepEqual(noKey.json, kind === 'codechat' ? { status: 401, error: 'Unauthorized' } : { status: 401, error: 'Unauthorized', response: { message: 'Unauthorized' } });
      assert.equal((await call('POST', path, text('x'), 'wrong')).status, 401);
      const other = await call('POST', '/message/sendText/other-instance', text('x'));
      assert.equal(other.status, 404);
      const msg = ['The "other-instance" instance does not exist'];
      assert.deepEqual(other.json, kind === 'codechat' ? { status: 404, error: 'Not Found', message: msg } : { status: 404, error: 'Not Found', response: { message: msg } });
      if (kind === 'evolution') assert.equal((await call('POST', path, text('with the instance token'), gw.instanceToken)).status, 201);
      gw.down = true;
      const down = await call('POST', path, text('x'));
      gw.down = false;
      assert.equal(down.status, 503);
      assert.match(down.type, /text\/html/);
      assert.equal(gw.sends.length, kind === 'evolution' ? 1 : 0);
      gw.sends.length = 0;
    });

    it('sendText answers the new message, then posts its fromMe echo (echo "after"): the parser reads it as an echo of the same id', async () => {
      rx.hold();
      const n = rx.hits.length;
      const delivered = gw.webhookDeliveries.length;
      const r = await call('POST', `/message/sendText/${gw.instance}`, text('Bom dia!'));
      assert.equal(r.status, 201);
      const id = idOf(r.json);
      if (kind === 'codechat') {
        assert.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/, 'Codechat v1 names its sends with ULIDs');
        assert.deepEqual([r.json.keyFromMe, r.json.keyRemoteJid, r.json.messageType, r.json.content, typeof r.json.id, r.json.key], [true, JID, 'extendedTextMessage', { text: 'Bom dia!' }, 'number', undefined]);
      } else {
        assert.match(id, /^3EB0[0-9A-F]{18}$/);
        assert.deepEqual([r.json.key, r.json.status, r.json.message.conversation, r.json.messageType], [{ remoteJid: JID, fromMe: true, id }, 'PENDING', 'Bom dia!', 'conversation']);
      }
      const echo = await rx.nth(n + 1);
      assert.equal(gw.webhookDeliveries.length, delivered, 'answered while the receiver still holds the echo');
      rx.release();
      await gw.idle();
      assert.equal(echo.path, `/webhooks/${kind}/inbox-1?token=abc`);
      if (kind === 'codechat') assert.equal(echo.headers['resource-owner'], gw.ownerJid);
      else assert.deepEqual([echo.body.instance, echo.body.sender, echo.body.apikey], [gw.instance, gw.ownerJid, gw.instanceToken]);
      const parsed = parse(echo.body).messages;
      assert.deepEqual(parsed.map((m) => [m.externalId, m.isEcho, m.kind, m.text, m.chatId]), [[id, true, 'text', 'Bom dia!', JID]]);
      assert.deepEqual(gw.sends.map((s) => [s.kind, s.keyId, s.to, s.jid, s.route]), [['text', id, CUSTOMER, JID, 'POST /message/sendText']]);
    });

    it('echo "before": the answer of the send waits until its echo was delivered', async () => {
      gw.echo = 'before';
      try {
        rx.hold();
        const n = rx.hits.length;
        const p = call('POST', `/message/sendText/${gw.instance}`, text('antes'));
        const echo = await rx.nth(n + 1);
        assert.equal(await settledWithin(p, 100), false, 'no answer while the echo is held');
        rx.release();
        const r = await p;
        assert.equal(parse(echo.body).messages[0]?.externalId, idOf(r.json));
      } finally {
        gw.echo = 'after';
      }
    });

    it("Parley's senders read the message id from the answers (text and voice note)", async () => {
      const sent = await (kind === 'codechat' ? sendCodechat : sendEvolution)(ctx(), { to: JID, text: 'via Parley' });
      assert.ok(sent.ok);
      assert.equal(sent.externalId, gw.sends.at(-1)?.keyId);
      const voice = ogg();
      const media = await (kind === 'codechat' ? sendCodechatMedia : sendEvolutionMedia)(ctx(), { to: JID, kind: 'voice', bytes: voice, contentType: 'audio/ogg', filename: 'voice.ogg' });
      assert.ok(media.ok);
      const s = gw.sends.at(-1)!;
      assert.deepEqual([s.kind, s.keyId, s.mimetype], ['audio', media.externalId, kind === 'codechat' ? 'audio/aac' : 'audio/ogg; codecs=opus']);
      assert.ok(s.bytes?.equals(voice));
      assert.equal((await probeCodec(s.bytes!)).codec, 'opus');
    });

    it('sends media, locations, contacts and reactions, marks read and deletes, each recorded with its kind', async () => {
      const start = gw.sends.length;
      const jpg = randomBytes(2048);
      const base = `/message/%s/${gw.instance}`;
      const at = (action: string) => base.replace('%s', action);
      const media = await call('POST', at('sendMedia'), kind === 'codechat'
        ? { number: CUSTOMER, options: {}, mediaMessage: { mediatype: 'image', media: jpg.toString('base64'), fileName: 'foto.jpg', caption: 'legenda' } }
        : { number: CUSTOMER, mediatype: 'image', mimetype: 'image/jpeg', fileName: 'foto.jpg', caption: 'legenda', media: jpg.toString('base64') });
      assert.equal(media.status, 201);
      const imageNode = kind === 'codechat' ? media.json.content : media.json.message.imageMessage;
      assert.deepEqual([imageNode.caption, imageNode.mimetype, imageNode.fileLength], ['legenda', 'image/jpeg', '2048']);
      assert.ok(gw.sends.at(-1)?.bytes?.equals(jpg));
      const loc = await call('POST', at('sendLocation'), kind === 'codechat'
        ? { number: CUSTOMER, locationMessage: { latitude: -8.05, longitude: -34.9, name: 'Loja', address: 'Rua A' } }
        : { number: CUSTOMER, latitude: -8.05, longitude: -34.9, name: 'Loja', address: 'Rua A' });
      assert.equal(loc.status, 201);
      const card = await call('POST', at('sendContact'), kind === 'codechat'
        ? { number: CUSTOMER, contactMessage: [{ fullName: 'Suporte', wuid: '5511955554444', phoneNumber: '+55 11 95555-4444' }] }
        : { number: CUSTOMER, contact: [{ fullName: 'Suporte', wuid: '5511955554444', phoneNumber: '+55 11 95555-4444' }] });
      assert.equal(card.status, 201);
      const target = idOf(media.json);
      const key = { remoteJid: JID, fromMe: true, id: target };
      const react = await call('POST', at('sendReaction'), kind === 'codechat' ? { reactionMessage: { key, reaction: '👍' } } : { key, reaction: '👍' });
      assert.equal(react.status, 201);
      const read = await call(kind === 'codechat' ? 'PUT' : 'POST', `/chat/markMessageAsRead/${gw.instance}`, { readMessages: [{ remoteJid: JID, fromMe: false, id: '3A00000000000000READ' }] });
      assert.deepEqual([read.status, read.json], [kind === 'codechat' ? 200 : 201, { message: 'Read messages', read: 'success' }]);
      assert.equal((await call(kind === 'codechat' ? 'POST' : 'PUT', `/chat/markMessageAsRead/${gw.instance}`, { readMessages: [] })).status, 404, 'the other method is not a route');
      const del = kind === 'codechat'
        ? await call('DELETE', `/chat/deleteMessageForEveryone/${gw.instance}?id=${gw.rowIdOf(target)}`)
        : await call('DELETE', `/chat/deleteMessageForEveryone/${gw.instance}`, { id: target, remoteJid: JID, fromMe: true });
      assert.equal(del.status, 201);
      if (kind === 'codechat') assert.equal(del.json.message.keyId, target);
      else assert.deepEqual(del.json.message.protocolMessage, { key: { id: target, remoteJid: JID, fromMe: true }, type: 'REVOKE' });
      assert.deepEqual(gw.sends.slice(start).map((s) => [s.kind, s.kind === 'read' || s.kind === 'delete' ? s.keyId : '']), [['media', ''], ['location', ''], ['contact', ''], ['reaction', ''], ['read', '3A00000000000000READ'], ['delete', target]]);
      await gw.idle();
      const echoes = rx.events('messages.upsert').flatMap((h) => parse(h.body).messages).filter((m) => m.isEcho);
      const kinds = new Map(echoes.map((m) => [m.externalId, m]));
      assert.equal(kinds.get(target)?.kind, 'image');
      assert.equal(kinds.get(idOf(loc.json))?.location?.lat, -8.05);
      assert.equal(kinds.get(idOf(card.json))?.contacts?.[0]?.name, 'Suporte');
      assert.deepEqual(kinds.get(idOf(react.json))?.reaction, { targetExternalId: target, emoji: '👍' });
    });

    it('answers the media of an inbound message by id with exactly its bytes', async () => {
      const jpg = randomBytes(4096);
      const { status, id } = await gw.deliverInbound({ from: CUSTOMER, pushName: 'Maria', image: jpg, caption: 'olha', media: 'by_id' });
      assert.equal(status, 200);
      const inbound = parse(rx.hits.at(-1)!.body).messages[0]!;
      assert.deepEqual([inbound.externalId, inbound.kind, inbound.text, inbound.isEcho, inbound.media?.source], [id, 'image', 'olha', false, { kind: 'platform_id', value: id }]);
      if (kind === 'codechat') {
        const data = rx.hits.at(-1)!.body.data;
        const raw = await call('POST', `/chat/mediaData/${gw.instance}?binary=true`, data);
        assert.deepEqual([raw.status, raw.type], [200, 'image/jpeg']);
        assert.ok(raw.buf.equals(jpg));
        // Without binary=true: multipart/form-data; asked here by the row id alone.
        const multi = await call('POST', `/chat/mediaData/${gw.instance}`, { id: data.id });
        assert.match(multi.type, /^multipart\/form-data; boundary=/);
        const form = await new Response(multi.buf, { headers: { 'content-type': multi.type } }).formData();
        assert.deepEqual([form.get('mediaType'), form.get('mimetype'), form.get('fileName'), form.get('caption')], ['imageMessage', 'image/jpeg', `${id}.jpeg`, 'olha']);
        const file = form.get('file') as Blob;
        assert.ok(Buffer.from(await file.arrayBuffer()).equals(jpg));
        assert.deepEqual((await call('POST', `/chat/mediaData/${gw.instance}`, { keyId: 'NOPE' })).json, { status: 400, error: 'Bad Request', message: ['The message is not of the media type'] });
      } else {
        const r = await call('POST', `/chat/getBase64FromMediaMessage/${gw.instance}`, { message: { key: { id } } });
        assert.deepEqual([r.status, r.json.mediaType, r.json.mimetype, r.json.caption, r.json.size.fileLength], [201, 'imageMessage', 'image/jpeg', 'olha', '4096']);
        assert.ok(Buffer.from(r.json.base64, 'base64').equals(jpg));
        assert.deepEqual((await call('POST', `/chat/getBase64FromMediaMessage/${gw.instance}`, { message: { key: { id: 'NOPE' } } })).json, { status: 400, error: 'Bad Request', response: { message: ['Message not found'] } });
        const voice = ogg();
        const v = await gw.deliverInbound({ from: CUSTOMER, audio: voice });
        const mp4 = await call('POST', `/chat/getBase64FromMediaMessage/${gw.instance}`, { message: { key: { id: v.id } }, convertToMp4: true });
        assert.equal(mp4.json.mimetype, 'audio/mp4');
        assert.equal((await probeCodec(Buffer.from(mp4.json.base64, 'base64'))).codec, 'aac');
      }
    });

    it('carries media inline or at a public URL when asked, as each product does', async () => {
      const pdf = randomBytes(1500);
      const body = gw.inboundBody({ from: CUSTOMER, document: pdf, mimetype: 'application/pdf', fileName: 'pedido.pdf', caption: 'meu pedido', media: 'url' });
      const doc = parse(body).messages[0]!;
      assert.deepEqual([doc.kind, doc.text, doc.media?.fileName, doc.media?.mime, doc.media?.source.kind], ['document', 'meu pedido', 'pedido.pdf', 'application/pdf', 'url']);
      const where = doc.media!.source.value;
      if (kind === 'codechat') assert.match(where, /^\/chat\/public\/document\/download\?q=/, 'relative to the server');
      const got = await fetch(kind === 'codechat' ? `${gw.url}${where}` : where);
      assert.equal(got.status, 200, 'no apikey needed');
      assert.ok(Buffer.from(await got.arrayBuffer()).equals(pdf));
      if (kind === 'evolution') {
        const voice = randomBytes(900);
        const inline = parse(gw.inboundBody({ from: CUSTOMER, audio: voice, media: 'base64' })).messages[0]!;
        assert.deepEqual([inline.kind, inline.media?.voice, inline.media?.source], ['voice', true, { kind: 'inline_base64', value: voice.toString('base64') }]);
      } else {
        assert.throws(() => gw.inboundBody({ from: CUSTOMER, audio: randomBytes(10), media: 'base64' }), /no inline base64/);
      }
    });

    it('builds inbound bodies the Baileys parsers read: reply, voice, location, contact, reaction, @lid, fromMe', async () => {
      const first = gw.inboundBody({ from: CUSTOMER, id: '3A11111111111111AAAA', text: 'primeira' });
      assert.equal(parse(first).messages[0]?.text, 'primeira');
      const reply = parse(gw.inboundBody({ from: CUSTOMER, text: 'respondendo', replyTo: '3A11111111111111AAAA' })).messages[0]!;
      assert.deepEqual([reply.kind, reply.text, reply.replyToExternalId], ['text', 'respondendo', '3A11111111111111AAAA']);
      const voice = parse(gw.inboundBody({ from: CUSTOMER, audio: randomBytes(800), ptt: true })).messages[0]!;
      assert.deepEqual([voice.kind, voice.media?.voice, voice.media?.mime], ['voice', true, 'audio/ogg; codecs=opus']);
      const place = parse(gw.inboundBody({ from: CUSTOMER, location: { latitude: -23.5, longitude: -46.6, name: 'Paulista' } })).messages[0]!;
      assert.deepEqual(place.location, { lat: -23.5, lng: -46.6, name: 'Paulista' });
      const vcard = 'BEGIN:VCARD\nVERSION:3.0\nFN:João\nitem1.TEL;waid=5511944443333:+55 11 94444-3333\nEND:VCARD';
      const card = parse(gw.inboundBody({ from: CUSTOMER, contact: { displayName: 'João', vcard } })).messages[0]!;
      assert.equal(card.contacts?.[0]?.phones[0]?.waId, '5511944443333');
      const react = parse(gw.inboundBody({ from: CUSTOMER, reaction: { targetId: '3A11111111111111AAAA', emoji: '❤️' } })).messages[0]!;
      assert.deepEqual(react.reaction, { targetExternalId: '3A11111111111111AAAA', emoji: '❤️' });
      const lid = parse(gw.inboundBody({ from: CUSTOMER, lid: '112233445566778', text: 'via lid' })).messages[0]!;
      assert.equal(lid.sender.phone, CUSTOMER);
      assert.equal(lid.sender.externalId, kind === 'codechat' ? JID : '112233445566778@lid');
      const mine = parse(gw.inboundBody({ from: CUSTOMER, fromMe: true, text: 'do celular' })).messages[0]!;
      assert.deepEqual([mine.isEcho, mine.sender.externalId], [true, gw.ownerJid]);
    });

    it('posts messages.update statuses the parsers read as statuses of our message', async () => {
      const r = await call('POST', `/message/sendText/${gw.instance}`, text('status?'));
      const id = idOf(r.json);
      assert.equal(await gw.deliverStatus(id, CUSTOMER, 'READ'), 200);
      const st = parse(rx.hits.at(-1)!.body).statuses;
      assert.deepEqual(st.map((s) => [s.externalId, s.status, s.recipientId]), [[id, 'read', JID]]);
    });

    it('quotes as the product does: Codechat by row id (a WhatsApp id is refused), Evolution by known WhatsApp id', async () => {
      const inbound = await gw.deliverInbound({ from: CUSTOMER, text: 'pergunta' });
      if (kind === 'codechat') {
        const byWaId = await call('POST', `/message/sendText/${gw.instance}`, text('resposta', { quotedMessageId: inbound.id }));
        assert.deepEqual(byWaId.json, { status: 400, error: 'Bad Request', message: [{ property: 'options.quotedMessageId', message: 'Enter the message id' }] });
        assert.deepEqual((await call('POST', `/message/sendText/${gw.instance}`, text('resposta', { quotedMessageId: 999_999 }))).json.message, ['Quoted message not found']);
        const ok = await call('POST', `/message/sendText/${gw.instance}`, text('resposta', { quotedMessageId: gw.rowIdOf(inbound.id) }));
        assert.equal(ok.status, 201);
        assert.equal(ok.json.content.contextInfo.stanzaId, inbound.id);
      } else {
        const ok = await call('POST', `/message/sendText/${gw.instance}`, text('resposta', { quoted: { key: { id: inbound.id } } }));
        assert.equal(ok.json.contextInfo.stanzaId, inbound.id);
        const unknown = await call('POST', `/message/sendText/${gw.instance}`, text('sem citação', { quoted: { key: { id: 'UNKNOWN' } } }));
        assert.equal(unknown.status, 201);
        assert.equal(unknown.json.contextInfo, undefined, 'Evolution drops a quote it cannot find');
        assert.equal(gw.sends.at(-1)?.replyTo, undefined);
      }
      assert.equal(gw.sends.filter((s) => s.replyTo === inbound.id).length, 1);
    });

    it('refuses bad sends in the product shape and resolves numbers with its createJid', async () => {
      const missing = await call('POST', `/message/sendText/${gw.instance}`, kind === 'codechat' ? { textMessage: { text: 'x' } } : { text: 'x' });
      assert.equal(missing.status, 400);
      assert.deepEqual(missing.json, kind === 'codechat' ? { status: 400, error: 'Bad Request', message: [{ property: 'instance', message: 'instance requires property "number"' }] } : { status: 400, error: 'Bad Request', response: { message: ['instance requires property "number"'] } });
      gw.unregistered.add('5511900001111');
      const nobody = await call('POST', `/message/sendText/${gw.instance}`, { ...text('x'), number: '5511900001111' });
      assert.equal(nobody.status, 400);
      assert.equal((kind === 'codechat' ? nobody.json.message : nobody.json.response.message)[0].exists, false);
      // Recife (DDD 81), subscriber starting with 8: both drop the ninth digit.
      const recife = await call('POST', `/message/sendText/${gw.instance}`, { ...text('x'), number: '5581987885943' });
      assert.equal(kind === 'codechat' ? recife.json.keyRemoteJid : recife.json.key.remoteJid, '558187885943@s.whatsapp.net');
      const numbers = await call('POST', `/chat/whatsappNumbers/${gw.instance}`, { numbers: ['5215512345678'] });
      assert.deepEqual(numbers.json[0].jid, kind === 'codechat' ? 'undefined@s.whatsapp.net' : '525512345678@s.whatsapp.net');
      assert.equal(numbers.json[0].exists, kind === 'evolution');
    });

    if (kind === 'evolution') {
      it('webhookByEvents appends the event name to the URL by string concatenation (after the query string too)', async () => {
        gw.webhookByEvents = true;
        try {
          await gw.deliverInbound({ from: CUSTOMER, text: 'por evento' });
          assert.equal(rx.hits.at(-1)?.path, '/webhooks/evolution/inbox-1?token=abc/messages-upsert');
        } finally {
          gw.webhookByEvents = false;
        }
      });
    }
  });
}
