import { isoFromUnix, type NeutralKind, type NeutralMessage, type NeutralStatus, type ParsedDelivery } from '../neutral.ts';

/** Anything-goes JSON access: deliveries are untrusted and may lack any field. */
type J = Record<string, unknown>;
const obj = (v: unknown): J => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as J) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
/** Meta ids are strings; tolerate numbers (hand-written test payloads). */
const mid = (v: unknown): string | undefined => str(v) ?? (typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : undefined);
/** Drops undefined fields, so results serialize and compare without empty keys. */
const clean = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/**
 * A Meta timestamp as ISO. Deliveries use epoch milliseconds; the dashboard's test event sends a
 * string of seconds and Chatwoot-derived samples an ISO string, so: numbers below 1e11 are seconds
 * (1e11 ms is 1973), other numbers milliseconds, non-numeric strings are parsed as dates.
 */
function metaInstant(value: unknown): string {
  if (typeof value === 'string' && value.trim() !== '' && !Number.isFinite(Number(value))) {
    const t = Date.parse(value);
    return Number.isFinite(t) ? new Date(t).toISOString() : isoFromUnix(undefined);
  }
  const n = Number(value);
  return isoFromUnix(value, n > 0 && n < 1e11 ? 's' : 'ms');
}

/** Reaction names sent without an `emoji` (Messenger `reaction` values). */
const NAMED_REACTIONS: Record<string, string> = { love: '❤️', like: '👍', smile: '😆', haha: '😆', wow: '😮', sad: '😢', angry: '😠' };
/** Known events that are not content: referrals (ads, ig.me links), opt-ins and the handover protocol. */
const SYSTEM_EVENTS = ['referral', 'optin', 'pass_thread_control', 'take_thread_control', 'request_thread_control'];

/** What every event of a delivery shares. */
interface EventCtx {
  ev: J;
  senderId: string;
  recipientId: string | undefined;
  /** The business's own account id (`entry.id`): a sender equal to it is the business acting. */
  accountId: string | undefined;
  at: string;
  /** Stable part of keys for events without a mid: sender and the raw timestamp. */
  stamp: string;
}

/**
 * An Instagram (`object: "instagram"`, CONNECTORS.md §3) or Messenger (`object: "page"`, §4)
 * webhook delivery → neutral messages and statuses. Never throws. Iterates every `entry[]` and, in
 * each, `messaging[]`, `standby[]` (threads another app owns) and `changes[]` whose value is a
 * messaging event (the dashboard's test event has this shape, with `entry.id: "0"`). A delivery
 * whose `object` is the other product's gives an empty result.
 *
 * Statuses: `read.mid` (Instagram) gives that message id — the caller marks it and every earlier
 * outbound message of the chat read. `delivery.mids` give one status each. A `watermark` (Messenger
 * `read` and `delivery`) gives a status with externalId `'*'`, `at` = the watermark and
 * `recipientId` = the person: the caller marks every outbound message to that person sent at or
 * before `at`.
 */
export function parseMetaWebhook(body: unknown, platform: 'instagram' | 'messenger'): ParsedDelivery {
  const out: ParsedDelivery = { messages: [], statuses: [] };
  const b = obj(body);
  if (b.object !== undefined && b.object !== (platform === 'instagram' ? 'instagram' : 'page')) return out;
  for (const e of arr(b.entry)) {
    const entry = obj(e);
    const accountId = mid(entry.id);
    const changes = arr(entry.changes).map((c) => obj(obj(c).value));
    for (const raw of [...arr(entry.messaging), ...arr(entry.standby), ...changes]) {
      const ev = obj(raw);
      const senderId = mid(obj(ev.sender).id);
      if (!senderId) continue; // not a messaging event (or an IG comment/mention change): nothing to attribute
      const ctx: EventCtx = { ev, senderId, recipientId: mid(obj(ev.recipient).id), accountId, at: metaInstant(ev.timestamp), stamp: `${senderId}:${String(ev.timestamp ?? '')}` };
      out.statuses.push(...parseStatuses(ctx));
      out.messages.push(...parseEvent(ctx));
    }
  }
  return out;
}

/** The neutral message fields common to every event; echoes belong to the recipient's conversation. */
function baseOf(ctx: EventCtx, externalId: string, echo: boolean): Omit<NeutralMessage, 'kind'> {
  const chatId = echo ? (ctx.recipientId ?? ctx.senderId) : ctx.senderId;
  return { externalId, isEcho: echo, chatId, isGroup: false, sender: { externalId: ctx.senderId }, sentAt: ctx.at, raw: ctx.ev };
}

function parseEvent(ctx: EventCtx): NeutralMessage[] {
  const { ev } = ctx;
  // Events other than messages have no is_echo: the business acting from its own app is the sender.
  const byBusiness = ctx.accountId !== undefined && ctx.senderId === ctx.accountId;
  if (ev.message !== undefined) return parseMessage(ctx, obj(ev.message));
  if (ev.reaction !== undefined) return [parseReaction(ctx, obj(ev.reaction), byBusiness)];
  if (ev.read !== undefined || ev.delivery !== undefined) return [];
  if (ev.postback !== undefined) {
    const p = obj(ev.postback);
    const payload = str(p.payload);
    const title = str(p.title);
    const interactive = clean({ id: payload ?? title ?? '', title, payload });
    return [clean({ ...baseOf(ctx, mid(p.mid) ?? `postback:${ctx.stamp}`, byBusiness), kind: 'interactive_reply' as const, text: title, interactive })];
  }
  if (ev.message_edit !== undefined) {
    const e = obj(ev.message_edit);
    const target = mid(e.mid);
    if (!target) return [{ ...baseOf(ctx, `message_edit:${ctx.stamp}`, byBusiness), kind: 'unsupported' }];
    const key = `${target}:edit:${String(e.num_edit ?? ev.timestamp ?? '')}`;
    return [clean({ ...baseOf(ctx, key, byBusiness), kind: 'edit' as const, targetExternalId: target, text: typeof e.text === 'string' ? e.text : undefined })];
  }
  const name = SYSTEM_EVENTS.find((k) => ev[k] !== undefined);
  return [{ ...baseOf(ctx, `${name ?? 'event'}:${ctx.stamp}`, byBusiness), kind: name ? 'system' : 'unsupported' }];
}

function parseStatuses(ctx: EventCtx): NeutralStatus[] {
  const out: NeutralStatus[] = [];
  const person = { recipientId: ctx.senderId };
  for (const [field, status] of [['read', 'read'], ['delivery', 'delivered']] as const) {
    if (ctx.ev[field] === undefined) continue;
    const s = obj(ctx.ev[field]);
    const read = field === 'read' ? mid(s.mid) : undefined;
    if (read !== undefined) out.push({ externalId: read, status, at: ctx.at, andEarlier: true, ...person });
    const ids = [...(field === 'read' ? [] : [mid(s.mid)]), ...arr(s.mids).map(mid)].filter((x): x is string => x !== undefined);
    for (const externalId of ids) out.push({ externalId, status, at: ctx.at, ...person });
    if (s.watermark !== undefined) out.push({ externalId: '*', status, at: metaInstant(s.watermark), ...person });
  }
  return out;
}

/** `unreact` removes (emoji null); a reaction without emoji or known name cannot be expressed. */
function parseReaction(ctx: EventCtx, r: J, byBusiness: boolean): NeutralMessage {
  const target = mid(r.mid);
  const action = str(r.action) ?? 'react';
  const base = baseOf(ctx, `${target ?? 'reaction'}:${action}:${String(ctx.ev.timestamp ?? '')}`, byBusiness);
  const name = str(r.reaction);
  const emoji = action === 'unreact' ? null : (str(r.emoji) ?? (name ? NAMED_REACTIONS[name] : undefined));
  if (!target || emoji === undefined) return { ...base, kind: 'unsupported' };
  return { ...base, kind: 'reaction', reaction: { targetExternalId: target, emoji } };
}

type Content = Pick<NeutralMessage, 'kind'> & Partial<Pick<NeutralMessage, 'text' | 'media' | 'location'>>;

/** One attachment as neutral content; null for types the neutral model has no place for. */
function attachmentContent(a: J): Content | null {
  const p = obj(a.payload);
  const url = str(p.url) ?? str(a.url);
  const title = str(p.title) ?? str(a.title);
  const media = (kind: NeutralKind, extra: { voice?: boolean } = {}): Content | null =>
    url ? clean({ kind, text: title, media: clean({ caption: title, ...extra, source: { kind: 'url' as const, value: url } }) }) : null;
  switch (a.type) {
    case 'image': // Messenger stickers (and the "like" thumb) are images with a sticker_id.
      return media(p.sticker_id !== undefined ? 'sticker' : 'image');
    case 'video': case 'ig_reel': case 'reel':
      return media('video');
    case 'audio': // Instagram/Messenger audio attachments are recorded voice clips, unflagged (§9.1).
      return media('voice', { voice: true });
    case 'file':
      return media('document');
    case 'share': case 'ig_post': case 'story_mention': // a shared post or the story that mentions the business
      return media('image');
    case 'fallback': // a shared link Meta could not render
      return url ? { kind: 'text', text: url } : null;
    case 'location': {
      const c = obj(p.coordinates);
      const lat = typeof c.lat === 'number' ? c.lat : undefined;
      const lng = typeof c.long === 'number' ? c.long : undefined;
      return lat === undefined || lng === undefined ? null : { kind: 'location', location: clean({ lat, lng, name: title, url }) };
    }
    default: // template echoes, unsupported_type and future types
      return null;
  }
}

/**
 * A `message` event: one neutral message, or one per attachment (the first keeps the mid, the
 * others get `<mid>:<n>`) since neutral messages hold one media each.
 */
function parseMessage(ctx: EventCtx, m: J): NeutralMessage[] {
  const id = mid(m.mid);
  const echo = m.is_echo === true;
  const replyTo = mid(obj(m.reply_to).mid); // `reply_to.story` (a reply to the business's story) has no mid
  const base = clean({ ...baseOf(ctx, id ?? `message:${ctx.stamp}`, echo), replyToExternalId: replyTo });
  if (!id || m.is_unsupported === true) return [{ ...base, kind: 'unsupported' }];
  if (m.is_deleted === true) return [{ ...base, externalId: `${id}:delete`, kind: 'delete', targetExternalId: id }];
  const text = typeof m.text === 'string' ? m.text : undefined;
  const quick = str(obj(m.quick_reply).payload);
  if (quick) return [clean({ ...base, kind: 'interactive_reply' as const, text, interactive: clean({ id: quick, title: text, payload: quick }) })];
  let attachments = arr(m.attachments).map(obj);
  // Since 2025-11 a post share carries both the old `share` and the new `ig_post`: keep one (§3).
  if (attachments.some((a) => a.type === 'ig_post')) attachments = attachments.filter((a) => a.type !== 'share');
  if (attachments.length === 0) return [text !== undefined ? { ...base, kind: 'text', text } : { ...base, kind: 'unsupported' }];
  return attachments.map((a, i) => {
    const content = attachmentContent(a) ?? { kind: 'unsupported' };
    const own = i === 0 && text !== undefined ? { text, media: content.media && { ...content.media, caption: text } } : {};
    return clean({ ...base, ...content, ...own, externalId: i === 0 ? id : `${id}:${i}` });
  });
}
