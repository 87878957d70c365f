import type { Kysely } from 'kysely';
import type { DB } from '../../storage/schema.ts';

export interface ConversationUnread {
  conversation_id: string;
  kind: string;
  name: string | null;
  last_seq: number;
  last_read_seq: number;
  last_message_at: string | null;
  /** last_message_at, or created_at for a conversation without messages: the sort key */
  activity: string;
  unread: number;
  mentions: number;
}

/**
 * Read positions and unread counts. Counted, not stored: unread = messages shown in the
 * conversation after the member's last_read_seq, not deleted, not their own; mentions = mention
 * rows after it; thread unread = replies after the follower's thread position.
 */
export class ReadStateRepo {
  constructor(private readonly db: Kysely<DB>) {}

  async setReadSeq(conversationId: string, userId: string, seq: number): Promise<void> {
    await this.db.updateTable('conversation_members').set({ last_read_seq: seq }).where('conversation_id', '=', conversationId).where('user_id', '=', userId).execute();
  }

  /** The user's conversations with unread and mention counts, by last activity (keyset on last_message_at, id). */
  async conversations(orgId: string, userId: string, opts: { onlyUnread: boolean; before?: { at: string; id: string }; limit: number }): Promise<ConversationUnread[]> {
    let q = this.db
      .selectFrom('conversation_members as m')
      .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
      .select((eb) => [
        'c.id as conversation_id',
        'c.kind',
        'c.name',
        'c.last_seq',
        'm.last_read_seq',
        'c.last_message_at',
        eb
          .selectFrom('messages as msg')
          .select((e) => e.fn.countAll<number>().as('n'))
          .whereRef('msg.conversation_id', '=', 'm.conversation_id')
          .whereRef('msg.seq', '>', 'm.last_read_seq')
          .where('msg.in_channel', '=', 1)
          .where('msg.deleted_at', 'is', null)
          .where((e) => e.or([e('msg.sender_id', 'is', null), e('msg.sender_id', '!=', userId)]))
          .as('unread'),
        eb
          .selectFrom('message_mentions as mm')
          .select((e) => e.fn.countAll<number>().as('n'))
          .whereRef('mm.conversation_id', '=', 'm.conversation_id')
          .where('mm.user_id', '=', userId)
          .whereRef('mm.seq', '>', 'm.last_read_seq')
          .as('mentions'),
      ])
      .where('m.user_id', '=', userId)
      .where('m.org_id', '=', orgId);
    if (opts.onlyUnread) q = q.whereRef('c.last_seq', '>', 'm.last_read_seq');
    // Activity: the last message, or the creation for a conversation without messages (never null).
    if (opts.before) {
      const { at, id } = opts.before;
      q = q.where((eb) => {
        const activity = eb.fn.coalesce('c.last_message_at', 'c.created_at');
        return eb.or([eb(activity, '<', at), eb.and([eb(activity, '=', at), eb('c.id', '<', id)])]);
      });
    }
    const rows = await q
      .select((eb) => eb.fn.coalesce('c.last_message_at', 'c.created_at').as('activity'))
      .orderBy('activity', 'desc')
      .orderBy('c.id', 'desc')
      .limit(opts.limit)
      .execute();
    return rows.map((r) => ({ ...r, last_seq: Number(r.last_seq), last_read_seq: Number(r.last_read_seq), unread: Number(r.unread ?? 0), mentions: Number(r.mentions ?? 0) }));
  }

  /** Followed threads with unread replies. */
  async threads(orgId: string, userId: string): Promise<Array<{ root_id: string; conversation_id: string; unread: number }>> {
    const rows = await this.db
      .selectFrom('thread_follows as f')
      .innerJoin('messages as r', (j) => j.onRef('r.parent_id', '=', 'f.root_id').onRef('r.seq', '>', 'f.last_read_seq'))
      .select((eb) => ['f.root_id', 'f.conversation_id', eb.fn.countAll<number>().as('unread')])
      .where('f.user_id', '=', userId)
      .where('f.org_id', '=', orgId)
      .where('r.deleted_at', 'is', null)
      .where((e) => e.or([e('r.sender_id', 'is', null), e('r.sender_id', '!=', userId)]))
      .groupBy(['f.root_id', 'f.conversation_id'])
      .execute();
    return rows.map((r) => ({ root_id: r.root_id, conversation_id: r.conversation_id, unread: Number(r.unread) }));
  }

  async follow(row: { root_id: string; user_id: string; org_id: string; conversation_id: string; last_read_seq: number; created_at: string }): Promise<void> {
    await this.db.insertInto('thread_follows').values(row).onConflict((oc) => oc.columns(['root_id', 'user_id']).doNothing()).execute();
  }

  async unfollow(rootId: string, userId: string): Promise<void> {
    await this.db.deleteFrom('thread_follows').where('root_id', '=', rootId).where('user_id', '=', userId).execute();
  }

  async setThreadReadSeq(rootId: string, userId: string, seq: number): Promise<boolean> {
    const r = await this.db.updateTable('thread_follows').set({ last_read_seq: seq }).where('root_id', '=', rootId).where('user_id', '=', userId).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** The newest reply's seq in a thread (0 without replies). */
  async lastReplySeq(rootId: string): Promise<number> {
    const r = await this.db.selectFrom('messages').select((eb) => eb.fn.max('seq').as('s')).where('parent_id', '=', rootId).executeTakeFirst();
    return Number(r?.s ?? 0);
  }

  /** Last message of each conversation of a page (one query). */
  async lastMessages(conversationIds: string[]): Promise<Map<string, { id: string; seq: number; body: string; sender_id: string | null; type: string; created_at: string; deleted: boolean }>> {
    const out = new Map<string, { id: string; seq: number; body: string; sender_id: string | null; type: string; created_at: string; deleted: boolean }>();
    if (conversationIds.length === 0) return out;
    const rows = await this.db
      .selectFrom('messages as msg')
      .innerJoin('conversations as c', (j) => j.onRef('c.id', '=', 'msg.conversation_id'))
      .select(['msg.id', 'msg.conversation_id', 'msg.seq', 'msg.body', 'msg.sender_id', 'msg.type', 'msg.created_at', 'msg.deleted_at'])
      .where('msg.conversation_id', 'in', conversationIds)
      .where('msg.in_channel', '=', 1)
      .where((eb) =>
        eb(
          'msg.seq',
          '=',
          eb
            .selectFrom('messages as x')
            .select((e) => e.fn.max('x.seq').as('s'))
            .whereRef('x.conversation_id', '=', 'msg.conversation_id')
            .where('x.in_channel', '=', 1),
        ),
      )
      .execute();
    for (const r of rows) out.set(r.conversation_id, { id: r.id, seq: Number(r.seq), body: r.body, sender_id: r.sender_id, type: r.type, created_at: r.created_at, deleted: r.deleted_at !== null });
    return out;
  }

  receipts(conversationId: string): Promise<Array<{ user_id: string; last_read_seq: number }>> {
    return this.db.selectFrom('conversation_members').select(['user_id', 'last_read_seq']).where('conversation_id', '=', conversationId).orderBy('user_id').execute();
  }
}
