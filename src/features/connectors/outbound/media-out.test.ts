import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32, deflateSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { call, type TestApp } from '../../../../test/helpers/new-test-app.ts';
import { platformApp, waitFor, type PlatformApp } from '../../../../test/helpers/platform-app.ts';
import { testDialects } from '../../../../test/helpers/new-test-db.ts';
import type { TestUser } from '../../../../test/helpers/factories.ts';
import { probeCodec } from '../../../platform/ffmpeg.ts';
import { sendCodechatMedia, sendEvolutionMedia, sendMetaMedia } from './media-senders.ts';

interface Part {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer;
}

/** A multipart/form-data body split on its boundary (enough for what fetch's FormData writes). */
function parseMultipart(raw: Buffer, contentType: string): Map<string, Part> {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  const delimiter = Buffer.from(`--${boundary?.[1] ?? boundary?.[2]}`);
  const parts = new Map<string, Part>();
  let at = raw.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (raw.subarray(start, start + 2).toString() === '--') break;
    const next = raw.indexOf(delimiter, start);
    const chunk = raw.subarray(start + 2, next - 2); // skip the CRLF after the boundary and before the next
    const split = chunk.indexOf('\r\n\r\n');
    const headers = chunk.subarray(0, split).toString('utf8');
    const name = /name="([^"]*)"/.exec(headers)?.[1] ?? '';
    const filename = /filename="([^"]*)"/.exec(headers)?.[1];
    const type = /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1];
    parts.set(name, { name, ...(filename !== undefined ? { filename } : {}), ...(type ? { contentType: type } : {}), data: chunk.subarray(split + 4) });
    at = next;
  }
  return parts;
}

interface Call {
  path: string;
  auth: string | undefined;
  json?: Record<string, unknown>;
  form?: Map<string, Part>;
}

/** A loopback platform: WhatsApp Cloud media upload + send, Telegram send*, Meta /me/messages, gateways. */
class FakePlatform {
  readonly calls: Call[] = [];
  /** Answer one later call whose path ends with `path` with a 503, after letting `skip` such calls through. */
  failOnce: { path: string; skip: number } | null = null;
  #server: Server;
  #n = 0;
  constructor() {
    this.#server = createServer((req, res) =>
      void this.#handle(req).then((body) => {
        let fail = false;
        if (this.failOnce && (req.url ?? '').endsWith(this.failOnce.path) && this.failOnce.skip-- === 0) {
          fail = true;
          this.failOnce = null;
        }
        res.writeHead(fail ? 503 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(fail ? { error: { code: 2, message: 'temporarily unavailable' } } : body));
      }),
    );
  }
  async start(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }
  stop(): Promise<void> {
    return new Promise((r) => this.#server.close(() => r()));
  }
  async #handle(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const type = req.headers['content-type'] ?? '';
    const path = req.url ?? '';
    this.calls.push({ path, auth: req.headers.authorization, ...(type.startsWith('multipart/') ? { form: parseMultipart(raw, type) } : { json: JSON.parse(raw.toString() || '{}') as Record<string, unknown> }) });
    const n = ++this.#n;
    if (path.endsWith('/media')) return { id: `media-${n}` };
    if (path.includes('/bot')) return { ok: true, result: { message_id: 900 + n, chat: { id: 777 } } };
    if (path.endsWith('/me/messages')) return { recipient_id: 'IGSID', message_id: `mid.${n}` };
    if (path.includes('/message/send')) return { key: { id: `GW${n}` } };
    return { messaging_product: 'whatsapp', messages: [{ id: `wamid.OUT${n}` }] };
  }
}

/** A valid 2×2 PNG. */
function png(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(2, 0);
  ihdr.writeUInt32BE(2, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.from([0, 9, 9, 0, 9, 9]))), chunk('IEND', Buffer.alloc(0))]);
}

/** One second of a 440 Hz tone as MP3, made by ffmpeg. */
const mp3 = () => execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-f', 'mp3', 'pipe:1']);

const APP_SECRET = 'app-secret-media-out';

for (const dialect of testDialects()) {
  describe(`media and voice notes out to platforms (${dialect})`, () => {
    let t: TestApp;
    let fake: FakePlatform;
    let admin: TestUser;
    let agent: TestUser;
    let tg: string;
    let inboundWhatsApp: PlatformApp['inboundWhatsApp'];
    before(async () => {
      fake = new FakePlatform();
      ({ t, admin, agent, tg, inboundWhatsApp } = await platformApp(dialect, await fake.start(), APP_SECRET));
    });
    after(async () => {
      await t.close();
      await fake.stop();
    });

    /** Upload the way the API does (POST /api/v1/upload, multipart). */
    const upload = async (filename: string, bytes: Buffer): Promise<{ id: string; content_type: string }> => {
      const boundary = `----parley${randomBytes(8).toString('hex')}`;
      const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/upload', payload: Buffer.concat([Buffer.from(head), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]), headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: `Bearer ${agent.token}` } });
      assert.equal(res.statusCode, 201, res.body);
      return JSON.parse(res.body) as { id: string; content_type: string };
    };
    /** Send a reply with files and wait until it went out; the calls the platform got for it. */
    const replyWith = async (conversationId: string, body: string, fileIds: string[]) => {
      const before = fake.calls.length;
      const reply = await call(t.app, 'POST', `/api/v1/conversations/${conversationId}/messages`, { token: agent.token, body: { body, attachments: fileIds } });
      assert.equal(reply.statusCode, 201, reply.body);
      assert.equal(reply.data.delivery_status, 'pending');
      const row = await waitFor(async () => {
        const r = await t.db.db.selectFrom('messages').select(['delivery_status', 'delivery_error', 'external_id']).where('id', '=', reply.data.id).executeTakeFirstOrThrow();
        return r.delivery_status === 'sent' || r.delivery_status === 'failed' ? r : null;
      });
      return { row, calls: fake.calls.slice(before) };
    };

    it('WhatsApp: an uploaded PNG is uploaded to /media and sent as an image with the media id and the body as caption', async () => {
      const conv = await inboundWhatsApp('5581900000001', 'wamid.M1');
      const image = png();
      const file = await upload('photo.png', image);
      const { row, calls } = await replyWith(conv.id, 'the screenshot', [file.id]);
      assert.equal(row.delivery_status, 'sent', row.delivery_error ?? '');
      assert.equal(calls.length, 2);
      const [up, send] = calls as [Call, Call];
      assert.equal(up.path, '/PNID1/media');
      assert.equal(up.auth, 'Bearer wa-token');
      assert.equal(up.form?.get('messaging_product')?.data.toString(), 'whatsapp');
      assert.equal(up.form?.get('type')?.data.toString(), 'image/png');
      assert.equal(up.form?.get('file')?.contentType, 'image/png');
      assert.ok(up.form?.get('file')?.data.equals(image), 'the stored bytes, unchanged');
      const mediaId = /media-\d+/.exec(JSON.stringify(send.json))?.[0];
      assert.ok(mediaId);
      assert.equal(send.path, '/PNID1/messages');
      assert.deepEqual(send.json, { messaging_product: 'whatsapp', recipient_type: 'individual', to: '5581900000001', type: 'image', image: { id: mediaId, caption: 'the screenshot' } });
      assert.match(row.external_id ?? '', /^wamid\.OUT\d+$/);
    });

    it('WhatsApp: an uploaded MP3 goes out as an OGG/Opus voice note (type audio)', async () => {
      const conv = await inboundWhatsApp('5581900000002', 'wamid.M2');
      const file = await upload('memo.mp3', mp3());
      assert.equal(file.content_type, 'audio/mpeg');
      const { row, calls } = await replyWith(conv.id, '', [file.id]);
      assert.equal(row.delivery_status, 'sent', row.delivery_error ?? '');
      const [up, send] = calls as [Call, Call];
      const voice = up.form!.get('file')!;
      assert.equal(up.form?.get('type')?.data.toString(), 'audio/ogg');
      assert.equal(voice.filename, 'memo.ogg');
      const probed = await probeCodec(voice.data);
      assert.equal(probed.format, 'ogg');
      assert.equal(probed.codec, 'opus');
      assert.equal(probed.channels, 1);
      assert.equal(send.json?.type, 'audio');
      assert.deepEqual(Object.keys(send.json?.audio as object), ['id'], 'no caption on audio');
    });

    it('WhatsApp: a file whose transcoding fails goes out as it is, and the failure is logged', async () => {
      const conv = await inboundWhatsApp('5581900000003', 'wamid.M3');
      const garbage = randomBytes(4000);
      const file = await upload('broken.mp3', garbage);
      // Uploads sniff their type (garbage is application/octet-stream): make the stored file claim to be audio.
      await t.db.db.updateTable('files').set({ content_type: 'audio/mpeg' }).where('id', '=', file.id).execute();
      const { row, calls } = await replyWith(conv.id, 'listen', [file.id]);
      assert.equal(row.delivery_status, 'sent', row.delivery_error ?? '');
      // Audio takes no caption on WhatsApp: the text goes first (its id is the message's), then the file.
      assert.equal(calls.length, 3);
      assert.deepEqual(calls[0]!.json?.text, { body: 'listen', preview_url: false });
      const parts = await t.db.db.selectFrom('messages').select('metadata').where('external_id', '=', row.external_id).executeTakeFirstOrThrow();
      const ids = (JSON.parse(parts.metadata ?? '{}') as { platform_parts?: string[] }).platform_parts ?? [];
      assert.equal(ids.length, 2);
      assert.equal(ids[0], row.external_id, 'the text part is the message');
      assert.ok(calls[1]!.form?.get('file')?.data.equals(garbage), 'the original bytes');
      assert.equal(calls[1]!.form?.get('type')?.data.toString(), 'audio/mpeg');
      assert.equal(calls[2]!.json?.type, 'audio');
      const line = t.logs.find((l) => l.includes('voice note transcoding failed'));
      assert.ok(line, 'logged');
      assert.match(line, new RegExp(file.id));
    });

    it('a retry after a failed part sends only the parts not sent yet', async () => {
      const conv = await inboundWhatsApp('5581900000004', 'wamid.M4');
      const a = await upload('a.png', png());
      const b = await upload('b.pdf', Buffer.from('%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n'));
      // The first image goes out; the upload of the second file fails once (503) and is retried.
      fake.failOnce = { path: '/media', skip: 1 };
      const { row, calls } = await replyWith(conv.id, 'two files', [a.id, b.id]);
      const uploads = calls.filter((c) => c.path.endsWith('/media')).length;
      assert.equal(row.delivery_status, 'sent', row.delivery_error ?? '');
      const sends = calls.filter((c) => c.path.endsWith('/messages'));
      assert.deepEqual(sends.map((c) => c.json?.type), ['image', 'document'], 'the image was not sent twice');
      assert.equal((sends[1]!.json?.document as { filename?: string }).filename, 'b.pdf');
      assert.equal(uploads, 3, 'image, failed document, document again');
    });

    it('Telegram: an uploaded MP3 goes out through sendVoice as OGG/Opus, with the body as caption', async () => {
      const update = JSON.stringify({ update_id: 9101, message: { message_id: 7, date: Math.floor(Date.now() / 1000), chat: { id: 777, type: 'private', first_name: 'Tg' }, from: { id: 777, is_bot: false, first_name: 'Tg' }, text: 'hello bot' } });
      const inbox = (await call(t.app, 'GET', `/api/v1/inboxes/${tg}`, { token: admin.token })).data;
      const r = await t.app.inject({ method: 'POST', url: `/webhooks/telegram/${tg}`, payload: update, headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': inbox.verify_token } });
      assert.equal(r.statusCode, 200);
      const conv = await waitFor(async () => (await call(t.app, 'GET', `/api/v1/conversations?inbox_id=${tg}`, { token: agent.token })).data.data[0]);
      const file = await upload('memo.mp3', mp3());
      const { row, calls } = await replyWith(conv.id, 'ouça', [file.id]);
      assert.equal(row.delivery_status, 'sent', row.delivery_error ?? '');
      assert.equal(calls.length, 1);
      assert.equal(calls[0]!.path, '/bot42:tg-token/sendVoice');
      const form = calls[0]!.form!;
      assert.equal(form.get('chat_id')?.data.toString(), '777');
      assert.equal(form.get('caption')?.data.toString(), 'ouça');
      const probed = await probeCodec(form.get('voice')!.data);
      assert.equal(probed.codec, 'opus');
      assert.equal(probed.format, 'ogg');
      assert.match(row.external_id ?? '', /^777:\d+$/);
    });

    it('Instagram / Messenger and the gateways: the documented upload bodies', async () => {
      const ctx = { base: '', credentials: {}, timeoutMs: 5000, signal: new AbortController().signal };
      const part = { to: 'IGSID', kind: 'voice' as const, bytes: Buffer.from('m4a bytes'), contentType: 'audio/mp4', filename: 'v.m4a' };
      const platformBase = t.config.platformApis.whatsapp; // the fake platform
      const meta = await sendMetaMedia({ ...ctx, base: platformBase, credentials: { access_token: 'ig-token' } }, part);
      assert.ok(meta.ok && /^mid\.\d+$/.test(meta.externalId));
      const ig = fake.calls.at(-1)!;
      assert.equal(ig.path, '/me/messages');
      assert.equal(ig.auth, 'Bearer ig-token');
      assert.deepEqual(JSON.parse(ig.form!.get('message')!.data.toString()), { attachment: { type: 'audio', payload: { is_reusable: true } } });
      assert.deepEqual(JSON.parse(ig.form!.get('recipient')!.data.toString()), { id: 'IGSID' });
      assert.ok(ig.form!.get('filedata')!.data.equals(part.bytes));
      const gw = { ...ctx, credentials: { base_url: platformBase, instance: 'inst', api_key: 'k' } };
      assert.equal((await sendEvolutionMedia(gw, { ...part, to: '5581@s.whatsapp.net', kind: 'voice' })).ok, true);
      assert.deepEqual(fake.calls.at(-1)!.json, { number: '5581', audio: part.bytes.toString('base64'), encoding: true });
      assert.equal(fake.calls.at(-1)!.path, '/message/sendWhatsAppAudio/inst');
      assert.equal((await sendCodechatMedia(gw, { ...part, to: '5581', kind: 'image', contentType: 'image/png', caption: 'c' })).ok, true);
      assert.deepEqual(fake.calls.at(-1)!.json, { number: '5581', options: { delay: 0 }, mediaMessage: { mediatype: 'image', media: part.bytes.toString('base64'), fileName: 'v.m4a', caption: 'c' } });
    });
  });
}
