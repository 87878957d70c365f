import { codechatAnswer, codechatQuote, failure, postJson, type SendContext, type SendResult } from './senders.ts';

/**
 * Media out, per platform (CONNECTORS.md §1.7, §2.6, §3, §6.4, §9.2): one function per platform
 * that sends one file of an agent reply and answers the platform's id of the new message.
 *
 * `voice` is an OGG/Opus (WhatsApp, Telegram, gateways) or M4A/AAC (Instagram / Messenger) voice
 * note the caller transcoded; `audio` is an audio file that could not be transcoded and goes out
 * as it is (basic audio).
 */
export type MediaKind = 'image' | 'video' | 'voice' | 'audio' | 'document';

export interface MediaPart {
  to: string;
  kind: MediaKind;
  bytes: Buffer;
  contentType: string;
  filename: string;
  /** Only when `canCaption` of the platform said yes for this kind. */
  caption?: string;
  replyToExternalId?: string;
}

export type MediaSender = (ctx: SendContext, part: MediaPart) => Promise<SendResult>;

/** The kind of a stored file, from its sniffed content type (before any transcoding). */
export function mediaKindOf(contentType: string): 'image' | 'video' | 'audio' | 'document' {
  if (contentType === 'image/jpeg' || contentType === 'image/png') return 'image';
  if (contentType === 'video/mp4' || contentType === 'video/3gpp') return 'video';
  if (contentType.startsWith('audio/')) return 'audio';
  return 'document';
}

type Posted = { status: number; json: Record<string, unknown> } | { error: string };

async function postForm(url: string, form: FormData, ctx: SendContext, headers: Record<string, string> = {}): Promise<Posted> {
  try {
    const res = await fetch(url, { method: 'POST', headers, body: form, signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)]), redirect: 'error' });
    const text = await res.text();
    try {
      return { status: res.status, json: JSON.parse(text) as Record<string, unknown> };
    } catch {
      return { status: res.status, json: {} };
    }
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

const blob = (p: MediaPart) => new Blob([p.bytes], { type: p.contentType });
const metaError = (r: Posted) => ('json' in r ? ((r.json.error ?? {}) as { code?: unknown; message?: unknown }) : {});

/** WhatsApp Cloud: upload to /{phone_number_id}/media, then send the media id; voice notes as `audio`. */
export const sendWhatsAppMedia: MediaSender = async (ctx, p) => {
  const { access_token: token, phone_number_id: phoneId } = ctx.credentials;
  if (!token || !phoneId) return { ok: false, retryable: false, error: 'the inbox has no access_token / phone_number_id' };
  const auth = { authorization: `Bearer ${token}` };
  const form = new FormData();
  form.set('messaging_product', 'whatsapp');
  form.set('type', p.contentType);
  form.set('file', blob(p), p.filename);
  const up = await postForm(`${ctx.base}/${encodeURIComponent(phoneId)}/media`, form, ctx, auth);
  const mediaId = 'json' in up ? (up.json.id as string | undefined) : undefined;
  if (!('status' in up && up.status < 300 && mediaId)) return failure(up, metaError(up).code, metaError(up).message);
  const type = p.kind === 'voice' ? 'audio' : p.kind;
  const media = { id: mediaId, ...(p.caption ? { caption: p.caption } : {}), ...(type === 'document' ? { filename: p.filename } : {}) };
  const r = await postJson(
    `${ctx.base}/${encodeURIComponent(phoneId)}/messages`,
    { messaging_product: 'whatsapp', recipient_type: 'individual', to: p.to, type, [type]: media, ...(p.replyToExternalId ? { context: { message_id: p.replyToExternalId } } : {}) },
    ctx,
    auth,
  );
  const id = 'json' in r ? (r.json.messages as Array<{ id?: string }> | undefined)?.[0]?.id : undefined;
  if ('status' in r && r.status < 300 && id) return { ok: true, externalId: id };
  return failure(r, metaError(r).code, metaError(r).message);
};

const TELEGRAM_METHOD: Record<MediaKind, [method: string, field: string]> = {
  image: ['sendPhoto', 'photo'],
  video: ['sendVideo', 'video'],
  voice: ['sendVoice', 'voice'],
  audio: ['sendAudio', 'audio'],
  document: ['sendDocument', 'document'],
};

/** Telegram: a multipart sendPhoto / sendVideo / sendVoice / sendAudio / sendDocument. */
export const sendTelegramMedia: MediaSender = async (ctx, p) => {
  const token = ctx.credentials.bot_token;
  if (!token) return { ok: false, retryable: false, error: 'the inbox has no bot_token' };
  const [method, field] = TELEGRAM_METHOD[p.kind];
  const form = new FormData();
  form.set('chat_id', p.to);
  if (p.caption) form.set('caption', p.caption.slice(0, 1024));
  const reply = p.replyToExternalId?.split(':')[1];
  if (reply) form.set('reply_parameters', JSON.stringify({ message_id: Number(reply), allow_sending_without_reply: true }));
  form.set(field, blob(p), p.filename);
  const r = await postForm(`${ctx.base}/bot${token}/${method}`, form, ctx);
  const result = 'json' in r ? (r.json.result as { message_id?: number; chat?: { id?: number | string } } | undefined) : undefined;
  if ('status' in r && r.status < 300 && r.json.ok === true && result?.message_id !== undefined) return { ok: true, externalId: `${result.chat?.id ?? p.to}:${result.message_id}` };
  return failure(r, 'json' in r ? r.json.error_code : undefined, 'json' in r ? r.json.description : undefined);
};

/** Instagram / Messenger: POST /me/messages with the file uploaded as `filedata` (no captions there). */
export const sendMetaMedia: MediaSender = async (ctx, p) => {
  const token = ctx.credentials.access_token;
  if (!token) return { ok: false, retryable: false, error: 'the inbox has no access_token' };
  const type = p.kind === 'voice' ? 'audio' : p.kind === 'document' ? 'file' : p.kind;
  const form = new FormData();
  form.set('recipient', JSON.stringify({ id: p.to }));
  form.set('messaging_type', 'RESPONSE');
  form.set('message', JSON.stringify({ attachment: { type, payload: { is_reusable: true } } }));
  form.set('filedata', blob(p), p.filename);
  const r = await postForm(`${ctx.base}/me/messages`, form, ctx, { authorization: `Bearer ${token}` });
  const id = 'json' in r ? (r.json.message_id as string | undefined) : undefined;
  if ('status' in r && r.status < 300 && id) return { ok: true, externalId: id };
  return failure(r, metaError(r).code, metaError(r).message);
};

function gateway(ctx: SendContext): { base: string; instance: string; key: string } | null {
  const { base_url: base, instance, api_key: key } = ctx.credentials;
  return base && instance && key ? { base: base.replace(/\/$/, ''), instance: encodeURIComponent(instance), key } : null;
}

const gatewayMediaType = (k: MediaKind) => (k === 'voice' ? 'audio' : k);

/** Evolution v2: sendWhatsAppAudio (voice, base64, the gateway encodes a PTT) or sendMedia (flat body, base64). */
export const sendEvolutionMedia: MediaSender = async (ctx, p) => {
  const g = gateway(ctx);
  if (!g) return { ok: false, retryable: false, error: 'the inbox has no base_url / instance / api_key' };
  const number = p.to.replace(/@.*$/, '');
  const media = p.bytes.toString('base64');
  const quoted = p.replyToExternalId ? { quoted: { key: { id: p.replyToExternalId } } } : {};
  const r =
    p.kind === 'voice'
      ? await postJson(`${g.base}/message/sendWhatsAppAudio/${g.instance}`, { number, audio: media, encoding: true, ...quoted }, ctx, { apikey: g.key })
      : await postJson(`${g.base}/message/sendMedia/${g.instance}`, { number, mediatype: gatewayMediaType(p.kind), mimetype: p.contentType, fileName: p.filename, media, ...(p.caption ? { caption: p.caption } : {}), ...quoted }, ctx, { apikey: g.key });
  const id = 'json' in r ? (r.json.key as { id?: string } | undefined)?.id : undefined;
  if ('status' in r && r.status < 300 && id) return { ok: true, externalId: id };
  return failure(r, undefined, 'json' in r ? (r.json.message ?? r.json.error) : undefined);
};

/** Codechat v1: sendWhatsAppAudio {audioMessage{audio}} or sendMedia {mediaMessage{...}} (nested bodies, base64). */
export const sendCodechatMedia: MediaSender = async (ctx, p) => {
  const g = gateway(ctx);
  if (!g) return { ok: false, retryable: false, error: 'the inbox has no base_url / instance / api_key' };
  const number = p.to.replace(/@.*$/, '');
  const media = p.bytes.toString('base64');
  const options = { delay: 0, ...codechatQuote(p.replyToExternalId) };
  const r =
    p.kind === 'voice'
      ? await postJson(`${g.base}/message/sendWhatsAppAudio/${g.instance}`, { number, options, audioMessage: { audio: media } }, ctx, { apikey: g.key })
      : await postJson(`${g.base}/message/sendMedia/${g.instance}`, { number, options, mediaMessage: { mediatype: gatewayMediaType(p.kind), media, fileName: p.filename, ...(p.caption ? { caption: p.caption } : {}) } }, ctx, { apikey: g.key });
  return codechatAnswer(r);
};
