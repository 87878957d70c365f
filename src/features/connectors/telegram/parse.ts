import { isoFromUnix, type NeutralIdentity, type NeutralKind, type NeutralMedia, type NeutralMessage, type ParsedDelivery } from '../neutral.ts';

/** Anything-goes JSON access: updates are untrusted and may lack any field. */
type J = Record<string, unknown>;
const obj = (v: unknown): J => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as J) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
/** Telegram ids are integers of up to 52 bits (safe in a double): kept as decimal strings. */
const tgId = (v: unknown): string | undefined =>
  typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : typeof v === 'string' && /^-?\d+$/.test(v) ? v : undefined;
/** Drops undefined fields, so results serialize and compare without empty keys. */
const clean = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
const joinName = (o: J): string | undefined => [str(o.first_name), str(o.last_name)].filter(Boolean).join(' ') || undefined;

/** Update kinds carrying a Message. Bots never receive their own messages, so nothing here is an echo. */
const MESSAGE_UPDATES = new Set(['message', 'channel_post', 'business_message']);
const EDIT_UPDATES = new Set(['edited_message', 'edited_channel_post', 'edited_business_message']);
/** Known updates about the chat rather than its content (bot blocked or added, members, join requests). */
const SYSTEM_UPDATES = new Set(['my_chat_member', 'chat_member', 'chat_join_request']);
/** Message fields of service messages (Bot API "Message": members, titles, pins, topics, video chats, payments...). */
const SERVICE_FIELDS = (
  'new_chat_members left_chat_member new_chat_title new_chat_photo delete_chat_photo group_chat_created ' +
  'supergroup_chat_created channel_chat_created message_auto_delete_timer_changed migrate_to_chat_id ' +
  'migrate_from_chat_id pinned_message successful_payment refunded_payment users_shared chat_shared connected_website ' +
  'write_access_allowed passport_data proximity_alert_triggered boost_added chat_background_set forum_topic_created ' +
  'forum_topic_edited forum_topic_closed forum_topic_reopened general_forum_topic_hidden general_forum_topic_unhidden ' +
  'giveaway_created giveaway_completed video_chat_scheduled video_chat_started video_chat_ended ' +
  'video_chat_participants_invited web_app_data gift unique_gift paid_message_price_changed'
).split(' ');

/**
 * The idempotency key of an update (CONNECTORS.md §0.3): `update_id` as a string, undefined when
 * the body has none. Messages also carry `${chat.id}:${message_id}` as their externalId.
 */
export function telegramDedupeKey(update: unknown): string | undefined {
  return tgId(obj(update).update_id);
}

/**
 * One Telegram Bot API Update (CONNECTORS.md §2.3) → neutral messages. Never throws: a body that
 * is not an update gives an empty result; an update that is not understood gives one
 * `unsupported` (or `system`) message keyed `update:<update_id>` with the whole update as raw.
 * `raw` is always the whole update. Telegram has no delivery or read receipts for bots, so
 * `statuses` is always empty.
 *
 * Times come from `date`/`edit_date` (seconds); callback queries and deleted business messages
 * carry none, so they get the parse time.
 */
export function parseTelegramUpdate(update: unknown): ParsedDelivery {
  const u = obj(update);
  const updateId = tgId(u.update_id);
  // "Exactly one optional key is present" besides update_id; future keys land in `unsupported`.
  const key = Object.keys(u).find((k) => k !== 'update_id');
  if (!key) return { messages: [], statuses: [] };
  const value = obj(u[key]);
  const parsed = parseKnown(key, value, u, updateId);
  if (parsed.length > 0) return { messages: parsed, statuses: [] };
  const fallback = parseOther(key, value, u, updateId);
  return { messages: fallback ? [fallback] : [], statuses: [] };
}

function parseKnown(key: string, value: J, raw: J, updateId: string | undefined): NeutralMessage[] {
  const one = (m: NeutralMessage | null): NeutralMessage[] => (m ? [m] : []);
  if (MESSAGE_UPDATES.has(key)) return one(parseMessage(value, raw));
  if (EDIT_UPDATES.has(key)) return one(parseEdit(value, raw, updateId));
  if (key === 'message_reaction') return one(parseReaction(value, raw));
  if (key === 'callback_query') return one(parseCallback(value, raw));
  if (key === 'deleted_business_messages') return parseDeletes(value, raw);
  return [];
}

function userIdentity(u: J, externalId: string): NeutralIdentity {
  return clean({ externalId, displayName: joinName(u), username: str(u.username) });
}

function chatIdentity(c: J, externalId: string): NeutralIdentity {
  return clean({ externalId, displayName: str(c.title) ?? joinName(c), username: str(c.username) });
}

/** `sender_chat` wins over `from`: anonymous admins and channel posts carry a placeholder `from` or none. */
function senderOf(m: J, chat: J, chatId: string): NeutralIdentity {
  const senderChat = obj(m.sender_chat);
  const senderChatId = tgId(senderChat.id);
  if (senderChatId) return chatIdentity(senderChat, senderChatId);
  const from = obj(m.from);
  const fromId = tgId(from.id);
  return fromId ? userIdentity(from, fromId) : chatIdentity(chat, chatId);
}

const isGroupChat = (chat: J, chatId: string): boolean =>
  typeof chat.type === 'string' ? chat.type !== 'private' : chatId.startsWith('-');

function parseMessage(m: J, raw: J): NeutralMessage | null {
  const chat = obj(m.chat);
  const chatId = tgId(chat.id);
  const messageId = tgId(m.message_id);
  if (!chatId || !messageId) return null;
  return clean({
    externalId: `${chatId}:${messageId}`,
    isEcho: false,
    chatId,
    isGroup: isGroupChat(chat, chatId),
    sender: senderOf(m, chat, chatId),
    sentAt: isoFromUnix(m.date),
    replyToExternalId: replyTarget(m, chatId),
    forwarded: isForwarded(m) || undefined,
    raw,
    ...parseContent(m),
  });
}

function replyTarget(m: J, chatId: string): string | undefined {
  const r = obj(m.reply_to_message);
  const id = tgId(r.message_id);
  // In forum supergroups every topic message "replies" to the topic's creation message: not a real reply.
  if (!id || r.forum_topic_created !== undefined) return undefined;
  return `${tgId(obj(r.chat).id) ?? chatId}:${id}`;
}

/** Bot API 7.0+ sends `forward_origin`; older payloads use `forward_from*` / `forward_sender_name` / `forward_date`. */
const isForwarded = (m: J): boolean =>
  ['forward_origin', 'forward_from', 'forward_from_chat', 'forward_sender_name', 'forward_date'].some((k) => m[k] !== undefined) ||
  m.is_automatic_forward === true;

type Content = Pick<NeutralMessage, 'kind'> & Partial<Pick<NeutralMessage, 'text' | 'media' | 'location' | 'contacts'>>;

/** A Telegram file object as neutral media, or undefined without a `file_id` (nothing to fetch). */
function fileMedia(f: J, extra: Partial<NeutralMedia> = {}): NeutralMedia | undefined {
  const fileId = str(f.file_id);
  if (!fileId) return undefined;
  return clean({
    // NOTE: the sender's MIME may be wrong (CONNECTORS.md §2.4): kept as told, storage sniffs the bytes.
    mime: str(f.mime_type),
    sizeBytes: num(f.file_size),
    fileName: str(f.file_name),
    durationSec: num(f.duration),
    width: num(f.width),
    height: num(f.height),
    ...extra,
    source: { kind: 'platform_id' as const, value: fileId },
  });
}

/** `photo` lists the sizes of one picture: take the largest (normally the last). */
function largestPhoto(sizes: unknown): J {
  let best: J | undefined;
  for (const s of arr(sizes).map(obj)) {
    if (!str(s.file_id)) continue;
    const area = (num(s.width) ?? 0) * (num(s.height) ?? 0);
    if (!best || area >= (num(best.width) ?? 0) * (num(best.height) ?? 0)) best = s;
  }
  return best ?? {};
}

function stickerMedia(s: J): NeutralMedia | undefined {
  // Test data has `is_animated: 1`: coerce. Formats per the Bot API: .TGS animated, .WEBM video, .WEBP static.
  const animated = Boolean(s.is_animated);
  const video = Boolean(s.is_video);
  const mime = animated ? 'application/x-tgsticker' : video ? 'video/webm' : 'image/webp';
  return fileMedia(s, { mime, animated: animated || video });
}

/** The media fields in precedence order: `animation` messages also carry a `document` for old clients. */
const MEDIA_FIELDS: Array<[field: string, kind: NeutralKind, media: (v: unknown) => NeutralMedia | undefined]> = [
  ['animation', 'video', (v) => fileMedia(obj(v), { animated: true })],
  ['photo', 'image', (v) => fileMedia(largestPhoto(v))],
  ['video', 'video', (v) => fileMedia(obj(v))],
  ['video_note', 'video', (v) => fileMedia(obj(v))],
  ['voice', 'voice', (v) => fileMedia(obj(v), { voice: true })],
  ['audio', 'audio', (v) => fileMedia(obj(v))],
  ['document', 'document', (v) => fileMedia(obj(v))],
  ['sticker', 'sticker', (v) => stickerMedia(obj(v))],
];

function parseContent(m: J): Content {
  if (typeof m.text === 'string') return { kind: 'text', text: m.text };
  const caption = str(m.caption);
  for (const [field, kind, toMedia] of MEDIA_FIELDS) {
    if (m[field] === undefined) continue;
    const media = toMedia(m[field]);
    if (!media) return { kind: 'unsupported' };
    return clean({ kind, text: caption, media: clean({ ...media, caption }) });
  }
  const place = parsePlace(m);
  if (place) return { kind: 'location', location: place };
  const contact = obj(m.contact);
  const phone = str(contact.phone_number);
  if (phone) return { kind: 'contacts', contacts: [{ name: joinName(contact) ?? phone, phones: [{ number: phone }] }] };
  // dice, story, poll, game, invoice, paid_media, giveaway, checklist and future content: stored raw.
  return { kind: SERVICE_FIELDS.some((f) => m[f] !== undefined) ? 'system' : 'unsupported' };
}

/** `venue` messages also carry `location`; the venue adds the name and address. */
function parsePlace(m: J): NeutralMessage['location'] | undefined {
  const venue = obj(m.venue);
  const loc = obj(m.location ?? venue.location);
  const lat = num(loc.latitude);
  const lng = num(loc.longitude);
  if (lat === undefined || lng === undefined) return undefined;
  return clean({ lat, lng, name: str(venue.title), address: str(venue.address) });
}

/** An edit gets its own key (an update per edit) and points at the edited message; content is the new one. */
function parseEdit(m: J, raw: J, updateId: string | undefined): NeutralMessage | null {
  const parsed = parseMessage(m, raw);
  if (!parsed) return null;
  const stamp = tgId(m.edit_date) ?? (updateId ? `u${updateId}` : undefined);
  return {
    ...parsed,
    externalId: `${parsed.externalId}:edit${stamp ? `:${stamp}` : ''}`,
    kind: 'edit',
    targetExternalId: parsed.externalId,
    sentAt: isoFromUnix(m.edit_date ?? m.date),
  };
}

/** The emoji the reactor now shows: the one added, else the first left; null when none is left (removed). */
function currentEmoji(newReactions: unknown, oldReactions: unknown): string | null | undefined {
  const emojiOf = (r: J): string | undefined => (r.type === 'emoji' ? str(r.emoji) : r.type === 'paid' ? '⭐' : undefined);
  const now = arr(newReactions).map(obj);
  if (now.length === 0) return null;
  const before = new Set(arr(oldReactions).map((r) => emojiOf(obj(r))));
  const shown = now.map(emojiOf).filter((e): e is string => e !== undefined);
  // undefined: only custom emoji (no Unicode form), which the neutral reaction cannot carry.
  return shown.find((e) => !before.has(e)) ?? shown[0];
}

/** `message_reaction`: `user` for people, `actor_chat` (no user) for anonymous admins and channels. */
function parseReaction(r: J, raw: J): NeutralMessage | null {
  const chat = obj(r.chat);
  const chatId = tgId(chat.id);
  const messageId = tgId(r.message_id);
  if (!chatId || !messageId) return null;
  const user = obj(r.user);
  const actor = obj(r.actor_chat);
  const userId = tgId(user.id);
  const actorId = tgId(actor.id);
  const sender = userId ? userIdentity(user, userId) : actorId ? chatIdentity(actor, actorId) : chatIdentity(chat, chatId);
  const emoji = currentEmoji(r.new_reaction, r.old_reaction);
  const target = `${chatId}:${messageId}`;
  return {
    externalId: `${target}:reaction:${sender.externalId}:${tgId(r.date) ?? ''}`,
    isEcho: false,
    chatId,
    isGroup: isGroupChat(chat, chatId),
    sender,
    sentAt: isoFromUnix(r.date),
    ...(emoji === undefined ? { kind: 'unsupported' } : { kind: 'reaction', reaction: { targetExternalId: target, emoji } }),
    raw,
  };
}

/** An inline-keyboard button press. The button's label is looked up in the message that carried it. */
function parseCallback(q: J, raw: J): NeutralMessage | null {
  const queryId = str(q.id);
  const from = obj(q.from);
  const fromId = tgId(from.id);
  if (!queryId || !fromId) return null;
  const message = obj(q.message);
  const chat = obj(message.chat);
  const chatId = tgId(chat.id) ?? fromId;
  const messageId = tgId(message.message_id);
  const data = str(q.data) ?? str(q.game_short_name);
  const buttons = arr(obj(message.reply_markup).inline_keyboard).flatMap(arr).map(obj);
  const title = data === undefined ? undefined : str(buttons.find((b) => b.callback_data === data)?.text);
  return clean({
    externalId: `callback:${queryId}`,
    isEcho: false,
    chatId,
    isGroup: isGroupChat(chat, chatId),
    sender: userIdentity(from, fromId),
    sentAt: isoFromUnix(undefined),
    kind: 'interactive_reply' as const,
    text: title,
    interactive: clean({ id: data ?? queryId, title, payload: data }),
    replyToExternalId: messageId && tgId(chat.id) ? `${chatId}:${messageId}` : undefined,
    raw,
  });
}

/** Business accounts: messages the customer deleted (one update lists several). */
function parseDeletes(d: J, raw: J): NeutralMessage[] {
  const chat = obj(d.chat);
  const chatId = tgId(chat.id);
  if (!chatId) return [];
  return arr(d.message_ids).flatMap((v) => {
    const id = tgId(v);
    if (!id) return [];
    const target = `${chatId}:${id}`;
    const sender = chatIdentity(chat, chatId);
    const isGroup = isGroupChat(chat, chatId);
    return [{ externalId: `${target}:delete`, isEcho: false, chatId, isGroup, sender, sentAt: isoFromUnix(undefined), kind: 'delete' as const, targetExternalId: target, raw }];
  });
}

/** Anything else with an update_id: kept raw, attributed to whatever chat or user it names. */
function parseOther(key: string, value: J, raw: J, updateId: string | undefined): NeutralMessage | null {
  if (!updateId) return null;
  const chat = obj(value.chat);
  const user = obj(value.from ?? value.user);
  const chatId = tgId(chat.id) ?? tgId(user.id) ?? '';
  const userId = tgId(user.id);
  return {
    externalId: `update:${updateId}`,
    isEcho: false,
    chatId,
    isGroup: chatId !== '' && isGroupChat(chat, chatId),
    sender: userId ? userIdentity(user, userId) : chatIdentity(chat, chatId),
    sentAt: isoFromUnix(value.date),
    kind: SYSTEM_UPDATES.has(key) ? 'system' : 'unsupported',
    raw,
  };
}
