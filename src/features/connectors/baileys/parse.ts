import type { NeutralIdentity, NeutralMessage, NeutralStatus, ParsedDelivery } from '../neutral.ts';
import { identityOf, isGroupJid, isIgnoredChat, normalizeJid } from './jid.ts';
import { nodeFromCodechat, nodeFromContainer, parseContent, type Content, type ContentContext } from './message.ts';
import { neutralStatus } from './status.ts';
import { asId, asList, asNumber, asObject, asString, defined, isoFromAny, isoFromSeconds, nowIso, withoutSecrets, type Json } from './values.ts';

/**
 * Webhooks of the Baileys-based WhatsApp servers (CONNECTORS.md §6.2) to the neutral model (§9):
 * Codechat v1 and Codechat Go (flat `key*` fields, `messageType` + `content`) and Evolution v2
 * (`key{…}` + `message{<type>: …}`). Pure functions: no I/O, never a throw; unknown events give
 * an empty delivery, unknown message types an `unsupported` message with its raw `data`.
 *
 * NOTE: `fromMe` messages and every `send.message` are echoes (`isEcho`). Messages sent through
 * the API arrive twice (`send.message` and `messages.upsert`) with the same id: the caller drops
 * echoes of its own sends by id, and `baileysDedupeKey` gives both deliveries the same key.
 */

/** What the envelope tells every item of `data`. */
interface Envelope {
  event: string;
  /** The instance's own JID (Evolution `sender`, Codechat `instance.ownerJid`): who sent echoes. */
  owner?: string;
  /** When the server built the delivery: the time of items that carry none. */
  at?: string;
}

/** The per-message facts the two dialects spell differently. */
interface Item {
  externalId: string;
  platformRef?: string;
  chatJid: string;
  isGroup: boolean;
  fromMe: boolean;
  /** The sender's reported JID first, then its alternates (lid ↔ phone). */
  senderJids: unknown[];
  pushName?: string;
  sentAt: string;
  raw: unknown;
}

/**
 * Codechat v1 / Go: `messages.upsert` and `send.message` give messages, `messages.update` gives
 * statuses of our outbound messages. Go's `messages.delete` is "delete for me" on the owner's
 * phone, not a revoke for everyone, so it is not reported (revokes come as `protocolMessage`).
 */
export function parseCodechatWebhook(body: unknown): ParsedDelivery {
  const out: ParsedDelivery = { messages: [], statuses: [] };
  const env = asObject(body);
  if (!env) return out;
  const ctx: Envelope = defined({ event: eventName(env.event), owner: asString(asObject(env.instance)?.ownerJid), at: isoFromAny(env.timestamp) });
  for (const item of asList(env.data)) {
    const d = asObject(item);
    if (!d) continue;
    if (ctx.event === 'messages.upsert' || ctx.event === 'send.message') push(out.messages, codechatMessage(d, ctx));
    else if (ctx.event === 'messages.update') push(out.statuses, codechatStatus(d, ctx));
  }
  return out;
}

/**
 * Evolution v2: `messages.upsert` and `send.message` give messages, `messages.update` statuses,
 * `messages.delete` (a revoke) and `messages.edited` (the `protocolMessage` of an edit or revoke)
 * give `delete` / `edit` messages. The `apikey` of the body (the instance token) is never read and
 * never kept in `raw`.
 */
export function parseEvolutionWebhook(body: unknown): ParsedDelivery {
  const out: ParsedDelivery = { messages: [], statuses: [] };
  const env = asObject(body);
  if (!env) return out;
  // NOTE: Evolution's `date_time` is the server's local wall-clock time with a `Z` appended
  // (`new Date(Date.now() - tzoffset).toISOString()`): hours off in Brazil, so never a time here.
  const ctx: Envelope = defined({ event: eventName(env.event), owner: asString(env.sender) });
  for (const item of asList(env.data)) {
    const d = asObject(item);
    if (!d) continue;
    if (ctx.event === 'messages.upsert' || ctx.event === 'send.message') push(out.messages, evolutionMessage(d, ctx));
    else if (ctx.event === 'messages.update') push(out.statuses, evolutionStatus(d, ctx));
    else if (ctx.event === 'messages.delete') push(out.messages, evolutionRevoke(d, ctx));
    else if (ctx.event === 'messages.edited') push(out.messages, evolutionEdited(d, ctx));
  }
  return out;
}

/**
 * The idempotency key of a delivery (§0 rule 3): `${instance}:${message id}` for messages, so the
 * `send.message` and `messages.upsert` of one API send share it; status, revoke and edit events
 * add a suffix so they are not taken for a repeat of the message they are about. Null when the
 * body names no instance or message, or batches several items (dedupe those per message).
 */
export function baileysDedupeKey(body: unknown): string | null {
  const env = asObject(body);
  const instance = asObject(env?.instance);
  const name = asString(env?.instance) ?? asString(instance?.name) ?? asId(instance?.id);
  const items = asList(env?.data);
  const d = asObject(items[0]);
  if (!env || !name || !d || items.length !== 1) return null;
  const id = asString(asObject(d.key)?.id) ?? asString(d.keyId) ?? (typeof d.id === 'string' ? d.id : undefined);
  switch (eventName(env.event)) {
    case 'messages.upsert':
    case 'send.message':
      return id ? `${name}:${id}` : null;
    case 'messages.update': {
      const ref = id ?? (asId(d.messageId) ? `row-${asId(d.messageId)}` : undefined);
      const status = asId(d.status);
      const who = asString(d.participant);
      return ref && status ? `${name}:${ref}:${status}${who ? `:${who}` : ''}` : null;
    }
    case 'messages.delete': {
      const target = id ?? asString(d.messageId);
      return target ? `${name}:${target}:delete` : null;
    }
    case 'messages.edited': {
      const ts = asNumber(d.timestampMs) ?? asString(env.date_time) ?? '';
      return id ? `${name}:${id}:edit:${ts}` : null;
    }
    default:
      return null;
  }
}

function codechatMessage(d: Json, env: Envelope): NeutralMessage | undefined {
  const externalId = asString(d.keyId);
  const chatJid = asString(d.keyRemoteJid) ?? asString(d.keyLid);
  if (!externalId || !chatJid) return undefined;
  const isGroup = d.isGroup === true || isGroupJid(chatJid);
  // Codechat v1's `media.path` downloads without auth (§6.3): a URL, relative to the server.
  const path = asString(asObject(d.media)?.path) ?? asString(asObject(d.media)?.url);
  const ctx: ContentContext = { source: path ? { kind: 'url', value: path } : { kind: 'platform_id', value: externalId } };
  return build(env, {
    externalId,
    // v1's own row id (an integer): what it quotes and deletes by.
    platformRef: typeof d.id === 'number' || (typeof d.id === 'string' && /^\d+$/.test(d.id)) ? String(d.id) : undefined,
    chatJid,
    isGroup,
    fromMe: d.keyFromMe === true,
    senderJids: isGroup ? [d.keyParticipant, d.keyParticipantLid] : [chatJid, d.keyLid, d.keyRemoteJid],
    pushName: asString(d.pushName),
    sentAt: isoFromSeconds(d.messageTimestamp) ?? env.at ?? nowIso(),
    raw: withoutSecrets(d),
  }, parseContent(nodeFromCodechat(d.messageType, d.content), ctx));
}

/**
 * v1: `{remoteJid, id, fromMe, participant?, status, dateTime}` with the WhatsApp id. Go:
 * `{messageId, status, dateTime}` where messageId is the server's row id, not a WhatsApp id:
 * reported as `serverRowId` with an empty externalId.
 */
function codechatStatus(d: Json, env: Envelope): NeutralStatus | undefined {
  const status = neutralStatus(d.status);
  const waId = typeof d.id === 'string' ? asString(d.id) : asString(d.keyId);
  const rowId = waId ? undefined : asId(d.messageId);
  if (!status || (!waId && !rowId) || d.fromMe === false || d.keyFromMe === false) return undefined;
  return defined({
    externalId: waId ?? '',
    serverRowId: rowId,
    status,
    at: isoFromAny(d.dateTime) ?? env.at ?? nowIso(),
    recipientId: jidOrUndefined(d.participant) ?? jidOrUndefined(d.remoteJid),
  });
}

function evolutionMessage(d: Json, env: Envelope): NeutralMessage | undefined {
  const key = asObject(d.key);
  const externalId = asString(key?.id);
  const chatJid = asString(key?.remoteJid);
  if (!key || !externalId || !chatJid) return undefined;
  const container = asObject(d.message);
  const isGroup = isGroupJid(chatJid);
  return build(env, {
    externalId,
    chatJid,
    isGroup,
    fromMe: key.fromMe === true,
    senderJids: isGroup ? [key.participant, key.participantAlt] : [chatJid, key.remoteJidAlt],
    pushName: asString(d.pushName),
    sentAt: isoFromSeconds(d.messageTimestamp) ?? env.at ?? nowIso(),
    raw: withoutSecrets(d),
  }, parseContent(nodeFromContainer(container, asString(d.messageType)), { source: evolutionSource(container, externalId), contextInfo: asObject(d.contextInfo) }));
}

/** Inline bytes (webhook `base64: true`), else the S3 copy (`mediaUrl`), else fetch by message id. */
function evolutionSource(container: Json | undefined, id: string): ContentContext['source'] {
  const base64 = asString(container?.base64);
  if (base64) return { kind: 'inline_base64', value: base64 };
  const url = asString(container?.mediaUrl);
  return url ? { kind: 'url', value: url } : { kind: 'platform_id', value: id };
}

/**
 * `{keyId, remoteJid, fromMe, participant?, status}`; `messageId` there is Evolution's row id.
 * Updates of messages we received (fromMe false: our own read receipts) are not statuses of ours.
 * An update carrying `message` is an edit's new content, with a defaulted status: skipped (the
 * edit itself arrives as `messages.edited` or a `protocolMessage`).
 */
function evolutionStatus(d: Json, env: Envelope): NeutralStatus | undefined {
  const key = asObject(d.key);
  const externalId = asString(d.keyId) ?? asString(key?.id);
  const status = neutralStatus(d.status ?? asObject(d.update)?.status);
  if (!externalId || !status || (d.fromMe ?? key?.fromMe) === false || asObject(d.message)) return undefined;
  const recipient = jidOrUndefined(d.participant ?? key?.participant) ?? jidOrUndefined(d.remoteJid ?? key?.remoteJid);
  return defined({ externalId, status, at: env.at ?? nowIso(), recipientId: recipient });
}

/** `messages.delete`: the revoked message's key, spread into `data` (`{...key, status: 'DELETED'}`). */
function evolutionRevoke(d: Json, env: Envelope): NeutralMessage | undefined {
  const key = asObject(d.key) ?? d;
  const target = asString(key.id);
  const chatJid = asString(key.remoteJid);
  if (!target || !chatJid) return undefined;
  const content: Content = { kind: 'delete', targetExternalId: target };
  return build(env, { ...aboutKey(key, chatJid, `${target}:delete`), sentAt: env.at ?? nowIso(), raw: withoutSecrets(d) }, content);
}

/** `messages.edited`: `data` is the `protocolMessage` itself (`{key, type, editedMessage, timestampMs}`). */
function evolutionEdited(d: Json, env: Envelope): NeutralMessage | undefined {
  const key = asObject(d.key);
  const target = asString(key?.id);
  const chatJid = asString(key?.remoteJid);
  if (!key || !target || !chatJid) return undefined;
  const content = parseContent({ type: 'protocolMessage', node: d }, { source: { kind: 'platform_id', value: target } });
  const sentAt = isoFromSeconds(d.timestampMs) ?? env.at ?? nowIso();
  const externalId = content.kind === 'delete' ? `${target}:delete` : `${target}:edit:${sentAt}`;
  return build(env, { ...aboutKey(key, chatJid, externalId), sentAt, raw: withoutSecrets(d) }, content);
}

/** Chat, direction and sender of an event about the message `key` names. */
function aboutKey(key: Json, chatJid: string, externalId: string): Omit<Item, 'sentAt' | 'raw'> {
  const isGroup = isGroupJid(chatJid);
  return {
    externalId,
    chatJid,
    isGroup,
    fromMe: key.fromMe === true,
    senderJids: isGroup ? [key.participant, key.participantAlt] : [chatJid, key.remoteJidAlt],
  };
}

/** The neutral message; undefined for chats that are not conversations (status, channels). */
function build(env: Envelope, item: Item, content: Content): NeutralMessage | undefined {
  const chatId = normalizeJid(item.chatJid);
  if (isIgnoredChat(chatId)) return undefined;
  // An echo was written by the instance's owner (its pushName is the business's own, not a
  // contact's name: left out); a group message by its participant.
  const sender: NeutralIdentity = item.fromMe
    ? (identityOf([env.owner]) ?? { externalId: '' })
    : (identityOf(item.senderJids, item.pushName) ?? { externalId: chatId });
  return defined({
    externalId: item.externalId,
    platformRef: item.platformRef,
    isEcho: item.fromMe || env.event === 'send.message',
    chatId,
    isGroup: item.isGroup,
    sender,
    sentAt: item.sentAt,
    ...content,
    raw: item.raw,
  }) as NeutralMessage;
}

/** `MESSAGES_UPSERT` (Evolution's enum spelling) and `messages.upsert` alike. */
function eventName(v: unknown): string {
  return asString(v)?.trim().toLowerCase().replace(/_/g, '.') ?? '';
}

function jidOrUndefined(v: unknown): string | undefined {
  const jid = asString(v);
  return jid ? normalizeJid(jid) : undefined;
}

function push<T>(list: T[], value: T | undefined): void {
  if (value !== undefined) list.push(value);
}
