import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { SendContext } from './senders.ts';
import { sendSignal } from './signals.ts';

const KEY = 'gateway-api-key';

interface Call {
  method: string;
  path: string;
  apikey: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

/**
 * A Baileys gateway on loopback (CONNECTORS.md §6.4) under the base path /api: records every
 * request and answers what `next` says (200 with a key by default). A wrong apikey is a 401.
 */
class FakeGateway {
  readonly calls: Call[] = [];
  next: { status: number; body: unknown } | null = null;
  origin = '';
  #server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      this.calls.push({ method: req.method ?? '', path: req.url ?? '', apikey: req.headers.apikey as string | undefined, contentType: req.headers['content-type'], body: raw ? (JSON.parse(raw) as unknown) : undefined });
      // Only the gateway's routes (under /api) check the apikey; Telegram's /bot<token>/… carries its token in the path.
      const answer = req.url?.startsWith('/api/') && req.headers.apikey !== KEY ? { status: 401, body: { status: 401, error: 'Unauthorized', response: { message: 'Unauthorized' } } } : (this.next ?? { status: 200, body: { key: { id: 'REACTION-1' } } });
      this.next = null;
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
  });

  async start(): Promise<void> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.origin = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.#server.close(() => r()));
  }
}

describe('sendSignal: Evolution and Codechat v1 (reaction, mark read)', () => {
  const gw = new FakeGateway();
  let ctx: SendContext;
  before(async () => {
    await gw.start();
    // A trailing slash on base_url and an instance name that needs encoding.
    ctx = { base: '', credentials: { base_url: `${gw.origin}/api/`, instance: 'shop 1', api_key: KEY }, timeoutMs: 2000, signal: new AbortController().signal };
  });
  after(() => gw.stop());

  /** The one request `act` made. */
  const only = async (act: () => Promise<unknown>): Promise<Call> => {
    gw.calls.length = 0;
    await act();
    assert.equal(gw.calls.length, 1);
    return gw.calls[0]!;
  };
  const jidKey = { remoteJid: '5511988887777@s.whatsapp.net', fromMe: false, id: 'WAMSG1' };

  it('Evolution read: POST /chat/markMessageAsRead/{instance} {readMessages:[key]}; a bare number becomes a JID', async () => {
    const c = await only(async () => assert.deepEqual(await sendSignal('evolution', ctx, { kind: 'read', to: '+55 11 98888-7777', lastExternalId: 'WAMSG1' }), { ok: true, externalId: 'REACTION-1' }));
    assert.deepEqual(c, { method: 'POST', path: '/api/chat/markMessageAsRead/shop%201', apikey: KEY, contentType: 'application/json', body: { readMessages: [jidKey] } });
  });

  it('Codechat v1 read: PUT on the same route with the same body; a JID is kept as it is', async () => {
    const c = await only(() => sendSignal('codechat', ctx, { kind: 'read', to: '5511988887777@s.whatsapp.net', lastExternalId: 'WAMSG1' }));
    assert.deepEqual(c, { method: 'PUT', path: '/api/chat/markMessageAsRead/shop%201', apikey: KEY, contentType: 'application/json', body: { readMessages: [jidKey] } });
  });

  it('Evolution reaction: POST /message/sendReaction/{instance} {key, reaction}; removal is an empty reaction', async () => {
    const c = await only(() => sendSignal('evolution', ctx, { kind: 'reaction', to: '5511988887777', targetExternalId: 'WAMSG1', emoji: '👍' }));
    assert.deepEqual(c, { method: 'POST', path: '/api/message/sendReaction/shop%201', apikey: KEY, contentType: 'application/json', body: { key: jidKey, reaction: '👍' } });
    const removed = await only(() => sendSignal('evolution', ctx, { kind: 'reaction', to: '5511988887777', targetExternalId: 'WAMSG1', emoji: null }));
    assert.deepEqual(removed.body, { key: jidKey, reaction: '' });
  });

  it('Codechat v1 reaction: the same key nested in reactionMessage', async () => {
    const c = await only(() => sendSignal('codechat', ctx, { kind: 'reaction', to: '5511988887777@s.whatsapp.net', targetExternalId: 'WAMSG1', emoji: '❤️' }));
    assert.deepEqual(c, { method: 'POST', path: '/api/message/sendReaction/shop%201', apikey: KEY, contentType: 'application/json', body: { reactionMessage: { key: jidKey, reaction: '❤️' } } });
    const removed = await only(() => sendSignal('codechat', ctx, { kind: 'reaction', to: '5511988887777@s.whatsapp.net', targetExternalId: 'WAMSG1', emoji: null }));
    assert.deepEqual(removed.body, { reactionMessage: { key: jidKey, reaction: '' } });
  });

  it('delete (one of ours, for everyone): Evolution DELETE /chat/deleteMessageForEveryone/{instance} {id, remoteJid, fromMe: true}; Codechat v1 by its row id; WhatsApp Cloud: unsupported, nothing sent', async () => {
    const c = await only(async () => assert.deepEqual(await sendSignal('evolution', ctx, { kind: 'delete', to: '5511988887777', targetExternalId: 'OURS1' }), { ok: true, externalId: '' }));
    assert.deepEqual(c, { method: 'DELETE', path: '/api/chat/deleteMessageForEveryone/shop%201', apikey: KEY, contentType: 'application/json', body: { id: 'OURS1', remoteJid: '5511988887777@s.whatsapp.net', fromMe: true } });
    gw.calls.length = 0;
    assert.deepEqual(await sendSignal('codechat', ctx, { kind: 'delete', to: '5511988887777', targetExternalId: 'OURS1' }), { ok: 'unsupported' }, 'Codechat v1 without its row id');
    assert.deepEqual(await sendSignal('whatsapp', { ...ctx, base: gw.origin, credentials: { access_token: 't', phone_number_id: 'P' } }, { kind: 'delete', to: '5511988887777', targetExternalId: 'wamid.X' }), { ok: 'unsupported' });
    assert.equal(gw.calls.length, 0);
    const cc = await only(async () => assert.deepEqual(await sendSignal('codechat', ctx, { kind: 'delete', to: '5511988887777', targetExternalId: 'OURS1', targetRef: '42' }), { ok: true, externalId: '' }));
    assert.deepEqual(cc, { method: 'DELETE', path: '/api/chat/deleteMessageForEveryone/shop%201', apikey: KEY, contentType: 'application/json', body: { id: '42' } });
  });

  it('Telegram delete: POST /bot<token>/deleteMessage {chat_id, message_id}', async () => {
    gw.next = { status: 200, body: { ok: true, result: true } };
    const c = await only(async () => assert.deepEqual(await sendSignal('telegram', { ...ctx, base: gw.origin, credentials: { bot_token: '42:abc' } }, { kind: 'delete', to: '777', targetExternalId: '777:55' }), { ok: true, externalId: '' }));
    assert.deepEqual([c.method, c.path, c.body], ['POST', '/bot42:abc/deleteMessage', { chat_id: '777', message_id: 55 }]);
  });

  it('a 401 (wrong key) is not retried, a 503 is; the key never shows in the error', async () => {
    for (const platform of ['evolution', 'codechat']) {
      for (const s of [{ kind: 'read' as const, to: '5511988887777', lastExternalId: 'WAMSG1' }, { kind: 'reaction' as const, to: '5511988887777', targetExternalId: 'WAMSG1', emoji: '👍' }]) {
        const denied = await sendSignal(platform, { ...ctx, credentials: { ...ctx.credentials, api_key: 'wrong' } }, s);
        assert.equal(denied.ok, false);
        assert.ok(denied.ok === false && !denied.retryable && denied.error === 'Unauthorized', JSON.stringify(denied));
        gw.next = { status: 503, body: { error: 'Service Unavailable' } };
        const busy = await sendSignal(platform, ctx, s);
        assert.ok(busy.ok === false && busy.retryable, JSON.stringify(busy));
        assert.ok(!JSON.stringify([denied, busy]).includes(KEY));
      }
    }
  });

  it('without base_url / instance / api_key nothing is sent and the failure is final', async () => {
    gw.calls.length = 0;
    const r = await sendSignal('evolution', { ...ctx, credentials: { base_url: `${gw.origin}/api`, instance: 'shop 1' } }, { kind: 'read', to: '5511988887777', lastExternalId: 'WAMSG1' });
    assert.deepEqual(r, { ok: false, retryable: false, error: 'the inbox has no base_url / instance / api_key' });
    assert.equal(gw.calls.length, 0);
  });
});
