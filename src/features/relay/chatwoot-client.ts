import { safeRequest } from '../../platform/safe-http.ts';

/**
 * Chatwoot's Application API (CONNECTORS.md §5.4), the calls the mirror needs. Every request goes
 * through `Requester` (the hardened HTTP client in production), authenticated with the
 * `api_access_token` header, under `<url>/api/v1/accounts/<account_id>`. Answers of different
 * Chatwoot versions differ (a contact is `payload.contact`, `payload` or the top level): each
 * reader accepts all of them.
 */

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  body?: Buffer | string;
  timeoutMs: number;
  maxResponseBytes: number;
  signal?: AbortSignal;
}
export interface HttpResponse {
  status: number;
  contentType: string | undefined;
  body: Buffer;
}
export type Requester = (r: HttpRequest) => Promise<HttpResponse>;

/** The production Requester: the hardened client (addresses checked after DNS, no redirects, capped answers). */
export function safeRequester(allowPrivate: boolean): Requester {
  return async (r) => {
    const res = await safeRequest(r.url, r.method, r.body, { headers: r.headers, timeoutMs: r.timeoutMs, allowPrivate, maxBytes: r.maxResponseBytes, ...(r.signal ? { signal: r.signal } : {}) });
    return { status: res.status, contentType: res.contentType ?? undefined, body: res.body };
  };
}

export interface ChatwootTarget {
  url: string;
  accountId: number;
  inboxId: number;
  token: string;
}

/** A failed call. `retryable`: network errors, timeouts, 429 and 5xx; other 4xx are Chatwoot refusing. */
export class ChatwootError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'ChatwootError';
  }
}

export interface CwContactRef {
  id: number;
  phone_number: string | null;
  identifier: string | null;
  /** The contact's source_id in our Chatwoot inbox, when the answer says. */
  sourceId: string | null;
}

export interface CwAttachmentIn {
  bytes: Buffer;
  contentType: string;
  filename: string;
}

export interface CwMessageIn {
  content: string;
  messageType: 'incoming' | 'outgoing';
  private: boolean;
  sourceId: string;
  contentAttributes?: Record<string, unknown>;
  attachments?: CwAttachmentIn[];
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : null);
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

/** Chatwoot's error answers: `{message}`, `{error}` or `{errors: [...]}`. */
function errorText(json: Json, status: number): string {
  const m = json.message ?? json.error ?? (Array.isArray(json.errors) ? json.errors.join(', ') : undefined);
  return typeof m === 'string' && m !== '' ? `HTTP ${status}: ${m.slice(0, 200)}` : `HTTP ${status}`;
}

export class ChatwootClient {
  readonly #base: string;

  constructor(
    private readonly http: Requester,
    private readonly target: ChatwootTarget,
    private readonly timeoutMs: number,
    private readonly signal?: AbortSignal,
  ) {
    this.#base = `${target.url.replace(/\/+$/, '')}/api/v1/accounts/${target.accountId}`;
  }

  /**
   * Contacts whose phone number is one of `phones` (E.164 variants) or whose identifier is
   * `identifier`. Chatwoot's filter reads one value per condition and adds the "+" itself
   * (Contacts::FilterService), so each variant is its own condition, OR-joined, without its "+".
   */
  async findContacts(phones: string[], identifier: string | null): Promise<CwContactRef[]> {
    const conditions = [
      ...phones.map((p) => ({ attribute_key: 'phone_number', filter_operator: 'equal_to', values: [p.replace(/^\+/, '')] })),
      ...(identifier ? [{ attribute_key: 'identifier', filter_operator: 'equal_to', values: [identifier] }] : []),
    ];
    if (!conditions.length) return [];
    const payload = conditions.map((c, i) => ({ ...c, query_operator: i < conditions.length - 1 ? 'OR' : null }));
    const json = await this.#call('POST', '/contacts/filter', { payload });
    return (Array.isArray(json.payload) ? json.payload : []).map((c) => this.#contact(obj(c))).filter((c): c is CwContactRef => c !== null);
  }

  /** Chatwoot's free-text contact search (name, email, phone, identifier). */
  async searchContacts(q: string): Promise<CwContactRef[]> {
    const json = await this.#call('GET', `/contacts/search?q=${encodeURIComponent(q)}`);
    return (Array.isArray(json.payload) ? json.payload : []).map((c) => this.#contact(obj(c))).filter((c): c is CwContactRef => c !== null);
  }

  /** A new contact in our inbox. A 422 (phone or identifier taken) throws a non-retryable ChatwootError with status 422. */
  async createContact(c: { name: string; phone_number: string | null; identifier: string | null }): Promise<CwContactRef> {
    const json = await this.#call('POST', '/contacts', {
      inbox_id: this.target.inboxId,
      name: c.name,
      ...(c.phone_number ? { phone_number: c.phone_number } : {}),
      ...(c.identifier ? { identifier: c.identifier } : {}),
    });
    const payload = obj(json.payload);
    const contact = this.#contact(Object.keys(obj(payload.contact)).length ? obj(payload.contact) : Object.keys(payload).length ? payload : json);
    if (!contact) throw new ChatwootError('Chatwoot answered a contact without an id', null, true);
    const sourceId = str(obj(payload.contact_inbox).source_id) ?? contact.sourceId;
    return { ...contact, sourceId };
  }

  /** The contact's source_id in our inbox (links it when it is not yet). */
  async contactInbox(contactId: number): Promise<string> {
    const json = await this.#call('POST', `/contacts/${contactId}/contact_inboxes`, { inbox_id: this.target.inboxId });
    const sourceId = str(json.source_id) ?? str(obj(json.payload).source_id);
    if (!sourceId) throw new ChatwootError('Chatwoot answered a contact inbox without a source_id', null, true);
    return sourceId;
  }

  /** The contact's conversations (any inbox). */
  async contactConversations(contactId: number): Promise<Array<{ id: number; inboxId: number | null; status: string }>> {
    const json = await this.#call('GET', `/contacts/${contactId}/conversations`);
    return (Array.isArray(json.payload) ? json.payload : [])
      .map((c) => obj(c))
      .map((c) => ({ id: num(c.id) ?? -1, inboxId: num(c.inbox_id), status: str(c.status) ?? 'open' }))
      .filter((c) => c.id >= 0);
  }

  async createConversation(sourceId: string, contactId: number): Promise<number> {
    const json = await this.#call('POST', '/conversations', { source_id: sourceId, inbox_id: this.target.inboxId, contact_id: contactId, status: 'open' });
    const id = num(json.id) ?? num(obj(json.payload).id);
    if (id === null) throw new ChatwootError('Chatwoot answered a conversation without an id', null, true);
    return id;
  }

  /** A message; with attachments it goes as multipart (`attachments[]` parts), else as JSON. Answers its id. */
  async createMessage(conversationId: number, m: CwMessageIn): Promise<number> {
    const path = `/conversations/${conversationId}/messages`;
    let json: Json;
    if (m.attachments?.length) {
      const form = new FormData();
      form.set('content', m.content);
      form.set('message_type', m.messageType);
      form.set('private', String(m.private));
      form.set('source_id', m.sourceId);
      if (m.contentAttributes) form.set('content_attributes', JSON.stringify(m.contentAttributes));
      for (const a of m.attachments) form.append('attachments[]', new Blob([a.bytes], { type: a.contentType }), a.filename);
      // Encoded by the platform's own multipart writer (boundary in the content type).
      const encoded = new Request('http://multipart.invalid/', { method: 'POST', body: form });
      json = await this.#call('POST', path, Buffer.from(await encoded.arrayBuffer()), encoded.headers.get('content-type') ?? undefined);
    } else {
      json = await this.#call('POST', path, {
        content: m.content,
        message_type: m.messageType,
        private: m.private,
        source_id: m.sourceId,
        ...(m.contentAttributes ? { content_attributes: m.contentAttributes } : {}),
      });
    }
    const id = num(json.id);
    if (id === null) throw new ChatwootError('Chatwoot answered a message without an id', null, true);
    return id;
  }

  /** The conversation's latest messages (to find one a lost answer hid from us). */
  async recentMessages(conversationId: number): Promise<Array<{ id: number; sourceId: string | null }>> {
    const json = await this.#call('GET', `/conversations/${conversationId}/messages`);
    return (Array.isArray(json.payload) ? json.payload : []).map((m) => obj(m)).map((m) => ({ id: num(m.id) ?? -1, sourceId: str(m.source_id) }));
  }

  /** Message status, API inboxes only (PR #11387). */
  async setMessageStatus(conversationId: number, messageId: number, status: 'sent' | 'delivered' | 'read' | 'failed', error?: string): Promise<void> {
    await this.#call('PATCH', `/conversations/${conversationId}/messages/${messageId}`, { status, ...(error ? { external_error: error.slice(0, 250) } : {}) });
  }

  async deleteMessage(conversationId: number, messageId: number): Promise<void> {
    await this.#call('DELETE', `/conversations/${conversationId}/messages/${messageId}`);
  }

  #contact(c: Json): CwContactRef | null {
    const id = num(c.id);
    if (id === null) return null;
    const inboxes = Array.isArray(c.contact_inboxes) ? c.contact_inboxes.map((x) => obj(x)) : [];
    const ours = inboxes.find((x) => num(obj(x.inbox).id) === this.target.inboxId || num(x.inbox_id) === this.target.inboxId);
    return { id, phone_number: str(c.phone_number), identifier: str(c.identifier), sourceId: ours ? str(ours.source_id) : null };
  }

  async #call(method: HttpRequest['method'], path: string, body?: Json | Buffer, contentType?: string): Promise<Json> {
    const headers: Record<string, string> = { api_access_token: this.target.token, accept: 'application/json' };
    let payload: Buffer | string | undefined;
    if (Buffer.isBuffer(body)) {
      payload = body;
      if (contentType) headers['content-type'] = contentType;
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    let res: HttpResponse;
    try {
      res = await this.http({ method, url: `${this.#base}${path}`, headers, ...(payload !== undefined ? { body: payload } : {}), timeoutMs: this.timeoutMs, maxResponseBytes: 4 * 1024 * 1024, ...(this.signal ? { signal: this.signal } : {}) });
    } catch (err) {
      throw new ChatwootError(`Chatwoot unreachable: ${err instanceof Error ? err.message : String(err)}`, null, true);
    }
    let json: Json = {};
    try {
      json = obj(JSON.parse(res.body.toString('utf8')));
    } catch {
      /* not JSON: the status says enough */
    }
    if (res.status >= 200 && res.status < 300) return json;
    throw new ChatwootError(`${method} ${path.replace(/\?.*$/, '')}: ${errorText(json, res.status)}`, res.status, res.status >= 500 || res.status === 429 || res.status === 408);
  }
}
