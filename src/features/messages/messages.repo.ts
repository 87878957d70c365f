import type { Kysely, Selectable } from 'kysely';
import type { DB, MessagesTable } from '../../storage/schema.ts';

export type MessageRow = Selectable<MessagesTable>;

/** SQL for messages. Every query is scoped by org_id. */
export class MessagesRepo {
  constructor(private readonly db: Kysely<DB>) {}

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
   * rolls the increment back: no gap. The sender's read position moves to their own message.
   */
  async insertNext(row: Omit<MessageRow, 'seq'>): Promise<MessageRow> {
    return this.db.transaction().execute(async (trx) => {
      const { last_seq } = await trx
        .updateTable('conversations')
        .set((eb) => ({ last_seq: eb('last_seq', '+', 1), last_message_at: row.created_at, updated_at: row.created_at }))
        .where('id', '=', row.conversation_id)
        .where('org_id', '=', row.org_id)
        .returning('last_seq')
        .executeTakeFirstOrThrow();
      const message = { ...row, seq: Number(last_seq) };
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
      return message;
    });
  }

  /** Messages of a conversation with seq in (after, before), oldest first or newest first. */
  listRange(orgId: string, conversationId: string, r: { afterSeq?: number; beforeSeq?: number; newestFirst: boolean }, limit: number): Promise<MessageRow[]> {
    let q = this.db.selectFrom('messages').selectAll().where('org_id', '=', orgId).where('conversation_id', '=', conversationId);
    if (r.afterSeq !== undefined) q = q.where('seq', '>', r.afterSeq);
    if (r.beforeSeq !== undefined) q = q.where('seq', '<', r.beforeSeq);
    return q.orderBy('seq', r.newestFirst ? 'desc' : 'asc').limit(limit).execute();
  }

  async update(orgId: string, id: string, patch: Partial<Pick<MessageRow, 'body' | 'metadata' | 'edited_at' | 'deleted_at' | 'type'>>): Promise<void> {
    await this.db.updateTable('messages').set(patch).where('org_id', '=', orgId).where('id', '=', id).execute();
  }
}
