import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { call, newTestApp, type TestApp } from '../../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUser, type TestUser } from '../../../../test/helpers/factories.ts';
import { fetchMedia, MediaFetchError, mediaMaxBytes, type MediaFetchConfig } from './fetch-media.ts';

// A 1×1 PNG: served with a lying Content-Type, the stored type must come from the bytes.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
const WA_TOKEN = 'wa-access-token';
const BOT_TOKEN = '123456:tg-bot-token';
const MAX = 4096;

/**
 * A fake platform on loopback implementing the documented endpoints: WhatsApp Cloud media
 * (GET /v21.0/{id} → {url, …}, GET url with the same bearer, CONNECTORS.md §1.6) and Telegram
 * (GET /bot<token>/getFile → file_path, GET /file/bot<token>/<path>, §2.5).
 */
class FakePlatform {
  server: Server;
  origin = '';
  /** While true, every connection is dropped (the platform is down). */
  down = false;
  requests: string[] = [];
  media = new Map<string, Buffer>([
    ['png', PNG],
    ['big', Buffer.alloc(MAX + 1, 7)],
  ]);

  constructor() {
    this.server = createServer((req, res) => this.#handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.down) {
      req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', this.origin);
    this.requests.push(url.pathname);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    let m: RegExpExecArray | null;
    if ((m = /^\/v21\.0\/([^/]+)$/.exec(url.pathname))) {
      if (req.headers.authorization !== `Bearer ${WA_TOKEN}`) return json(401, { error: { message: 'bad token' } });
      const bytes = this.media.get(decodeURIComponent(m[1]!));
      if (!bytes) return json(404, { error: { message: 'no such media' } });
      // The big one does not announce its size: the streaming cap must stop it.
      const size = m[1] === 'big' ? {} : { file_size: String(bytes.length) };
      return json(200, { messaging_product: 'whatsapp', url: `${this.origin}/cdn/${m[1]}?ext=1&hash=x`, mime_type: 'image/jpeg', sha256: createHash('sha256').update(bytes).digest('hex'), id: m[1], ...size });
    }
    if ((m = /^\/cdn\/([^/]+)$/.exec(url.pathname))) {
      if (req.headers.authorization !== `Bearer ${WA_TOKEN}`) return json(401, { error: { message: 'bad token' } });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(this.media.get(m[1]!));
      return;
    }
    if (url.pathname === `/bot${BOT_TOKEN}/getFile`) {
      const id = url.searchParams.get('file_id') ?? '';
      if (!this.media.has(id)) return json(400, { ok: false, description: 'Bad Request: invalid file_id' });
      return json(200, { ok: true, result: { file_id: id, file_unique_id: 'u', file_path: `photos/${id}.jpg` } });
    }
    if ((m = new RegExp(`^/file/bot${BOT_TOKEN.replace(':', '\\:')}/photos/([^/]+)\\.jpg$`).exec(url.pathname))) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(this.media.get(m[1]!));
      return;
    }
    if (url.pathname === '/gateway/chat/public/image/download') {
      res.writeHead(200);
      res.end(PNG);
      return;
    }
    json(404, { error: 'not found' });
  }
}

describe('fetchMedia against a fake platform', () => {
  const fake = new FakePlatform();
  let cfg: MediaFetchConfig;
  before(async () => {
    await fake.start();
    cfg = { apis: { whatsapp: `${fake.origin}/v21.0`, telegram: fake.origin, meta: `${fake.origin}/v21.0` }, allowPrivate: true, maxBytes: MAX, timeoutMs: 2000 };
  });
  after(() => fake.stop());

  it('WhatsApp: media id → URL → bytes, with the bearer token on both requests (sha256 checked)', async () => {
    const got = await fetchMedia('whatsapp', { source: { kind: 'platform_id', value: 'png' } }, { access_token: WA_TOKEN }, cfg);
    assert.deepEqual(got.bytes, PNG);
    await assert.rejects(fetchMedia('whatsapp', { source: { kind: 'platform_id', value: 'png' } }, { access_token: 'wrong' }, cfg), (err: unknown) => {
      assert.ok(err instanceof MediaFetchError);
      assert.equal(err.message, 'the platform answered HTTP 401');
      assert.equal(err.permanent, false);
      return true;
    });
  });

  it('WhatsApp: a file over the cap fails for good, even unannounced', async () => {
    await assert.rejects(fetchMedia('whatsapp', { source: { kind: 'platform_id', value: 'big' } }, { access_token: WA_TOKEN }, cfg), (err: unknown) => err instanceof MediaFetchError && err.permanent && /larger than 4096/.test(err.message));
  });

  it('Telegram: getFile → file_path → download; the bot token never shows in an error', async () => {
    const got = await fetchMedia('telegram', { source: { kind: 'platform_id', value: 'png' } }, { bot_token: BOT_TOKEN }, cfg);
    assert.deepEqual(got.bytes, PNG);
    await assert.rejects(fetchMedia('telegram', { source: { kind: 'platform_id', value: 'nope' } }, { bot_token: BOT_TOKEN }, cfg), (err: unknown) => {
      assert.ok(err instanceof MediaFetchError);
      assert.ok(!err.message.includes(BOT_TOKEN));
      return true;
    });
  });

  it('URLs: fetched as they are; refused on loopback when private addresses are not allowed (permanent)', async () => {
    const url = `${fake.origin}/cdn/png`;
    await assert.rejects(fetchMedia('instagram', { source: { kind: 'url', value: url } }, {}, cfg), /HTTP 401/, 'no credentials are sent to a URL source');
    await assert.rejects(fetchMedia('instagram', { source: { kind: 'url', value: url } }, {}, { ...cfg, allowPrivate: false }), (err: unknown) => err instanceof MediaFetchError && err.permanent && /private or reserved/.test(err.message));
    await assert.rejects(fetchMedia('codechat', { source: { kind: 'url', value: 'https://mmg.whatsapp.net/v/t62/abc.enc' } }, {}, cfg), /encrypted WhatsApp CDN/);
  });

  it("Codechat: the public media path is joined to the inbox's base_url", async () => {
    const got = await fetchMedia('codechat', { source: { kind: 'url', value: '/chat/public/image/download?q=abc' } }, { base_url: `${fake.origin}/gateway/` }, cfg);
    assert.deepEqual(got.bytes, PNG);
    await assert.rejects(fetchMedia('codechat', { source: { kind: 'url', value: '/chat/public/image/download?q=abc' } }, {}, cfg), /no base_url/);
  });

  it('inline base64: decoded; over the cap refused before decoding', async () => {
    const got = await fetchMedia('evolution', { source: { kind: 'inline_base64', value: PNG.toString('base64') } }, {}, cfg);
    assert.deepEqual(got.bytes, PNG);
    await assert.rejects(fetchMedia('evolution', { source: { kind: 'inline_base64', value: Buffer.alloc(MAX + 3).toString('base64') } }, {}, cfg), /larger than/);
  });
});

const GW_KEY = 'gateway-global-api-key';
const MB = 1024 * 1024;

/**
 * A Baileys gateway on loopback (CONNECTORS.md §6.3), under the base path /gw, instance `inst`:
 * Evolution `POST /chat/getBase64FromMediaMessage/:instance` (JSON with base64) and Codechat v1
 * `POST /chat/mediaData/:instance?binary=true` (raw bytes). Both want the `apikey` header; an
 * unknown instance is a 404, message id `busy` a 503, `moved` a redirect to an open route.
 */
class FakeGateway {
  server: Server;
  origin = '';
  calls: Array<{ method: string; path: string; query: string; apikey: string | undefined; body: unknown }> = [];
  media = new Map<string, Buffer>([
    ['png', PNG],
    ['big', Buffer.alloc(MAX + 1, 7)],
  ]);

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.#handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  #handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
    const url = new URL(req.url ?? '/', this.origin);
    let body: unknown = raw;
    try {
      body = JSON.parse(raw);
    } catch {
      /* kept as text */
    }
    this.calls.push({ method: req.method ?? '', path: url.pathname, query: url.search, apikey: req.headers.apikey as string | undefined, body });
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    const m = /^\/gw\/chat\/(getBase64FromMediaMessage|mediaData)\/([^/]+)$/.exec(url.pathname);
    if (!m || req.method !== 'POST') return json(404, { status: 404, error: 'Not Found' });
    if (req.headers.apikey !== GW_KEY) return json(401, { status: 401, error: 'Unauthorized' });
    if (m[2] !== 'inst') return json(404, { status: 404, error: 'Not Found', response: { message: [`The "${m[2]}" instance does not exist`] } });
    const evolution = m[1] === 'getBase64FromMediaMessage';
    const id = evolution ? (body as { message?: { key?: { id?: string } } }).message?.key?.id : (body as { keyId?: string }).keyId;
    if (id === 'busy') return json(503, { error: 'Service Unavailable' });
    if (id === 'moved') {
      res.writeHead(307, { location: `${this.origin}/open/sink` });
      res.end();
      return;
    }
    if (evolution && id === 'huge') {
      // Announces nothing, and is longer than any base64 of MAX bytes plus room for the other
      // fields: the JSON read itself is capped while streaming.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"base64":"');
      for (let i = 0; i < 64; i++) res.write('A'.repeat(4096));
      res.end('"}');
      return;
    }
    if (evolution && id === 'announced-huge') {
      return json(200, { mediaType: 'documentMessage', size: { fileLength: String(200 * MB) }, mimetype: 'application/pdf', base64: PNG.toString('base64') });
    }
    const bytes = id ? this.media.get(id) : undefined;
    if (!bytes) return json(400, { status: 400, error: 'Bad Request', response: { message: ['The message is not of the media type'] } });
    if (evolution) {
      return json(200, { mediaType: 'imageMessage', fileName: `${id}.png`, caption: 'a pic', size: { fileLength: { low: bytes.length, high: 0, unsigned: true }, height: 1, width: 1 }, mimetype: 'image/png', base64: bytes.toString('base64') });
    }
    // Codechat streams the file (no Content-Length): the cap is counted while reading.
    res.writeHead(200, { 'content-type': 'image/png', 'content-disposition': `inline; filename="${id}.png"` });
    res.write(bytes.subarray(0, 1));
    res.end(bytes.subarray(1));
  }
}

describe('fetchMedia: Codechat / Evolution media by message id', () => {
  const gw = new FakeGateway();
  let cfg: MediaFetchConfig;
  let creds: Record<string, string>;
  before(async () => {
    await gw.start();
    cfg = { apis: { whatsapp: gw.origin, telegram: gw.origin, meta: gw.origin }, allowPrivate: true, maxBytes: MAX, timeoutMs: 2000 };
    creds = { base_url: `${gw.origin}/gw/`, instance: 'inst', api_key: GW_KEY };
  });
  after(() => gw.stop());

  const byId = (value: string) => ({ source: { kind: 'platform_id' as const, value } });
  /** A MediaFetchError with the expected permanence, whose message names neither the key nor a path. */
  const fails = (permanent: boolean, pattern: RegExp) => (err: unknown) => {
    assert.ok(err instanceof MediaFetchError, String(err));
    assert.match(err.message, pattern);
    assert.equal(err.permanent, permanent, err.message);
    assert.ok(!err.message.includes(GW_KEY) && !err.message.includes('/chat/') && !err.message.includes('/gw'), err.message);
    return true;
  };

  it('Evolution: POST getBase64FromMediaMessage with the apikey and the message key; the base64 is decoded', async () => {
    gw.calls.length = 0;
    const got = await fetchMedia('evolution', byId('png'), creds, cfg);
    assert.deepEqual(got.bytes, PNG);
    assert.equal(got.claimedType, 'image/png');
    assert.deepEqual(gw.calls, [{ method: 'POST', path: '/gw/chat/getBase64FromMediaMessage/inst', query: '', apikey: GW_KEY, body: { message: { key: { id: 'png' } }, convertToMp4: false } }]);
  });

  it('Codechat v1: POST mediaData?binary=true with the apikey and {keyId}; the raw bytes come back', async () => {
    gw.calls.length = 0;
    const got = await fetchMedia('codechat', byId('png'), creds, cfg);
    assert.deepEqual(got.bytes, PNG);
    assert.equal(got.claimedType, 'image/png');
    assert.deepEqual(gw.calls, [{ method: 'POST', path: '/gw/chat/mediaData/inst', query: '?binary=true', apikey: GW_KEY, body: { keyId: 'png' } }]);
  });

  it('over the cap: refused for good (Codechat while streaming, Evolution after the JSON, or while reading an oversized JSON)', async () => {
    await assert.rejects(fetchMedia('codechat', byId('big'), creds, cfg), fails(true, /larger than 4096 bytes/));
    await assert.rejects(fetchMedia('evolution', byId('big'), creds, cfg), fails(true, /larger than 4096 bytes/));
    await assert.rejects(fetchMedia('evolution', byId('huge'), creds, cfg), fails(true, /larger than 4096 bytes/));
  });

  it("the platform's own limit applies under a higher MEDIA_MAX_BYTES (Evolution: 100 MB announced in size.fileLength)", async () => {
    await assert.rejects(fetchMedia('evolution', byId('announced-huge'), creds, { ...cfg, maxBytes: 1024 * MB }), fails(true, new RegExp(`larger than ${100 * MB} bytes`)));
  });

  it('a 404 (unknown instance) is permanent; a 503, a 400 and a wrong key may pass and are retried; no message shows the key or a path', async () => {
    for (const platform of ['evolution', 'codechat']) {
      await assert.rejects(fetchMedia(platform, byId('png'), { ...creds, instance: 'other' }, cfg), fails(true, /HTTP 404/));
      await assert.rejects(fetchMedia(platform, byId('busy'), creds, cfg), fails(false, /HTTP 503/));
      await assert.rejects(fetchMedia(platform, byId('nope'), creds, cfg), fails(false, /HTTP 400/));
      await assert.rejects(fetchMedia(platform, byId('png'), { ...creds, api_key: 'wrong-key' }, cfg), fails(false, /HTTP 401/));
    }
  });

  it('a redirect is not followed (the key stays with the gateway), private addresses are refused, missing credentials fail for good', async () => {
    gw.calls.length = 0;
    await assert.rejects(fetchMedia('evolution', byId('moved'), creds, cfg), fails(true, /redirect/));
    assert.deepEqual(gw.calls.map((c) => c.path), ['/gw/chat/getBase64FromMediaMessage/inst'], 'nothing went to the redirect target');
    await assert.rejects(fetchMedia('codechat', byId('png'), creds, { ...cfg, allowPrivate: false }), fails(true, /private or reserved/));
    await assert.rejects(fetchMedia('evolution', byId('png'), { base_url: creds.base_url!, instance: 'inst' }, cfg), fails(true, /no base_url \/ instance \/ api_key/));
  });

  it('per-platform download caps, MEDIA_MAX_BYTES as the ceiling (the smaller wins)', () => {
    const huge = 10 * 1024 * MB;
    assert.deepEqual(
      ['whatsapp', 'telegram', 'instagram', 'messenger', 'codechat', 'evolution'].map((p) => mediaMaxBytes(p, huge)),
      [100 * MB, 20 * MB, 25 * MB, 25 * MB, 100 * MB, 100 * MB],
    );
    assert.equal(mediaMaxBytes('telegram', 5 * MB), 5 * MB);
    assert.equal(mediaMaxBytes('api', 7 * MB), 7 * MB, 'a platform without a documented limit gets the ceiling');
  });
});

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/platforms/', import.meta.url));
const APP_SECRET = 'meta-app-secret-for-media-tests';
const sign = (body: string) => `sha256=${createHmac('sha256', APP_SECRET).update(body).digest('hex')}`;

for (const dialect of testDialects()) {
  describe(`inbound media end to end (${dialect})`, () => {
    const fake = new FakePlatform();
    let t: TestApp;
    let admin: TestUser;
    let agent: TestUser;
    let wa: { id: string };
    before(async () => {
      await fake.start();
      t = await newTestApp({
        dialect,
        env: {
          RATE_LIMIT_MAX: '0',
          OUTBOX_POLL_MS: '20',
          OUTBOX_RETRY_BASE_MS: '50',
          OUTBOX_RETRY_MAX_MS: '200',
          OUTBOX_MAX_ATTEMPTS: '6',
          MEDIA_ALLOW_PRIVATE: 'true',
          MEDIA_MAX_BYTES: String(MAX),
          MEDIA_TIMEOUT_MS: '2000',
          WHATSAPP_API_BASE: `${fake.origin}/v21.0`,
          TELEGRAM_API_BASE: fake.origin,
        },
      });
      const org = await makeOrg(t.services);
      admin = await makeUser(t.app, t.services, org.id, 'admin');
      agent = await makeUser(t.app, t.services, org.id, 'agent');
      wa = (await call(t.app, 'POST', '/api/v1/inboxes', { token: admin.token, body: { name: 'WA', platform: 'whatsapp', credentials: { app_secret: APP_SECRET, access_token: WA_TOKEN } } })).data;
      await call(t.app, 'POST', `/api/v1/inboxes/${wa.id}/members`, { token: admin.token, body: { user_id: agent.id } });
    });
    after(async () => {
      await t.close();
      await fake.stop();
    });

    /** A signed WhatsApp image delivery naming media `mediaId`; acknowledged before any download. */
    const deliverImage = async (wamid: string, mediaId: string) => {
      const body = readFileSync(`${FIXTURES}whatsapp/image.json`, 'utf8').replace('wamid.xyzxyz', wamid).replace('"65463453"', JSON.stringify(mediaId));
      const res = await t.app.inject({ method: 'POST', url: `/webhooks/whatsapp/${wa.id}`, payload: body, headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(body) } });
      assert.equal(res.statusCode, 200);
    };
    const messageOf = async (wamid: string) => {
      for (let i = 0; i < 400; i++) {
        const row = await t.db.db.selectFrom('messages').select(['id', 'metadata', 'attachment_count']).where('external_id', '=', wamid).executeTakeFirst();
        const media = row?.metadata ? (JSON.parse(row.metadata) as { media?: { download?: string; error?: string } }).media : undefined;
        if (row && media?.download && media.download !== 'pending') return { ...row, media };
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`media of ${wamid} not settled in time`);
    };

    it('a signed image delivery ends with the bytes the platform served, attached, their type sniffed (not the claimed text/plain)', async () => {
      await deliverImage('wamid.media-ok', 'png');
      const row = await messageOf('wamid.media-ok');
      assert.equal(row.media.download, 'done');
      assert.equal(Number(row.attachment_count), 1);
      const msg = (await call(t.app, 'GET', `/api/v1/messages/${row.id}`, { token: agent.token })).data;
      assert.equal(msg.type, 'image');
      assert.equal(msg.attachments.length, 1);
      const file = msg.attachments[0];
      assert.equal(file.content_type, 'image/png');
      assert.equal(file.size, PNG.length);
      assert.equal(file.sha256, createHash('sha256').update(PNG).digest('hex'));
      assert.deepEqual([file.width, file.height], [1, 1]);
      assert.equal(msg.metadata.media.source, undefined, 'the platform reference is dropped once downloaded');
      const res = await t.app.inject({ method: 'GET', url: file.url, headers: { authorization: `Bearer ${agent.token}` } });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.rawPayload, PNG);
      const uploader = await t.db.db.selectFrom('files').select('uploader_id').where('id', '=', file.id).executeTakeFirstOrThrow();
      assert.equal(uploader.uploader_id, null);
    });

    it('the platform down at first: the webhook is still acknowledged, the download is retried and lands later', async () => {
      fake.down = true;
      await deliverImage('wamid.media-later', 'png');
      // Wait for a failed attempt to be recorded on the job.
      let failedAttempt = false;
      for (let i = 0; i < 200 && !failedAttempt; i++) {
        const job = await t.db.db.selectFrom('outbox').select(['attempts', 'last_error']).where('target', '=', 'media_fetch').where('event_id', 'in', t.db.db.selectFrom('messages').select('id').where('external_id', '=', 'wamid.media-later')).executeTakeFirst();
        failedAttempt = !!job && job.attempts >= 1 && job.last_error !== null;
        if (!failedAttempt) await new Promise((r) => setTimeout(r, 25));
      }
      assert.ok(failedAttempt, 'an attempt failed while the platform was down');
      const pending = await t.db.db.selectFrom('messages').select('metadata').where('external_id', '=', 'wamid.media-later').executeTakeFirstOrThrow();
      assert.equal((JSON.parse(pending.metadata!) as { media: { download: string } }).media.download, 'pending');
      fake.down = false;
      const row = await messageOf('wamid.media-later');
      assert.equal(row.media.download, 'done');
      assert.equal(Number(row.attachment_count), 1);
    });

    it('a file over MEDIA_MAX_BYTES: failed with a reason, nothing stored', async () => {
      const filesBefore = (await t.db.db.selectFrom('files').select('id').execute()).length;
      await deliverImage('wamid.media-big', 'big');
      const row = await messageOf('wamid.media-big');
      assert.equal(row.media.download, 'failed');
      assert.match(row.media.error ?? '', /larger than 4096 bytes/);
      assert.equal(Number(row.attachment_count), 0);
      assert.equal((await t.db.db.selectFrom('files').select('id').execute()).length, filesBefore);
    });
  });
}
