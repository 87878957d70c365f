import type { NeutralMedia, NeutralMessage } from '../neutral.ts';
import { asList, asNumber, asObject, asString, defined, type Json } from './values.ts';
import { contactFromVcard } from './vcard.ts';

/**
 * Baileys message nodes (`imageMessage{…}`, `conversation`, `protocolMessage{…}` …) to the
 * content fields of a neutral message (CONNECTORS.md §9.1, Codechat and Evolution columns).
 * The envelope parsers (parse.ts) find the node and add id, chat, sender and time.
 */

/** The content part of a NeutralMessage. */
export type Content = Pick<NeutralMessage, 'kind'> &
  Partial<Pick<NeutralMessage, 'text' | 'media' | 'location' | 'contacts' | 'reaction' | 'targetExternalId' | 'interactive' | 'replyToExternalId' | 'forwarded'>>;

/** One Baileys node: its type (`audioMessage`) and its value. */
export interface ContentNode {
  type: string;
  node: unknown;
}

/** What the node alone does not tell. */
export interface ContentContext {
  /** Where media bytes are: decided by the envelope (inline base64, public URL, or the message id). */
  source: NeutralMedia['source'];
  /** Evolution lifts the node's `contextInfo` to the top of `data`. */
  contextInfo?: Json;
}

/** Keys beside the content in a message container: never the content itself. */
const NOT_CONTENT = new Set(['messageContextInfo', 'contextInfo', 'base64', 'mediaUrl', 'speechToText']);

/** Containers around the real content (`{ephemeralMessage: {message: {…}}}`). */
const WRAPPERS = new Set([
  'ephemeralMessage',
  'viewOnceMessage',
  'viewOnceMessageV2',
  'viewOnceMessageV2Extension',
  'documentWithCaptionMessage',
  'editedMessage',
  'deviceSentMessage',
  'groupMentionedMessage',
]);
const MAX_WRAPPING = 4;

/**
 * The content node of a message container (Evolution `data.message`, a `protocolMessage`'s
 * `editedMessage`): the key named by `hint` (`messageType`) when present, else the first key that
 * is not metadata; wrappers are opened.
 */
export function nodeFromContainer(container: Json | undefined, hint?: string): ContentNode | undefined {
  let found: ContentNode | undefined;
  for (let depth = 0; container && depth <= MAX_WRAPPING; depth++) {
    const type = hint !== undefined && Object.hasOwn(container, hint) ? hint : Object.keys(container).find((k) => !NOT_CONTENT.has(k));
    if (type === undefined) return found;
    found = { type, node: container[type] };
    if (!WRAPPERS.has(type)) return found;
    container = asObject(asObject(found.node)?.message);
    hint = undefined;
  }
  return found;
}

/**
 * The content node of a Codechat message: `messageType` names it and `content` is its value
 * (strings wrapped as `{text}`). A `content` keyed by the type, or a wrapper type, is opened too.
 */
export function nodeFromCodechat(messageType: unknown, content: unknown): ContentNode | undefined {
  const type = asString(messageType);
  const value = asObject(content);
  if (type === undefined) return nodeFromContainer(value);
  if (value && Object.hasOwn(value, type)) return nodeFromContainer(value, type);
  if (WRAPPERS.has(type)) return nodeFromContainer({ [type]: content });
  return { type, node: content };
}

type Handler = (node: unknown, ctx: ContentContext) => Content | undefined;

const HANDLERS: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ['conversation', text],
  ['extendedTextMessage', text],
  ['imageMessage', (n, c) => media('image', n, c)],
  ['videoMessage', (n, c) => media('video', n, c)],
  ['ptvMessage', (n, c) => media('video', n, c)],
  ['audioMessage', (n, c) => media('audio', n, c)],
  ['documentMessage', (n, c) => media('document', n, c)],
  ['stickerMessage', (n, c) => media('sticker', n, c)],
  ['locationMessage', location],
  ['liveLocationMessage', location],
  ['contactMessage', (n) => contacts([n])],
  ['contactsArrayMessage', (n) => contacts(asList(asObject(n)?.contacts))],
  ['reactionMessage', reaction],
  ['protocolMessage', protocol],
  ['buttonsResponseMessage', (n) => reply(n, ['selectedButtonId'], ['selectedDisplayText'])],
  ['templateButtonReplyMessage', (n) => reply(n, ['selectedId'], ['selectedDisplayText'])],
  ['listResponseMessage', (n) => reply(n, ['singleSelectReply', 'selectedRowId'], ['title'])],
]);

/**
 * The neutral content of a node; `unsupported` for unknown types and for known ones missing what
 * they need (a reaction without target, a location without coordinates).
 */
export function parseContent(found: ContentNode | undefined, ctx: ContentContext): Content {
  const handler = found ? HANDLERS.get(found.type) : undefined;
  const content = handler && found ? handler(found.node, ctx) : undefined;
  if (!content) return { kind: 'unsupported' };
  const info = ctx.contextInfo ?? asObject(asObject(found?.node)?.contextInfo);
  const replyTo = asString(info?.stanzaId) ?? asString(info?.stanzaID);
  const forwarded = info?.isForwarded === true || (asNumber(info?.forwardingScore) ?? 0) > 0;
  return defined({ ...content, replyToExternalId: replyTo, forwarded: forwarded || undefined });
}

function text(node: unknown): Content | undefined {
  const body = typeof node === 'string' ? node : asObject(node)?.text;
  return typeof body === 'string' ? { kind: 'text', text: body } : undefined;
}

function media(kind: 'image' | 'video' | 'audio' | 'document' | 'sticker', value: unknown, ctx: ContentContext): Content | undefined {
  const node = asObject(value);
  if (!node) return undefined;
  const voice = kind === 'audio' ? node.ptt === true || node.PTT === true : undefined;
  const animated = kind === 'sticker' ? node.isAnimated === true : kind === 'video' && node.gifPlayback === true ? true : undefined;
  const caption = asString(node.caption);
  const m: NeutralMedia = defined({
    mime: asString(node.mimetype),
    sizeBytes: asNumber(node.fileLength),
    sha256: asString(node.fileSha256) ?? asString(node.fileSHA256),
    fileName: kind === 'document' ? (asString(node.fileName) ?? asString(node.title)) : undefined,
    caption,
    durationSec: asNumber(node.seconds),
    width: asNumber(node.width),
    height: asNumber(node.height),
    voice,
    animated,
    source: ctx.source,
  });
  return defined<Content>({ kind: voice ? 'voice' : kind, media: m, text: caption });
}

function location(value: unknown): Content | undefined {
  const node = asObject(value);
  const lat = asNumber(node?.degreesLatitude);
  const lng = asNumber(node?.degreesLongitude);
  if (!node || lat === undefined || lng === undefined) return undefined;
  const place = defined({ lat, lng, name: asString(node.name), address: asString(node.address), url: asString(node.url) });
  return { kind: 'location', location: place };
}

function contacts(nodes: unknown[]): Content | undefined {
  const cards = nodes.map(asObject).filter((c): c is Json => c !== undefined);
  if (cards.length === 0) return undefined;
  return { kind: 'contacts', contacts: cards.map((c) => contactFromVcard(c.vcard, asString(c.displayName))) };
}

/** `reactionMessage{key, text}`: an empty text removes the reaction. */
function reaction(value: unknown): Content | undefined {
  const node = asObject(value);
  const target = asString(asObject(node?.key)?.id);
  if (!node || !target) return undefined;
  return { kind: 'reaction', reaction: { targetExternalId: target, emoji: asString(node.text) ?? null } };
}

/**
 * `protocolMessage{key, type, editedMessage}`: REVOKE (0) deletes the message `key` names,
 * MESSAGE_EDIT (14) replaces its text. Protobuf leaves a zero enum out of JSON, so a protocol
 * message with a target, no type and no edited content is a REVOKE. Other types
 * (ephemeral settings, history sync, key shares) are unsupported.
 */
function protocol(value: unknown): Content | undefined {
  const node = asObject(value);
  const target = asString(asObject(node?.key)?.id);
  if (!node || !target) return undefined;
  const edited = asObject(node.editedMessage);
  const type = node.type;
  if (type === 0 || type === 'REVOKE' || (type === undefined && !edited)) return { kind: 'delete', targetExternalId: target };
  if (type !== 14 && type !== 'MESSAGE_EDIT' && !(type === undefined && edited)) return undefined;
  const newText = editedText(nodeFromContainer(edited));
  return defined({ kind: 'edit' as const, targetExternalId: target, text: newText });
}

/** The text an edit sets: the new body, or the new caption of a media message. */
export function editedText(found: ContentNode | undefined): string | undefined {
  if (!found) return undefined;
  if (typeof found.node === 'string') return found.node;
  const node = asObject(found.node);
  return typeof node?.text === 'string' ? node.text : asString(node?.caption);
}

/** A button or list reply: the id path and title path inside the node. */
function reply(value: unknown, idPath: string[], titlePath: string[]): Content | undefined {
  const id = asString(at(value, idPath));
  if (!id) return undefined;
  return { kind: 'interactive_reply', interactive: defined({ id, title: asString(at(value, titlePath)) }) };
}

function at(value: unknown, path: string[]): unknown {
  return path.reduce<unknown>((v, k) => asObject(v)?.[k], value);
}
