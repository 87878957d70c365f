import { isoFromUnix, type NeutralIdentity, type NeutralMedia, type NeutralMessage, type NeutralStatus, type ParsedDelivery } from '../neutral.ts';

/** Anything-goes JSON access: deliveries are untrusted and may lack any field. */
type J = Record<string, unknown>;
const obj = (v: unknown): J => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as J) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined);

const STATUSES = new Set(['sent', 'delivered', 'read', 'played', 'failed', 'deleted']);

/**
 * WhatsApp Business Cloud API webhooks (CONNECTORS.md §1): every entry, every change, every message
 * and status of one POST. `smb_message_echoes` (messages the business sent from the WhatsApp
 * Business app) are echoes; BSUID `user_id` identifies a sender without a phone number.
 */
export function parseWhatsAppWebhook(body: unknown): ParsedDelivery {
  const out: ParsedDelivery = { messages: [], statuses: [] };
  for (const entry of arr(obj(body).entry)) {
    for (const change of arr(obj(entry).changes)) {
      const c = obj(change);
      const value = obj(c.value);
      const echoes = c.field === 'smb_message_echoes';
      const contacts = arr(value.contacts).map(obj);
      const profile = (id: string | undefined): NeutralIdentity | undefined => {
        const ct = contacts.find((x) => str(x.wa_id) === id || str(x.user_id) === id) ?? (contacts.length === 1 ? contacts[0] : undefined);
        if (!ct && !id) return undefined;
        const waId = str(ct?.wa_id) ?? (id && /^\d+$/.test(id) ? id : undefined);
        const externalId = str(ct?.user_id) ?? waId ?? id!;
        const name = str(obj(ct?.profile).name);
        const username = str(obj(ct?.profile).username);
        return { externalId, ...(waId ? { phone: waId } : {}), ...(name ? { displayName: name } : {}), ...(username ? { username } : {}) };
      };
      for (const m of [...arr(value.messages), ...arr(value.message_echoes)]) {
        const parsed = parseMessage(obj(m), echoes, profile);
        if (parsed) out.messages.push(parsed);
      }
      for (const s of arr(value.statuses)) {
        const st = obj(s);
        const id = str(st.id);
        const status = str(st.status);
        if (!id || !status || !STATUSES.has(status)) continue;
        const err = obj(arr(st.errors)[0]);
        out.statuses.push({
          externalId: id,
          status: status as NeutralStatus['status'],
          at: isoFromUnix(st.timestamp),
          ...(str(st.recipient_id) ? { recipientId: str(st.recipient_id)! } : {}),
          ...(Object.keys(err).length ? { error: { code: (num(err.code) ?? str(err.code)) as number | string | undefined, message: str(err.message) ?? str(err.title) ?? str(obj(err.error_data).details) } } : {}),
        });
      }
    }
  }
  return out;
}

function parseMessage(m: J, echo: boolean, profile: (id: string | undefined) => NeutralIdentity | undefined): NeutralMessage | null {
  const externalId = str(m.id);
  if (!externalId) return null;
  // An echo is addressed to the customer: the conversation is theirs.
  const customerId = echo ? (str(m.to_user_id) ?? str(m.to)) : (str(m.from_user_id) ?? str(m.from));
  const sender = profile(customerId) ?? { externalId: customerId ?? 'unknown' };
  const type = str(m.type) ?? 'unsupported';
  const ctx = obj(m.context);
  const base: NeutralMessage = {
    externalId,
    isEcho: echo,
    chatId: sender.externalId,
    isGroup: false,
    sender,
    sentAt: isoFromUnix(m.timestamp),
    kind: 'unsupported',
    raw: m,
    ...(str(ctx.id) ? { replyToExternalId: str(ctx.id)! } : {}),
    ...(ctx.forwarded === true || ctx.frequently_forwarded === true ? { forwarded: true } : {}),
  };
  const payload = obj(m[type]);
  switch (type) {
    case 'text':
      return { ...base, kind: 'text', text: str(payload.body) ?? '' };
    case 'image':
    case 'video':
    case 'document':
    case 'sticker':
    case 'audio': {
      const voice = type === 'audio' && payload.voice === true;
      const media: NeutralMedia = {
        source: { kind: 'platform_id', value: str(payload.id) ?? '' },
        ...(str(payload.mime_type) ? { mime: str(payload.mime_type)! } : {}),
        ...(str(payload.sha256) ? { sha256: str(payload.sha256)! } : {}),
        ...(str(payload.filename) ? { fileName: str(payload.filename)! } : {}),
        ...(str(payload.caption) ? { caption: str(payload.caption)! } : {}),
        ...(type === 'audio' ? { voice } : {}),
        ...(type === 'sticker' ? { animated: payload.animated === true } : {}),
      };
      if (!media.source.value) return { ...base, kind: 'unsupported' };
      return { ...base, kind: voice ? 'voice' : (type as NeutralMessage['kind']), media, ...(media.caption ? { text: media.caption } : {}) };
    }
    case 'location': {
      const lat = num(payload.latitude);
      const lng = num(payload.longitude);
      if (lat === undefined || lng === undefined) return base;
      return { ...base, kind: 'location', location: { lat, lng, ...(str(payload.name) ? { name: str(payload.name)! } : {}), ...(str(payload.address) ? { address: str(payload.address)! } : {}), ...(str(payload.url) ? { url: str(payload.url)! } : {}) } };
    }
    case 'contacts':
      return {
        ...base,
        kind: 'contacts',
        contacts: arr(m.contacts).map((x) => {
          const c = obj(x);
          const name = obj(c.name);
          return {
            name: str(name.formatted_name) ?? [str(name.first_name), str(name.last_name)].filter(Boolean).join(' '),
            phones: arr(c.phones).map((p) => ({ number: str(obj(p).phone) ?? '', ...(str(obj(p).wa_id) ? { waId: str(obj(p).wa_id)! } : {}), ...(str(obj(p).type) ? { type: str(obj(p).type)! } : {}) })),
            emails: arr(c.emails).map((e) => str(obj(e).email)).filter((e): e is string => Boolean(e)),
          };
        }),
      };
    case 'reaction': {
      const target = str(payload.message_id);
      if (!target) return base;
      // Removal: emoji "" or no emoji key at all.
      return { ...base, kind: 'reaction', reaction: { targetExternalId: target, emoji: str(payload.emoji) ?? null } };
    }
    case 'interactive': {
      const reply = obj(payload.button_reply ?? payload.list_reply ?? payload.nfm_reply);
      const id = str(reply.id) ?? str(reply.name);
      if (!id) return base;
      return { ...base, kind: 'interactive_reply', interactive: { id, ...(str(reply.title) ? { title: str(reply.title)! } : {}), ...(str(reply.response_json) ? { payload: str(reply.response_json)! } : {}) }, text: str(reply.title) ?? id };
    }
    case 'button': {
      const text = str(payload.text);
      return { ...base, kind: 'interactive_reply', interactive: { id: str(payload.payload) ?? text ?? '', ...(text ? { title: text } : {}) }, text: text ?? '' };
    }
    case 'edit': {
      const target = str(payload.original_message_id);
      const inner = obj(payload.message);
      const text = str(obj(inner.text).body) ?? str(obj(inner[str(inner.type) ?? '']).caption);
      if (!target) return base;
      return { ...base, kind: 'edit', targetExternalId: target, text: text ?? '' };
    }
    case 'system':
      return { ...base, kind: 'system', text: str(obj(m.system).body) ?? '' };
    default:
      // unsupported, order, request_welcome, anything new: kept with its raw payload.
      return base;
  }
}

/** The WhatsApp idempotency key of a message (its wamid) or a status (wamid + status + timestamp). */
export const whatsappStatusKey = (s: NeutralStatus): string => `${s.externalId}:${s.status}:${s.at}`;
