import { checkAccess, requireUser, type Principal } from '../../access/access.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { AppError, RateLimitedError } from '../../platform/errors.ts';
import type { RateLimiter } from '../../limits/rate-limiter.ts';
import type { MessageMetrics } from './messages.metrics.ts';
import { newOrderedId } from '../../platform/ids.ts';
import { asUniqueViolation } from '../../storage/errors.ts';
import type { ConversationsService } from '../conversations/conversations.service.ts';
import type { FileDto } from '../files/files.schemas.ts';
import type { FilesService } from '../files/files.service.ts';
import type { InsertExtras, MessageJsonRow, MessageRow, MessagesRepo } from './messages.repo.ts';
import { mentionedUserIds, parseMentions } from './mentions.ts';
import { HistoryPageCache } from './page-cache.ts';
import type { RealtimePublisher } from '../realtime/publisher.ts';
import type { Kysely } from 'kysely';
import type { DB } from '../../storage/schema.ts';
import type { EventRecorder } from '../support/support.service.ts';
import type { ListMessagesQuery, MessageDto, SendMessageBody } from './messages.schemas.ts';

const notFound = () => new AppError('message.not_found', 'Message not found');

const NO_MENTIONS: MessageDto['mentions'] = { users: [], channel: false, here: false };

/** Per-message data loaded for a whole page at once. */
export interface MessageExtras {
  participants?: string[];
  reactions?: MessageDto['reactions'];
  attachments?: FileDto[];
}

export function toMessageDto(m: MessageRow, extra: MessageExtras = {}): MessageDto {
  return {
    id: m.id,
    conversation_id: m.conversation_id,
    seq: m.seq,
    sender_type: m.sender_type,
    sender_id: m.sender_id,
    type: m.type,
    body: m.body,
    metadata: m.metadata === null ? null : (JSON.parse(m.metadata) as Record<string, unknown>),
    parent_id: m.parent_id,
    client_msg_id: m.client_msg_id,
    edited_at: m.edited_at,
    deleted: m.deleted_at !== null,
    deleted_at: m.deleted_at,
    created_at: m.created_at,
    in_channel: m.in_channel === 1,
    reply_count: m.reply_count,
    last_reply_at: m.last_reply_at,
    thread_participants: extra.participants ?? [],
    pinned: m.pinned_at !== null,
    pinned_at: m.pinned_at,
    pinned_by: m.pinned_by,
    mentions: m.mentions === null ? NO_MENTIONS : (JSON.parse(m.mentions) as MessageDto['mentions']),
    reactions: extra.reactions ?? [],
    attachments: extra.attachments ?? [],
    private: m.private === 1,
    delivery_status: m.delivery_status,
  };
}

/** A platform message stored before (dedupe on inbox and external id): the delivery is a repeat. */
export class DuplicateDelivery extends Error {
  constructor() {
    super('duplicate platform message');
  }
}

/** A history page whose messages are already JSON text (sent as they are by the route). */
export interface MessagePageJson {
  data: string[];
  has_more_before: boolean;
  has_more_after: boolean;
  /** The whole body, when it was kept with its cached page (HistoryPageCache.body). */
  body?: Buffer | null;
}

/** The page as the JSON body of `MessagePage`. */
export function messagePageJson(page: MessagePageJson): string | Buffer {
  return page.body ?? `{"data":[${page.data.join(',')}],"has_more_before":${page.has_more_before},"has_more_after":${page.has_more_after}}`;
}

/**
 * A message as broadcast to everyone who may see it: serialized once for all, so nothing in it
 * depends on the reader (`reactions[].me` is false; `reaction` events name who reacted).
 */
function forEveryone(dto: MessageDto): MessageDto {
  return dto.reactions.some((r) => r.me) ? { ...dto, reactions: dto.reactions.map((r) => ({ ...r, me: false })) } : dto;
}

/** Whether `p` reads conversation `c` without its private notes: a support conversation's customer. */
function hidesPrivate(p: Principal, c: { kind: string }): boolean {
  return c.kind === 'support' && !checkAccess(p, 'support.handle');
}

/** Whose view of messages: `reactions[].me` is for `userId` (none when null). */
type Reader = Pick<Principal, 'orgId' | 'userId'>;

/** The per-user send limit and the limiter that counts it. */
export interface SendLimit {
  limiter: RateLimiter;
  max: number;
  windowMs: number;
}

/** What goes to a platform about one message: an agent's reaction, read up to it, or ours deleted. */
export type PlatformSignal = { kind: 'reaction'; emoji: string | null } | { kind: 'read' } | { kind: 'delete' };

/** A platform's change to a message, as mirrors hear it. */
export type MirrorChange = { kind: 'delete' } | { kind: 'edit'; text: string } | { kind: 'reaction'; emoji: string | null } | { kind: 'status'; status: string; error: string | null };

/** Sending, reading, editing and deleting messages. Access always goes through ConversationsService. */
export class MessagesService {
  constructor(
    private readonly repo: MessagesRepo,
    private readonly conversations: ConversationsService,
    private readonly clock: Clock,
    private readonly files: FilesService,
    private readonly sendLimit: SendLimit,
    private readonly metrics: MessageMetrics,
    private readonly pages: HistoryPageCache = new HistoryPageCache(0),
    private readonly realtime: RealtimePublisher | null = null,
  ) {}

  #events: EventRecorder | null = null;
  #onCustomerMessage: ((orgId: string, conversationId: string) => Promise<void>) | null = null;

  /**
   * Integration events (outbox rows, in the transaction of the change) for the messages of support
   * conversations, and what happens when a customer writes (the support service reopens).
   */
  setSupportHooks(events: EventRecorder | null, onCustomerMessage: (orgId: string, conversationId: string) => Promise<void>): void {
    this.#events = events;
    this.#onCustomerMessage = onCustomerMessage;
  }

  /**
   * Replies out: called in the transaction of a staff message in a support conversation; enqueues
   * its send to the platform (and marks it pending) when the inbox is a platform's. True if so.
   */
  setOutbound(hook: (trx: Kysely<DB>, orgId: string, conversationId: string, messageId: string) => Promise<boolean>): void {
    this.#outbound = hook;
  }
  #outbound: ((trx: Kysely<DB>, orgId: string, conversationId: string, messageId: string) => Promise<boolean>) | null = null;

  /**
   * Mirrors (the Chatwoot relay): `message` runs in the transaction of every new message of a
   * support conversation; `change` after a platform's change to one (edit, delete, reaction, status).
   */
  setMirror(hooks: { message(trx: Kysely<DB>, orgId: string, conversationId: string, m: MessageRow): Promise<void>; change(m: MessageRow, change: MirrorChange, key: string): Promise<void> }): void {
    this.#mirror = hooks;
  }
  #mirror: { message(trx: Kysely<DB>, orgId: string, conversationId: string, m: MessageRow): Promise<void>; change(m: MessageRow, change: MirrorChange, key: string): Promise<void> } | null = null;

  /** Reactions and read receipts to platforms (the connectors set it). */
  setSignals(hook: (orgId: string, messageId: string, signal: PlatformSignal) => Promise<void>): void {
    this.#signal = hook;
  }
  #signal: ((orgId: string, messageId: string, signal: PlatformSignal) => Promise<void>) | null = null;

  /** An agent read a support conversation up to `seq`: the platform hears it for the last customer message. */
  async signalRead(orgId: string, conversationId: string, seq: number): Promise<void> {
    if (!this.#signal) return;
    const last = await this.repo.lastContactMessage(orgId, conversationId, seq);
    if (last) await this.#signal(orgId, last.id, { kind: 'read' });
  }

  /** Hits and misses of the history page cache (tests, diagnostics). */
  get historyCacheStats(): Readonly<{ hits: number; misses: number }> {
    return this.pages.stats;
  }

  /**
   * Send a message as the calling user. With `client_msg_id`, a retry (also a concurrent one)
   * returns the first message instead of storing a second: `replayed` tells which happened.
   */
  async send(p: Principal, conversationId: string, body: SendMessageBody): Promise<{ message: MessageDto; replayed: boolean }> {
    // Most sends are a member's plain text to a team conversation: their access check is made in
    // the write itself (MessagesRepo.insertAsMember), one read fewer. Only bodies #post will not
    // refuse go that way, so that access errors still come first. Conversations found to be support
    // conversations go the long way from then on (kinds never change).
    const plainText = body.private !== true && !body.attachments?.length && body.body.trim() !== '';
    if (plainText && !this.#supportIds.has(conversationId)) return this.#post(p, null, conversationId, body, null, true);
    const c = await this.conversations.requireAccess(p, conversationId, 'write');
    return this.#post(p, c.kind, conversationId, body, null, true);
  }

  /** Support conversations seen by send (bounded; only a shortcut: a miss costs one statement). */
  readonly #supportIds = new Set<string>();

  /** Reply in the thread of a top-level message; `also_send_to_channel` shows it in the channel too. */
  async reply(p: Principal, rootId: string, body: SendMessageBody & { also_send_to_channel?: boolean }): Promise<{ message: MessageDto; replayed: boolean }> {
    const root = await this.repo.getById(p.orgId, rootId);
    if (!root) throw notFound();
    const c = await this.#requireVisible(p, root, 'write');
    if (root.parent_id !== null) throw new AppError('message.conflict', 'Reply to the thread’s first message, not to a reply');
    if (root.deleted_at !== null) throw new AppError('message.conflict', 'This message was deleted');
    return this.#post(p, c.kind, root.conversation_id, body, root, body.also_send_to_channel === true);
  }

  /**
   * Stores and announces a new message. `kind` null: access not checked yet (send's member path):
   * the insert checks it (insertAsMember), and when that finds no member's write the full check
   * runs, answers with its error or gives the kind, and the insert is made with it. On that path
   * the send counts against the sender's limit before the check (a refused send counts too).
   */
  async #post(p: Principal, kindIfChecked: string | null, conversationId: string, body: SendMessageBody, root: MessageRow | null, inChannel: boolean): Promise<{ message: MessageDto; replayed: boolean }> {
    let kind = kindIfChecked;
    const userId = requireUser(p);
    if (body.private === true && !(kind === 'support' && checkAccess(p, 'support.handle'))) {
      throw new AppError('validation.failed', 'Private notes are for the staff of support conversations', { fields: [{ field: '/body/private', message: 'not allowed here' }] });
    }
    if ((body.type ?? 'text') === 'text' && body.body.trim() === '' && !body.attachments?.length) {
      throw new AppError('validation.failed', 'A text message needs a body', { fields: [{ field: '/body/body', message: 'must not be empty' }] });
    }
    const clientId = body.client_msg_id ?? null;
    if (clientId !== null) {
      const first = await this.repo.findByClientId(conversationId, userId, clientId);
      // A retry: answered once access is checked (the member path checks it now).
      if (first) {
        if (kind === null) await this.conversations.requireAccess(p, conversationId, 'write');
        return { message: (await this.#dtos(p, [first]))[0]!, replayed: true };
      }
    }
    // A retry answered from the first message above is not counted against the limit.
    await this.#checkSendLimit(userId);
    const attachments = body.attachments?.length ? await this.files.requireAttachable(p, body.attachments) : [];
    const parsed = parseMentions(body.body);
    const anyMention = parsed.usernames.length > 0 || parsed.channel || parsed.here;
    const mentioned = anyMention ? mentionedUserIds(parsed, await this.conversations.memberDirectory(p.orgId, conversationId), userId) : [];
    const row = {
      id: newOrderedId(),
      org_id: p.orgId,
      conversation_id: conversationId,
      sender_type: 'user',
      sender_id: userId,
      type: body.type ?? 'text',
      body: body.body,
      metadata: body.metadata === undefined ? null : JSON.stringify(body.metadata),
      parent_id: root?.id ?? null,
      client_msg_id: clientId,
      private: body.private === true ? 1 : 0,
      edited_at: null,
      deleted_at: null,
      created_at: isoNow(this.clock),
      in_channel: inChannel ? 1 : 0,
      mentions: anyMention ? JSON.stringify({ users: mentioned, channel: parsed.channel, here: parsed.here }) : null,
      external_id: null,
      delivery_status: null,
      delivery_error: null,
    };
    const followers = root ? [...new Set([userId, ...(root.sender_type === 'user' && root.sender_id ? [root.sender_id] : [])])] : [];
    try {
      const extras = { mentionUserIds: mentioned, threadFollowerIds: followers, attachmentFileIds: attachments.map((f) => f.id) };
      let inserted = kind === null ? await this.repo.insertAsMember(row, extras) : null;
      if (inserted) kind = inserted.kind;
      else {
        if (kind === null) {
          kind = (await this.conversations.requireAccess(p, conversationId, 'write')).kind;
          if (kind === 'support') this.#rememberSupport(conversationId);
        }
        inserted = await this.repo.insertNext(row, { ...extras, inTransaction: this.#supportWork(p, kind, conversationId, row.private, attachments) });
      }
      const { message: stored, root: rootChange } = inserted;
      this.metrics.sent(kind, stored.type);
      const dto = toMessageDto(stored, { attachments });
      await this.#announceNew(p, kind, dto, stored.version_seq, mentioned, root && rootChange ? { ...root, ...rootChange } : null);
      if (kind === 'support' && !checkAccess(p, 'support.handle')) await this.#onCustomerMessage?.(p.orgId, conversationId);
      return { message: dto, replayed: false };
    } catch (err) {
      // A concurrent retry with the same client id won the race: return its message.
      if (clientId !== null && asUniqueViolation(err)) {
        const first = await this.repo.findByClientId(conversationId, userId, clientId);
        if (first) return { message: (await this.#dtos(p, [first]))[0]!, replayed: true };
      }
      throw err;
    }
  }

  /**
   * A page of history, ascending by seq: the latest (no cursor), before or after a message or a
   * seq, or around a message (half before, the message, half after). The messages come as JSON
   * text (MessageJsonRow) and are sent as they are: see messageJsonSql in the repository.
   */
  async list(p: Principal, conversationId: string, q: ListMessagesQuery): Promise<MessagePageJson> {
    const c = await this.conversations.requireConversation(p, conversationId, 'read');
    const limit = q.limit ?? 50;
    const hidePrivate = hidesPrivate(p, c);
    const range = (r: { afterSeq?: number; beforeSeq?: number; newestFirst: boolean }, n: number) =>
      this.pages.get(`${conversationId}:${c.messages_version}:${r.afterSeq}:${r.beforeSeq}:${r.newestFirst}:${n}:${hidePrivate}`, () =>
        this.repo.listRangeJson(p.orgId, conversationId, { ...r, hidePrivate }, n),
      );
    const seqOf = async (id: string) => {
      const m = await this.repo.getById(p.orgId, id);
      if (!m || m.conversation_id !== conversationId) throw notFound();
      return m.seq;
    };
    if (q.around !== undefined) {
      const at = await seqOf(q.around);
      const half = Math.floor((limit - 1) / 2);
      const older = await range({ beforeSeq: at + 1, newestFirst: true }, half + 2);
      const newer = await range({ afterSeq: at, newestFirst: false }, limit - half);
      const before = older.slice(0, half + 1).reverse();
      const after = newer.slice(0, limit - before.length);
      return { data: await this.#jsonPage(p, [...before, ...after]), has_more_before: older.length > half + 1, has_more_after: newer.length > after.length };
    }
    const afterSeq = q.after !== undefined ? await seqOf(q.after) : q.after_seq;
    const beforeSeq = q.before !== undefined ? await seqOf(q.before) : q.before_seq;
    if (afterSeq !== undefined) {
      const rows = await range({ afterSeq, beforeSeq, newestFirst: false }, limit + 1);
      const page = rows.slice(0, limit);
      return this.#withBody(rows, page, { data: await this.#jsonPage(p, page), has_more_before: afterSeq > 0, has_more_after: rows.length > limit });
    }
    const rows = await range({ beforeSeq, newestFirst: true }, limit + 1);
    const page = rows.slice(0, limit).reverse();
    const newest = page.at(-1)?.seq ?? 0;
    return this.#withBody(rows, page, { data: await this.#jsonPage(p, page), has_more_before: rows.length > limit, has_more_after: newest < c.last_seq && beforeSeq !== undefined });
  }

  /**
   * `out` with its body kept with the cached `rows` it was made of, when it is the same for every
   * reader: no message with reactions (their `me` is the reader's). Everything else in it is fixed
   * by the cache key (the conversation's messages_version, the range, the limit).
   */
  #withBody(rows: MessageJsonRow[], page: MessageJsonRow[], out: MessagePageJson): MessagePageJson {
    if (page.some((r) => r.reaction_count > 0)) return out;
    out.body = this.pages.body(rows, () => messagePageJson(out) as string);
    return out;
  }

  /**
   * The JSON of a page: reactions, attachments and thread participants loaded (one query each, for
   * the messages that have some) and written into the messages that have them.
   */
  async #jsonPage(p: Reader, rows: MessageJsonRow[]): Promise<string[]> {
    const { reactions, participants, attachments } = await this.#extras(p, rows);
    return rows.map((r) => {
      if (r.reply_count === 0 && r.reaction_count === 0 && r.attachment_count === 0) return r.json;
      const m = JSON.parse(r.json) as MessageDto;
      m.thread_participants = participants.get(r.id) ?? [];
      m.reactions = reactions.get(r.id) ?? [];
      m.attachments = attachments.get(r.id) ?? [];
      return JSON.stringify(m);
    });
  }

  /** Per-page extras, queried only for the messages whose counters say they have some. */
  async #extras(p: Reader, rows: Array<Pick<MessageRow, 'id' | 'reply_count' | 'reaction_count' | 'attachment_count'>>) {
    const ids = (f: (r: (typeof rows)[number]) => boolean) => rows.filter(f).map((r) => r.id);
    const [reactions, participants, attachments] = await Promise.all([
      this.repo.reactionsFor(ids((r) => r.reaction_count > 0), p.userId),
      this.repo.threadParticipants(ids((r) => r.reply_count > 0)),
      this.files.attachmentsOf(p.orgId, ids((r) => r.attachment_count > 0)),
    ]);
    return { reactions, participants, attachments };
  }

  /** The stored row, no access check (callers check the conversation). */
  getRow(orgId: string, id: string): Promise<MessageRow | undefined> {
    return this.repo.getById(orgId, id);
  }

  async get(p: Principal, id: string): Promise<MessageDto> {
    const m = await this.repo.getById(p.orgId, id);
    if (!m) throw notFound();
    await this.#requireVisible(p, m);
    return (await this.#dtos(p, [m]))[0]!;
  }

  /** The author edits; deleted messages cannot be edited. */
  async edit(p: Principal, id: string, body: string): Promise<MessageDto> {
    const userId = requireUser(p);
    const m = await this.repo.getById(p.orgId, id);
    if (!m) throw notFound();
    const c = await this.#requireVisible(p, m, 'write');
    if (m.sender_id !== userId || m.sender_type !== 'user') throw new AppError('forbidden', 'Only the author can edit a message');
    if (m.deleted_at !== null) throw new AppError('message.conflict', 'A deleted message cannot be edited');
    const edited_at = isoNow(this.clock);
    // Mentions follow the new text (added names are notified, removed ones drop out of the counts).
    const parsed = parseMentions(body);
    const any = parsed.usernames.length > 0 || parsed.channel || parsed.here;
    const mentioned = any ? mentionedUserIds(parsed, await this.conversations.memberDirectory(p.orgId, m.conversation_id), userId) : [];
    const mentions = any ? JSON.stringify({ users: mentioned, channel: parsed.channel, here: parsed.here }) : null;
    const events = c.kind === 'support' ? this.#events : null;
    const version = await this.repo.update(p.orgId, id, { body, edited_at, mentions }, events ? async (trx) => void (await events.record(trx, p.orgId, 'chat.message.updated', { conversation_id: m.conversation_id, message: toMessageDto({ ...m, body, edited_at, mentions }) })) : undefined);
    await this.repo.replaceMentions(m, mentioned);
    const dto = (await this.#dtos(p, [{ ...m, body, edited_at, mentions }]))[0]!;
    this.realtime?.toConversation(m.conversation_id, 'message_update', forEveryone(dto), version, m.private === 1);
    return dto;
  }

  /** The author, the channel's owners and admins, or an org admin delete; a tombstone stays in history. */
  async delete(p: Principal, id: string): Promise<void> {
    const m = await this.repo.getById(p.orgId, id);
    if (!m) throw notFound();
    const c = await this.#requireVisible(p, m);
    const allowed = (m.sender_type === 'user' && m.sender_id === p.userId) || c.member_role === 'owner' || c.member_role === 'admin' || checkAccess(p, 'conversations.moderate');
    if (!allowed) throw new AppError('forbidden', 'Only the author, the channel’s admins or an org admin can delete a message');
    if (c.archived_at !== null) throw new AppError('conversation.archived', 'This conversation is archived');
    if (m.deleted_at !== null) return;
    const deleted_at = isoNow(this.clock);
    const events = c.kind === 'support' ? this.#events : null;
    // The business's message that went out: deleted for everyone where the platform can (queued
    // before the tombstone, while the message still holds the platform's handles).
    if (c.kind === 'support' && m.sender_type !== 'contact' && m.external_id !== null) await this.deleteOnPlatform(p.orgId, id);
    const version = await this.repo.tombstone(p.orgId, id, deleted_at, events ? async (trx) => void (await events.record(trx, p.orgId, 'chat.message.deleted', { conversation_id: m.conversation_id, message_id: id })) : undefined);
    this.realtime?.toConversation(m.conversation_id, 'message_delete', { id, conversation_id: m.conversation_id, seq: m.seq, parent_id: m.parent_id, deleted_at }, version, m.private === 1);
    // The mirror (Chatwoot) hears it like a platform's delete.
    if (c.kind === 'support') await this.#mirror?.change(m, { kind: 'delete' }, 'delete');
  }

  /** One of our messages, deleted here, deleted on its platform too (where it can). Call before tombstoning it. */
  async deleteOnPlatform(orgId: string, messageId: string): Promise<void> {
    await this.#signal?.(orgId, messageId, { kind: 'delete' });
  }

  /** A thread: its root and a page of replies (ascending by seq, after `after_seq`). */
  async thread(p: Principal, rootId: string, q: { after_seq?: number; limit?: number }): Promise<{ root: MessageDto; replies: MessageDto[]; has_more: boolean }> {
    const root = await this.repo.getById(p.orgId, rootId);
    if (!root) throw notFound();
    const c = await this.#requireVisible(p, root);
    const limit = q.limit ?? 50;
    const rows = await this.repo.listRange(p.orgId, root.conversation_id, { afterSeq: q.after_seq ?? 0, newestFirst: false, threadRootId: root.id, hidePrivate: hidesPrivate(p, c) }, limit + 1);
    const [rootDto, ...replies] = await this.#dtos(p, [root, ...rows.slice(0, limit)]);
    return { root: rootDto!, replies, has_more: rows.length > limit };
  }

  /** Add (idempotent) or remove the caller's reaction; members only. */
  async react(p: Principal, id: string, emoji: string, add: boolean): Promise<MessageDto> {
    const userId = requireUser(p);
    const m = await this.repo.getById(p.orgId, id);
    if (!m) throw notFound();
    await this.#requireVisible(p, m, 'write');
    if (m.deleted_at !== null) throw new AppError('message.conflict', 'This message was deleted');
    let version: number | null;
    if (add) version = await this.repo.addReaction({ message_id: id, user_id: userId, emoji, org_id: p.orgId, created_at: isoNow(this.clock) });
    else if ((version = await this.repo.removeReaction(id, userId, emoji)) === null) throw new AppError('not_found', 'You have not reacted with this emoji');
    const dto = (await this.#dtos(p, [(await this.repo.getById(p.orgId, id)) ?? m]))[0]!;
    // An agent's reaction to a customer's platform message goes out to the platform too.
    if (version !== null && m.sender_type === 'contact' && m.external_id !== null && checkAccess(p, 'support.handle')) {
      await this.#signal?.(p.orgId, id, { kind: 'reaction', emoji: add ? emoji : null });
    }
    if (version !== null) {
      const count = dto.reactions.find((r) => r.emoji === emoji)?.count ?? 0;
      this.realtime?.toConversation(m.conversation_id, 'reaction', { message_id: id, emoji, user_id: userId, action: add ? 'added' : 'removed', count }, version, m.private === 1);
    }
    return dto;
  }

  /** Pin or unpin (members of the conversation). */
  async pin(p: Principal, id: string, pinned: boolean): Promise<MessageDto> {
    const userId = requireUser(p);
    const m = await this.repo.getById(p.orgId, id);
    if (!m) throw notFound();
    await this.#requireVisible(p, m, 'write');
    if (pinned && m.deleted_at !== null) throw new AppError('message.conflict', 'A deleted message cannot be pinned');
    const patch = pinned ? { pinned_at: m.pinned_at ?? isoNow(this.clock), pinned_by: m.pinned_by ?? userId } : { pinned_at: null, pinned_by: null };
    const version = await this.repo.update(p.orgId, id, patch);
    this.realtime?.toConversation(m.conversation_id, 'pin', { message_id: id, pinned, pinned_at: patch.pinned_at, pinned_by: patch.pinned_by }, version, m.private === 1);
    return (await this.#dtos(p, [{ ...m, ...patch }]))[0]!;
  }

  async pinned(p: Principal, conversationId: string): Promise<MessageDto[]> {
    const c = await this.conversations.requireConversation(p, conversationId, 'read');
    return this.#dtos(p, await this.repo.listPinned(p.orgId, conversationId, hidesPrivate(p, c)));
  }

  /**
   * DTOs, as every message endpoint returns them, for rows the caller was already allowed to read
   * (search checks that in its own query): for other capabilities that find messages themselves.
   */
  toDtos(p: Principal, rows: MessageRow[]): Promise<MessageDto[]> {
    return this.#dtos(p, rows);
  }

  /** DTOs for a page: reactions and thread participants loaded for all of it at once. */
  async #dtos(p: Reader, rows: MessageRow[]): Promise<MessageDto[]> {
    const { reactions, participants, attachments } = await this.#extras(p, rows);
    return rows.map((m) => toMessageDto(m, { reactions: reactions.get(m.id), participants: participants.get(m.id), attachments: attachments.get(m.id) }));
  }

  /**
   * After a new message is stored: the message to the conversation's subscribers; in a direct or
   * group conversation also to each participant's personal topic (gateways skip that copy for
   * sockets subscribed to the conversation); a mention to each mentioned user; for a thread reply
   * the root's new counters.
   */
  async #announceNew(p: Reader, kind: string, dto: MessageDto, version: number, mentioned: string[], root: MessageRow | null): Promise<void> {
    const rt = this.realtime;
    if (!rt) return;
    rt.toConversation(dto.conversation_id, 'message', dto, version, dto.private);
    if (kind === 'direct' || kind === 'group') {
      for (const m of await this.conversations.memberDirectory(p.orgId, dto.conversation_id)) rt.toUser(m.userId, 'message', dto, dto.conversation_id, version);
    }
    // A private note's mentions reach the staff only (never the customer of the conversation).
    const customers = dto.private ? new Set((await this.conversations.memberDirectory(p.orgId, dto.conversation_id)).filter((m) => m.role === 'customer').map((m) => m.userId)) : new Set<string>();
    for (const userId of mentioned) if (!customers.has(userId)) rt.toUser(userId, 'mention', { conversation_id: dto.conversation_id, message: dto }, dto.conversation_id);
    if (root) {
      const rootDto = (await this.#dtos(p, [root]))[0]!;
      rt.toConversation(dto.conversation_id, 'message_update', forEveryone(rootDto), root.version_seq);
    }
  }

  /**
   * A message that came from a platform — the contact's, or an echo of what the business sent
   * outside Parley — into a support conversation: stored at the next seq (group commit on SQLite)
   * with its integration event in the same transaction, then announced like any other. The
   * caller deduped it and checked the conversation.
   */
  async storeInbound(
    orgId: string,
    conversationId: string,
    m: {
      senderType: 'contact' | 'business';
      senderId: string | null;
      type: string;
      body: string;
      metadata: Record<string, unknown> | null;
      /** Null for a message that has none yet (one from a mirror, going out: the send sets it). */
      externalId: string | null;
      createdAt: string;
      replyToId?: string | null;
      /** Files (already stored) attached in order. */
      attachmentFileIds?: string[];
      /** Send it out through the inbox's platform (queued in its transaction, like an agent's reply). */
      sendOut?: boolean;
      /** Claimed first in the message's transaction: a second delivery of it writes nothing and throws DuplicateDelivery. */
      dedupe?: { inboxId: string; externalId: string };
      /** More writes in the message's transaction (after the dedupe claim): e.g. its media download job. */
      inTransaction?: (trx: Kysely<DB>, stored: MessageRow) => Promise<void>;
    },
  ): Promise<MessageDto> {
    const row = {
      id: newOrderedId(),
      org_id: orgId,
      conversation_id: conversationId,
      sender_type: m.senderType,
      sender_id: m.senderId,
      type: m.type,
      body: m.body,
      // A plain text keeps what it replies to too (it has no other metadata).
      metadata: m.metadata === null && !m.replyToId ? null : JSON.stringify({ ...m.metadata, ...(m.replyToId ? { reply_to: m.replyToId } : {}) }),
      parent_id: null,
      client_msg_id: null,
      private: 0,
      edited_at: null,
      deleted_at: null,
      created_at: m.createdAt,
      in_channel: 1,
      mentions: null,
      external_id: m.externalId,
      delivery_status: null,
      delivery_error: null,
    };
    const events = this.#events;
    const outbound = m.sendOut ? this.#outbound : null;
    const mirror = this.#mirror;
    const attachments = m.attachmentFileIds?.length ? await this.files.attachmentsByIds(orgId, m.attachmentFileIds) : [];
    const inTransaction = async (trx: Kysely<DB>, stored: MessageRow) => {
      if (outbound && (await outbound(trx, orgId, conversationId, stored.id))) stored.delivery_status = 'pending';
      await events?.record(trx, orgId, 'chat.message.new', { conversation_id: conversationId, message: toMessageDto(stored, { attachments }) });
      await m.inTransaction?.(trx, stored);
      await mirror?.message(trx, orgId, conversationId, stored);
    };
    const dedupe = m.dedupe ? { ...m.dedupe, at: m.createdAt } : undefined;
    const inserted = await this.repo.insertOnce(row, { mentionUserIds: [], threadFollowerIds: [], attachmentFileIds: m.attachmentFileIds ?? [], inTransaction, dedupe });
    if (inserted === 'duplicate') throw new DuplicateDelivery();
    const { message } = inserted;
    this.metrics.sent('support', message.type);
    const dto = toMessageDto(message, { attachments });
    await this.#announceNew({ orgId, userId: null }, 'support', dto, message.version_seq, [], null);
    return dto;
  }

  /** A platform's message id within a conversation's organization (inbound dedupe already ran): the stored row. */
  findByExternalId(orgId: string, conversationIds: string[], externalId: string): Promise<MessageRow | undefined> {
    return this.repo.findByExternalId(orgId, conversationIds, externalId);
  }

  /** A platform's message id within one inbox (echoes, statuses, reactions to our messages). */
  findInInbox(orgId: string, inboxId: string, externalId: string): Promise<MessageRow | undefined> {
    return this.repo.findInInbox(orgId, inboxId, externalId);
  }

  /**
   * A platform changed one of its messages (edit or delete) or reported the delivery of one of
   * ours: the row changes, the version moves, subscribers hear it.
   */
  async applyPlatformChange(m: MessageRow, change: { edit?: string; delete?: true; deliveryStatus?: string; deliveryError?: string | null; contactReaction?: string | null }): Promise<void> {
    if (change.delete) {
      if (m.deleted_at !== null) return;
      const deleted_at = isoNow(this.clock);
      const version = await this.repo.tombstone(m.org_id, m.id, deleted_at);
      this.realtime?.toConversation(m.conversation_id, 'message_delete', { id: m.id, conversation_id: m.conversation_id, seq: m.seq, parent_id: m.parent_id, deleted_at }, version);
      await this.#mirror?.change(m, { kind: 'delete' }, 'delete');
      return;
    }
    // The contact's reaction (platforms allow one per message) lives in the message's metadata.
    const patch =
      change.edit !== undefined
        ? { body: change.edit, edited_at: isoNow(this.clock) }
        : change.contactReaction !== undefined
          ? { metadata: JSON.stringify({ ...(m.metadata ? (JSON.parse(m.metadata) as Record<string, unknown>) : {}), contact_reaction: change.contactReaction }) }
          : { delivery_status: change.deliveryStatus ?? null, delivery_error: change.deliveryError ?? null };
    const version = await this.repo.update(m.org_id, m.id, patch);
    const dto = (await this.#dtos({ orgId: m.org_id, userId: null }, [{ ...m, ...patch }]))[0]!;
    this.realtime?.toConversation(m.conversation_id, 'message_update', dto, version, m.private === 1);
    const mirrored: [MirrorChange, string] =
      change.edit !== undefined
        ? [{ kind: 'edit', text: change.edit }, `edit:${version}`]
        : change.contactReaction !== undefined
          ? [{ kind: 'reaction', emoji: change.contactReaction }, `reaction:${version}`]
          : [{ kind: 'status', status: change.deliveryStatus ?? '', error: change.deliveryError ?? null }, `status:${change.deliveryStatus ?? ''}`];
    await this.#mirror?.change(m, mirrored[0], mirrored[1]);
  }

  /**
   * The media of a platform message was downloaded (`fileId`: now attached) or given up on: its
   * `metadata.media` gets `patch` merged in; the version moves, subscribers hear a message_update.
   * Nothing happens to a message deleted meanwhile (null); else the new DTO.
   */
  async setPlatformMedia(orgId: string, id: string, patch: Record<string, unknown>, fileId: string | null): Promise<MessageDto | null> {
    const m = await this.repo.getById(orgId, id);
    if (!m || m.deleted_at !== null) return null;
    const metadata = m.metadata ? (JSON.parse(m.metadata) as Record<string, unknown>) : {};
    const next = JSON.stringify({ ...metadata, media: { ...(metadata.media as Record<string, unknown> | undefined), ...patch } });
    const version = await this.repo.setPlatformMedia(orgId, id, next, fileId);
    const row = { ...m, metadata: next, attachment_count: m.attachment_count + (fileId ? 1 : 0) };
    const dto = (await this.#dtos({ orgId, userId: null }, [row]))[0]!;
    this.realtime?.toConversation(m.conversation_id, 'message_update', dto, version, m.private === 1);
    return dto;
  }

  /**
   * What changed in a conversation after event seq `since` (realtime resume; the caller checked
   * access): the current version and the changed messages as their JSON text, the same for every
   * reader, oldest change first; `tooMany` when more than `limit` messages changed (refetch).
   */
  async changesSince(
    orgId: string,
    conversationId: string,
    since: number,
    limit: number,
    hidePrivate = false,
  ): Promise<{ version: number; tooMany: boolean; changes: Array<{ version_seq: number; deleted: boolean; private: boolean; json: string }> }> {
    const { version, rows } = await this.repo.changesSince(orgId, conversationId, since, limit + 1, hidePrivate);
    if (rows.length > limit) return { version, tooMany: true, changes: [] };
    const jsons = await this.#jsonPage({ orgId, userId: null }, rows);
    return { version, tooMany: false, changes: rows.map((r, i) => ({ version_seq: r.version_seq, deleted: r.deleted_at !== null, private: r.private === 1, json: jsons[i]! })) };
  }

  /**
   * What a new message of a support conversation does in its transaction: a staff reply goes out
   * to the platform (never a private note), its integration event, and the mirrors.
   */
  #supportWork(p: Principal, kind: string, conversationId: string, isPrivate: number, attachments: FileDto[]): InsertExtras['inTransaction'] {
    if (kind !== 'support') return undefined;
    const events = this.#events;
    const outbound = isPrivate === 0 && checkAccess(p, 'support.handle') ? this.#outbound : null;
    const mirror = this.#mirror;
    if (!events && !outbound && !mirror) return undefined;
    return async (trx: Kysely<DB>, m: MessageRow) => {
      if (outbound && (await outbound(trx, p.orgId, conversationId, m.id))) m.delivery_status = 'pending';
      await events?.record(trx, p.orgId, 'chat.message.new', { conversation_id: conversationId, message: toMessageDto(m, { attachments }) });
      await mirror?.message(trx, p.orgId, conversationId, m);
    };
  }

  #rememberSupport(conversationId: string): void {
    if (this.#supportIds.size >= 100_000) this.#supportIds.clear();
    this.#supportIds.add(conversationId);
  }

  /** Per-user send limit across conversations (a retry answered from the first message is not counted). */
  async #checkSendLimit(userId: string): Promise<void> {
    const { limiter, max, windowMs } = this.sendLimit;
    if (max <= 0) return;
    const key = `send:user:${userId}`;
    const w = limiter.hitNow ? limiter.hitNow(key, windowMs) : await limiter.hit(key, windowMs);
    if (w.count > max) throw new RateLimitedError(Math.ceil(w.retryAfterMs / 1000), 'send');
  }

  /** A message is visible when its conversation is; a private note only to the conversation's staff. */
  async #requireVisible(p: Principal, m: MessageRow, need: 'read' | 'write' = 'read') {
    const c = await this.conversations.requireConversation(p, m.conversation_id, need).catch((err: unknown) => {
      throw err instanceof AppError && err.code === 'conversation.not_found' ? notFound() : err;
    });
    if (m.private === 1 && hidesPrivate(p, c)) throw notFound();
    return c;
  }
}
