/**
 * A fake Chatwoot (CONNECTORS.md §5) for end-to-end tests of the Chatwoot relay over real HTTP: one
 * account with one API-channel inbox, state in memory, on 127.0.0.1 and a free port. It answers the
 * Application API with Chatwoot's shapes, status codes and error bodies, and delivers webhooks to the
 * inbox's `webhook_url` the way Chatwoot does: once, 5 s timeout, no retry, signed when a secret is
 * set, for EVERY message of the inbox (those created through the API too: what a relay's loop guard
 * has to survive), plus `message_updated` on every update and the conversation events.
 *
 * NOTE: this follows Chatwoot's source, not Parley: contacts/filter uses only `values[0]` and prefixes
 * `+` to phone numbers (Contacts::FilterService), contact_inboxes without a source_id creates a NEW
 * link (ContactInboxBuilder), a failed delivery marks the message `failed` with `external_error` in
 * its content_attributes (Webhooks::Trigger) and that update is delivered as `message_updated`,
 * `conversation.messages[0]` of a webhook is the last public non-activity message (`messages.chat`),
 * and `data_url` is ActiveStorage's redirect (302 to the file, no auth).
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buffer } from 'node:stream/consumers';

export interface CwAttachment {
  id: number;
  message_id: number;
  file_type: 'image' | 'audio' | 'video' | 'file' | 'location';
  content_type: string;
  file_name: string;
  bytes: Buffer;
  data_url: string;
}
export interface CwMessage {
  id: number;
  conversation_id: number;
  content: string | null;
  message_type: 'incoming' | 'outgoing' | 'activity' | 'template';
  content_type: string;
  private: boolean;
  source_id: string | null;
  content_attributes: Record<string, unknown>;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  /** Mirrors `content_attributes.external_error` (where Chatwoot keeps it). */
  external_error: string | null;
  attachments: CwAttachment[];
  sender: { id: number; name: string; type: 'user' | 'contact' };
  deleted: boolean;
  /** Unix seconds. */
  created_at: number;
}
export interface CwContact {
  id: number;
  name: string;
  phone_number: string | null;
  identifier: string | null;
  email: string | null;
  custom_attributes: Record<string, unknown>;
  /** One contact may have several links (source ids) to the same inbox. */
  contact_inboxes: Array<{ id: number; inbox_id: number; source_id: string }>;
  created_at: number;
}
export interface CwConversation {
  id: number;
  uuid: string;
  inbox_id: number;
  contact_id: number;
  status: 'open' | 'pending' | 'resolved' | 'snoozed';
  source_id: string;
  messages: CwMessage[];
  created_at: number;
}
export interface AgentAttachment {
  bytes: Buffer;
  contentType: string;
  fileName: string;
  fileType: CwAttachment['file_type'];
}
export interface FakeChatwoot {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The user access token the API accepts (header `api_access_token`). */
  token: string;
  accountId: number;
  /** The API-channel inbox (7). */
  inboxId: number;
  /** Live state: tests may read it, and edit it to stage a situation. */
  contacts: CwContact[];
  /** Live state; a conversation's `id` is its display id, the one the API and webhooks use. */
  conversations: CwConversation[];
  /** All messages, creation order. */
  messages(): CwMessage[];
  /** Every API request (path with its query), in arrival order. */
  requests: Array<{ method: string; path: string; status: number; contentType: string | undefined }>;
  /** Settable: the API inbox's webhook_url, where every event of the inbox goes. */
  webhookUrl: string | undefined;
  /** Settable: when set, deliveries are signed (CONNECTORS.md §5.2). */
  webhookSecret: string | undefined;
  /** Settable: 'after' (default) delivers once the API answer is sent, 'before' delays the answer until the delivery ended (a Sidekiq job that ran first). */
  webhookTiming: 'before' | 'after';
  /** Every delivery attempt, in the order they ended: the receiver's status, or 'error' (refused, timeout). */
  webhookDeliveries: Array<{ event: string; status: number | 'error' }>;
  /** Settable: every call answers 503 (a proxy's HTML page) while true. */
  down: boolean;
  /** An agent writes in the conversation from Chatwoot's UI: an outgoing message, delivered as message_created; resolves when that delivery ended. */
  agentReply(conversationId: number, m: { content?: string; private?: boolean; attachments?: AgentAttachment[]; inReplyTo?: number; agentName?: string }): Promise<CwMessage>;
  /** The agent deletes a message: Chatwoot's delete (content replaced, attachments purged), delivered as message_updated with content_attributes.deleted. */
  agentDelete(messageId: number): Promise<void>;
  /** The exact body Chatwoot would POST for this event and message (Message#webhook_data + event). */
  webhookPayload(event: 'message_created' | 'message_updated', m: CwMessage): Record<string, unknown>;
  /** X-Chatwoot-Signature / -Timestamp / -Delivery for a delivery of `raw` signed with `secret`. */
  signatureHeaders(raw: string, secret: string, timestampSec?: number, deliveryId?: string): Record<string, string>;
  /** Resolves when every delivery started so far (and the follow-ups they caused) has ended. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;
interface Reply {
  status: number;
  json?: unknown;
  body?: Buffer;
  headers?: Record<string, string>;
}
interface Delivery {
  event: string;
  payload: Json;
  /** The message a failure is reported on (message events only). */
  messageId?: number;
}
interface Ctx {
  method: string;
  path: string;
  query: URLSearchParams;
  body: Buffer;
  contentType: string | undefined;
  events: Delivery[];
}
interface Params {
  fields: Json;
  files: File[];
}

class Refusal extends Error {
  constructor(readonly reply: Reply) {
    super(`HTTP ${reply.status}`);
  }
}

const WEBHOOK_TIMEOUT_MS = 5000;
const MAX_ATTACHMENTS = 15;
const PER_PAGE = 15;
const DELETED_TEXT = 'This message was deleted';
const E164 = /^\+[1-9]\d{1,14}$/;
const TYPE_NUMBER = { incoming: 0, outgoing: 1, activity: 2, template: 3 } as const;
const STATUSES = ['sent', 'delivered', 'read', 'failed'] as const;
const CONVERSATION_STATUSES = ['open', 'pending', 'resolved', 'snoozed'] as const;
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/bmp', 'image/webp']);
const ACCOUNT_NAME = 'Parley Test Account';
const INBOX_NAME = 'Parley Relay';
const API_USER = { id: 1, name: 'Parley Integration', email: 'integration@parley.test' };

const reply = (status: number, json: unknown): Reply => ({ status, json });
const notFound = (): Refusal => new Refusal(reply(404, { error: 'Resource could not be found' }));
const nowSec = (): number => Math.floor(Date.now() / 1000);
const iso = (sec: number): string => new Date(sec * 1000).toISOString();
const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : null);
const int = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : null);
const truthy = (v: unknown): boolean => v === true || v === 'true' || v === '1' || v === 1;
const obj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});

/** Chatwoot's attachment file_type from the uploaded content type (MessageBuilder#file_type). */
function fileTypeOf(contentType: string): CwAttachment['file_type'] {
  if (IMAGE_TYPES.has(contentType)) return 'image';
  if (contentType.includes('video/')) return 'video';
  if (contentType.includes('audio/')) return 'audio';
  return 'file';
}

/** The whole request body. */
const readBody = (req: IncomingMessage): Promise<Buffer> => buffer(req);

/** What RestClient says when a webhook POST fails (the external_error Chatwoot stores). */
function failureText(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'Timed out reading data from server';
  if (e?.cause?.code === 'ECONNREFUSED') return 'Connection refused - connect(2)';
  return e?.message ?? String(err);
}

class ChatwootFake implements FakeChatwoot {
  url = '';
  readonly token: string;
  readonly accountId: number;
  readonly inboxId = 7;
  contacts: CwContact[] = [];
  conversations: CwConversation[] = [];
  requests: FakeChatwoot['requests'] = [];
  webhookUrl: string | undefined;
  webhookSecret: string | undefined;
  webhookTiming: 'before' | 'after' = 'after';
  webhookDeliveries: FakeChatwoot['webhookDeliveries'] = [];
  down = false;
  readonly #server = createServer((req, res) => void this.#handle(req, res));
  readonly #pending = new Set<Promise<void>>();
  readonly #closing = new AbortController();
  /** ActiveStorage: signed id → disk key, disk key → attachment. */
  readonly #signed = new Map<string, string>();
  readonly #disk = new Map<string, CwAttachment>();
  // Distinct ranges, so a relay that mixes up a contact, conversation and message id gets a 404.
  #seq = { contact: 500, contactInbox: 300, conversation: 10, message: 9000, attachment: 70000 };

  constructor(opts: { token?: string; accountId?: number; webhookUrl?: string; webhookSecret?: string; webhookTiming?: 'before' | 'after' }) {
    this.token = opts.token ?? randomBytes(12).toString('base64url');
    this.accountId = opts.accountId ?? 1;
    this.webhookUrl = opts.webhookUrl;
    this.webhookSecret = opts.webhookSecret;
    this.webhookTiming = opts.webhookTiming ?? 'after';
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  messages(): CwMessage[] {
    return this.conversations.flatMap((c) => c.messages).sort((a, b) => a.id - b.id);
  }

  async agentReply(conversationId: number, m: Parameters<FakeChatwoot['agentReply']>[1]): Promise<CwMessage> {
    const conv = this.#conversation(conversationId);
    if (!conv) throw new Error(`fake Chatwoot: no conversation ${conversationId}`);
    const events: Delivery[] = [];
    const message = this.#createMessage(conv, {
      content: m.content ?? null,
      type: 'outgoing',
      private: m.private ?? false,
      sourceId: null,
      contentAttributes: m.inReplyTo !== undefined ? { in_reply_to: m.inReplyTo } : {},
      files: m.attachments ?? [],
      sender: { id: 2, name: m.agentName ?? 'Agent Smith', type: 'user' },
    }, events);
    await this.#dispatch(events);
    return message;
  }

  async agentDelete(messageId: number): Promise<void> {
    const message = this.messages().find((x) => x.id === messageId);
    if (!message) throw new Error(`fake Chatwoot: no message ${messageId}`);
    const events: Delivery[] = [];
    this.#delete(message, events);
    await this.#dispatch(events);
  }

  webhookPayload(event: 'message_created' | 'message_updated', m: CwMessage): Json {
    const conv = this.#conversation(m.conversation_id);
    if (!conv) throw new Error(`fake Chatwoot: message ${m.id} has no conversation`);
    return {
      account: { id: this.accountId, name: ACCOUNT_NAME },
      additional_attributes: {},
      content_attributes: m.content_attributes,
      content_type: m.content_type,
      content: m.content,
      conversation: this.#conversationPush(conv),
      created_at: iso(m.created_at),
      id: m.id,
      inbox: { id: this.inboxId, name: INBOX_NAME },
      message_type: m.message_type,
      private: m.private,
      sender: this.#senderWebhook(m),
      source_id: m.source_id,
      ...(m.attachments.length ? { attachments: m.attachments.map((a) => this.#attachmentJson(a)) } : {}),
      event,
    };
  }

  signatureHeaders(raw: string, secret: string, timestampSec = nowSec(), deliveryId: string = randomUUID()): Record<string, string> {
    const hex = createHmac('sha256', secret).update(`${timestampSec}.${raw}`).digest('hex');
    return { 'X-Chatwoot-Signature': `sha256=${hex}`, 'X-Chatwoot-Timestamp': String(timestampSec), 'X-Chatwoot-Delivery': deliveryId };
  }

  async idle(): Promise<void> {
    while (this.#pending.size) await Promise.allSettled([...this.#pending]);
  }

  async close(): Promise<void> {
    this.#closing.abort();
    await this.idle();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---------------------------------------------------------------- HTTP

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req).catch(() => Buffer.alloc(0));
    const u = new URL(req.url ?? '/', 'http://fake.invalid');
    const ctx: Ctx = { method: req.method ?? 'GET', path: u.pathname, query: u.searchParams, body, contentType: req.headers['content-type'], events: [] };
    let r: Reply;
    try {
      r = this.down ? { status: 503, body: Buffer.from('<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>'), headers: { 'content-type': 'text/html' } } : await this.#route(ctx, req.headers.api_access_token);
    } catch (err) {
      r = err instanceof Refusal ? err.reply : reply(500, { status: 500, error: 'Internal Server Error', exception: String(err) });
      ctx.events.length = 0;
    }
    if (ctx.path.startsWith('/api/')) this.requests.push({ method: ctx.method, path: req.url ?? '/', status: r.status, contentType: ctx.contentType });
    if (this.webhookTiming === 'before') await this.#dispatch(ctx.events);
    const payload = r.body ?? (r.json === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(r.json)));
    res.writeHead(r.status, { ...(r.json !== undefined ? { 'content-type': 'application/json; charset=utf-8' } : {}), ...r.headers });
    res.end(payload, () => {
      if (this.webhookTiming === 'after' && ctx.events.length) this.#track(this.#dispatch(ctx.events));
    });
  }

  async #route(ctx: Ctx, token: string | string[] | undefined): Promise<Reply> {
    const blob = ctx.path.match(/^\/rails\/active_storage\/(blobs\/redirect|disk)\/([^/]+)\/[^/]+$/);
    if (blob && ctx.method === 'GET') return this.#file(blob[1] === 'disk', blob[2] ?? '');
    const api = ctx.path.match(/^\/api\/v1\/accounts\/([^/]+)(\/.*)$/);
    if (!api) return reply(404, { status: 404, error: 'Not Found' });
    if (token !== this.token) return reply(401, { error: 'Invalid Access Token' });
    if (api[1] !== String(this.accountId)) throw notFound();
    const sub = api[2] ?? '';
    const m = (re: RegExp, method: string): RegExpMatchArray | null => (ctx.method === method ? sub.match(re) : null);
    let g: RegExpMatchArray | null;
    if (m(/^\/contacts$/, 'POST')) return this.#createContact(await this.#params(ctx));
    if (m(/^\/contacts\/search$/, 'GET')) return this.#search(ctx.query);
    if (m(/^\/contacts\/filter$/, 'POST')) return this.#filter(await this.#params(ctx), ctx.query);
    if ((g = m(/^\/contacts\/(\d+)$/, 'GET'))) return reply(200, { payload: this.#contactJson(this.#contactOr404(g[1])) });
    if ((g = m(/^\/contacts\/(\d+)\/contact_inboxes$/, 'POST'))) return this.#linkContact(this.#contactOr404(g[1]), await this.#params(ctx));
    if ((g = m(/^\/contacts\/(\d+)\/conversations$/, 'GET'))) {
      const c = this.#contactOr404(g[1]);
      return reply(200, { payload: this.conversations.filter((x) => x.contact_id === c.id).map((x) => this.#conversationJson(x)) });
    }
    if (m(/^\/conversations$/, 'POST')) return this.#createConversation(await this.#params(ctx), ctx.events);
    if ((g = m(/^\/conversations\/(\d+)$/, 'GET'))) return reply(200, this.#conversationJson(this.#conversationOr404(g[1])));
    if ((g = m(/^\/conversations\/(\d+)\/toggle_status$/, 'POST'))) return this.#toggleStatus(this.#conversationOr404(g[1]), await this.#params(ctx), ctx.events);
    if ((g = m(/^\/conversations\/(\d+)\/messages$/, 'POST'))) return this.#postMessage(this.#conversationOr404(g[1]), await this.#params(ctx), ctx.events);
    if ((g = m(/^\/conversations\/(\d+)\/messages$/, 'GET'))) return this.#listMessages(this.#conversationOr404(g[1]), ctx.query);
    if ((g = m(/^\/conversations\/(\d+)\/messages\/(\d+)$/, 'PATCH'))) return this.#patchMessage(this.#messageOr404(g[1], g[2]), await this.#params(ctx), ctx.events);
    if ((g = m(/^\/conversations\/(\d+)\/messages\/(\d+)$/, 'DELETE'))) {
      const message = this.#messageOr404(g[1], g[2]);
      this.#delete(message, ctx.events);
      return reply(200, this.#messageJson(message));
    }
    return reply(404, { status: 404, error: 'Not Found' });
  }

  /** Rails params: the query string, then a JSON or multipart body (multipart file parts apart). */
  async #params(ctx: Ctx): Promise<Params> {
    const fields: Json = Object.fromEntries(ctx.query.entries());
    const files: File[] = [];
    const type = ctx.contentType ?? '';
    if (type.startsWith('multipart/form-data')) {
      const form = await new Request('http://fake.invalid/', { method: 'POST', headers: { 'content-type': type }, body: ctx.body })
        .formData()
        .catch(() => {
          throw new Refusal(reply(400, { status: 400, error: 'Bad Request' }));
        });
      for (const [k, v] of form.entries()) {
        if (typeof v === 'string') fields[k] = v;
        else if (/^attachments\[\d*\]$/.test(k)) files.push(v);
      }
    } else if (type.includes('json') && ctx.body.length) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(ctx.body.toString('utf8'));
      } catch {
        throw new Refusal(reply(400, { status: 400, error: 'Bad Request' }));
      }
      Object.assign(fields, obj(parsed));
    }
    return { fields, files };
  }

  /** ActiveStorage: the public redirect URL answers 302 to the disk service URL, which serves the bytes. */
  #file(onDisk: boolean, id: string): Reply {
    const key = onDisk ? id : this.#signed.get(id);
    const a = key ? this.#disk.get(key) : undefined;
    if (!key || !a) return reply(404, { status: 404, error: 'Not Found' });
    if (!onDisk) return { status: 302, headers: { location: `${this.url}/rails/active_storage/disk/${key}/${encodeURIComponent(a.file_name)}` }, body: Buffer.alloc(0) };
    return { status: 200, body: a.bytes, headers: { 'content-type': a.content_type, 'content-disposition': `inline; filename="${a.file_name}"` } };
  }

  // ---------------------------------------------------------------- contacts

  #createContact(p: Params): Reply {
    const f = p.fields;
    const inboxId = f.inbox_id === undefined ? null : int(f.inbox_id);
    if (f.inbox_id !== undefined && inboxId !== this.inboxId) throw notFound();
    const contact: CwContact = {
      id: 0,
      name: str(f.name) ?? '',
      phone_number: str(f.phone_number),
      identifier: str(f.identifier),
      email: str(f.email)?.toLowerCase() ?? null,
      custom_attributes: obj(f.custom_attributes),
      contact_inboxes: [],
      created_at: nowSec(),
    };
    const invalid = this.#validateContact(contact);
    if (invalid) return reply(422, invalid);
    contact.id = ++this.#seq.contact;
    this.contacts.push(contact);
    const link = inboxId === null ? null : this.#contactInbox(contact, str(f.source_id));
    return reply(200, { payload: { contact: this.#contactJson(contact), contact_inbox: { inbox: link ? this.#inboxJson() : null, source_id: link?.source_id ?? null } } });
  }

  /** Contact validations (format, then uniqueness per account), as Rails reports them. */
  #validateContact(c: CwContact): { message: string; attributes: string[] } | null {
    const errors: Array<[string, string]> = [];
    const others = this.contacts.filter((x) => x.id !== c.id);
    if (c.phone_number !== null && !E164.test(c.phone_number)) errors.push(['phone_number', 'Phone number should be in e164 format']);
    if (c.phone_number !== null && others.some((x) => x.phone_number === c.phone_number)) errors.push(['phone_number', 'Phone number has already been taken']);
    if (c.identifier !== null && others.some((x) => x.identifier === c.identifier)) errors.push(['identifier', 'Identifier has already been taken']);
    if (c.email !== null && others.some((x) => x.email === c.email)) errors.push(['email', 'Email has already been taken']);
    if (!errors.length) return null;
    return { message: errors.map((e) => e[1]).join(', '), attributes: [...new Set(errors.map((e) => e[0]))] };
  }

  /** ContactInboxBuilder: the given source_id (reused if this contact already has it), else a new UUID link. */
  #contactInbox(contact: CwContact, sourceId: string | null): CwContact['contact_inboxes'][number] {
    const wanted = sourceId ?? randomUUID();
    const own = contact.contact_inboxes.find((l) => l.inbox_id === this.inboxId && l.source_id === wanted);
    if (own) return own;
    if (this.contacts.some((c) => c.contact_inboxes.some((l) => l.inbox_id === this.inboxId && l.source_id === wanted))) {
      throw new Refusal(reply(422, { error: 'source_id should be unique' }));
    }
    const link = { id: ++this.#seq.contactInbox, inbox_id: this.inboxId, source_id: wanted };
    contact.contact_inboxes.push(link);
    return link;
  }

  #linkContact(contact: CwContact, p: Params): Reply {
    if (int(p.fields.inbox_id) !== this.inboxId) throw notFound();
    const link = this.#contactInbox(contact, str(p.fields.source_id));
    return reply(200, { id: link.id, contact_id: contact.id, inbox_id: link.inbox_id, source_id: link.source_id, hmac_verified: false, inbox: this.#inboxJson() });
  }

  /** `contacts.name/email/phone_number ILIKE %q%`, `identifier LIKE %q%` (case-sensitive), or the id when q is digits. */
  #search(query: URLSearchParams): Reply {
    const q = query.get('q')?.trim();
    if (!q) return reply(422, { error: 'Specify search string with parameter q' });
    const lower = q.toLowerCase();
    const hit = (c: CwContact) =>
      [c.name, c.email, c.phone_number].some((v) => v?.toLowerCase().includes(lower)) || (c.identifier?.includes(q) ?? false) || (/^\d+$/.test(q) && c.id === Number(q));
    return this.#contactPage(this.contacts.filter(hit), query);
  }

  /**
   * Contacts::FilterService for the standard attributes: an `equal_to` compares with `values[0]`
   * only (phone_number: `"+" + values[0]`, others lowercased), and the conditions are joined with
   * each item's query_operator in SQL precedence (AND before OR). A query_operator on the last item
   * leaves a dangling `OR` in the SQL: a 500.
   */
  #filter(p: Params, query: URLSearchParams): Reply {
    const items = Array.isArray(p.fields.payload) ? p.fields.payload.map(obj) : [];
    const attrs: Record<string, (c: CwContact) => string | null> = { name: (c) => c.name, email: (c) => c.email, phone_number: (c) => c.phone_number, identifier: (c) => c.identifier };
    for (const it of items) {
      if (!(String(it.attribute_key) in attrs)) return reply(422, { error: `Invalid attribute key - [${String(it.attribute_key)}]` });
      if (!['equal_to', 'not_equal_to', 'contains', 'does_not_contain', 'is_present', 'is_not_present'].includes(String(it.filter_operator))) return reply(422, { error: `Invalid operator. The allowed operators for ${String(it.attribute_key)} are [equal_to,not_equal_to,contains,does_not_contain,is_present,is_not_present].` });
      const op = it.query_operator;
      if (op !== null && op !== undefined && !['AND', 'OR'].includes(String(op).toUpperCase())) return reply(422, { error: 'Invalid query operator' });
    }
    const last = items.at(-1);
    if (!items.length || (last && last.query_operator !== null && last.query_operator !== undefined)) return reply(500, { status: 500, error: 'Internal Server Error' });
    const test = (c: CwContact, it: Json): boolean => {
      const key = String(it.attribute_key);
      const stored = attrs[key]?.(c) ?? null;
      const values = Array.isArray(it.values) ? it.values : [it.values];
      const v0 = values[0];
      const wanted = key === 'phone_number' ? `+${String(v0)}` : typeof v0 === 'string' ? v0.toLowerCase() : String(v0);
      const cmp = key === 'name' || key === 'email' ? stored?.toLowerCase() : stored;
      switch (it.filter_operator) {
        case 'equal_to':
          return cmp === wanted;
        case 'not_equal_to':
          return cmp !== wanted;
        case 'contains':
          return values.some((v) => stored?.toLowerCase().includes(String(v).trim().toLowerCase()) ?? false);
        case 'does_not_contain':
          return values.every((v) => !(stored?.toLowerCase().includes(String(v).trim().toLowerCase()) ?? false));
        case 'is_present':
          return stored !== null;
        default:
          return stored === null;
      }
    };
    const matches = (c: CwContact): boolean => {
      let any = false;
      let all = true;
      items.forEach((it, i) => {
        all &&= test(c, it);
        const op = String(it.query_operator ?? '').toUpperCase();
        if (op === 'OR' || i === items.length - 1) {
          any ||= all;
          all = true;
        }
      });
      return any;
    };
    return this.#contactPage(this.contacts.filter(matches), query);
  }

  #contactPage(found: CwContact[], query: URLSearchParams): Reply {
    const page = Math.max(1, int(query.get('page')) ?? 1);
    const rows = found.slice((page - 1) * PER_PAGE, page * PER_PAGE);
    return reply(200, { meta: { count: found.length, current_page: page }, payload: rows.map((c) => this.#contactJson(c)) });
  }

  // ---------------------------------------------------------------- conversations

  /** With contact_id + inbox_id: ContactInboxBuilder, then a NEW conversation; else the link is looked up by source_id alone. */
  #createConversation(p: Params, events: Delivery[]): Reply {
    const f = p.fields;
    let contact: CwContact | undefined;
    let sourceId: string | null = str(f.source_id);
    if (f.contact_id !== undefined && f.inbox_id !== undefined) {
      contact = this.#contactOr404(f.contact_id);
      if (int(f.inbox_id) !== this.inboxId) throw notFound();
      sourceId = this.#contactInbox(contact, sourceId).source_id;
    } else {
      contact = this.contacts.find((c) => c.contact_inboxes.some((l) => l.source_id === sourceId));
      if (!contact || sourceId === null) throw notFound();
    }
    const status = f.status === undefined ? 'open' : String(f.status);
    if (!(CONVERSATION_STATUSES as readonly string[]).includes(status)) return reply(422, { error: `'${status}' is not a valid status` });
    const conv: CwConversation = { id: ++this.#seq.conversation, uuid: randomUUID(), inbox_id: this.inboxId, contact_id: contact.id, status: status as CwConversation['status'], source_id: sourceId, messages: [], created_at: nowSec() };
    this.conversations.push(conv);
    events.push({ event: 'conversation_created', payload: { ...this.#conversationPush(conv), event: 'conversation_created' } });
    const first = str(obj(f.message).content);
    if (first) this.#createMessage(conv, { content: first, type: 'outgoing', private: false, sourceId: null, contentAttributes: {}, files: [], sender: { ...API_USER, type: 'user' } }, events);
    return reply(200, this.#conversationJson(conv));
  }

  #toggleStatus(conv: CwConversation, p: Params, events: Delivery[]): Reply {
    const wanted = p.fields.status === undefined ? (conv.status === 'open' ? 'resolved' : 'open') : String(p.fields.status);
    if (!(CONVERSATION_STATUSES as readonly string[]).includes(wanted)) return reply(422, { error: `'${wanted}' is not a valid status` });
    this.#setStatus(conv, wanted as CwConversation['status'], events);
    return reply(200, { meta: {}, payload: { success: true, current_status: conv.status, conversation_id: conv.id } });
  }

  #setStatus(conv: CwConversation, status: CwConversation['status'], events: Delivery[]): void {
    if (conv.status === status) return;
    const previous = conv.status;
    conv.status = status;
    events.push({ event: 'conversation_status_changed', payload: { ...this.#conversationPush(conv), changed_attributes: [{ status: { previous_value: previous, current_value: status } }], event: 'conversation_status_changed' } });
  }

  // ---------------------------------------------------------------- messages

  async #postMessage(conv: CwConversation, p: Params, events: Delivery[]): Promise<Reply> {
    const f = p.fields;
    const type = f.message_type === undefined ? 'outgoing' : String(f.message_type);
    if (!(type in TYPE_NUMBER)) return reply(422, { error: `'${type}' is not a valid message_type` });
    if (p.files.length > MAX_ATTACHMENTS) return reply(422, { error: 'Validation failed: Attachments exceeded maximum allowed' });
    const content = typeof f.content === 'string' ? f.content : null;
    if (!str(content) && !p.files.length) return reply(422, { error: "Validation failed: Content can't be blank" });
    // MessageBuilder: content_attributes as a hash, or a JSON string (multipart); anything else is {}.
    let attributes: Json = obj(f.content_attributes);
    if (typeof f.content_attributes === 'string') {
      try {
        attributes = obj(JSON.parse(f.content_attributes));
      } catch {
        attributes = {};
      }
    }
    const files = await Promise.all(p.files.map(async (file) => ({ bytes: Buffer.from(await file.arrayBuffer()), contentType: file.type || 'application/octet-stream', fileName: file.name || 'file', fileType: fileTypeOf(file.type) })));
    const contact = this.contacts.find((c) => c.id === conv.contact_id);
    const sender = type === 'incoming' && contact ? { id: contact.id, name: contact.name, type: 'contact' as const } : { id: API_USER.id, name: API_USER.name, type: 'user' as const };
    const message = this.#createMessage(conv, { content, type: type as CwMessage['message_type'], private: truthy(f.private), sourceId: str(f.source_id), contentType: str(f.content_type) ?? 'text', contentAttributes: attributes, files, sender }, events);
    return reply(200, this.#messageJson(message));
  }

  /**
   * A message, with the model callbacks that matter: in_reply_to ↔ in_reply_to_external_id filled
   * from each other, a resolved/snoozed conversation reopened by an incoming message, and the
   * message_created event (every message type a webhook is sent for: incoming, outgoing, template).
   */
  #createMessage(conv: CwConversation, m: { content: string | null; type: CwMessage['message_type']; private: boolean; sourceId: string | null; contentType?: string; contentAttributes: Json; files: AgentAttachment[]; sender: CwMessage['sender'] }, events: Delivery[]): CwMessage {
    const attributes = { ...m.contentAttributes };
    const replyTo = int(attributes.in_reply_to);
    const replyToExternal = str(attributes.in_reply_to_external_id);
    if (replyTo !== null && !replyToExternal) attributes.in_reply_to_external_id = conv.messages.find((x) => x.id === replyTo)?.source_id ?? null;
    else if (replyToExternal && replyTo === null) attributes.in_reply_to = conv.messages.find((x) => x.source_id === replyToExternal)?.id ?? null;
    const message: CwMessage = {
      id: ++this.#seq.message,
      conversation_id: conv.id,
      content: m.content,
      message_type: m.type,
      content_type: m.contentType ?? 'text',
      private: m.private,
      source_id: m.sourceId,
      content_attributes: attributes,
      status: 'sent',
      external_error: null,
      attachments: [],
      sender: m.sender,
      deleted: false,
      created_at: nowSec(),
    };
    message.attachments = m.files.map((f) => this.#store(message.id, f));
    conv.messages.push(message);
    if (m.type === 'incoming' && (conv.status === 'resolved' || conv.status === 'snoozed')) this.#setStatus(conv, 'open', events);
    if (m.type !== 'activity') events.push({ event: 'message_created', payload: this.webhookPayload('message_created', message), messageId: message.id });
    return message;
  }

  #store(messageId: number, f: AgentAttachment): CwAttachment {
    const signed = `${randomBytes(24).toString('base64url')}--${randomBytes(20).toString('hex')}`;
    const key = randomBytes(14).toString('base64url').toLowerCase();
    const a: CwAttachment = {
      id: ++this.#seq.attachment,
      message_id: messageId,
      file_type: f.fileType,
      content_type: f.contentType,
      file_name: f.fileName,
      bytes: f.bytes,
      data_url: `${this.url}/rails/active_storage/blobs/redirect/${signed}/${encodeURIComponent(f.fileName)}`,
    };
    this.#signed.set(signed, key);
    this.#disk.set(key, a);
    return a;
  }

  #listMessages(conv: CwConversation, query: URLSearchParams): Reply {
    const before = int(query.get('before'));
    const after = int(query.get('after'));
    let list = conv.messages.filter((x) => (before === null || x.id < before) && (after === null || x.id > after));
    list = after !== null ? list.slice(0, 100) : list.slice(-20);
    const contact = this.contacts.find((c) => c.id === conv.contact_id);
    return reply(200, { meta: { labels: [], additional_attributes: {}, contact: contact ? this.#contactPush(contact) : null, assignee: null, agent_last_seen_at: 0, assignee_last_seen_at: 0 }, payload: list.map((x) => this.#messageJson(x)) });
  }

  /** Messages::StatusUpdateService: unknown statuses and read → delivered are ignored (200, unchanged). */
  #patchMessage(message: CwMessage, p: Params, events: Delivery[]): Reply {
    const status = String(p.fields.status ?? '');
    this.#updateStatus(message, status, str(p.fields.external_error), events);
    return reply(200, this.#messageJson(message));
  }

  #updateStatus(message: CwMessage, status: string, externalError: string | null, events: Delivery[]): void {
    if (!(STATUSES as readonly string[]).includes(status) || (message.status === 'read' && status === 'delivered')) return;
    const error = status === 'failed' ? externalError : null;
    if (message.status === status && message.external_error === error) return;
    message.status = status as CwMessage['status'];
    message.external_error = error;
    if (error !== null || 'external_error' in message.content_attributes) message.content_attributes.external_error = error;
    events.push({ event: 'message_updated', payload: this.webhookPayload('message_updated', message), messageId: message.id });
  }

  /** MessagesController#destroy: the content replaced, content_attributes = {deleted: true}, attachments purged. */
  #delete(message: CwMessage, events: Delivery[]): void {
    message.content = DELETED_TEXT;
    message.content_type = 'text';
    message.content_attributes = { deleted: true };
    message.deleted = true;
    for (const a of message.attachments) {
      for (const [signed, key] of this.#signed) if (this.#disk.get(key) === a) this.#signed.delete(signed);
      for (const [key, x] of this.#disk) if (x === a) this.#disk.delete(key);
    }
    message.attachments = [];
    events.push({ event: 'message_updated', payload: this.webhookPayload('message_updated', message), messageId: message.id });
  }

  // ---------------------------------------------------------------- webhooks

  #track(p: Promise<void>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  /** The deliveries of one request, in order (each is a job of its own in Chatwoot). */
  async #dispatch(events: Delivery[]): Promise<void> {
    for (const d of events) await this.#deliver(d);
  }

  /** Webhooks::Trigger: one POST, 5 s, no retry; a failed message event marks the message failed. */
  async #deliver(d: Delivery): Promise<void> {
    const url = this.webhookUrl;
    if (!url || this.#closing.signal.aborted) return;
    const raw = JSON.stringify(d.payload);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'rest-client/2.1.0 (linux x86_64) ruby/3.4.4p34' };
    if (this.webhookSecret) Object.assign(headers, this.signatureHeaders(raw, this.webhookSecret));
    let failure: string | null = null;
    try {
      const res = await fetch(url, { method: 'POST', headers, body: raw, redirect: 'manual', signal: AbortSignal.any([AbortSignal.timeout(WEBHOOK_TIMEOUT_MS), this.#closing.signal]) });
      await res.arrayBuffer().catch(() => undefined);
      this.webhookDeliveries.push({ event: d.event, status: res.status });
      if (res.status < 200 || res.status > 299) failure = `${res.status} ${STATUS_CODES[res.status] ?? ''}`.trim();
    } catch (err) {
      this.webhookDeliveries.push({ event: d.event, status: 'error' });
      failure = failureText(err);
    }
    const message = failure !== null && d.messageId !== undefined ? this.messages().find((x) => x.id === d.messageId) : undefined;
    if (failure === null || !message || this.#closing.signal.aborted) return;
    const follow: Delivery[] = [];
    this.#updateStatus(message, 'failed', failure, follow);
    if (follow.length) this.#track(this.#dispatch(follow));
  }

  // ---------------------------------------------------------------- JSON shapes

  #inboxJson(): Json {
    return { id: this.inboxId, name: INBOX_NAME, channel_id: 3, channel_type: 'Channel::Api', avatar_url: '', greeting_enabled: false, enable_auto_assignment: true, webhook_url: this.webhookUrl ?? '' };
  }

  #contactJson(c: CwContact): Json {
    return {
      additional_attributes: {},
      availability_status: 'offline',
      email: c.email,
      id: c.id,
      name: c.name,
      phone_number: c.phone_number,
      identifier: c.identifier,
      blocked: false,
      thumbnail: '',
      custom_attributes: c.custom_attributes,
      last_activity_at: null,
      created_at: c.created_at,
      contact_inboxes: c.contact_inboxes.map((l) => ({ source_id: l.source_id, inbox: this.#inboxJson() })),
    };
  }

  #contactPush(c: CwContact): Json {
    return { additional_attributes: {}, custom_attributes: c.custom_attributes, email: c.email, id: c.id, identifier: c.identifier, name: c.name, phone_number: c.phone_number, thumbnail: '', blocked: false, type: 'contact' };
  }

  #senderPush(m: CwMessage): Json {
    const contact = m.sender.type === 'contact' ? this.contacts.find((c) => c.id === m.sender.id) : undefined;
    if (contact) return this.#contactPush(contact);
    return { id: m.sender.id, name: m.sender.name, available_name: m.sender.name, avatar_url: '', type: 'user', availability_status: 'online', thumbnail: '' };
  }

  #senderWebhook(m: CwMessage): Json {
    const contact = m.sender.type === 'contact' ? this.contacts.find((c) => c.id === m.sender.id) : undefined;
    if (contact) return { account: { id: this.accountId, name: ACCOUNT_NAME }, ...this.#contactPush(contact), avatar: '' };
    return { id: m.sender.id, name: m.sender.name, email: m.sender.id === API_USER.id ? API_USER.email : `agent${m.sender.id}@parley.test`, type: 'user' };
  }

  #attachmentJson(a: CwAttachment): Json {
    const dot = a.file_name.lastIndexOf('.');
    return { id: a.id, message_id: a.message_id, file_type: a.file_type, account_id: this.accountId, extension: dot > 0 ? a.file_name.slice(dot + 1) : null, data_url: a.data_url, thumb_url: a.file_type === 'image' ? a.data_url : '', file_size: a.bytes.length, width: null, height: null };
  }

  /** The API's message (message_type as an integer, sender's push data, attachments only when there are some). */
  #messageJson(m: CwMessage): Json {
    return {
      id: m.id,
      content: m.content,
      inbox_id: this.inboxId,
      conversation_id: m.conversation_id,
      message_type: TYPE_NUMBER[m.message_type],
      content_type: m.content_type,
      status: m.status,
      content_attributes: m.content_attributes,
      created_at: m.created_at,
      private: m.private,
      source_id: m.source_id,
      sender: this.#senderPush(m),
      ...(m.attachments.length ? { attachments: m.attachments.map((a) => this.#attachmentJson(a)) } : {}),
    };
  }

  /** Message#push_event_data: what `conversation.messages[]` of a webhook holds. */
  #messagePush(m: CwMessage, conv: CwConversation): Json {
    return {
      id: m.id,
      content: m.content,
      account_id: this.accountId,
      inbox_id: this.inboxId,
      conversation_id: conv.id,
      message_type: TYPE_NUMBER[m.message_type],
      created_at: m.created_at,
      updated_at: new Date().toISOString(),
      private: m.private,
      status: m.status,
      source_id: m.source_id,
      content_type: m.content_type,
      content_attributes: m.content_attributes,
      sender_type: m.sender.type === 'contact' ? 'Contact' : 'User',
      sender_id: m.sender.id,
      external_source_ids: {},
      additional_attributes: {},
      processed_message_content: m.content,
      sentiment: {},
      conversation: { assignee_id: null, unread_count: this.#unread(conv), last_activity_at: this.#lastActivity(conv), contact_inbox: { source_id: conv.source_id } },
      ...(m.attachments.length ? { attachments: m.attachments.map((a) => this.#attachmentJson(a)) } : {}),
      sender: this.#senderPush(m),
    };
  }

  /** Conversations::EventDataPresenter#push_data: `messages` is the last public non-activity message. */
  #conversationPush(conv: CwConversation): Json {
    const contact = this.contacts.find((c) => c.id === conv.contact_id);
    const link = contact?.contact_inboxes.find((l) => l.source_id === conv.source_id);
    const last = conv.messages.filter((x) => x.message_type !== 'activity' && !x.private).at(-1);
    const activity = this.#lastActivity(conv);
    return {
      additional_attributes: {},
      can_reply: true,
      channel: 'Channel::Api',
      contact_inbox: { id: link?.id ?? null, contact_id: conv.contact_id, inbox_id: conv.inbox_id, source_id: conv.source_id, created_at: iso(conv.created_at), updated_at: iso(conv.created_at), hmac_verified: false, pubsub_token: null },
      id: conv.id,
      inbox_id: conv.inbox_id,
      messages: last ? [this.#messagePush(last, conv)] : [],
      labels: [],
      meta: { sender: contact ? this.#contactPush(contact) : null, assignee: null, team: null, hmac_verified: false },
      status: conv.status,
      custom_attributes: {},
      snoozed_until: null,
      unread_count: this.#unread(conv),
      first_reply_created_at: null,
      priority: null,
      waiting_since: 0,
      agent_last_seen_at: 0,
      contact_last_seen_at: 0,
      last_activity_at: activity,
      timestamp: activity,
      created_at: conv.created_at,
      updated_at: Date.now() / 1000,
    };
  }

  /** The API's conversation (`id` is the display id, the one every route takes). */
  #conversationJson(conv: CwConversation): Json {
    const contact = this.contacts.find((c) => c.id === conv.contact_id);
    const last = conv.messages.at(-1);
    return {
      meta: { sender: contact ? this.#contactPush(contact) : null, channel: 'Channel::Api', assignee: null, hmac_verified: false },
      id: conv.id,
      messages: last ? [this.#messagePush(last, conv)] : [],
      account_id: this.accountId,
      uuid: conv.uuid,
      additional_attributes: {},
      agent_last_seen_at: 0,
      assignee_last_seen_at: 0,
      can_reply: true,
      contact_last_seen_at: 0,
      custom_attributes: {},
      inbox_id: conv.inbox_id,
      labels: [],
      muted: false,
      snoozed_until: null,
      status: conv.status,
      created_at: conv.created_at,
      timestamp: this.#lastActivity(conv),
      unread_count: this.#unread(conv),
      contact_inbox: { source_id: conv.source_id },
    };
  }

  #unread(conv: CwConversation): number {
    return conv.messages.filter((x) => x.message_type === 'incoming').length;
  }

  #lastActivity(conv: CwConversation): number {
    return conv.messages.at(-1)?.created_at ?? conv.created_at;
  }

  // ---------------------------------------------------------------- lookups

  #conversation(id: number): CwConversation | undefined {
    return this.conversations.find((c) => c.id === id);
  }

  #contactOr404(id: unknown): CwContact {
    const c = this.contacts.find((x) => x.id === int(id));
    if (!c) throw notFound();
    return c;
  }

  #conversationOr404(id: unknown): CwConversation {
    const c = this.#conversation(int(id) ?? -1);
    if (!c) throw notFound();
    return c;
  }

  #messageOr404(conversationId: unknown, messageId: unknown): CwMessage {
    const m = this.#conversationOr404(conversationId).messages.find((x) => x.id === int(messageId));
    if (!m) throw notFound();
    return m;
  }
}

/** A fake Chatwoot on 127.0.0.1 and a free port; `close()` it at the end. */
export async function startFakeChatwoot(opts: { token?: string; accountId?: number; webhookUrl?: string; webhookSecret?: string; webhookTiming?: 'before' | 'after' } = {}): Promise<FakeChatwoot> {
  const fake = new ChatwootFake(opts);
  await fake.listen();
  return fake;
}
