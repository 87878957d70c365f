import { failure, postJson, sendJson, type SendContext, type SendResult } from './senders.ts';

/**
 * Small signals to the platform about the customer's messages (CONNECTORS.md §9.2): an agent's
 * reaction, and "read" when an agent reads the conversation. Platforms without the capability
 * answer `unsupported` (nothing is sent).
 */
export type Signal =
  | { kind: 'reaction'; to: string; targetExternalId: string; emoji: string | null }
  | { kind: 'read'; to: string; lastExternalId: string }
  /** One of OUR messages deleted (by an agent in Parley or in a Chatwoot mirror): deleted for everyone where the platform can. */
  | { kind: 'delete'; to: string; targetExternalId: string; targetRef?: string };

export type SignalResult = SendResult | { ok: 'unsupported' };

export async function sendSignal(platform: string, ctx: SendContext, s: Signal): Promise<SignalResult> {
  if (s.kind === 'delete') return deleteSignal(platform, ctx, s);
  if (platform === 'whatsapp') {
    const { access_token: token, phone_number_id: phoneId } = ctx.credentials;
    if (!token || !phoneId) return { ok: false, retryable: false, error: 'the inbox has no access_token / phone_number_id' };
    // Removing a reaction is a reaction with an empty emoji; read marks the message and all before it.
    const body =
      s.kind === 'reaction'
        ? { messaging_product: 'whatsapp', recipient_type: 'individual', to: s.to, type: 'reaction', reaction: { message_id: s.targetExternalId, emoji: s.emoji ?? '' } }
        : { messaging_product: 'whatsapp', status: 'read', message_id: s.lastExternalId };
    const r = await postJson(`${ctx.base}/${encodeURIComponent(phoneId)}/messages`, body, ctx, { authorization: `Bearer ${token}` });
    if ('status' in r && r.status < 300) return { ok: true, externalId: ((r.json.messages as Array<{ id?: string }> | undefined)?.[0]?.id ?? '') };
    const err = 'json' in r ? ((r.json.error ?? {}) as { code?: unknown; message?: unknown }) : {};
    return failure(r, err.code, err.message);
  }
  if (platform === 'telegram' && s.kind === 'reaction') {
    const token = ctx.credentials.bot_token;
    if (!token) return { ok: false, retryable: false, error: 'the inbox has no bot_token' };
    const [chatId, messageId] = s.targetExternalId.split(':');
    const r = await postJson(`${ctx.base}/bot${token}/setMessageReaction`, { chat_id: chatId, message_id: Number(messageId), reaction: s.emoji ? [{ type: 'emoji', emoji: s.emoji }] : [] }, ctx);
    if ('status' in r && r.status < 300 && r.json.ok === true) return { ok: true, externalId: '' };
    return failure(r, 'json' in r ? r.json.error_code : undefined, 'json' in r ? r.json.description : undefined);
  }
  if (platform === 'evolution' || platform === 'codechat') return gatewaySignal(platform, ctx, s);
  return { ok: 'unsupported' };
}

/**
 * Evolution v2 and Codechat v1 (CONNECTORS.md §6.4), header `apikey`; the key names the
 * customer's message (`fromMe: false`) in the chat with `to`:
 * - read: Evolution POST, Codechat PUT `/chat/markMessageAsRead/{instance}` `{readMessages:[key]}`;
 * - reaction: POST `/message/sendReaction/{instance}`, Evolution `{key, reaction}`, Codechat
 *   nested in `reactionMessage`; an empty reaction removes it.
 */
async function gatewaySignal(platform: 'evolution' | 'codechat', ctx: SendContext, s: Exclude<Signal, { kind: 'delete' }>): Promise<SendResult> {
  const { base_url: base, instance, api_key: key } = ctx.credentials;
  if (!base || !instance || !key) return { ok: false, retryable: false, error: 'the inbox has no base_url / instance / api_key' };
  const root = base.replace(/\/$/, '');
  const inst = encodeURIComponent(instance);
  const headers = { apikey: key };
  const msgKey = { remoteJid: toJid(s.to), fromMe: false, id: s.kind === 'read' ? s.lastExternalId : s.targetExternalId };
  const reaction = { key: msgKey, reaction: s.kind === 'reaction' ? (s.emoji ?? '') : '' };
  const r =
    s.kind === 'read'
      ? await sendJson(platform === 'evolution' ? 'POST' : 'PUT', `${root}/chat/markMessageAsRead/${inst}`, { readMessages: [msgKey] }, ctx, headers)
      : await postJson(`${root}/message/sendReaction/${inst}`, platform === 'evolution' ? reaction : { reactionMessage: reaction }, ctx, headers);
  if ('status' in r && r.status < 300) {
    const id = (r.json.key as { id?: unknown } | undefined)?.id;
    return { ok: true, externalId: typeof id === 'string' ? id : '' };
  }
  return failure(r, undefined, 'json' in r ? (r.json.message ?? r.json.error) : undefined);
}

/**
 * Deleting one of our messages for everyone: Telegram `deleteMessage` (within its 48-hour limit),
 * Evolution `DELETE /chat/deleteMessageForEveryone/{instance}` `{id, remoteJid, fromMe: true}`,
 * Codechat v1 the same route with `{id: <its own row id>}` (kept from its send's answer as
 * `targetRef`). WhatsApp Cloud has no such call, Instagram / Messenger none for pages: unsupported.
 */
async function deleteSignal(platform: string, ctx: SendContext, s: Extract<Signal, { kind: 'delete' }>): Promise<SignalResult> {
  if (platform === 'telegram') {
    const token = ctx.credentials.bot_token;
    if (!token) return { ok: false, retryable: false, error: 'the inbox has no bot_token' };
    const [chatId, messageId] = s.targetExternalId.split(':');
    const r = await postJson(`${ctx.base}/bot${token}/deleteMessage`, { chat_id: chatId, message_id: Number(messageId) }, ctx);
    if ('status' in r && r.status < 300 && r.json.ok === true) return { ok: true, externalId: '' };
    return failure(r, 'json' in r ? r.json.error_code : undefined, 'json' in r ? r.json.description : undefined);
  }
  if (platform === 'evolution') {
    const { base_url: base, instance, api_key: key } = ctx.credentials;
    if (!base || !instance || !key) return { ok: false, retryable: false, error: 'the inbox has no base_url / instance / api_key' };
    const r = await sendJson('DELETE', `${base.replace(/\/$/, '')}/chat/deleteMessageForEveryone/${encodeURIComponent(instance)}`, { id: s.targetExternalId, remoteJid: toJid(s.to), fromMe: true }, ctx, { apikey: key });
    if ('status' in r && r.status < 300) return { ok: true, externalId: '' };
    return failure(r, undefined, 'json' in r ? (r.json.message ?? r.json.error) : undefined);
  }
  if (platform === 'codechat' && s.targetRef) {
    const { base_url: base, instance, api_key: key } = ctx.credentials;
    if (!base || !instance || !key) return { ok: false, retryable: false, error: 'the inbox has no base_url / instance / api_key' };
    const r = await sendJson('DELETE', `${base.replace(/\/$/, '')}/chat/deleteMessageForEveryone/${encodeURIComponent(instance)}`, { id: s.targetRef }, ctx, { apikey: key });
    if ('status' in r && r.status < 300) return { ok: true, externalId: '' };
    return failure(r, undefined, 'json' in r ? (r.json.message ?? r.json.error) : undefined);
  }
  return { ok: 'unsupported' };
}

/** A JID as given, or a bare phone number (`+55 11 9…`) as `<digits>@s.whatsapp.net`. */
function toJid(to: string): string {
  return to.includes('@') ? to : `${to.replace(/\D/g, '')}@s.whatsapp.net`;
}
