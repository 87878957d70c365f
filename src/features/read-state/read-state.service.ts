import type { RealtimePublisher } from '../realtime/publisher.ts';
import { checkAccess, requireUser, type Principal } from '../../access/access.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts';
import { AppError } from '../../platform/errors.ts';
import type { ConversationsService } from '../conversations/conversations.service.ts';
import type { MessagesService } from '../messages/messages.service.ts';
import type { ReadStateRepo } from './read-state.repo.ts';

/** Read positions, unread and mention counts, followed threads, receipts, the caller's conversation list. */
export class ReadStateService {
  constructor(
    private readonly repo: ReadStateRepo,
    private readonly conversations: ConversationsService,
    private readonly messages: MessagesService,
    private readonly clock: Clock,
    private readonly realtime: RealtimePublisher | null = null,
  ) {}

  /** Mark a conversation read up to a message of it (default: the latest). Moving back marks as unread. */
  async markRead(p: Principal, conversationId: string, messageId?: string) {
    const userId = requireUser(p);
    const c = await this.conversations.requireConversation(p, conversationId, 'read');
    if (c.member_role === null) throw new AppError('conversation.not_member', 'Join the conversation first');
    let seq = c.last_seq;
    if (messageId !== undefined) {
      const m = await this.messages.getRow(p.orgId, messageId);
      if (!m || m.conversation_id !== conversationId) throw new AppError('message.not_found', 'Message not found');
      seq = m.seq;
    }
    await this.repo.setReadSeq(conversationId, userId, seq);
    const [row] = (await this.repo.conversations(p.orgId, userId, { onlyUnread: false, limit: 1_000 })).filter((r) => r.conversation_id === conversationId);
    const result = { conversation_id: conversationId, last_read_seq: seq, unread: row?.unread ?? 0, mentions: row?.mentions ?? 0 };
    // The reader's other devices update their counters; in a direct or group conversation the
    // others see the receipt.
    this.realtime?.toUser(userId, 'read', result, conversationId);
    if (c.kind === 'direct' || c.kind === 'group') this.realtime?.toConversation(conversationId, 'read', { user_id: userId, last_read_seq: seq });
    // An agent reading a support conversation: the platform shows the customer it was read.
    if (c.kind === 'support' && checkAccess(p, 'support.handle')) await this.messages.signalRead(p.orgId, conversationId, seq);
    return result;
  }

  async unread(p: Principal) {
    const userId = requireUser(p);
    const [rows, threads] = await Promise.all([this.repo.conversations(p.orgId, userId, { onlyUnread: true, limit: 10_000 }), this.repo.threads(p.orgId, userId)]);
    const conversations = rows.filter((r) => r.unread > 0 || r.mentions > 0).map(({ last_message_at: _a, activity: _b, ...r }) => r);
    return {
      total_unread: conversations.reduce((n, r) => n + r.unread, 0),
      total_mentions: conversations.reduce((n, r) => n + r.mentions, 0),
      conversations,
      threads,
    };
  }

  /** The caller's conversations by last activity, each with its last message and unread count (seed 002). */
  async myConversations(p: Principal, q: { cursor?: string; limit?: number }) {
    const userId = requireUser(p);
    const limit = q.limit ?? 50;
    const before = q.cursor ? (({ a, i }) => ({ at: a, id: i }))(decodeCursor(q.cursor, ['a', 'i'] as const)) : undefined;
    const rows = await this.repo.conversations(p.orgId, userId, { onlyUnread: false, before, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const last = await this.repo.lastMessages(page.map((r) => r.conversation_id));
    const tail = page.at(-1);
    return {
      data: page.map(({ activity: _a, ...r }) => ({ ...r, last_message: last.get(r.conversation_id) ?? null })),
      next_cursor: rows.length > limit && tail ? encodeCursor({ a: tail.activity, i: tail.conversation_id }) : null,
    };
  }

  /** Who has read up to where: direct and group conversations only (channels can be huge). */
  async receipts(p: Principal, conversationId: string) {
    const c = await this.conversations.requireConversation(p, conversationId, 'read');
    if (c.kind !== 'direct' && c.kind !== 'group') throw new AppError('request.invalid', 'Read receipts exist for direct and group conversations');
    return (await this.repo.receipts(conversationId)).map((r) => ({ user_id: r.user_id, last_read_seq: Number(r.last_read_seq) }));
  }

  async follow(p: Principal, rootId: string, follow: boolean): Promise<void> {
    const userId = requireUser(p);
    const root = await this.#threadRoot(p, rootId);
    if (follow) await this.repo.follow({ root_id: root.id, user_id: userId, org_id: p.orgId, conversation_id: root.conversation_id, last_read_seq: await this.repo.lastReplySeq(root.id), created_at: isoNow(this.clock) });
    else await this.repo.unfollow(root.id, userId);
  }

  /** Mark a followed thread read up to its latest reply. */
  async markThreadRead(p: Principal, rootId: string): Promise<void> {
    const userId = requireUser(p);
    const root = await this.#threadRoot(p, rootId);
    if (!(await this.repo.setThreadReadSeq(root.id, userId, await this.repo.lastReplySeq(root.id)))) {
      throw new AppError('conversation.not_member', 'You do not follow this thread');
    }
  }

  async #threadRoot(p: Principal, rootId: string) {
    const root = await this.messages.getRow(p.orgId, rootId);
    if (!root) throw new AppError('message.not_found', 'Message not found');
    await this.messages.get(p, rootId); // same visibility answer as reading the message
    if (root.parent_id !== null) throw new AppError('message.conflict', 'Follow the thread’s first message');
    return root;
  }
}
