/**
 * A fake of the platform APIs Parley calls itself (the Baileys gateways have their own fake,
 * fake-gateway.ts), on 127.0.0.1 and a free port, each under its own prefix so that one server
 * serves all three (point the app at `env()`):
 *
 * - WhatsApp Cloud, `/wa/v21.0` (CONNECTORS.md §1.6, §1.7): `POST /{phone_number_id}/messages`
 *   (Bearer) → `{messaging_product, contacts[{input, wa_id}], messages[{id}]}`; media
 *   `GET /{media-id}` (Bearer) → `{url, mime_type, sha256, file_size, id}`, then `GET <url>` with the
 *   same Bearer → the bytes.
 * - Telegram Bot API, `/tg` (§2.5, §2.6): `POST /bot<token>/<method>` → `{ok: true, result}`
 *   (`sendMessage` answers the new Message); `GET /bot<token>/getFile?file_id=` → `{file_path}`,
 *   `GET /file/bot<token>/<file_path>` → the bytes.
 * - Meta Graph for Instagram and Messenger, `/meta/v21.0` (§3, §4): `POST /me/messages` (Bearer or
 *   `?access_token=`) → `{recipient_id, message_id}`; attachment URLs `/meta-cdn/<id>` (a CDN: no auth).
 *
 * Every request is recorded (`calls`), refused ones too. A wrong token is refused in the
 * platform's shape (401 / Telegram 401 `Unauthorized`). `failNext(n, status)` makes the next `n`
 * sends (calls that create a message: not media downloads) fail with `status` and the platform's
 * error body.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buffer } from 'node:stream/consumers';

export type FakePlatformName = 'whatsapp' | 'telegram' | 'meta';
type Json = Record<string, unknown>;

export interface PlatformCall {
  platform: FakePlatformName;
  method: string;
  /** The path under the platform's prefix, with its query (`/PNID/messages`, `/bot1:x/sendMessage`). */
  path: string;
  /** The token the call carried (Bearer, `?access_token=`, or Telegram's token in the path). */
  token: string | undefined;
  body: Json;
  status: number;
  /** A send's answer: the id of the new message as the platform gave it (Telegram: `<chat id>:<message id>`). */
  answeredId?: string;
}

/** The credentials the fake accepts (what the test inboxes are created with). */
export const FAKE_PLATFORM_CREDENTIALS = {
  whatsapp: { access_token: 'wa-contract-token', phone_number_id: '106540352242922' },
  telegram: { bot_token: '6100000042:AAcontract-bot-token' },
  instagram: { access_token: 'IGQcontract-token' },
  messenger: { access_token: 'EAAcontract-page-token' },
} as const;

export interface FakePlatform {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** WHATSAPP_API_BASE, TELEGRAM_API_BASE and META_GRAPH_BASE for the app. */
  env(): Record<string, string>;
  calls: PlatformCall[];
  /** The next `n` sends answer `status` (default 503) with the platform's error body. */
  failNext(n: number, status?: number): void;
  /** Serves `bytes` as a media: its id (WhatsApp media id, Telegram file_id) and its Meta CDN URL. */
  addMedia(bytes: Buffer, mimetype: string): { id: string; url: string };
  close(): Promise<void>;
}

interface Media {
  bytes: Buffer;
  mimetype: string;
}

const META_TOKENS = new Set<string>([FAKE_PLATFORM_CREDENTIALS.instagram.access_token, FAKE_PLATFORM_CREDENTIALS.messenger.access_token]);

/** The whole request body. */
const readBody = (req: IncomingMessage): Promise<Buffer> => buffer(req);

function parseJson(raw: Buffer): Json {
  try {
    const v = JSON.parse(raw.toString('utf8') || '{}') as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
  } catch {
    return {};
  }
}

interface Answer {
  status: number;
  json?: unknown;
  bytes?: Buffer;
  contentType?: string;
  answeredId?: string;
}

class PlatformFake implements FakePlatform {
  url = '';
  calls: PlatformCall[] = [];
  readonly #server = createServer((req, res) => void this.#handle(req, res));
  readonly #media = new Map<string, Media>();
  #failing: { left: number; status: number } = { left: 0, status: 503 };
  #n = 0;

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  env(): Record<string, string> {
    return { WHATSAPP_API_BASE: `${this.url}/wa/v21.0`, TELEGRAM_API_BASE: `${this.url}/tg`, META_GRAPH_BASE: `${this.url}/meta/v21.0` };
  }

  failNext(n: number, status = 503): void {
    this.#failing = { left: n, status };
  }

  addMedia(bytes: Buffer, mimetype: string): { id: string; url: string } {
    const id = `${++this.#n}${String(Date.now()).slice(-6)}`;
    this.#media.set(id, { bytes, mimetype });
    return { id, url: `${this.url}/meta-cdn/${id}` };
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req).catch(() => Buffer.alloc(0));
    const u = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? u.searchParams.get('access_token') ?? undefined;
    const body = parseJson(raw);
    let platform: FakePlatformName = 'meta';
    let path = `${u.pathname}${u.search}`;
    let answer: Answer;
    if (u.pathname.startsWith('/wa/v21.0/') || u.pathname.startsWith('/wa-cdn/')) {
      platform = 'whatsapp';
      path = path.replace(/^\/wa\/v21\.0/, '');
      answer = this.#whatsapp(method, u, bearer, body);
    } else if (u.pathname.startsWith('/tg/')) {
      platform = 'telegram';
      path = path.replace(/^\/tg/, '');
      answer = this.#telegram(method, u, body);
    } else if (u.pathname.startsWith('/meta/v21.0/') || u.pathname.startsWith('/meta-cdn/')) {
      path = path.replace(/^\/meta\/v21\.0/, '');
      answer = this.#meta(method, u, bearer, body);
    } else {
      answer = { status: 404, json: { error: { message: 'Unknown path components', type: 'OAuthException', code: 2500 } } };
    }
    const token = platform === 'telegram' ? /^\/tg\/(?:file\/)?bot([^/]+)\//.exec(u.pathname)?.[1] : bearer;
    this.calls.push({ platform, method, path, token, body, status: answer.status, ...(answer.answeredId ? { answeredId: answer.answeredId } : {}) });
    res.writeHead(answer.status, { 'content-type': answer.contentType ?? 'application/json' });
    res.end(answer.bytes ?? JSON.stringify(answer.json ?? {}));
  }

  /** Whether this send fails (and how the platform says so). */
  #fail(platform: FakePlatformName): Answer | null {
    if (this.#failing.left <= 0) return null;
    this.#failing.left -= 1;
    const status = this.#failing.status;
    if (platform === 'telegram') return { status, json: { ok: false, error_code: status, description: status === 429 ? 'Too Many Requests: retry after 1' : 'Internal Server Error' } };
    return { status, json: { error: { message: 'An unexpected error has occurred. Please retry your request later.', type: 'OAuthException', code: 2, is_transient: true, fbtrace_id: `A${this.#n}` } } };
  }

  #serve(id: string | undefined): Answer {
    const m = id ? this.#media.get(decodeURIComponent(id)) : undefined;
    return m ? { status: 200, bytes: m.bytes, contentType: m.mimetype } : { status: 404, json: { error: { message: 'not found' } } };
  }

  #whatsapp(method: string, u: URL, bearer: string | undefined, body: Json): Answer {
    const creds = FAKE_PLATFORM_CREDENTIALS.whatsapp;
    if (bearer !== creds.access_token) return { status: 401, json: { error: { message: 'Invalid OAuth access token - Cannot parse access token', type: 'OAuthException', code: 190, fbtrace_id: 'AX' } } };
    if (u.pathname.startsWith('/wa-cdn/')) return this.#serve(u.pathname.split('/')[2]);
    const send = /^\/wa\/v21\.0\/([^/]+)\/messages$/.exec(u.pathname);
    if (method === 'POST' && send) {
      if (send[1] !== creds.phone_number_id) return { status: 400, json: { error: { message: 'Unsupported post request.', type: 'GraphMethodException', code: 100 } } };
      // A read receipt is not a message.
      if (body.status === 'read') return { status: 200, json: { success: true } };
      const failed = this.#fail('whatsapp');
      if (failed) return failed;
      const id = `wamid.HBgM${String(++this.#n).padStart(6, '0')}FAKE`;
      return { status: 200, json: { messaging_product: 'whatsapp', contacts: [{ input: body.to, wa_id: body.to }], messages: [{ id }] }, answeredId: id };
    }
    const media = /^\/wa\/v21\.0\/([^/]+)$/.exec(u.pathname);
    const m = media && method === 'GET' ? this.#media.get(decodeURIComponent(media[1]!)) : undefined;
    if (!media || !m) return { status: 400, json: { error: { message: `Unsupported get request. Object with ID '${media?.[1] ?? ''}' does not exist`, type: 'GraphMethodException', code: 100 } } };
    const id = decodeURIComponent(media[1]!);
    return {
      status: 200,
      json: { messaging_product: 'whatsapp', url: `${this.url}/wa-cdn/${id}?ext=${Date.now()}`, mime_type: m.mimetype, sha256: createHash('sha256').update(m.bytes).digest('hex'), file_size: String(m.bytes.length), id },
    };
  }

  #telegram(method: string, u: URL, body: Json): Answer {
    const token = FAKE_PLATFORM_CREDENTIALS.telegram.bot_token;
    const file = /^\/tg\/file\/bot([^/]+)\/photos\/([^/.]+)\.\w+$/.exec(u.pathname);
    if (file) return file[1] === token ? this.#serve(file[2]) : { status: 404, json: { ok: false, error_code: 404, description: 'Not Found' } };
    const call = /^\/tg\/bot([^/]+)\/(\w+)$/.exec(u.pathname);
    if (!call || call[1] !== token) return { status: 401, json: { ok: false, error_code: 401, description: 'Unauthorized' } };
    const name = call[2]!;
    if (name === 'getFile') {
      const id = u.searchParams.get('file_id') ?? '';
      const m = this.#media.get(id);
      if (!m) return { status: 400, json: { ok: false, error_code: 400, description: 'Bad Request: invalid file_id' } };
      return { status: 200, json: { ok: true, result: { file_id: id, file_unique_id: `AQAD${id}`, file_size: m.bytes.length, file_path: `photos/${id}.png` } } };
    }
    if (method !== 'POST') return { status: 404, json: { ok: false, error_code: 404, description: 'Not Found: method not found' } };
    if (!name.startsWith('send')) return { status: 200, json: { ok: true, result: true } };
    const failed = this.#fail('telegram');
    if (failed) return failed;
    const messageId = 5000 + ++this.#n;
    const chatId = Number(body.chat_id);
    const result = { message_id: messageId, from: { id: Number(token.split(':')[0]), is_bot: true, first_name: 'Parley Bot' }, chat: { id: chatId, type: 'private' }, date: Math.floor(Date.now() / 1000), ...(typeof body.text === 'string' ? { text: body.text } : {}) };
    return { status: 200, json: { ok: true, result }, answeredId: `${chatId}:${messageId}` };
  }

  #meta(method: string, u: URL, bearer: string | undefined, body: Json): Answer {
    if (u.pathname.startsWith('/meta-cdn/')) return this.#serve(u.pathname.split('/')[2]);
    if (!bearer || !META_TOKENS.has(bearer)) return { status: 401, json: { error: { message: 'Invalid OAuth access token - Cannot parse access token', type: 'OAuthException', code: 190, fbtrace_id: 'AX' } } };
    if (method !== 'POST' || u.pathname !== '/meta/v21.0/me/messages') return { status: 400, json: { error: { message: 'Unsupported request', type: 'GraphMethodException', code: 100 } } };
    // sender_action (mark_seen, typing, react) creates no message.
    if (body.message === undefined) return { status: 200, json: { recipient_id: (body.recipient as Json | undefined)?.id } };
    const failed = this.#fail('meta');
    if (failed) return failed;
    const id = `m_${Buffer.from(`fake-${++this.#n}`).toString('base64url')}`;
    return { status: 200, json: { recipient_id: (body.recipient as Json | undefined)?.id, message_id: id }, answeredId: id };
  }
}

/** A fake platform API server on 127.0.0.1 and a free port; `close()` it before the app. */
export async function startFakePlatform(): Promise<FakePlatform> {
  const fake = new PlatformFake();
  await fake.listen();
  return fake;
}
