/**
 * One kit per platform, all of the same shape, for the connector contract suite
 * (src/features/connectors/contract.test.ts): how the platform authenticates a delivery, the
 * bodies it sends (built from the shapes of CONNECTORS.md and the samples in
 * test/fixtures/platforms), how its fake API records what Parley sent it, and what the platform
 * cannot do (capabilities, each with its reason).
 *
 * WhatsApp Cloud, Telegram, Instagram and Messenger talk to one FakePlatform (fake-platform.ts);
 * Codechat v1 and Evolution v2 each start their own fake gateway (fake-gateway.ts).
 */
import { createHash, createHmac } from 'node:crypto';
import { startFakeGateway, type FakeGateway, type GatewayKind } from './fake-gateway.ts';
import { FAKE_PLATFORM_CREDENTIALS, type FakePlatform, type PlatformCall } from './fake-platform.ts';

export type KitPlatform = 'whatsapp' | 'telegram' | 'instagram' | 'messenger' | 'codechat' | 'evolution';

export interface KitCapabilities {
  /**
   * The delivery statuses the platform reports about our messages, in the order they happen.
   * Telegram: none (the Bot API has no delivered/read receipts, CONNECTORS.md §2.6). Instagram:
   * only `read` (`messaging_seen`; it has no delivery webhooks, §3).
   */
  statuses: Array<'delivered' | 'read'>;
  /**
   * The platform reports our own sends back as messages (WhatsApp `smb_message_echoes`, Meta
   * `is_echo`, the gateways' `fromMe`). Telegram: bots never receive their own messages (§9.1).
   */
  echoes: boolean;
  /**
   * Parley refuses a free-form reply more than 24 h after the customer last wrote, without calling
   * the platform: WhatsApp Cloud only (§1.7). Instagram and Messenger have a 24-hour window too
   * (§3), but there the platform itself refuses the send (a 4xx: the reply fails); Telegram and the
   * gateways (an ordinary WhatsApp account) have none.
   */
  window24h: boolean;
  /**
   * A `read` names one message but covers every earlier one of the chat: Instagram's `read.mid`
   * (§3) and Messenger's `read.watermark` (§4). WhatsApp Cloud and the gateways report each
   * message read on its own.
   */
  readCoversEarlier: boolean;
}

export interface KitInbox {
  id: string;
  /** The inbox's webhook token (Meta verify token, Telegram secret_token, the gateways' `?token=`). */
  verify_token: string;
}

/** What authenticates a delivery: headers and a query string (`''` or `?token=…`). */
export interface KitAuth {
  headers: Record<string, string>;
  query: string;
}

/** A body the platform posts, and the external id Parley keeps for its message. */
export interface KitDelivery {
  body: unknown;
  externalId: string;
}

/** One text send call the platform got (refused ones too): recipient, text, and the id it answered. */
export interface SentText {
  to: string;
  text: string;
  ok: boolean;
  /** The external id Parley should keep for the new message (Telegram: `<chat id>:<message id>`). */
  externalId?: string;
}

/** A kit connected to its platform's fake. Bodies are built for contact ids given by `contact(i)`. */
export interface RunningKit {
  credentials: Record<string, string>;
  /** The authentication the platform sends with the raw body `raw`. */
  auth(raw: string, inbox: KitInbox): KitAuth;
  /** Wrong authentications, each refused with 403 (`raw`: the bytes actually sent, when they were tampered with). */
  badAuth(raw: string, inbox: KitInbox): Array<{ name: string; auth: KitAuth; raw?: string }>;
  /** The platform's id of the i-th test contact (wa_id, Telegram user id, IGSID, PSID, phone). */
  contact(i: number): string;
  /** The id Parley keeps for that contact in the inbox (the gateways: its JID). */
  identity(contact: string): string;
  /** A text from the contact; `n` makes the message id; `at` (Unix seconds) when it was written. */
  textIn(contact: string, n: number, text: string, at?: number): KitDelivery;
  /** An image from the contact, its bytes served by the fake. */
  imageIn(contact: string, n: number, png: Buffer): KitDelivery;
  /** A status of one of our messages; null when the platform does not report that status. */
  statusIn(ourExternalId: string, contact: string, status: 'delivered' | 'read'): unknown;
  /** The platform's echo of our message; null when the platform does not echo. */
  echoIn(ourExternalId: string, contact: string, text: string): unknown;
  /** A message from the contact of a type the parser does not know. */
  unknownIn(contact: string, n: number): KitDelivery;
  /** Every text send call of this kit's inbox, in order (refused ones too). */
  sends(): SentText[];
  /** The next `n` sends fail with `status` (5xx) at the platform. */
  failNext(n: number, status: number): void;
  /** Everything the platform got from Parley, serialized (to look for what must never reach it). */
  transcript(): string;
  close(): Promise<void>;
}

export interface PlatformKit {
  platform: KitPlatform;
  capabilities: KitCapabilities;
  start(api: FakePlatform): Promise<RunningKit>;
}

type J = Record<string, unknown>;
const APP_SECRET = 'contract-meta-app-secret';
const nowSec = () => Math.floor(Date.now() / 1000);
const metaSign = (raw: string, secret: string) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}` });
const tamper = (raw: string) => JSON.stringify({ ...(JSON.parse(raw) as J), tampered: true });
const pad = (n: number, width: number) => String(n).padStart(width, '0');
const asAuth = (headers: Record<string, string>, query = ''): KitAuth => ({ headers, query });

/** Meta signs the raw body with the app secret (§1.2): another secret, changed bytes, a SHA-1 header are refused. */
const metaAuth = {
  auth: (raw: string): KitAuth => ({ headers: metaSign(raw, APP_SECRET), query: '' }),
  badAuth: (raw: string) => [
    { name: 'signed with another secret', auth: { headers: metaSign(raw, 'another-app-secret'), query: '' } },
    { name: 'body changed after signing', auth: { headers: metaSign(raw, APP_SECRET), query: '' }, raw: tamper(raw) },
    { name: 'a SHA-1 signature', auth: { headers: { 'x-hub-signature-256': `sha1=${createHmac('sha1', APP_SECRET).update(raw).digest('hex')}` }, query: '' } },
  ],
};

/** The fake's calls that `pick` reads as text sends, in order. */
const textSends = (api: FakePlatform, pick: (c: PlatformCall) => { to: unknown; text: unknown } | null): SentText[] =>
  api.calls.flatMap((c) => {
    const s = pick(c);
    return s ? [{ to: String(s.to), text: String(s.text), ok: c.status < 300, ...(c.answeredId ? { externalId: c.answeredId } : {}) }] : [];
  });

const whatsapp: PlatformKit = {
  platform: 'whatsapp',
  capabilities: { statuses: ['delivered', 'read'], echoes: true, window24h: true, readCoversEarlier: false },
  async start(api) {
    const creds = FAKE_PLATFORM_CREDENTIALS.whatsapp;
    const display = '15550001111';
    const envelope = (field: string, value: J) => ({ object: 'whatsapp_business_account', entry: [{ id: '102290129340398', changes: [{ field, value: { messaging_product: 'whatsapp', metadata: { display_phone_number: display, phone_number_id: creds.phone_number_id }, ...value } }] }] });
    const message = (contact: string, n: number, at: number, payload: J) => {
      const id = `wamid.HBgN${contact}FQIAEhgU${pad(n, 6)}`;
      return { externalId: id, body: envelope('messages', { contacts: [{ profile: { name: `Cliente ${n}` }, wa_id: contact }], messages: [{ from: contact, id, timestamp: String(at), ...payload }] }) };
    };
    return {
      credentials: { ...creds, app_secret: APP_SECRET },
      ...metaAuth,
      contact: (i) => `5511987${pad(i, 6)}`,
      identity: (c) => c,
      textIn: (c, n, text, at = nowSec()) => message(c, n, at, { type: 'text', text: { body: text } }),
      imageIn: (c, n, png) => message(c, n, nowSec(), { type: 'image', image: { mime_type: 'image/png', sha256: createHash('sha256').update(png).digest('base64'), id: api.addMedia(png, 'image/png').id } }),
      statusIn: (id, c, status) => envelope('messages', { statuses: [{ id, status, timestamp: String(nowSec()), recipient_id: c, conversation: { id: 'c0ffee', origin: { type: 'service' } }, pricing: { billable: true, pricing_model: 'CBP', category: 'service' } }] }),
      echoIn: (id, c, text) => envelope('smb_message_echoes', { message_echoes: [{ from: display, to: c, id, timestamp: String(nowSec()), type: 'text', text: { body: text } }] }),
      unknownIn: (c, n) => message(c, n, nowSec(), { type: 'hologram', hologram: { id: 'h1', depth: 3 } }),
      sends: () => textSends(api, (x) => (x.platform === 'whatsapp' && x.method === 'POST' && x.path === `/${creds.phone_number_id}/messages` && x.body.type === 'text' ? { to: x.body.to, text: (x.body.text as J).body } : null)),
      failNext: (n, status) => api.failNext(n, status),
      transcript: () => JSON.stringify(api.calls.filter((x) => x.platform === 'whatsapp')),
      close: async () => undefined,
    };
  },
};

const telegram: PlatformKit = {
  platform: 'telegram',
  capabilities: { statuses: [], echoes: false, window24h: false, readCoversEarlier: false },
  async start(api) {
    const token = FAKE_PLATFORM_CREDENTIALS.telegram.bot_token;
    let update = 810_000_000;
    const message = (contact: string, n: number, at: number, content: J) => {
      const from = { id: Number(contact), is_bot: false, first_name: 'Cliente', last_name: String(n), language_code: 'pt-br' };
      return { externalId: `${contact}:${n}`, body: { update_id: ++update, message: { message_id: n, from, chat: { id: Number(contact), first_name: 'Cliente', last_name: String(n), type: 'private' }, date: at, ...content } } };
    };
    return {
      credentials: { bot_token: token },
      // Telegram echoes the secret_token given to setWebhook (§2.1); there is no body signature.
      auth: (_raw, inbox) => ({ headers: { 'x-telegram-bot-api-secret-token': inbox.verify_token }, query: '' }),
      badAuth: (_raw, inbox) => [
        { name: 'another secret token', auth: { headers: { 'x-telegram-bot-api-secret-token': 'not-the-secret-token' }, query: '' } },
        { name: 'the token with one character changed', auth: { headers: { 'x-telegram-bot-api-secret-token': `${inbox.verify_token.slice(0, -1)}${inbox.verify_token.endsWith('A') ? 'B' : 'A'}` }, query: '' } },
      ],
      contact: (i) => String(700_000_000 + i),
      identity: (c) => c,
      textIn: (c, n, text, at = nowSec()) => message(c, n, at, { text }),
      imageIn: (c, n, png) => {
        const id = api.addMedia(png, 'image/png').id;
        // Every size of the picture, smallest first; only the largest is served: the parser must take it.
        const photo = [{ file_id: `thumb-${id}`, file_unique_id: `t${id}`, width: 90, height: 68, file_size: 1200 }, { file_id: id, file_unique_id: `u${id}`, width: 1280, height: 960, file_size: png.length }];
        return message(c, n, nowSec(), { photo });
      },
      statusIn: () => null,
      echoIn: () => null,
      // An update kind from a future Bot API: kept as `update:<update_id>`.
      unknownIn: (c, n) => {
        const id = ++update;
        return { externalId: `update:${id}`, body: { update_id: id, future_update_kind: { chat: { id: Number(c), type: 'private' }, from: { id: Number(c), is_bot: false, first_name: 'Cliente' }, date: nowSec(), n } } };
      },
      sends: () => textSends(api, (x) => (x.platform === 'telegram' && x.path === `/bot${token}/sendMessage` ? { to: x.body.chat_id, text: x.body.text } : null)),
      failNext: (n, status) => api.failNext(n, status),
      transcript: () => JSON.stringify(api.calls.filter((x) => x.platform === 'telegram')),
      close: async () => undefined,
    };
  },
};

/** Instagram (`object: "instagram"`) and Messenger (`object: "page"`): the same event shapes (§3, §4). */
function metaKit(platform: 'instagram' | 'messenger'): PlatformKit {
  const ig = platform === 'instagram';
  return {
    platform,
    capabilities: { statuses: ig ? ['read'] : ['delivered', 'read'], echoes: true, window24h: false, readCoversEarlier: true },
    async start(api) {
      const token = FAKE_PLATFORM_CREDENTIALS[platform].access_token;
      const business = ig ? '17841400000000001' : '105000000000001';
      const envelope = (ev: J) => ({ object: ig ? 'instagram' : 'page', entry: [{ id: business, time: Date.now(), messaging: [{ timestamp: Date.now(), ...ev }] }] });
      const fromContact = (c: string, n: number, message: J, at = Date.now()) => {
        const mid = `m_${platform}_${c}_${pad(n, 6)}`;
        return { externalId: mid, body: envelope({ sender: { id: c }, recipient: { id: business }, timestamp: at, message: { mid, ...message } }) };
      };
      return {
        credentials: { access_token: token, app_secret: APP_SECRET },
        ...metaAuth,
        contact: (i) => `${ig ? '1784' : '2400'}${pad(i, 12)}`,
        identity: (c) => c,
        textIn: (c, n, text, at) => fromContact(c, n, { text }, at === undefined ? undefined : at * 1000),
        imageIn: (c, n, png) => fromContact(c, n, { attachments: [{ type: 'image', payload: { url: api.addMedia(png, 'image/png').url } }] }),
        // Instagram: `read{mid}` only. Messenger: `delivery{mids, watermark}` and `read{watermark}` (every message up to it).
        statusIn: (id, c, status) => {
          if (ig) return status === 'read' ? envelope({ sender: { id: c }, recipient: { id: business }, read: { mid: id } }) : null;
          return envelope({ sender: { id: c }, recipient: { id: business }, ...(status === 'delivered' ? { delivery: { mids: [id], watermark: Date.now() } } : { read: { watermark: Date.now() } }) });
        },
        echoIn: (id, c, text) => envelope({ sender: { id: business }, recipient: { id: c }, message: { mid: id, text, is_echo: true, app_id: 1_517_000_000 } }),
        unknownIn: (c, n) => fromContact(c, n, { attachments: [{ type: 'hologram', payload: { depth: 3 } }] }),
        sends: () => textSends(api, (x) => {
          const message = x.body.message as J | undefined;
          return x.platform === 'meta' && x.path === '/me/messages' && x.token === token && typeof message?.text === 'string' ? { to: (x.body.recipient as J).id, text: message.text } : null;
        }),
        failNext: (n, status) => api.failNext(n, status),
        transcript: () => JSON.stringify(api.calls.filter((x) => x.platform === 'meta' && x.token === token)),
        close: async () => undefined,
      };
    },
  };
}

/** Codechat v1 and Evolution v2 (§6): no signature, the webhook URL's `?token=`; their own fake gateway. */
function gatewayKit(kind: GatewayKind): PlatformKit {
  const textOf = (b: J): string => String(kind === 'codechat' ? (b.textMessage as J | undefined)?.text : b.text);
  return {
    platform: kind,
    capabilities: { statuses: ['delivered', 'read'], echoes: true, window24h: false, readCoversEarlier: false },
    async start() {
      const gw: FakeGateway = await startFakeGateway({ kind });
      // Echoes are posted by the suite (echoIn), through the same route as every other delivery.
      gw.echo = 'none';
      const idOf = (contact: string, n: number) => `3A${contact.slice(-6)}${pad(n, 10)}`;
      const data = (body: J) => body.data as J;
      const run: RunningKit = {
        credentials: { base_url: gw.url, instance: gw.instance, api_key: gw.apiKey },
        auth: (_raw, inbox) => ({ headers: {}, query: `?token=${encodeURIComponent(inbox.verify_token)}` }),
        badAuth: (_raw, inbox) => [
          { name: 'another token in the URL', auth: asAuth({}, '?token=not-the-token') },
          { name: 'the token with one character changed', auth: asAuth({}, `?token=${encodeURIComponent(`${inbox.verify_token.slice(0, -1)}${inbox.verify_token.endsWith('A') ? 'B' : 'A'}`)}`) },
          { name: 'another token in the header', auth: asAuth({ 'x-parley-webhook-token': 'not-the-token' }) },
        ],
        contact: (i) => `5511987${pad(i, 6)}`,
        identity: (c) => `${c}@s.whatsapp.net`,
        textIn: (c, n, text, at) => {
          const body = gw.inboundBody({ from: c, id: idOf(c, n), pushName: `Cliente ${n}`, text });
          if (at !== undefined) data(body).messageTimestamp = at;
          return { body, externalId: idOf(c, n) };
        },
        imageIn: (c, n, png) => ({ body: gw.inboundBody({ from: c, id: idOf(c, n), image: png, mimetype: 'image/png', media: 'by_id' }), externalId: idOf(c, n) }),
        statusIn: (id, c, status) => gw.statusBody(id, c, status === 'delivered' ? 'DELIVERY_ACK' : 'READ'),
        echoIn: (id, c, text) => gw.inboundBody({ from: c, id, fromMe: true, text }),
        unknownIn: (c, n) => {
          const body = gw.inboundBody({ from: c, id: idOf(c, n), text: 'x' });
          const d = data(body);
          if (kind === 'codechat') Object.assign(d, { messageType: 'hologramMessage', content: { hologramMessage: { depth: 3 } } });
          else Object.assign(d, { messageType: 'hologramMessage', message: { hologramMessage: { depth: 3 } } });
          return { body, externalId: idOf(c, n) };
        },
        sends: () => [
          ...gw.refused.filter((r) => r.route === 'POST /message/sendText').map((r) => ({ to: String(r.body.number), text: textOf(r.body), ok: false })),
          ...gw.sends.filter((s) => s.kind === 'text').map((s) => ({ to: s.to, text: textOf(s.body), ok: true, externalId: s.keyId })),
        ],
        failNext: (n, status) => gw.failNext(n, status),
        transcript: () => JSON.stringify([gw.sends, gw.refused, gw.requests]),
        close: () => gw.close(),
      };
      return run;
    },
  };
}

/** Every platform connector, one kit each. */
export const KITS: readonly PlatformKit[] = [whatsapp, telegram, metaKit('instagram'), metaKit('messenger'), gatewayKit('codechat'), gatewayKit('evolution')];
