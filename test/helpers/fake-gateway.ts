/**
 * A fake Baileys-based WhatsApp gateway (CONNECTORS.md §6): ONE instance of a Codechat v1 server or
 * of an Evolution API v2 server, on 127.0.0.1 and a free port, for end-to-end tests of the relay
 * over real HTTP. It answers the send, read, delete, number-check and media endpoints with each
 * product's bodies, status codes and error shapes, posts its webhooks in each product's envelope
 * (inbound customer messages, statuses, and the `fromMe` echo of every accepted send), and keeps
 * every media's bytes so the by-id media endpoints and the public media URLs return exactly them.
 *
 * NOTE: this follows the products' source (code-chat-br/whatsapp-api 1.3.x, EvolutionAPI 2.3.x), not
 * Parley. Codechat v1 quotes by `options.quotedMessageId`, the message's database ROW id (an
 * integer, `data.id` of its webhook, `id` of a send's answer), not its WhatsApp id; its
 * deleteMessageForEveryone takes that row id too (`id` in the query or body, read with parseInt);
 * its ids of sent messages are ULIDs. Evolution drops a quote whose message it does not know (the
 * send goes out without it) and posts to `<webhook url>/<event>` when `webhookByEvents` is on.
 * Media given as base64 is decoded (CONNECTORS.md §6.4); the Codechat 1.3.x snapshot read for this
 * reads a non-URL media as a file under its uploads folder instead, so check the deployed version.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomInt, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buffer } from 'node:stream/consumers';

export type GatewayKind = 'codechat' | 'evolution';

export interface GatewaySend {
  /** `METHOD /group/action` (no instance). */
  route: string;
  /** The request body as given. */
  body: Record<string, unknown>;
  /** The WhatsApp id of the new message; for read and delete, the id of the message read / deleted. */
  keyId: string;
  /** The recipient as the request named it (`number`, a key's remoteJid). */
  to: string;
  kind: 'text' | 'media' | 'audio' | 'location' | 'contact' | 'reaction' | 'read' | 'delete';
  /** The chat JID the gateway resolved `to` to (BR ninth-digit rule of its createJid). */
  jid: string;
  /** Media sends: the decoded bytes (base64 decoded, or downloaded from the URL given). */
  bytes?: Buffer;
  /** Media sends: the MIME type the gateway labelled the WhatsApp message with. */
  mimetype?: string;
  /** The WhatsApp id of the message quoted, when the gateway actually quoted one. */
  replyTo?: string;
}

export type InboundMedia = 'by_id' | 'base64' | 'url';
export type InboundSpec = {
  /** Digits, e.g. '5511987654321'. */
  from: string;
  id?: string;
  pushName?: string;
  /** Written on the business's own phone (not through the API). */
  fromMe?: boolean;
  /** The WhatsApp id of the quoted message. */
  replyTo?: string;
  /** The contact's privacy linked id (digits): Evolution then addresses the chat as `<lid>@lid` with the phone in remoteJidAlt. */
  lid?: string;
} & (
  | { text: string }
  | { audio: Buffer; ptt?: boolean; mimetype?: string; media?: InboundMedia }
  | { image: Buffer; mimetype?: string; caption?: string; media?: InboundMedia }
  | { video: Buffer; mimetype?: string; caption?: string; media?: InboundMedia }
  | { document: Buffer; mimetype: string; fileName: string; caption?: string; media?: InboundMedia }
  | { location: { latitude: number; longitude: number; name?: string; address?: string } }
  | { contact: { displayName: string; vcard: string } }
  | { reaction: { targetId: string; emoji: string } }
);

export interface FakeGateway {
  /** `http://127.0.0.1:<port>` */
  url: string;
  kind: GatewayKind;
  instance: string;
  /** The global API key (header `apikey`). */
  apiKey: string;
  /** Evolution: the instance token, also accepted as `apikey`, and sent in every webhook body's `apikey`. */
  instanceToken: string;
  ownerJid: string;
  /** Every accepted send call, in order. */
  sends: GatewaySend[];
  requests: Array<{ method: string; path: string; status: number }>;
  /** Settable: where the gateway posts its events. */
  webhookUrl: string | undefined;
  /** Settable, Evolution: post to `<webhookUrl>/<event-name>` (plain string concatenation, as Evolution does). */
  webhookByEvents: boolean;
  /** Every webhook POST: the event and the receiver's status, or 'error'. */
  webhookDeliveries: Array<{ event: string; status: number | 'error' }>;
  /** After each accepted send, post its fromMe echo: 'before' the HTTP answer of the send (the race real relays hit), 'after' it, or 'none'. Default 'after'. */
  echo: 'before' | 'after' | 'none';
  /** Settable: which events echo a send, in order. Default ['messages.upsert']; real servers also emit 'send.message' when subscribed. */
  echoEvents: Array<'messages.upsert' | 'send.message'>;
  /** Settable: numbers (digits) that are not on WhatsApp: sends to them are refused as the products refuse them. */
  unregistered: Set<string>;
  /** Settable: every call answers 503 (a proxy's HTML page) while true. */
  down: boolean;
  /** The next `n` send calls (`POST /message/send*`) are refused with `status` (default 503) in the product's error shape; see `refused`. */
  failNext(n: number, status?: number): void;
  /** Every send call refused by failNext, in order. */
  refused: Array<{ route: string; body: Record<string, unknown>; status: number }>;
  /** The webhook body of an inbound message in this kind's envelope; the message (and its media) is kept for by-id fetches. */
  inboundBody(m: InboundSpec): Record<string, unknown>;
  /** inboundBody, POSTed to webhookUrl; the receiver's status and the message id. Throws when the POST itself fails. */
  deliverInbound(m: InboundSpec): Promise<{ status: number; id: string }>;
  /** A messages.update status event (SERVER_ACK | DELIVERY_ACK | READ | PLAYED | ERROR) for a message, POSTed to webhookUrl. */
  deliverStatus(id: string, remoteJid: string, status: string): Promise<number>;
  /** The body deliverStatus posts. */
  statusBody(id: string, remoteJid: string, status: string): Record<string, unknown>;
  /** Codechat: the database row id of a message (what quotedMessageId and deleteMessageForEveryone take). */
  rowIdOf(keyId: string): number | undefined;
  /** Resolves when every echo started so far has been delivered. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;
interface Reply {
  status: number;
  json?: unknown;
  body?: Buffer;
  headers?: Record<string, string>;
  /** Runs once the answer is sent (the 'after' echo). */
  after?: () => Promise<void>;
}
interface Media {
  bytes: Buffer;
  mimetype: string;
  mediaKey: string;
  directPath: string;
  folder: 'image' | 'audio' | 'video' | 'document' | 'sticker';
  fileName?: string;
}
/** A message the instance knows (received or sent): its Baileys node and, for media, the bytes. */
interface Stored {
  rowId: number;
  keyId: string;
  /** `<digits>@s.whatsapp.net`. */
  chatJid: string;
  lid?: string;
  fromMe: boolean;
  type: string;
  node: Json | string;
  timestamp: number;
  pushName?: string;
  media?: Media;
}
type Handler = (b: Json, query: URLSearchParams) => Promise<Reply>;
type Issue = { property: string; message: string };

class Refusal extends Error {
  constructor(readonly reply: Reply) {
    super(`HTTP ${reply.status}`);
  }
}

const MEDIA_TYPES = ['imageMessage', 'documentMessage', 'audioMessage', 'videoMessage', 'stickerMessage', 'ptvMessage'];
const BAILEYS_DEFAULT_MIME: Record<string, string> = { image: 'image/jpeg', video: 'video/mp4', audio: 'audio/ogg; codecs=opus', document: 'application/pdf', sticker: 'image/webp' };
const TYPE_BY_EXT: Record<string, string> = {
  ogg: 'audio/ogg', oga: 'audio/ogg', opus: 'audio/ogg', mp3: 'audio/mpeg', m4a: 'audio/mp4', aac: 'audio/aac', wav: 'audio/wav',
  jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', gif: 'image/gif',
  mp4: 'video/mp4', '3gp': 'video/3gpp', pdf: 'application/pdf', txt: 'text/plain', csv: 'text/csv', zip: 'application/zip',
  doc: 'application/msword', docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
};
/** mime-types' first extension (what the gateways name a file after). */
const EXT_BY_TYPE: Record<string, string> = {
  'audio/ogg': 'oga', 'audio/mpeg': 'mpga', 'audio/mp4': 'm4a', 'audio/aac': 'aac', 'image/jpeg': 'jpeg', 'image/png': 'png', 'image/webp': 'webp',
  'image/gif': 'gif', 'video/mp4': 'mp4', 'video/3gpp': '3gp', 'application/pdf': 'pdf', 'text/plain': 'txt',
};
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

const obj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const isObj = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const nowSec = (): number => Math.floor(Date.now() / 1000);
const digitsOf = (jid: string): string => jid.split('@')[0]?.split(':')[0] ?? jid;
const hexId = (bytes: number): string => randomBytes(bytes).toString('hex').toUpperCase();
const baseMime = (m: string): string => m.split(';')[0]?.trim().toLowerCase() ?? m;
const mimeOfName = (name: string | undefined): string | undefined => TYPE_BY_EXT[name?.split('.').pop()?.toLowerCase() ?? ''];
const extOf = (mime: string): string => EXT_BY_TYPE[baseMime(mime)] ?? 'bin';

/** A ULID (what Codechat v1 names the messages it sends). */
function ulid(): string {
  let time = Date.now();
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[time % 32] + out;
    time = Math.floor(time / 32);
  }
  for (let i = 0; i < 16; i++) out += CROCKFORD[randomInt(32)];
  return out;
}

/**
 * createJid of each product for a bare number. Brazil: a 13-digit 55 DD 9 XXXXXXXX keeps its 9 when
 * DDD < 31 or the subscriber starts below 7, else loses it. Codechat v1's formatBRNumber returns
 * undefined for any other 13-digit number of that shape (MX, AR...): "undefined@s.whatsapp.net".
 */
function createJid(kind: GatewayKind, number: string): string {
  if (/^[\w.:-]+@(s\.whatsapp\.net|g\.us|lid|broadcast|newsletter)$/i.test(number)) return number.replace(/:\d+(?=@)/, '');
  let n = kind === 'evolution' ? number.replace(/[\s+()]/g, '').split(':')[0]?.split('@')[0] ?? '' : number;
  if (kind === 'evolution') {
    if (n.includes('-') && n.length >= 24) return `${n.replace(/[^\d-]/g, '')}@g.us`;
    n = n.replace(/\D/g, '');
    if (n.length >= 18) return `${n}@g.us`;
    if ((n.startsWith('52') || n.startsWith('54')) && n.length === 13) n = n.slice(0, 2) + n.slice(3);
  }
  const br = n.match(/^(\d{2})(\d{2})\d(\d{8})$/);
  if (br) {
    const [, cc, ddd, rest] = br as unknown as [string, string, string, string];
    if (cc !== '55') return kind === 'codechat' ? 'undefined@s.whatsapp.net' : `${n}@s.whatsapp.net`;
    return Number(rest[0]) < 7 || Number(ddd) < 31 ? `${n}@s.whatsapp.net` : `${cc}${ddd}${rest}@s.whatsapp.net`;
  }
  return n.includes('-') ? `${n}@g.us` : `${n}@s.whatsapp.net`;
}

/** The whole request body. */
const readBody = (req: IncomingMessage): Promise<Buffer> => buffer(req);

/** ffmpeg's AAC-in-MP4 of an audio (Evolution's getBase64FromMediaMessage with convertToMp4). */
function toMp4(input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', 'pipe:0', '-vn', '-c:a', 'aac', '-movflags', 'frag_keyframe+empty_moov', '-f', 'mp4', 'pipe:1']);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.stderr.on('data', (c: Buffer) => err.push(c));
    p.on('error', (e) => (clearTimeout(timer), reject(e)));
    p.on('close', (code) => (clearTimeout(timer), code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(Buffer.concat(err).toString() || `ffmpeg exited ${code}`))));
    p.stdin.on('error', () => undefined);
    p.stdin.end(input);
  });
}

class GatewayFake implements FakeGateway {
  url = '';
  readonly kind: GatewayKind;
  readonly instance: string;
  readonly apiKey: string;
  readonly instanceToken = randomUUID().replace(/-/g, '').toUpperCase();
  readonly ownerJid: string;
  sends: GatewaySend[] = [];
  requests: FakeGateway['requests'] = [];
  webhookUrl: string | undefined;
  webhookByEvents = false;
  webhookDeliveries: FakeGateway['webhookDeliveries'] = [];
  echo: FakeGateway['echo'] = 'after';
  echoEvents: FakeGateway['echoEvents'] = ['messages.upsert'];
  unregistered = new Set<string>();
  down = false;
  refused: FakeGateway['refused'] = [];
  #failing = { left: 0, status: 503 };
  readonly #server = createServer((req, res) => void this.#handle(req, res));
  readonly #pending = new Set<Promise<void>>();
  readonly #byId = new Map<string, Stored>();
  readonly #handlers: Map<string, Handler>;
  readonly #instanceId: number | string;
  readonly #created = new Date().toISOString();
  #row = 7000;

  constructor(opts: { kind: GatewayKind; instance?: string; apiKey?: string; ownerJid?: string }) {
    this.kind = opts.kind;
    this.instance = opts.instance ?? (opts.kind === 'codechat' ? 'loja-recife' : 'atendimento');
    this.apiKey = opts.apiKey ?? randomBytes(16).toString('hex').toUpperCase();
    this.ownerJid = opts.ownerJid ?? '558130001234@s.whatsapp.net';
    this.#instanceId = opts.kind === 'codechat' ? 3 : randomUUID();
    this.#handlers = opts.kind === 'codechat' ? this.#codechatRoutes() : this.#evolutionRoutes();
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  rowIdOf(keyId: string): number | undefined {
    return this.#byId.get(keyId)?.rowId;
  }

  async idle(): Promise<void> {
    while (this.#pending.size) await Promise.allSettled([...this.#pending]);
  }

  async close(): Promise<void> {
    await this.idle();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---------------------------------------------------------------- webhooks out

  inboundBody(spec: InboundSpec): Json {
    const mode = 'media' in spec ? (spec.media ?? 'by_id') : 'by_id';
    if (mode === 'base64' && this.kind === 'codechat') throw new Error('fake gateway: Codechat webhooks carry no inline base64 (use by_id or url)');
    const s = this.#inbound(spec);
    if (this.kind === 'codechat') {
      const data: Json = { ...this.#codechatRow(s), keyLid: s.lid ? `${s.lid}@lid` : null, keyParticipant: null, keyParticipantLid: null, info: { type: 'notify' } };
      if (s.media && mode === 'url') data.media = { path: this.#publicPath(s.media) };
      return this.#envelope('messages.upsert', data);
    }
    const extra: Json = {};
    if (s.media && mode === 'base64') extra.base64 = s.media.bytes.toString('base64');
    if (s.media && mode === 'url') extra.mediaUrl = `${this.url}/evolution-media/${String(this.#instanceId)}/${s.chatJid}/${s.media.folder}/${s.keyId}.${extOf(s.media.mimetype)}`;
    return this.#envelope('messages.upsert', this.#evolutionData(s, s.fromMe ? 'SERVER_ACK' : 'DELIVERY_ACK', extra));
  }

  async deliverInbound(spec: InboundSpec): Promise<{ status: number; id: string }> {
    const body = this.inboundBody(spec);
    const data = obj(body.data);
    const id = String(this.kind === 'codechat' ? data.keyId : obj(data.key).id);
    return { status: await this.#postOrThrow('messages.upsert', body), id };
  }

  failNext(n: number, status = 503): void {
    this.#failing = { left: n, status };
  }

  async deliverStatus(id: string, remoteJid: string, status: string): Promise<number> {
    return this.#postOrThrow('messages.update', this.statusBody(id, remoteJid, status));
  }

  statusBody(id: string, remoteJid: string, status: string): Json {
    const jid = remoteJid.includes('@') ? remoteJid : `${remoteJid}@s.whatsapp.net`;
    const fromMe = this.#byId.get(id)?.fromMe ?? true;
    const data: Json =
      this.kind === 'codechat'
        ? { remoteJid: jid, id, fromMe, status, dateTime: new Date().toISOString(), instanceId: this.#instanceId }
        : { messageId: `cm${randomBytes(12).toString('hex')}`, keyId: id, remoteJid: jid, fromMe, status, instanceId: this.#instanceId };
    return this.#envelope('messages.update', data);
  }

  /** Codechat v1: `{event, instance{…}, data}`; Evolution: `{event, instance: name, data, destination, date_time, sender, server_url, apikey}`. */
  #envelope(event: string, data: Json): Json {
    if (this.kind === 'codechat') {
      const instance = { id: this.#instanceId, name: this.instance, description: null, connectionStatus: 'ONLINE', ownerJid: this.ownerJid, profilePicUrl: null, createdAt: this.#created, updatedAt: this.#created, externalAttributes: null };
      return { event, instance, data };
    }
    // Evolution's date_time: the server's local wall-clock time with a Z appended.
    const local = new Date(Date.now() - new Date().getTimezoneOffset() * 60_000).toISOString();
    return { event, instance: this.instance, data, destination: this.webhookUrl ?? '', date_time: local, sender: this.ownerJid, server_url: this.url, apikey: this.instanceToken };
  }

  async #post(event: string, body: Json): Promise<number | 'error'> {
    const base = this.webhookUrl;
    if (!base) return 'error';
    const url = this.kind === 'evolution' && this.webhookByEvents ? `${base}/${event.replace(/\./g, '-')}` : base;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.kind === 'codechat') headers['Resource-Owner'] = this.ownerJid;
    let status: number | 'error';
    try {
      const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
      await res.arrayBuffer().catch(() => undefined);
      status = res.status;
    } catch {
      status = 'error';
    }
    this.webhookDeliveries.push({ event, status });
    return status;
  }

  async #postOrThrow(event: string, body: Json): Promise<number> {
    if (!this.webhookUrl) throw new Error('fake gateway: webhookUrl is not set');
    const status = await this.#post(event, body);
    if (status === 'error') throw new Error(`fake gateway: POST ${event} to ${this.webhookUrl} failed`);
    return status;
  }

  /** The fromMe echo(es) of a send: Codechat repeats the stored row, Evolution its prepared message. */
  async #echo(s: Stored): Promise<void> {
    for (const event of this.echoEvents) {
      const data = this.kind === 'codechat' ? this.#codechatRow(s) : this.#evolutionData(s, event === 'send.message' ? 'PENDING' : 'SERVER_ACK', {});
      await this.#post(event, this.#envelope(event, data));
    }
  }

  #track(p: Promise<void>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  // ---------------------------------------------------------------- messages

  #keep(s: Stored): Stored {
    this.#byId.set(s.keyId, s);
    return s;
  }

  #find(pred: (s: Stored) => boolean): Stored | undefined {
    for (const s of this.#byId.values()) if (pred(s)) return s;
    return undefined;
  }

  /** Codechat's message row: messages.upsert `data`, and the answer of a send. */
  #codechatRow(s: Stored): Json {
    const content = typeof s.node === 'string' ? { text: s.node } : s.node;
    return {
      id: s.rowId,
      keyId: s.keyId,
      keyFromMe: s.fromMe,
      keyRemoteJid: s.chatJid,
      ...(s.pushName !== undefined ? { pushName: s.pushName } : {}),
      messageType: s.type,
      content,
      messageTimestamp: s.timestamp,
      instanceId: this.#instanceId,
      device: s.fromMe && !s.pushName ? 'web' : 'ios',
      isGroup: s.chatJid.endsWith('@g.us'),
    };
  }

  /** Evolution's prepareMessage: extendedTextMessage → conversation, documentWithCaption → documentMessage, contextInfo lifted to `data`. */
  #evolutionData(s: Stored, status: string, extra: Json): Json {
    let type = s.type;
    const message: Json = {};
    const node = obj(s.node);
    if (typeof s.node === 'string') message.conversation = s.node;
    else if (type === 'extendedTextMessage') {
      type = 'conversation';
      message.conversation = node.text;
    } else if (type === 'documentWithCaptionMessage') {
      type = 'documentMessage';
      message.documentMessage = obj(obj(node.message).documentMessage);
    } else message[type] = s.node;
    const inner = obj(message[type]);
    const contextInfo = isObj(node.contextInfo) ? node.contextInfo : isObj(inner.contextInfo) ? inner.contextInfo : undefined;
    message.messageContextInfo = { deviceListMetadataVersion: 2 };
    Object.assign(message, extra);
    const key: Json = s.lid && !s.fromMe ? { remoteJid: `${s.lid}@lid`, remoteJidAlt: s.chatJid, addressingMode: 'lid', fromMe: s.fromMe, id: s.keyId } : { remoteJid: s.chatJid, fromMe: s.fromMe, id: s.keyId };
    return {
      key,
      pushName: s.pushName ?? 'Parley Test Business',
      status,
      message,
      ...(contextInfo ? { contextInfo } : {}),
      messageType: type,
      messageTimestamp: s.timestamp,
      instanceId: this.#instanceId,
      source: s.fromMe && !s.pushName ? 'web' : 'ios',
    };
  }

  /** Baileys' fields of an uploaded media (the CDN URL is WhatsApp's: never fetchable from a test). */
  #media(bytes: Buffer, mimetype: string, folder: Media['folder'], fileName?: string): { media: Media; node: Json } {
    const mediaKey = randomBytes(32).toString('base64');
    const directPath = `/v/t62.7117-24/${randomInt(10_000_000, 99_999_999)}_${randomBytes(8).toString('hex')}.enc?ccb=11-4&oh=01_${randomBytes(12).toString('base64url')}&oe=${(nowSec() + 30 * 86400).toString(16).toUpperCase()}&_nc_sid=5e03e0`;
    const node: Json = {
      url: `https://mmg.whatsapp.net${directPath}&mms3=true`,
      mimetype,
      fileSha256: createHash('sha256').update(bytes).digest('base64'),
      fileLength: String(bytes.length),
      mediaKey,
      fileEncSha256: randomBytes(32).toString('base64'),
      directPath,
      mediaKeyTimestamp: String(nowSec()),
    };
    return { media: { bytes, mimetype, mediaKey, directPath, folder, ...(fileName ? { fileName } : {}) }, node };
  }

  /** Baileys' contextInfo of a reply to `id` (what the parsers read `stanzaId` from). */
  #quote(id: string, chatJid: string): Json {
    const q = this.#byId.get(id);
    const quotedMessage = q ? (typeof q.node === 'string' ? { conversation: q.node } : q.type === 'extendedTextMessage' ? { conversation: obj(q.node).text } : { [q.type]: q.node }) : { conversation: '' };
    return { stanzaId: id, participant: q?.fromMe ? this.ownerJid : chatJid, quotedMessage };
  }

  #inbound(spec: InboundSpec): Stored {
    const chatJid = `${spec.from}@s.whatsapp.net`;
    const ctx = spec.replyTo ? { contextInfo: this.#quote(spec.replyTo, chatJid) } : {};
    let type: string;
    let node: Json | string;
    let media: Media | undefined;
    if ('text' in spec) {
      [type, node] = spec.replyTo ? ['extendedTextMessage', { text: spec.text, ...ctx }] : ['conversation', spec.text];
    } else if ('audio' in spec) {
      const m = this.#media(spec.audio, spec.mimetype ?? 'audio/ogg; codecs=opus', 'audio');
      [type, node, media] = ['audioMessage', { ...m.node, seconds: Math.max(1, Math.round(spec.audio.length / 4000)), ptt: spec.ptt ?? true, ...ctx }, m.media];
    } else if ('image' in spec) {
      const m = this.#media(spec.image, spec.mimetype ?? 'image/jpeg', 'image');
      [type, node, media] = ['imageMessage', { ...m.node, ...(spec.caption ? { caption: spec.caption } : {}), ...ctx }, m.media];
    } else if ('video' in spec) {
      const m = this.#media(spec.video, spec.mimetype ?? 'video/mp4', 'video');
      [type, node, media] = ['videoMessage', { ...m.node, seconds: 1, ...(spec.caption ? { caption: spec.caption } : {}), ...ctx }, m.media];
    } else if ('document' in spec) {
      const m = this.#media(spec.document, spec.mimetype, 'document', spec.fileName);
      const doc = { ...m.node, title: spec.fileName, fileName: spec.fileName, ...(spec.caption ? { caption: spec.caption } : {}), ...ctx };
      // WhatsApp wraps a captioned document: documentWithCaptionMessage{message{documentMessage}}.
      [type, node] = spec.caption ? ['documentWithCaptionMessage', { message: { documentMessage: doc } }] : ['documentMessage', doc];
      media = m.media;
    } else if ('location' in spec) {
      const l = spec.location;
      [type, node] = ['locationMessage', { degreesLatitude: l.latitude, degreesLongitude: l.longitude, ...(l.name ? { name: l.name } : {}), ...(l.address ? { address: l.address } : {}), ...ctx }];
    } else if ('contact' in spec) {
      [type, node] = ['contactMessage', { displayName: spec.contact.displayName, vcard: spec.contact.vcard, ...ctx }];
    } else {
      const target = this.#byId.get(spec.reaction.targetId);
      [type, node] = ['reactionMessage', { key: { remoteJid: chatJid, fromMe: target?.fromMe ?? false, id: spec.reaction.targetId }, text: spec.reaction.emoji, senderTimestampMs: String(Date.now()) }];
    }
    const id = spec.id ?? `3A${hexId(9)}`;
    return this.#keep({ rowId: ++this.#row, keyId: id, chatJid, ...(spec.lid ? { lid: spec.lid } : {}), fromMe: spec.fromMe ?? false, type, node, timestamp: nowSec(), pushName: spec.pushName ?? (spec.fromMe ? 'Parley Test Business' : 'Cliente'), ...(media ? { media } : {}) });
  }

  /** Codechat v1's public, unauthenticated download path of a media (`media.path`). */
  #publicPath(m: Media): string {
    const q = Buffer.from(JSON.stringify({ mediaKey: m.mediaKey, directPath: m.directPath, url: `https://mmg.whatsapp.net${m.directPath}&mms3=true`, mimetype: m.mimetype })).toString('base64url');
    return `/chat/public/${m.folder}/download?q=${q}`;
  }

  // ---------------------------------------------------------------- HTTP

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req).catch(() => Buffer.alloc(0));
    const u = new URL(req.url ?? '/', 'http://fake.invalid');
    const method = req.method ?? 'GET';
    let r: Reply;
    try {
      r = this.down ? { status: 503, body: Buffer.from('<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>'), headers: { 'content-type': 'text/html' } } : await this.#route(method, u, req, raw);
    } catch (err) {
      r = err instanceof Refusal ? err.reply : this.#failure(500, 'Internal Server Error', [String(err)]);
    }
    this.requests.push({ method, path: req.url ?? '/', status: r.status });
    res.writeHead(r.status, { ...(r.json !== undefined ? { 'content-type': 'application/json; charset=utf-8' } : {}), ...r.headers });
    res.end(r.body ?? (r.json === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(r.json))), () => {
      if (r.after) this.#track(r.after());
    });
  }

  async #route(method: string, u: URL, req: IncomingMessage, raw: Buffer): Promise<Reply> {
    if (method === 'GET' && this.kind === 'codechat' && /^\/chat\/public\/\w+\/download$/.test(u.pathname)) return this.#publicMedia(u.searchParams.get('q'));
    if (method === 'GET' && this.kind === 'evolution' && u.pathname.startsWith('/evolution-media/')) {
      const id = u.pathname.split('/').pop()?.replace(/\.[^.]*$/, '') ?? '';
      const s = this.#byId.get(id);
      return s?.media ? { status: 200, body: s.media.bytes, headers: { 'content-type': baseMime(s.media.mimetype) } } : { status: 404, body: Buffer.from('NoSuchKey'), headers: { 'content-type': 'application/xml' } };
    }
    const m = u.pathname.match(/^\/(message|chat)\/([A-Za-z0-9]+)\/([^/]+)$/);
    const handler = m ? this.#handlers.get(`${method} /${m[1]}/${m[2]}`) : undefined;
    if (!m || !handler) {
      const text = `Cannot ${method} ${req.url ?? '/'}`;
      return { status: 404, json: this.kind === 'codechat' ? { status: 404, message: text, error: 'Not Found' } : { status: 404, error: 'Not Found', response: { message: [text] } } };
    }
    const instance = decodeURIComponent(m[3] ?? '');
    if (instance !== this.instance) throw this.#refuse(404, 'Not Found', [`The "${instance}" instance does not exist`]);
    const key = req.headers.apikey;
    if (key !== this.apiKey && !(this.kind === 'evolution' && key === this.instanceToken)) {
      throw new Refusal({ status: 401, json: this.kind === 'codechat' ? { status: 401, error: 'Unauthorized' } : { status: 401, error: 'Unauthorized', response: { message: 'Unauthorized' } } });
    }
    let body: Json = {};
    if ((req.headers['content-type'] ?? '').includes('json') && raw.length) {
      try {
        body = obj(JSON.parse(raw.toString('utf8')));
      } catch (err) {
        // body-parser's SyntaxError, serialized by each product's error handler.
        const text = err instanceof Error ? err.message : 'Invalid JSON';
        throw new Refusal({ status: 400, json: this.kind === 'codechat' ? { expose: true, statusCode: 400, status: 400, body: raw.toString('utf8'), type: 'entity.parse.failed' } : { status: 400, error: 'Internal Server Error', response: { message: text } } });
      }
    }
    // Codechat's dataValidate merges the query into the body of GET / DELETE / PATCH requests.
    if (this.kind === 'codechat' && ['GET', 'DELETE', 'PATCH'].includes(method)) body = { ...body, ...Object.fromEntries(u.searchParams) };
    if (this.#failing.left > 0 && method === 'POST' && m[1] === 'message' && m[2]?.startsWith('send')) {
      this.#failing.left -= 1;
      this.refused.push({ route: `POST /message/${m[2]}`, body, status: this.#failing.status });
      throw this.#refuse(this.#failing.status, this.#failing.status === 503 ? 'Service Unavailable' : 'Internal Server Error', ['Connection Closed']);
    }
    return handler(body, u.searchParams);
  }

  /** Each product's error body: Codechat `{status, error, message}`, Evolution `{status, error, response{message}}`. */
  #failure(status: number, error: string, messages: unknown[]): Reply {
    return { status, json: this.kind === 'codechat' ? { status, error, message: messages } : { status, error, response: { message: messages } } };
  }

  #refuse(status: number, error: string, messages: unknown[]): Refusal {
    return new Refusal(this.#failure(status, error, messages));
  }

  /** A JSON-schema refusal: Codechat lists `{property, message}`, Evolution the messages alone. */
  #invalid(issues: Issue[]): Refusal {
    return this.#refuse(400, 'Bad Request', this.kind === 'codechat' ? issues : issues.map((i) => i.message));
  }

  /** `required` of a (nested) schema object, worded as jsonschema's `stack`. */
  #require(o: unknown, props: string[], at = 'instance'): void {
    const missing = props.filter((p) => !isObj(o) || o[p] === undefined || o[p] === null);
    if (missing.length) throw this.#invalid(missing.map((p) => ({ property: at.replace('instance.', ''), message: `${at.replace('instance.', '')} requires property "${p}"` })));
  }

  /** `number` must be a string (Codechat: matching ^\d+[.@\w-]+); both products describe it as "Invalid format". */
  #number(b: Json): string {
    this.#require(b, ['number']);
    const n = b.number;
    if (typeof n !== 'string' || (this.kind === 'codechat' && !/^\d+[.@\w-]+/.test(n))) throw this.#invalid([{ property: 'number', message: 'Invalid format' }]);
    return n;
  }

  /** onWhatsApp: the chat JID, or the product's refusal of a number that is not on WhatsApp. */
  #recipient(number: string): string {
    const jid = createJid(this.kind, number);
    if (!this.unregistered.has(digitsOf(jid)) && !this.unregistered.has(number) && !jid.startsWith('undefined@')) return jid;
    throw this.#refuse(400, 'Bad Request', [this.kind === 'codechat' ? { exists: false, jid } : { exists: false, jid, number }]);
  }

  /** An accepted send: a new message id, the answer, the record, and the echo per `echo`. */
  async #send(o: { route: string; body: Json; kind: GatewaySend['kind']; to: string; jid: string; type: string; node: Json; media?: Media; replyTo?: string }): Promise<Reply> {
    const s = this.#keep({ rowId: ++this.#row, keyId: this.kind === 'codechat' ? ulid() : `3EB0${hexId(9)}`, chatJid: o.jid, fromMe: true, type: o.type, node: o.node, timestamp: nowSec(), ...(o.media ? { media: o.media } : {}) });
    this.sends.push({ route: o.route, body: o.body, keyId: s.keyId, to: o.to, kind: o.kind, jid: o.jid, ...(o.media ? { bytes: o.media.bytes, mimetype: o.media.mimetype } : {}), ...(o.replyTo ? { replyTo: o.replyTo } : {}) });
    const answer = this.kind === 'codechat' ? this.#codechatRow(s) : this.#evolutionData(s, 'PENDING', {});
    if (this.echo === 'before') await this.#echo(s);
    return { status: 201, json: answer, ...(this.echo === 'after' ? { after: () => this.#echo(s) } : {}) };
  }

  /** Media given to a send: an http(s) URL the gateway downloads, or base64. */
  async #bytes(media: unknown): Promise<{ bytes: Buffer; type?: string }> {
    const value = typeof media === 'string' ? media : '';
    if (/^https?:\/\//.test(value)) {
      const res = await fetch(value, { signal: AbortSignal.timeout(20_000) }).catch((e: unknown) => {
        throw this.#refuse(this.kind === 'codechat' ? 400 : 500, this.kind === 'codechat' ? 'Bad Request' : 'Internal Server Error', [String(e)]);
      });
      if (!res.ok) throw this.#refuse(this.kind === 'codechat' ? 400 : 500, this.kind === 'codechat' ? 'Bad Request' : 'Internal Server Error', [`Request failed with status code ${res.status}`]);
      return { bytes: Buffer.from(await res.arrayBuffer()), ...(res.headers.get('content-type') ? { type: res.headers.get('content-type') ?? '' } : {}) };
    }
    if (value !== '' && BASE64.test(value)) return { bytes: Buffer.from(value, 'base64') };
    if (this.kind === 'evolution') throw this.#refuse(400, 'Bad Request', ['Owned media must be a url or base64']);
    // Codechat v1 reads anything else as a file path under its uploads folder.
    throw this.#refuse(500, 'Internal Server Error', [`Error: ENOENT: no such file or directory, open '/codechat/uploads/${value.slice(0, 40)}'`]);
  }

  // ---------------------------------------------------------------- Codechat v1 routes

  #codechatRoutes(): Map<string, Handler> {
    const routes = new Map<string, Handler>();
    const options = (b: Json): { replyTo?: string } => {
      const o = obj(b.options);
      if (o.delay !== undefined && !Number.isInteger(o.delay)) throw this.#invalid([{ property: 'options.delay', message: 'Enter a value in milliseconds' }]);
      if (o.quotedMessageId !== undefined && !Number.isInteger(o.quotedMessageId)) throw this.#invalid([{ property: 'options.quotedMessageId', message: 'Enter the message id' }]);
      if (o.quotedMessageId !== undefined) {
        const q = this.#find((s) => s.rowId === o.quotedMessageId);
        if (!q) throw this.#refuse(400, 'Bad Request', ['Quoted message not found']);
        return { replyTo: q.keyId };
      }
      const qm = obj(o.quotedMessage);
      return typeof qm.keyId === 'string' ? { replyTo: qm.keyId } : {};
    };
    const withQuote = (node: Json, jid: string, q: { replyTo?: string }): Json => (q.replyTo ? { ...node, contextInfo: this.#quote(q.replyTo, jid) } : node);
    routes.set('POST /message/sendText', async (b) => {
      this.#require(b, ['textMessage', 'number']);
      this.#require(b.textMessage, ['text'], 'instance.textMessage');
      const text = obj(b.textMessage).text;
      if (typeof text !== 'string' || text === '') throw this.#invalid([{ property: 'textMessage.text', message: 'The "text" cannot be empty' }]);
      const number = this.#number(b);
      const q = options(b);
      const jid = this.#recipient(number);
      return this.#send({ route: 'POST /message/sendText', body: b, kind: 'text', to: number, jid, type: 'extendedTextMessage', node: withQuote({ text }, jid, q), ...q });
    });
    routes.set('POST /message/sendMedia', async (b) => {
      this.#require(b, ['mediaMessage', 'number']);
      this.#require(b.mediaMessage, ['mediatype', 'media'], 'instance.mediaMessage');
      const mm = obj(b.mediaMessage);
      const mediatype = String(mm.mediatype);
      if (!['image', 'document', 'video', 'audio', 'sticker'].includes(mediatype)) throw this.#invalid([{ property: 'mediaMessage.mediatype', message: 'mediaMessage.mediatype is not one of enum values: image,document,video,audio,sticker' }]);
      const number = this.#number(b);
      const q = options(b);
      const jid = this.#recipient(number);
      const got = await this.#bytes(mm.media);
      let fileName = typeof mm.fileName === 'string' ? mm.fileName : undefined;
      if (mediatype === 'document' && !fileName) {
        // prepareMediaMessage takes the name from the URL; a base64 has none and the regex match is null.
        const match = /.*\/(.+?)\./.exec(String(mm.media));
        if (!match) throw this.#refuse(500, 'Internal Server Error', ["TypeError: Cannot read properties of null (reading '1')"]);
        fileName = match[1];
      }
      const mimetype = mimeOfName(fileName) ?? (got.type ? baseMime(got.type) : undefined) ?? BAILEYS_DEFAULT_MIME[mediatype] ?? 'application/octet-stream';
      const m = this.#media(got.bytes, mimetype, mediatype as Media['folder'], fileName);
      const node: Json = { ...m.node, ...(typeof mm.caption === 'string' ? { caption: mm.caption } : {}), ...(fileName ? { fileName } : {}) };
      if (mediatype === 'audio' && /aac|ogg/.test(mimetype)) node.ptt = true;
      return this.#send({ route: 'POST /message/sendMedia', body: b, kind: 'media', to: number, jid, type: `${mediatype}Message`, node: withQuote(node, jid, q), media: m.media, ...q });
    });
    routes.set('POST /message/sendWhatsAppAudio', async (b) => {
      this.#require(b, ['audioMessage', 'number']);
      this.#require(b.audioMessage, ['audio'], 'instance.audioMessage');
      const number = this.#number(b);
      const q = options(b);
      const jid = this.#recipient(number);
      const got = await this.#bytes(obj(b.audioMessage).audio);
      // prepareMediaMessage({mimetype: 'audio/aac'}): labelled AAC and sent as a PTT, bytes as given (unless options.convertAudio).
      const m = this.#media(got.bytes, 'audio/aac', 'audio');
      return this.#send({ route: 'POST /message/sendWhatsAppAudio', body: b, kind: 'audio', to: number, jid, type: 'audioMessage', node: withQuote({ ...m.node, ptt: true }, jid, q), media: m.media, ...q });
    });
    routes.set('POST /message/sendLocation', async (b) => {
      this.#require(b, ['number', 'locationMessage']);
      this.#require(b.locationMessage, ['latitude', 'longitude'], 'instance.locationMessage');
      const l = obj(b.locationMessage);
      const number = this.#number(b);
      const q = options(b);
      const jid = this.#recipient(number);
      const node = { degreesLatitude: l.latitude, degreesLongitude: l.longitude, ...(l.name ? { name: l.name } : {}), ...(l.address ? { address: l.address } : {}) };
      return this.#send({ route: 'POST /message/sendLocation', body: b, kind: 'location', to: number, jid, type: 'locationMessage', node: withQuote(node, jid, q), ...q });
    });
    routes.set('POST /message/sendContact', async (b) => {
      this.#require(b, ['number', 'contactMessage']);
      const list = Array.isArray(b.contactMessage) ? b.contactMessage.map(obj) : [];
      if (!list.length) throw this.#invalid([{ property: 'contactMessage', message: 'contactMessage does not meet minimum length of 1' }]);
      list.forEach((c, i) => this.#require(c, ['fullName', 'wuid', 'phoneNumber'], `instance.contactMessage[${i}]`));
      const number = this.#number(b);
      const jid = this.#recipient(number);
      const vcard = (c: Json) => `BEGIN:VCARD\nVERSION:3.0\nFN:${String(c.fullName)}\nitem1.TEL;waid=${String(c.wuid)}:${String(c.phoneNumber)}\nitem1.X-ABLabel:Celular\nEND:VCARD`;
      const [type, node]: [string, Json] = list.length === 1 && list[0]
        ? ['contactMessage', { displayName: list[0].fullName, vcard: vcard(list[0]) }]
        : ['contactsArrayMessage', { displayName: `${list.length} contacts`, contacts: list.map((c) => ({ displayName: c.fullName, vcard: vcard(c) })) }];
      return this.#send({ route: 'POST /message/sendContact', body: b, kind: 'contact', to: number, jid, type, node });
    });
    routes.set('POST /message/sendReaction', async (b) => {
      this.#require(b, ['reactionMessage']);
      this.#require(b.reactionMessage, ['key', 'reaction'], 'instance.reactionMessage');
      const r = obj(b.reactionMessage);
      this.#require(r.key, ['id', 'remoteJid', 'fromMe'], 'instance.reactionMessage.key');
      if (r.reaction === '') throw this.#invalid([{ property: 'reactionMessage.reaction', message: 'The "reaction" cannot be empty' }]);
      const key = obj(r.key);
      const jid = this.#recipient(String(key.remoteJid));
      return this.#send({ route: 'POST /message/sendReaction', body: b, kind: 'reaction', to: String(key.remoteJid), jid, type: 'reactionMessage', node: { key, text: r.reaction, senderTimestampMs: String(Date.now()) } });
    });
    routes.set('PUT /chat/markMessageAsRead', async (b) => this.#read(b, 'PUT /chat/markMessageAsRead', 200));
    routes.set('DELETE /chat/deleteMessageForEveryone', async (b) => {
      this.#require(b, ['id']);
      if (typeof b.id !== 'string' || !/\d+/.test(b.id)) throw this.#invalid([{ property: 'id', message: 'id does not match pattern "\\\\d+"' }]);
      const target = this.#find((s) => s.rowId === Number.parseInt(String(b.id), 10));
      if (!target) throw this.#refuse(500, 'Internal Server Error', ['Error while deleting message for everyone', "TypeError: Cannot read properties of null (reading 'keyId')"]);
      this.sends.push({ route: 'DELETE /chat/deleteMessageForEveryone', body: b, keyId: target.keyId, to: digitsOf(target.chatJid), kind: 'delete', jid: target.chatJid });
      return { status: 201, json: { deletedAt: new Date().toISOString(), message: this.#codechatRow(target) } };
    });
    routes.set('POST /chat/mediaData', async (b, query): Promise<Reply> => {
      const s = typeof b.keyId === 'string' ? this.#byId.get(b.keyId) : (this.#find((x) => x.media?.mediaKey === obj(b.content).mediaKey && obj(b.content).mediaKey !== undefined) ?? this.#find((x) => x.rowId === Number(b.id)));
      if (!s?.media) throw this.#refuse(400, 'Bad Request', ['The message is not of the media type']);
      const m = s.media;
      const fileName = m.fileName ?? `${s.keyId}.${extOf(m.mimetype)}`;
      if (query.get('binary') === 'true') return { status: 200, body: m.bytes, headers: { 'content-type': m.mimetype, 'content-disposition': `inline; filename="${fileName}"` } };
      const form = new FormData();
      form.set('mediaType', s.type);
      form.set('fileName', fileName);
      form.set('size', JSON.stringify({ fileLength: String(m.bytes.length) }));
      form.set('mimetype', m.mimetype);
      const caption = obj(s.node).caption;
      if (typeof caption === 'string') form.set('caption', caption);
      form.set('file', new Blob([m.bytes], { type: m.mimetype }), fileName);
      const encoded = new Response(form);
      return { status: 200, body: Buffer.from(await encoded.arrayBuffer()), headers: { 'content-type': encoded.headers.get('content-type') ?? 'multipart/form-data' } };
    });
    routes.set('POST /chat/whatsappNumbers', async (b) => this.#numbers(b));
    return routes;
  }

  // ---------------------------------------------------------------- Evolution v2 routes

  #evolutionRoutes(): Map<string, Handler> {
    const routes = new Map<string, Handler>();
    /** Evolution quotes only a message it finds (or one given whole); an unknown id is dropped silently. */
    const quoted = (b: Json, jid: string): { replyTo?: string; ctx: Json } => {
      const q = obj(b.quoted);
      const id = obj(q.key).id;
      if (b.quoted !== undefined && (typeof id !== 'string' || id === '')) throw this.#invalid([{ property: 'quoted.key', message: 'quoted.key requires property "id"' }]);
      if (typeof id !== 'string' || (!isObj(q.message) && !this.#byId.has(id))) return { ctx: {} };
      return { replyTo: id, ctx: { contextInfo: this.#quote(id, jid) } };
    };
    routes.set('POST /message/sendText', async (b) => {
      const number = this.#number(b);
      this.#require(b, ['number', 'text']);
      if (typeof b.text !== 'string') throw this.#invalid([{ property: 'text', message: 'instance.text is not of a type(s) string' }]);
      const jid = this.#recipient(number);
      const q = quoted(b, jid);
      return this.#send({ route: 'POST /message/sendText', body: b, kind: 'text', to: number, jid, type: 'extendedTextMessage', node: { text: b.text, ...q.ctx }, ...(q.replyTo ? { replyTo: q.replyTo } : {}) });
    });
    routes.set('POST /message/sendMedia', async (b) => {
      const number = this.#number(b);
      this.#require(b, ['number', 'mediatype']);
      const mediatype = String(b.mediatype);
      if (!['image', 'document', 'video', 'audio'].includes(mediatype)) throw this.#invalid([{ property: 'mediatype', message: 'instance.mediatype is not one of enum values: image,document,video,audio' }]);
      const jid = this.#recipient(number);
      const got = await this.#bytes(b.media);
      const fileName = typeof b.fileName === 'string' && b.fileName ? b.fileName : mediatype === 'image' ? 'image.png' : mediatype === 'video' ? 'video.mp4' : mediatype === 'document' ? 'document' : undefined;
      const mimetype = (typeof b.mimetype === 'string' && b.mimetype) || mimeOfName(fileName) || (got.type ? baseMime(got.type) : undefined) || BAILEYS_DEFAULT_MIME[mediatype] || 'application/octet-stream';
      const m = this.#media(got.bytes, mimetype, mediatype as Media['folder'], fileName);
      const q = quoted(b, jid);
      const node: Json = { ...m.node, ...(typeof b.caption === 'string' && b.caption ? { caption: b.caption } : {}), ...(mediatype === 'document' ? { fileName, title: fileName } : {}), ...(mediatype === 'audio' ? { ptt: false } : {}), ...q.ctx };
      return this.#send({ route: 'POST /message/sendMedia', body: b, kind: 'media', to: number, jid, type: `${mediatype}Message`, node, media: m.media, ...(q.replyTo ? { replyTo: q.replyTo } : {}) });
    });
    routes.set('POST /message/sendWhatsAppAudio', async (b) => {
      const number = this.#number(b);
      const jid = this.#recipient(number);
      const got = await this.#bytes(b.audio);
      // Evolution encodes to OGG/Opus with ffmpeg (encoding defaults to true) and always sends a PTT; the bytes kept are the ones given.
      const m = this.#media(got.bytes, 'audio/ogg; codecs=opus', 'audio');
      const q = quoted(b, jid);
      return this.#send({ route: 'POST /message/sendWhatsAppAudio', body: b, kind: 'audio', to: number, jid, type: 'audioMessage', node: { ...m.node, ptt: true, seconds: Math.max(1, Math.round(got.bytes.length / 4000)), ...q.ctx }, media: m.media, ...(q.replyTo ? { replyTo: q.replyTo } : {}) });
    });
    routes.set('POST /message/sendLocation', async (b) => {
      const number = this.#number(b);
      this.#require(b, ['number', 'latitude', 'longitude', 'name', 'address']);
      const jid = this.#recipient(number);
      const q = quoted(b, jid);
      const node = { degreesLatitude: b.latitude, degreesLongitude: b.longitude, name: b.name, address: b.address, ...q.ctx };
      return this.#send({ route: 'POST /message/sendLocation', body: b, kind: 'location', to: number, jid, type: 'locationMessage', node, ...(q.replyTo ? { replyTo: q.replyTo } : {}) });
    });
    routes.set('POST /message/sendContact', async (b) => {
      const number = this.#number(b);
      this.#require(b, ['number', 'contact']);
      const list = Array.isArray(b.contact) ? b.contact.map(obj) : [];
      list.forEach((c, i) => this.#require(c, ['fullName', 'phoneNumber'], `instance.contact[${i}]`));
      const jid = this.#recipient(number);
      const vcard = (c: Json) => {
        const wuid = typeof c.wuid === 'string' ? c.wuid : digitsOf(createJid('evolution', String(c.phoneNumber)));
        return `BEGIN:VCARD\nVERSION:3.0\nN:${String(c.fullName)}\nFN:${String(c.fullName)}\n${c.organization ? `ORG:${String(c.organization)};\n` : ''}${c.email ? `EMAIL:${String(c.email)}\n` : ''}item1.TEL;waid=${wuid}:${String(c.phoneNumber)}\nitem1.X-ABLabel:Celular\nEND:VCARD`;
      };
      const [type, node]: [string, Json] = list.length === 1 && list[0]
        ? ['contactMessage', { displayName: list[0].fullName, vcard: vcard(list[0]) }]
        : ['contactsArrayMessage', { displayName: `${list.length} contacts`, contacts: list.map((c) => ({ displayName: c.fullName, vcard: vcard(c) })) }];
      return this.#send({ route: 'POST /message/sendContact', body: b, kind: 'contact', to: number, jid, type, node });
    });
    routes.set('POST /message/sendReaction', async (b) => {
      this.#require(b, ['key', 'reaction']);
      this.#require(b.key, ['id', 'remoteJid', 'fromMe'], 'instance.key');
      const key = obj(b.key);
      const jid = this.#recipient(String(key.remoteJid));
      return this.#send({ route: 'POST /message/sendReaction', body: b, kind: 'reaction', to: String(key.remoteJid), jid, type: 'reactionMessage', node: { key, text: b.reaction, senderTimestampMs: String(Date.now()) } });
    });
    routes.set('POST /chat/markMessageAsRead', async (b) => this.#read(b, 'POST /chat/markMessageAsRead', 201));
    routes.set('DELETE /chat/deleteMessageForEveryone', async (b) => {
      this.#require(b, ['id', 'fromMe', 'remoteJid']);
      const target = { id: String(b.id), remoteJid: String(b.remoteJid), fromMe: b.fromMe === true, ...(typeof b.participant === 'string' ? { participant: b.participant } : {}) };
      this.sends.push({ route: 'DELETE /chat/deleteMessageForEveryone', body: b, keyId: target.id, to: target.remoteJid, kind: 'delete', jid: createJid('evolution', target.remoteJid) });
      return { status: 201, json: { key: { remoteJid: target.remoteJid, fromMe: true, id: `3EB0${hexId(9)}` }, message: { protocolMessage: { key: target, type: 'REVOKE' } }, messageTimestamp: String(nowSec()), status: 'PENDING' } };
    });
    routes.set('POST /chat/getBase64FromMediaMessage', async (b) => {
      const m = obj(b.message);
      const id = obj(m.key).id;
      const s = typeof id === 'string' ? this.#byId.get(id) : undefined;
      if (!s) throw this.#refuse(400, 'Bad Request', ['Message not found']);
      const type = s.type === 'documentWithCaptionMessage' ? 'documentMessage' : s.type;
      if (!s.media || !MEDIA_TYPES.includes(type)) throw this.#refuse(400, 'Bad Request', ['The message is not of the media type']);
      const node = s.type === 'documentWithCaptionMessage' ? obj(obj(obj(s.node).message).documentMessage) : obj(s.node);
      let bytes = s.media.bytes;
      let mimetype = s.media.mimetype;
      if (b.convertToMp4 === true && type === 'audioMessage') {
        bytes = await toMp4(bytes).catch((e: unknown) => {
          throw this.#refuse(400, 'Bad Request', [String(e)]);
        });
        mimetype = 'audio/mp4';
      }
      return { status: 201, json: { mediaType: type, fileName: node.fileName, caption: node.caption, size: { fileLength: node.fileLength, height: node.height, width: node.width }, mimetype, base64: bytes.toString('base64') } };
    });
    routes.set('POST /chat/whatsappNumbers', async (b) => this.#numbers(b));
    return routes;
  }

  // ---------------------------------------------------------------- shared routes

  async #read(b: Json, route: string, status: number): Promise<Reply> {
    this.#require(b, ['readMessages']);
    const list = Array.isArray(b.readMessages) ? b.readMessages.map(obj) : [];
    if (!list.length) throw this.#invalid([{ property: 'readMessages', message: 'readMessages does not meet minimum length of 1' }]);
    list.forEach((r, i) => this.#require(r, ['id', 'fromMe', 'remoteJid'], `instance.readMessages[${i}]`));
    const first = list[0] ?? {};
    this.sends.push({ route, body: b, keyId: String(first.id), to: String(first.remoteJid), kind: 'read', jid: createJid(this.kind, String(first.remoteJid)) });
    return { status, json: { message: 'Read messages', read: 'success' } };
  }

  async #numbers(b: Json): Promise<Reply> {
    const numbers = Array.isArray(b.numbers) ? b.numbers.map(String) : [];
    if (!numbers.length) throw this.#invalid([{ property: 'numbers', message: 'numbers does not meet minimum length of 1' }]);
    const rows = numbers.map((n) => {
      const jid = createJid(this.kind, n);
      const exists = !this.unregistered.has(digitsOf(jid)) && !jid.startsWith('undefined@');
      return this.kind === 'codechat' ? { exists, jid } : { exists, jid, number: n };
    });
    return { status: 200, json: rows };
  }

  #publicMedia(q: string | null): Reply {
    let mediaKey: unknown;
    try {
      mediaKey = obj(JSON.parse(Buffer.from(q ?? '', 'base64url').toString('utf8'))).mediaKey;
    } catch {
      mediaKey = undefined;
    }
    const s = this.#find((x) => x.media !== undefined && x.media.mediaKey === mediaKey);
    if (!s?.media) return this.#failure(400, 'Bad Request', ['Invalid media query']);
    return { status: 200, body: s.media.bytes, headers: { 'content-type': s.media.mimetype } };
  }
}

/** A fake gateway instance on 127.0.0.1 and a free port; `close()` it at the end. */
export async function startFakeGateway(opts: { kind: GatewayKind; instance?: string; apiKey?: string; ownerJid?: string }): Promise<FakeGateway> {
  const fake = new GatewayFake(opts);
  await fake.listen();
  return fake;
}
