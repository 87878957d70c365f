import type { Kysely, Selectable } from 'kysely';
import type { TxRunner } from '../../storage/group-commit.ts';
import type { DB, MessagesTable } from '../../storage/schema.ts';

export type MessageRow = Selectable<MessagesTable>;
/** A new message: the repository fills seq and the thread/pin counters. */
export type NewMessageRow = Omit<MessageRow, 'seq' | 'reply_count' | 'last_reply_at' | 'pinned_at' | 'pinned_by'>;

/** Work done in the same transaction as the insert. */
export interface InsertExtras {
  /** Users who get a mention row for this message. */
  mentionUserIds: string[];
  /** For a thread reply: who follows the thread from now on (author, root author). */
  threadFollowerIds: string[];
  /** Files the message carries, in order (checked by the files service before). */
  attachmentFileIds?: string[];
}
const NO_EXTRAS: InsertExtras = { mentionUserIds: [], threadFollowerIds: [] };

/** SQL for messages. Every query is scoped by org_id. */
export class MessagesRepo {
  constructor(
    private readonly db: Kysely<DB>,
    /** Sends go through it: group commit on SQLite. */
    private readonly writes: TxRunner,
  ) {}

  getById(orgId: string, id: string): Promise<MessageRow | undefined> {
    return this.db.selectFrom('messages').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  findByClientId(conversationId: string, senderId: string, clientMsgId: string): Promise<MessageRow | undefined> {
    return this.db
      .selectFrom('messages')
      .selectAll()
      .where('conversation_id', '=', conversationId)
      .where('sender_id', '=', senderId)
      .where('client_msg_id', '=', clientMsgId)
      .executeTakeFirst();
  }

  /**
   * Insert a message at the conversation's next seq, in one transaction: the conversation row is
   * updated first (last_seq + 1), which on PostgreSQL locks it until commit, so concurrent senders
   * get consecutive numbers; SQLite has one writer. A failed insert (e.g. a duplicate client id)
   * rolls the increment back: no gap. In the same transaction: the sender's read position moves to
   * their own message, mentioned users get their mention rows, and for a thread reply the root's
   * reply count moves and the reply's author and the root's author follow the thread.
   * On SQLite the transaction is shared with the other sends of the same event-loop turn (group
   * commit, each send in its own savepoint): see storage/group-commit.ts.
   */
  async insertNext(row: NewMessageRow, extras: InsertExtras = NO_EXTRAS): Promise<MessageRow> {
    return this.writes.run(async (trx) => {
      const { last_seq } = await trx
        .updateTable('conversations')
        .set((eb) => ({ last_seq: eb('last_seq', '+', 1), last_message_at: row.created_at, updated_at: row.created_at }))
        .where('id', '=', row.conversation_id)
        .where('org_id', '=', row.org_id)
        .returning('last_seq')
        .executeTakeFirstOrThrow();
      const message: MessageRow = { ...row, seq: Number(last_seq), reply_count: 0, last_reply_at: null, pinned_at: null, pinned_by: null };
      await trx.insertInto('messages').values(message).execute();
      if (row.sender_id !== null) {
        await trx
          .updateTable('conversation_members')
          .set({ last_read_seq: message.seq })
          .where('conversation_id', '=', row.conversation_id)
          .where('user_id', '=', row.sender_id)
          .where('last_read_seq', '<', message.seq)
          .execute();
      }
      if (extras.attachmentFileIds?.length) {
        await trx
          .insertInto('message_attachments')
          .values(extras.attachmentFileIds.map((file_id, position) => ({ message_id: message.id, file_id, org_id: row.org_id, position })))
          .execute();
      }
      if (extras.mentionUserIds.length) {
        await trx
          .insertInto('message_mentions')
          .values(extras.mentionUserIds.map((user_id) => ({ message_id: message.id, user_id, org_id: row.org_id, conversation_id: row.conversation_id, seq: message.seq })))
          .execute();
      }
      if (row.parent_id !== null) {
        await trx
          .updateTable('messages')
          .set((eb) => ({ reply_count: eb('reply_count', '+', 1), last_reply_at: row.created_at }))
          .where('id', '=', row.parent_id)
          .execute();
        for (const user_id of extras.threadFollowerIds) {
          const author = user_id === row.sender_id;
          await trx
            .insertInto('thread_follows')
            .values({ root_id: row.parent_id, user_id, org_id: row.org_id, conversation_id: row.conversation_id, last_read_seq: author ? message.seq : 0, created_at: row.created_at })
            // The author has read the thread up to their own reply; others keep their position.
            .onConflict((oc) => (author ? oc.columns(['root_id', 'user_id']).doUpdateSet({ last_read_seq: message.seq }) : oc.columns(['root_id', 'user_id']).doNothing()))
            .execute();
        }
      }
      return message;
    });
  }

  /** Messages of a conversation with seq in (after, before), oldest first or newest first. */
  /**
   * Messages of a conversation with seq in (after, before): the channel view (top level and
   * replies also sent to the channel), or one thread (root excluded).
   */
  listRange(
    orgId: string,
    conversationId: string,
    r: { afterSeq?: number; beforeSeq?: number; newestFirst: boolean; threadRootId?: string },
    limit: number,
  ): Promise<MessageRow[]> {
    let q = this.db.selectFrom('messages').selectAll().where('org_id', '=', orgId).where('conversation_id', '=', conversationId);
    q = r.threadRootId === undefined ? q.where('in_channel', '=', 1) : q.where('parent_id', '=', r.threadRootId);
    if (r.afterSeq !== undefined) q = q.where('seq', '>', r.afterSeq);
    if (r.beforeSeq !== undefined) q = q.where('seq', '<', r.beforeSeq);
    return q.orderBy('seq', r.newestFirst ? 'desc' : 'asc').limit(limit).execute();
  }

  async update(orgId: string, id: string, patch: Partial<Pick<MessageRow, 'body' | 'metadata' | 'edited_at' | 'deleted_at' | 'type' | 'pinned_at' | 'pinned_by' | 'mentions'>>): Promise<void> {
    await this.db.updateTable('messages').set(patch).where('org_id', '=', orgId).where('id', '=', id).execute();
  }

  listPinned(orgId: string, conversationId: string): Promise<MessageRow[]> {
    return this.db
      .selectFrom('messages')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('conversation_id', '=', conversationId)
      .where('pinned_at', 'is not', null)
      .orderBy('pinned_at', 'desc')
      .limit(1000)
      .execute();
  }

  /** Distinct reply authors per thread root, for a page of roots (one query). */
  async threadParticipants(rootIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (rootIds.length === 0) return out;
    const rows = await this.db
      .selectFrom('messages')
      .select(['parent_id', 'sender_id'])
      .distinct()
      .where('parent_id', 'in', rootIds)
      .where('sender_id', 'is not', null)
      .execute();
    for (const r of rows) out.set(r.parent_id!, [...(out.get(r.parent_id!) ?? []), r.sender_id!]);
    return out;
  }

  /**
   * NOTE: a deleted message lets go of its files (downloads also check deleted_at); the files
   * themselves stay for their uploader and for other messages carrying them (SECURITY.md K).
   */
  async removeAttachments(orgId: string, messageId: string): Promise<void> {
    await this.db.deleteFrom('message_attachments').where('org_id', '=', orgId).where('message_id', '=', messageId).execute();
  }

  /** Remove the mention rows of a message (deleted or edited). */
  async replaceMentions(message: MessageRow, userIds: string[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('message_mentions').where('message_id', '=', message.id).execute();
      if (userIds.length) {
        await trx
          .insertInto('message_mentions')
          .values(userIds.map((user_id) => ({ message_id: message.id, user_id, org_id: message.org_id, conversation_id: message.conversation_id, seq: message.seq })))
          .execute();
      }
    });
  }

  /** Reactions of a page of messages, aggregated per emoji, with whether `userId` reacted (one query). */
  async reactionsFor(messageIds: string[], userId: string | null): Promise<Map<string, Array<{ emoji: string; count: number; me: boolean }>>> {
    const out = new Map<string, Array<{ emoji: string; count: number; me: boolean }>>();
    if (messageIds.length === 0) return out;
    const rows = await this.db
      .selectFrom('reactions')
      .select(['message_id', 'emoji', 'user_id', 'created_at'])
      .where('message_id', 'in', messageIds)
      .orderBy('created_at')
      .execute();
    for (const r of rows) {
      const list = out.get(r.message_id) ?? [];
      let entry = list.find((e) => e.emoji === r.emoji);
      if (!entry) list.push((entry = { emoji: r.emoji, count: 0, me: false }));
      entry.count += 1;
      if (r.user_id === userId) entry.me = true;
      out.set(r.message_id, list);
    }
    return out;
  }

  /** Add a reaction; false when this user already reacted with this emoji. */
  async addReaction(r: { message_id: string; user_id: string; emoji: string; org_id: string; created_at: string }): Promise<boolean> {
    const res = await this.db
      .insertInto('reactions')
      .values(r)
      .onConflict((oc) => oc.columns(['message_id', 'user_id', 'emoji']).doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async removeReaction(messageId: string, userId: string, emoji: string): Promise<boolean> {
    const res = await this.db.deleteFrom('reactions').where('message_id', '=', messageId).where('user_id', '=', userId).where('emoji', '=', emoji).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
}
