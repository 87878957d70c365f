import { type Kysely, type RawBuilder, type Selectable, sql } from 'kysely';
import { dialectOf } from '../../storage/dialect.ts';
import type { TxRunner } from '../../storage/group-commit.ts';
import { PreparedQuery } from '../../storage/prepared.ts';
import type { DB, MessagesTable } from '../../storage/schema.ts';

export type MessageRow = Selectable<MessagesTable>;
/** A new message: the repository fills seq and the thread/pin counters. */
export type NewMessageRow = Omit<MessageRow, 'seq' | 'reply_count' | 'last_reply_at' | 'pinned_at' | 'pinned_by' | 'reaction_count' | 'attachment_count' | 'version_seq'>;

/** A stored new message and, for a thread reply, the root's new reply count and version. */
export interface Inserted {
  message: MessageRow;
  root?: { reply_count: number; last_reply_at: string; version_seq: number };
  /** The conversation's kind. */
  kind: string;
}

/** Work done in the same transaction as the insert. */
export interface InsertExtras {
  /** Users who get a mention row for this message. */
  mentionUserIds: string[];
  /** For a thread reply: who follows the thread from now on (author, root author). */
  threadFollowerIds: string[];
  /** Files the message carries, in order (checked by the files service before). */
  attachmentFileIds?: string[];
  /** More work in the same transaction, e.g. the integration event (outbox row) of the new message. */
  inTransaction?: (trx: Kysely<DB>, message: MessageRow) => Promise<void>;
  /**
   * A platform message, stored once per inbox (inbound_dedupe): claimed by the transaction's first
   * statement. A repeat writes nothing and the insert answers 'duplicate' without failing its
   * transaction, so on SQLite the other calls of its group commit are not rolled back and run again.
   */
  dedupe?: { inboxId: string; externalId: string; at: string };
}
const NO_EXTRAS: InsertExtras = { mentionUserIds: [], threadFollowerIds: [] };

/**
 * A message of a history page as JSON text, built by the database in the shape of the API's
 * Message (see messageJsonSql), with the counters that tell whether the page needs more:
 * reactions, attachments and thread participants are empty arrays in `json` and are filled in
 * by the service only for messages that have some.
 */
export interface MessageJsonRow {
  id: string;
  seq: number;
  reply_count: number;
  reaction_count: number;
  attachment_count: number;
  json: string;
}

const NO_MENTIONS_JSON = '{"users":[],"channel":false,"here":false}';

/**
 * The API's Message as JSON, in SQL, field for field as toMessageDto builds it (a test compares the
 * two on both engines). Materializing a row of ~25 columns as a JavaScript object costs far more
 * than the query; one string per message, built in C by the database, costs a third of it.
 */
function messageJsonSql(dialect: 'sqlite' | 'postgres'): RawBuilder<string> {
  if (dialect === 'sqlite') {
    return sql<string>`json_object(
      'id', id, 'conversation_id', conversation_id, 'seq', seq, 'sender_type', sender_type, 'sender_id', sender_id,
      'type', type, 'body', body, 'metadata', json(metadata), 'parent_id', parent_id, 'client_msg_id', client_msg_id,
      'edited_at', edited_at, 'deleted', json(case when deleted_at is not null then 'true' else 'false' end), 'deleted_at', deleted_at,
      'created_at', created_at, 'in_channel', json(case when in_channel = 1 then 'true' else 'false' end), 'reply_count', reply_count,
      'last_reply_at', last_reply_at, 'thread_participants', json('[]'), 'pinned', json(case when pinned_at is not null then 'true' else 'false' end),
      'pinned_at', pinned_at, 'pinned_by', pinned_by, 'mentions', coalesce(json(mentions), json(${sql.lit(NO_MENTIONS_JSON)})),
      'reactions', json('[]'), 'attachments', json('[]'), 'private', json(case when private = 1 then 'true' else 'false' end), 'delivery_status', delivery_status)`;
  }
  // Timestamps as JavaScript's toISOString() writes them (the pg driver's parser does the same).
  const ts = (col: 'edited_at' | 'deleted_at' | 'created_at' | 'last_reply_at' | 'pinned_at') => sql`to_char(${sql.ref(col)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
  return sql<string>`json_build_object(
      'id', id, 'conversation_id', conversation_id, 'seq', seq, 'sender_type', sender_type, 'sender_id', sender_id,
      'type', type, 'body', body, 'metadata', metadata::json, 'parent_id', parent_id, 'client_msg_id', client_msg_id,
      'edited_at', ${ts('edited_at')}, 'deleted', deleted_at is not null, 'deleted_at', ${ts('deleted_at')},
      'created_at', ${ts('created_at')}, 'in_channel', in_channel = 1, 'reply_count', reply_count,
      'last_reply_at', ${ts('last_reply_at')}, 'thread_participants', '[]'::json, 'pinned', pinned_at is not null,
      'pinned_at', ${ts('pinned_at')}, 'pinned_by', pinned_by, 'mentions', coalesce(mentions::json, ${sql.lit(NO_MENTIONS_JSON)}::json),
      'reactions', '[]'::json, 'attachments', '[]'::json, 'private', private = 1, 'delivery_status', delivery_status)::text`;
}

/** A seq range of one conversation: the channel view, or one thread (root excluded); private notes hidden for customers. */
export interface Range {
  afterSeq?: number;
  beforeSeq?: number;
  newestFirst: boolean;
  threadRootId?: string;
  hidePrivate?: boolean;
}

// The statements of every send, prepared once (storage/prepared.ts): building them with Kysely
// each time cost more than running them.
type NextSeq = { last_seq: number; messages_version: number; kind: string };
/** The conversation's next seq and messages version (param 0: how many versions), as an UPDATE to extend. */
const nextSeq = (db: Kysely<DB>, param: (i: number) => any) => // eslint-disable-line @typescript-eslint/no-explicit-any
  db
    .updateTable('conversations')
    .set((eb) => ({ last_seq: eb('last_seq', '+', 1), messages_version: eb('messages_version', '+', param(0)), last_message_at: param(1), updated_at: param(1) }))
    .where('id', '=', param(2))
    .where('org_id', '=', param(3));
const NEXT_SEQ = new PreparedQuery<[versions: number, at: string, conversationId: string, orgId: string], NextSeq>((db: Kysely<DB>, param) =>
  nextSeq(db, param).returning(['last_seq', 'messages_version', 'kind']),
);
/**
 * NEXT_SEQ only where a member may write without more checks (see MessagesRepo.insertAsMember):
 * not a support conversation, not archived, and the sender is a member.
 */
const NEXT_SEQ_AS_MEMBER = new PreparedQuery<[versions: number, at: string, conversationId: string, orgId: string, userId: string], NextSeq>((db: Kysely<DB>, param) =>
  nextSeq(db, param)
    .where('kind', '<>', 'support')
    .where('archived_at', 'is', null)
    .where((eb) => eb.exists(eb.selectFrom('conversation_members as m').select(eb.lit(1).as('x')).whereRef('m.conversation_id', '=', 'conversations.id').where('m.user_id', '=', param(4))))
    .returning(['last_seq', 'messages_version', 'kind']),
);
const MESSAGE_COLUMNS = [
  'id', 'org_id', 'conversation_id', 'seq', 'version_seq', 'sender_type', 'sender_id', 'type', 'body', 'metadata', 'parent_id', 'client_msg_id', 'private',
  'edited_at', 'deleted_at', 'created_at', 'in_channel', 'reply_count', 'last_reply_at', 'pinned_at', 'pinned_by', 'mentions', 'reaction_count', 'attachment_count',
  'external_id', 'delivery_status', 'delivery_error',
] as const satisfies ReadonlyArray<keyof MessageRow>;
const INSERT_MESSAGE = new PreparedQuery<unknown[], never>((db: Kysely<DB>, param) =>
  db.insertInto('messages').values(Object.fromEntries(MESSAGE_COLUMNS.map((c, i) => [c, param(i)])) as never),
);
const READ_OWN = new PreparedQuery<[seq: number, conversationId: string, userId: string], never>((db: Kysely<DB>, param) =>
  db.updateTable('conversation_members').set({ last_read_seq: param(0) }).where('conversation_id', '=', param(1)).where('user_id', '=', param(2)).where('last_read_seq', '<', param(0)),
);

/**
 * The stored row of a new message. Written out field by field, not as `{ ...row, seq, … }`: the
 * spread made V8 build ~8 KB of new object shapes on every send (measured with the sampling heap
 * profiler), garbage that kept the young generation busy.
 */
function storedRow(r: NewMessageRow, seq: number, versionSeq: number, attachmentCount: number): MessageRow {
  return {
    id: r.id,
    org_id: r.org_id,
    conversation_id: r.conversation_id,
    seq,
    version_seq: versionSeq,
    sender_type: r.sender_type,
    sender_id: r.sender_id,
    type: r.type,
    body: r.body,
    metadata: r.metadata,
    parent_id: r.parent_id,
    client_msg_id: r.client_msg_id,
    private: r.private,
    edited_at: r.edited_at,
    deleted_at: r.deleted_at,
    created_at: r.created_at,
    in_channel: r.in_channel,
    reply_count: 0,
    last_reply_at: null,
    pinned_at: null,
    pinned_by: null,
    mentions: r.mentions,
    reaction_count: 0,
    attachment_count: attachmentCount,
    external_id: r.external_id,
    delivery_status: r.delivery_status,
    delivery_error: r.delivery_error,
  };
}

/** The dedupe claim of every inbound message; RETURNING gives a row only when it was inserted. */
const CLAIM_EXTERNAL = new PreparedQuery<[inboxId: string, externalId: string, at: string], { inbox_id: string }>((db: Kysely<DB>, param) =>
  db
    .insertInto('inbound_dedupe')
    .values({ inbox_id: param(0), external_id: param(1), created_at: param(2) })
    .onConflict((oc) => oc.columns(['inbox_id', 'external_id']).doNothing())
    .returning('inbox_id'),
);

/** SQL for messages. Every query is scoped by org_id. */
export class MessagesRepo {
  constructor(
    private readonly db: Kysely<DB>,
    /** Sends go through it: group commit on SQLite. */
    private readonly writes: TxRunner,
  ) {
    this.#dialect = dialectOf(db);
  }
  readonly #dialect: 'sqlite' | 'postgres';

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
   * commit: see storage/group-commit.ts); on PostgreSQL a plain message takes one statement.
   */
  insertNext(row: NewMessageRow, extras: Omit<InsertExtras, 'dedupe'> = NO_EXTRAS): Promise<Inserted> {
    // Without extras.dedupe there is no 'duplicate' answer.
    return this.insertOnce(row, extras) as Promise<Inserted>;
  }

  /** insertNext with `extras.dedupe`: 'duplicate' when that platform message was stored before (nothing written). */
  insertOnce(row: NewMessageRow, extras: InsertExtras): Promise<Inserted | 'duplicate'> {
    return this.#insert(row, extras, false).then((r) => {
      if (!r) throw new Error(`conversation ${row.conversation_id} not found while sending`);
      return r;
    });
  }

  /**
   * insertNext with the access check of a member's write in the same statement as the next seq:
   * stores the message only if the conversation is not a support conversation, is not archived and
   * the sender (`row.sender_id`) is a member; else changes nothing and returns null (the caller
   * then checks access the long way, for the error or the other cases). Checked inside the write,
   * nobody can leave or archive between the check and the insert.
   */
  insertAsMember(row: NewMessageRow, extras: Omit<InsertExtras, 'dedupe'> = NO_EXTRAS): Promise<Inserted | null> {
    return this.#insert(row, extras, true) as Promise<Inserted | null>;
  }

  async #insert(row: NewMessageRow, extras: InsertExtras, asMember: boolean): Promise<Inserted | null | 'duplicate'> {
    if (asMember && row.sender_id === null) return null;
    const plain = !extras.attachmentFileIds?.length && !extras.mentionUserIds.length && row.parent_id === null && !extras.inTransaction && !extras.dedupe;
    if (plain && this.#dialect === 'postgres') return this.#insertInOneStatement(row, asMember);
    const dedupe = extras.dedupe;
    return this.writes.run(async (trx) => {
      // First, before anything is written: a repeat must leave the transaction as it found it.
      if (dedupe && (await CLAIM_EXTERNAL.execute(trx, [dedupe.inboxId, dedupe.externalId, dedupe.at])).length === 0) return 'duplicate' as const;
      // A thread reply is two changes: the reply (version - 1) and its root's counters (version).
      const versions = row.parent_id === null ? 1 : 2;
      const seqArgs = [versions, row.created_at, row.conversation_id, row.org_id] as const;
      const [conv] = asMember ? await NEXT_SEQ_AS_MEMBER.execute(trx, [...seqArgs, row.sender_id!]) : await NEXT_SEQ.execute(trx, [...seqArgs]);
      // The claim above must not be kept without its message: fail the transaction.
      if (!conv && dedupe) throw new Error(`conversation ${row.conversation_id} not found while storing a platform message`);
      if (!conv) return null;
      const version = Number(conv.messages_version);
      const message = storedRow(row, Number(conv.last_seq), version - versions + 1, extras.attachmentFileIds?.length ?? 0);
      await INSERT_MESSAGE.execute(trx, MESSAGE_COLUMNS.map((c) => message[c]));
      if (row.sender_id !== null) await READ_OWN.execute(trx, [message.seq, row.conversation_id, row.sender_id]);
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
      let root: Inserted['root'];
      if (row.parent_id !== null) {
        const r = await trx
          .updateTable('messages')
          .set((eb) => ({ reply_count: eb('reply_count', '+', 1), last_reply_at: row.created_at, version_seq: version }))
          .where('id', '=', row.parent_id)
          .returning(['reply_count'])
          .executeTakeFirstOrThrow();
        root = { reply_count: Number(r.reply_count), last_reply_at: row.created_at, version_seq: version };
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
      await extras.inTransaction?.(trx, message);
      return { message, root, kind: conv.kind };
    });
  }

  /**
   * PostgreSQL, a message without mentions, files or thread: next seq, insert and the sender's read
   * position in ONE statement. The conversation row stays locked from the UPDATE to the commit, so
   * concurrent senders to one conversation queue on it: one round trip instead of four keeps that
   * queue short (measured: about 500 sends/s to one channel with the transaction of four statements).
   */
  async #insertInOneStatement(row: NewMessageRow, asMember: boolean): Promise<Inserted | null> {
    // insertAsMember's conditions (the same as NEXT_SEQ_AS_MEMBER).
    const guard = asMember
      ? sql`and kind <> 'support' and archived_at is null and exists (select 1 from conversation_members cm where cm.conversation_id = conversations.id and cm.user_id = ${row.sender_id}::text)`
      : sql``;
    const res = await sql<{ seq: number; version_seq: number; kind: string }>`
      with c as (
        update conversations set last_seq = last_seq + 1, messages_version = messages_version + 1, last_message_at = ${row.created_at}, updated_at = ${row.created_at}
        where id = ${row.conversation_id} and org_id = ${row.org_id} ${guard}
        returning last_seq, messages_version, kind
      ), m as (
        insert into messages (id, org_id, conversation_id, seq, version_seq, sender_type, sender_id, type, body, metadata, parent_id, client_msg_id, private, edited_at, deleted_at, created_at, in_channel, mentions)
        select ${row.id}, ${row.org_id}, ${row.conversation_id}, c.last_seq, c.messages_version, ${row.sender_type}, ${row.sender_id}::text, ${row.type}, ${row.body}, ${row.metadata}::text,
          null, ${row.client_msg_id}::text, ${row.private}::int, null, null, ${row.created_at}::timestamptz, ${row.in_channel}::int, ${row.mentions}::text
        from c
        returning seq, version_seq
      ), r as (
        update conversation_members set last_read_seq = m.seq from m
        where conversation_id = ${row.conversation_id} and user_id = ${row.sender_id}::text and last_read_seq < m.seq
      )
      select m.seq, m.version_seq, c.kind from m, c`.execute(this.db);
    const got = res.rows[0];
    if (got === undefined) return null;
    return { message: storedRow(row, Number(got.seq), Number(got.version_seq), 0), kind: got.kind };
  }

  /**
   * Messages of a conversation with seq in (after, before): the channel view (top level and
   * replies also sent to the channel), or one thread (root excluded).
   */
  listRange(
    orgId: string,
    conversationId: string,
    r: Range,
    limit: number,
  ): Promise<MessageRow[]> {
    return this.#range(orgId, conversationId, r).selectAll().limit(limit).execute();
  }

  /** listRange, each message as its API JSON (MessageJsonRow). */
  listRangeJson(orgId: string, conversationId: string, r: Range, limit: number): Promise<MessageJsonRow[]> {
    // Prepared per shape of the range (which bounds, order, thread, private notes): see storage/prepared.ts.
    const shape = `${r.afterSeq !== undefined}:${r.beforeSeq !== undefined}:${r.newestFirst}:${r.threadRootId !== undefined}:${r.hidePrivate === true}`;
    let q = this.#rangeJson.get(shape);
    if (!q) {
      const json = (this.#json ??= messageJsonSql(this.#dialect));
      q = new PreparedQuery<unknown[], MessageJsonRow>((_db, param) =>
        this.#range(param(0), param(1), {
          newestFirst: r.newestFirst,
          hidePrivate: r.hidePrivate,
          ...(r.afterSeq !== undefined ? { afterSeq: param(2) } : {}),
          ...(r.beforeSeq !== undefined ? { beforeSeq: param(3) } : {}),
          ...(r.threadRootId !== undefined ? { threadRootId: param(4) } : {}),
        })
          .select(['id', 'seq', 'reply_count', 'reaction_count', 'attachment_count', json.as('json')])
          .limit(param(5)),
      );
      this.#rangeJson.set(shape, q);
    }
    return q.execute(this.db, [orgId, conversationId, r.afterSeq, r.beforeSeq, r.threadRootId, limit]);
  }
  #json: RawBuilder<string> | undefined;
  readonly #rangeJson = new Map<string, PreparedQuery<unknown[], MessageJsonRow>>();

  /**
   * What changed in a conversation after event seq `since`: its current messages_version, and every
   * message whose last change came later (as MessageJsonRow with its version_seq), oldest change
   * first, at most `limit`. The version is read first, so rows may be newer than it, never older.
   */
  async changesSince(
    orgId: string,
    conversationId: string,
    since: number,
    limit: number,
    hidePrivate = false,
  ): Promise<{ version: number; rows: Array<MessageJsonRow & { version_seq: number; deleted_at: string | null; private: number }> }> {
    this.#json ??= messageJsonSql(this.#dialect);
    const conv = await this.db.selectFrom('conversations').select('messages_version').where('org_id', '=', orgId).where('id', '=', conversationId).executeTakeFirst();
    const rows = await this.db
      .selectFrom('messages')
      .select(['id', 'seq', 'reply_count', 'reaction_count', 'attachment_count', 'version_seq', 'deleted_at', 'private', this.#json.as('json')])
      .where('org_id', '=', orgId)
      .where('conversation_id', '=', conversationId)
      .where('version_seq', '>', since)
      .$if(hidePrivate, (q) => q.where('private', '=', 0))
      .orderBy('version_seq')
      .limit(limit)
      .execute();
    const newest = rows.at(-1)?.version_seq ?? 0;
    return { version: Math.max(Number(conv?.messages_version ?? 0), Number(newest)), rows: rows.map((r) => ({ ...r, version_seq: Number(r.version_seq) })) };
  }

  #range(orgId: string, conversationId: string, r: Range) {
    let q = this.db.selectFrom('messages').where('org_id', '=', orgId).where('conversation_id', '=', conversationId);
    if (r.hidePrivate) q = q.where('private', '=', 0);
    q = r.threadRootId === undefined ? q.where('in_channel', '=', 1) : q.where('parent_id', '=', r.threadRootId);
    if (r.afterSeq !== undefined) q = q.where('seq', '>', r.afterSeq);
    if (r.beforeSeq !== undefined) q = q.where('seq', '<', r.beforeSeq);
    return q.orderBy('seq', r.newestFirst ? 'desc' : 'asc');
  }

  /** Change a message; returns the change's version (event seq). */
  /** The customer's last platform message at or before `seq`. */
  lastContactMessage(orgId: string, conversationId: string, seq: number): Promise<{ id: string } | undefined> {
    return this.db
      .selectFrom('messages')
      .select('id')
      .where('org_id', '=', orgId)
      .where('conversation_id', '=', conversationId)
      .where('seq', '<=', seq)
      .where('sender_type', '=', 'contact')
      .where('external_id', 'is not', null)
      .orderBy('seq', 'desc')
      .executeTakeFirst();
  }

  /** A platform message id within an inbox's conversations (by the external-id index, then the conversation). */
  findInInbox(orgId: string, inboxId: string, externalId: string): Promise<MessageRow | undefined> {
    return this.db
      .selectFrom('messages as m')
      .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
      .selectAll('m')
      .where('m.external_id', '=', externalId)
      .where('m.org_id', '=', orgId)
      .where('c.inbox_id', '=', inboxId)
      .executeTakeFirst();
  }

  findByExternalId(orgId: string, conversationIds: string[], externalId: string): Promise<MessageRow | undefined> {
    if (conversationIds.length === 0) return Promise.resolve(undefined);
    return this.db.selectFrom('messages').selectAll().where('external_id', '=', externalId).where('org_id', '=', orgId).where('conversation_id', 'in', conversationIds).executeTakeFirst();
  }

  async update(
    orgId: string,
    id: string,
    patch: Partial<Pick<MessageRow, 'body' | 'metadata' | 'edited_at' | 'deleted_at' | 'type' | 'pinned_at' | 'pinned_by' | 'mentions' | 'delivery_status' | 'delivery_error'>>,
    inTransaction?: (trx: Kysely<DB>) => Promise<void>,
  ): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      await trx.updateTable('messages').set(patch).where('org_id', '=', orgId).where('id', '=', id).execute();
      await inTransaction?.(trx);
      return this.#touch(trx, id);
    });
  }

  /**
   * A platform message's media arrived (or gave up): its metadata replaced and, with a file, the
   * file attached after the message's other attachments (attachment_count kept in step), in one
   * transaction; returns the change's version.
   */
  async setPlatformMedia(orgId: string, id: string, metadata: string, fileId: string | null): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      if (fileId !== null) {
        const { attachment_count } = await trx.selectFrom('messages').select('attachment_count').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirstOrThrow();
        await trx.insertInto('message_attachments').values({ message_id: id, file_id: fileId, org_id: orgId, position: Number(attachment_count) }).execute();
        await trx.updateTable('messages').set((eb) => ({ metadata, attachment_count: eb('attachment_count', '+', 1) })).where('org_id', '=', orgId).where('id', '=', id).execute();
      } else {
        await trx.updateTable('messages').set({ metadata }).where('org_id', '=', orgId).where('id', '=', id).execute();
      }
      return this.#touch(trx, id);
    });
  }

  /**
   * Delete: a tombstone (content, metadata and mentions gone) that lets go of its files, in one
   * transaction; returns the change's version. NOTE: the files themselves stay for their uploader
   * and for other messages carrying them (SECURITY.md K); downloads also check deleted_at.
   */
  async tombstone(orgId: string, id: string, deletedAt: string, inTransaction?: (trx: Kysely<DB>) => Promise<void>): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      await inTransaction?.(trx);
      await trx.updateTable('messages').set({ body: '', metadata: null, mentions: null, deleted_at: deletedAt, attachment_count: 0 }).where('org_id', '=', orgId).where('id', '=', id).execute();
      await trx.deleteFrom('message_mentions').where('message_id', '=', id).execute();
      await trx.deleteFrom('message_attachments').where('org_id', '=', orgId).where('message_id', '=', id).execute();
      return this.#touch(trx, id);
    });
  }

  /**
   * Move the messages_version of the message's conversation and stamp the message with it (in the
   * transaction of the change); returns the new version.
   */
  async #touch(trx: Kysely<DB>, messageId: string): Promise<number> {
    const { messages_version } = await trx
      .updateTable('conversations')
      .set((eb) => ({ messages_version: eb('messages_version', '+', 1) }))
      .where('id', '=', (eb) => eb.selectFrom('messages').select('conversation_id').where('id', '=', messageId))
      .returning('messages_version')
      .executeTakeFirstOrThrow();
    const version = Number(messages_version);
    await trx.updateTable('messages').set({ version_seq: version }).where('id', '=', messageId).execute();
    return version;
  }

  listPinned(orgId: string, conversationId: string, hidePrivate = false): Promise<MessageRow[]> {
    return this.db
      .selectFrom('messages')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('conversation_id', '=', conversationId)
      .$if(hidePrivate, (q) => q.where('private', '=', 0))
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

  /** Replace the mention rows of an edited message. */
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
      // Emoji in the order they were first used; same instant: by emoji, so the order is stable.
      .orderBy('created_at')
      .orderBy('emoji')
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

  /** Add a reaction; null when this user already reacted with this emoji, else the change's version. */
  async addReaction(r: { message_id: string; user_id: string; emoji: string; org_id: string; created_at: string }): Promise<number | null> {
    return this.db.transaction().execute(async (trx) => {
      const res = await trx
        .insertInto('reactions')
        .values(r)
        .onConflict((oc) => oc.columns(['message_id', 'user_id', 'emoji']).doNothing())
        .executeTakeFirst();
      return Number(res.numInsertedOrUpdatedRows ?? 0) > 0 ? this.#countReactions(trx, r.message_id, 1) : null;
    });
  }

  /** Remove a reaction; null when there was none, else the change's version. */
  async removeReaction(messageId: string, userId: string, emoji: string): Promise<number | null> {
    return this.db.transaction().execute(async (trx) => {
      const res = await trx.deleteFrom('reactions').where('message_id', '=', messageId).where('user_id', '=', userId).where('emoji', '=', emoji).executeTakeFirst();
      return Number(res.numDeletedRows) > 0 ? this.#countReactions(trx, messageId, -1) : null;
    });
  }

  async #countReactions(trx: Kysely<DB>, messageId: string, delta: 1 | -1): Promise<number> {
    await trx
      .updateTable('messages')
      .set((eb) => ({ reaction_count: eb('reaction_count', '+', delta) }))
      .where('id', '=', messageId)
      .execute();
    return this.#touch(trx, messageId);
  }
}
