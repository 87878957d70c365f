/**
 * Replies out, per platform (CONNECTORS.md §9.2): one function per platform that sends a text
 * (with an optional reply-to) through the platform's send API and answers the platform's id of the
 * new message, or a failure that says whether retrying can help.
 */
export interface SendRequest {
  /** The platform's id of the person (wa_id, Telegram chat id, IGSID / PSID, JID). */
  to: string;
  text: string;
  /** The platform id of the message replied to. */
  replyToExternalId?: string;
}

/** `ref`: the platform's own handle of the new message when it is not the external id (Codechat v1's row id). */
export type SendResult = { ok: true; externalId: string; ref?: string } | { ok: false; retryable: boolean; code?: string | number; error: string };

export interface SendContext {
  base: string;
  credentials: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
}

export type Sender = (ctx: SendContext, req: SendRequest) => Promise<SendResult>;

export type JsonAnswer = { status: number; json: Record<string, unknown> } | { error: string };

export function postJson(url: string, body: unknown, ctx: SendContext, headers: Record<string, string> = {}): Promise<JsonAnswer> {
  return sendJson('POST', url, body, ctx, headers);
}

/** A JSON request (postJson with another method: Codechat's PUT markMessageAsRead); never throws, no redirect followed. */
export async function sendJson(method: 'POST' | 'PUT' | 'DELETE', url: string, body: unknown, ctx: SendContext, headers: Record<string, string> = {}): Promise<JsonAnswer> {
  try {
    const res = await fetch(url, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)]),
      redirect: 'error',
    });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      /* not JSON: kept empty, the status says enough */
    }
    return { status: res.status, json };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** 5xx, 429 and network errors are worth retrying; other 4xx are the platform refusing (used by media-senders.ts too). */
export const failure = (r: JsonAnswer, code: unknown, message: unknown): SendResult =>
  'error' in r
    ? { ok: false, retryable: true, error: r.error }
    : { ok: false, retryable: r.status >= 500 || r.status === 429, ...(code !== undefined ? { code: code as string | number } : {}), error: typeof message === 'string' ? message : `HTTP ${r.status}` };

/** WhatsApp Cloud: POST /{phone_number_id}/messages (credentials access_token, phone_number_id). */
export const sendWhatsApp: Sender = async (ctx, req) => {
  const { access_token: token, phone_number_id: phoneId } = ctx.credentials;
  if (!token || !phoneId) return { ok: false, retryable: false, error: 'the inbox has no access_token / phone_number_id' };
  const r = await postJson(
    `${ctx.base}/${encodeURIComponent(phoneId)}/messages`,
    { messaging_product: 'whatsapp', recipient_type: 'individual', to: req.to, type: 'text', text: { body: req.text, preview_url: false }, ...(req.replyToExternalId ? { context: { message_id: req.replyToExternalId } } : {}) },
    ctx,
    { authorization: `Bearer ${token}` },
  );
  const id = 'json' in r ? (r.json.messages as Array<{ id?: string }> | undefined)?.[0]?.id : undefined;
  if ('status' in r && r.status < 300 && id) return { ok: true, externalId: id };
  const err = 'json' in r ? ((r.json.error ?? {}) as { code?: unknown; message?: unknown }) : {};
  return failure(r, err.code, err.message);
};

/** Telegram: POST /bot<token>/sendMessage (credential bot_token); the id is `<chat id>:<message id>`. */
export const sendTelegram: Sender = async (ctx, req) => {
  const token = ctx.credentials.bot_token;
  if (!token) return { ok: false, retryable: false, error: 'the inbox has no bot_token' };
  const reply = req.replyToExternalId?.split(':')[1];
  const r = await postJson(`${ctx.base}/bot${token}/sendMessage`, { chat_id: req.to, text: req.text, ...(reply ? { reply_parameters: { message_id: Number(reply), allow_sending_without_reply: true } } : {}) }, ctx);
  const result = 'json' in r ? (r.json.result as { message_id?: number; chat?: { id?: number | string } } | undefined) : undefined;
  if ('status' in r && r.status < 300 && r.json.ok === true && result?.message_id !== undefined) return { ok: true, externalId: `${result.chat?.id ?? req.to}:${result.message_id}` };
  return failure(r, 'json' in r ? r.json.error_code : undefined, 'json' in r ? r.json.description : undefined);
};

/** Instagram / Messenger: POST /me/messages (credential access_token), RESPONSE messaging type. */
export const sendMeta: Sender = async (ctx, req) => {
  const token = ctx.credentials.access_token;
  if (!token) return { ok: false, retryable: false, error: 'the inbox has no access_token' };
  const r = await postJson(`${ctx.base}/me/messages`, { recipient: { id: req.to }, messaging_type: 'RESPONSE', message: { text: req.text } }, ctx, { authorization: `Bearer ${token}` });
  const id = 'json' in r ? (r.json.message_id as string | undefined) : undefined;
  if ('status' in r && r.status < 300 && id) return { ok: true, externalId: id };
  const err = 'json' in r ? ((r.json.error ?? {}) as { code?: unknown; message?: unknown }) : {};
  return failure(r, err.code, err.message);
};

/** Evolution API: POST {base_url}/message/sendText/{instance} (credentials base_url, instance, api_key). */
export const sendEvolution: Sender = async (ctx, req) => {
  const { base_url: base, instance, api_key: key } = ctx.credentials;
  if (!base || !instance || !key) return { ok: false, retryable: false, error: 'the inbox has no base_url / instance / api_key' };
  const number = req.to.replace(/@.*$/, '');
  const r = await postJson(`${base.replace(/\/$/, '')}/message/sendText/${encodeURIComponent(instance)}`, { number, text: req.text, ...(req.replyToExternalId ? { quoted: { key: { id: req.replyToExternalId } } } : {}) }, ctx, { apikey: key });
  const id = 'json' in r ? (r.json.key as { id?: string } | undefined)?.id : undefined;
  if ('status' in r && r.status < 300 && id) return { ok: true, externalId: id };
  return failure(r, undefined, 'json' in r ? (r.json.message ?? r.json.error) : undefined);
};

/**
 * Codechat v1 quotes by its own database row id (an integer), not by the WhatsApp id Parley keeps:
 * a WhatsApp id there is refused with 400, so the reply goes without the quote rather than failing.
 */
export const codechatQuote = (id: string | undefined): { quotedMessageId?: number } => (id && /^\d{1,15}$/.test(id) ? { quotedMessageId: Number(id) } : {});

/** Codechat v1: POST {base_url}/message/sendText/{instance} with the nested body (credentials as Evolution). */
export const sendCodechat: Sender = async (ctx, req) => {
  const { base_url: base, instance, api_key: key } = ctx.credentials;
  if (!base || !instance || !key) return { ok: false, retryable: false, error: 'the inbox has no base_url / instance / api_key' };
  const number = req.to.replace(/@.*$/, '');
  const r = await postJson(
    `${base.replace(/\/$/, '')}/message/sendText/${encodeURIComponent(instance)}`,
    { number, options: { delay: 0, ...codechatQuote(req.replyToExternalId) }, textMessage: { text: req.text } },
    ctx,
    { apikey: key },
  );
  return codechatAnswer(r);
};

/** A Codechat v1 send's answer: the stored message row (`keyId`, and its own row `id`). */
export function codechatAnswer(r: JsonAnswer): SendResult {
  const id = 'json' in r ? ((r.json.key as { id?: string } | undefined)?.id ?? (r.json.keyId as string | undefined)) : undefined;
  const row = 'json' in r ? r.json.id : undefined;
  if ('status' in r && r.status < 300 && id) return { ok: true, externalId: id, ...(typeof row === 'number' || (typeof row === 'string' && /^\d+$/.test(row)) ? { ref: String(row) } : {}) };
  return failure(r, undefined, 'json' in r ? (r.json.message ?? r.json.error) : undefined);
}
