import { sql, type Kysely } from 'kysely';
import { dialectOf } from '../dialect.ts';
import { createIndexingTriggers } from './0005-search.ts';

/**
 * SQLite: new messages are indexed for search in batches (src/features/search/fts-indexer.ts)
 * instead of by a trigger inside each send. The insert trigger now only records the message's
 * rowid in `messages_fts_pending`; the delete and update triggers change the index only for a
 * message already in it (a pending one is indexed later with its body of that moment, and a
 * deleted pending one just leaves the queue). PostgreSQL is unchanged (a generated tsvector).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (dialectOf(db) === 'postgres') return;
  await sql`create table messages_fts_pending (message_rowid integer primary key)`.execute(db);
  for (const t of ['messages_fts_ai', 'messages_fts_ad', 'messages_fts_au']) await sql`drop trigger ${sql.id(t)}`.execute(db);
  await createQueueTriggers(db);
}

/** The triggers of the queue (also used by migration 0015's down). */
export async function createQueueTriggers(db: Kysely<unknown>): Promise<void> {
  await sql`create trigger messages_fts_ai after insert on messages begin
    insert into messages_fts_pending(message_rowid) values (new.rowid);
  end`.execute(db);
  await sql`create trigger messages_fts_ad after delete on messages begin
    insert into messages_fts(messages_fts, rowid, body, conversation_id)
      select 'delete', old.rowid, old.body, old.conversation_id
      where not exists (select 1 from messages_fts_pending where message_rowid = old.rowid);
    delete from messages_fts_pending where message_rowid = old.rowid;
  end`.execute(db);
  await sql`create trigger messages_fts_au after update of body, conversation_id on messages
    when not exists (select 1 from messages_fts_pending where message_rowid = old.rowid)
  begin
    insert into messages_fts(messages_fts, rowid, body, conversation_id) values ('delete', old.rowid, old.body, old.conversation_id);
    insert into messages_fts(rowid, body, conversation_id) values (new.rowid, new.body, new.conversation_id);
  end`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (dialectOf(db) === 'postgres') return;
  for (const t of ['messages_fts_ai', 'messages_fts_ad', 'messages_fts_au']) await sql`drop trigger ${sql.id(t)}`.execute(db);
  await sql`insert into messages_fts(rowid, body, conversation_id)
    select m.rowid, m.body, m.conversation_id from messages_fts_pending p join messages m on m.rowid = p.message_rowid`.execute(db);
  await sql`drop table messages_fts_pending`.execute(db);
  await createIndexingTriggers(db);
}
