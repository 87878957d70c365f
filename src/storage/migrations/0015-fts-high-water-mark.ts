import { sql, type Kysely } from 'kysely';
import { dialectOf } from '../dialect.ts';
import { createQueueTriggers } from './0013-fts-batches.ts';

/**
 * SQLite: the batch indexer's queue (0013) becomes a high-water mark. Every message with a rowid
 * up to `messages_fts_state.indexed_upto` is in the search index, every one above it is not yet;
 * the indexer indexes the rowids above the mark and moves it. New messages need nothing at all:
 * the insert trigger that queued each one cost ~5 µs of a ~10 µs message insert (a trigger runs
 * as a sub-program) and one more WAL page per commit.
 *
 * SQLite gives a new row the largest rowid + 1, so a new message always lands above the mark —
 * as long as the mark never exceeds the largest rowid. The indexer never moves it past that, and
 * when a delete (a cascade: messages themselves are deleted as tombstones, by update) removes the
 * largest rows, the delete trigger lowers the mark to the new largest rowid: the next message may
 * take a deleted one's rowid and is then above the mark, so it is indexed.
 *
 * The delete and update triggers change the index only for indexed messages (at or below the
 * mark); a message above it is indexed later with its body of that moment. PostgreSQL is
 * unchanged (a generated tsvector).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (dialectOf(db) === 'postgres') return;
  await sql`create table messages_fts_state (id integer primary key check (id = 1), indexed_upto integer not null)`.execute(db);
  // The queue holds the rowids above the last batch (the indexer takes the lowest first), so the
  // mark is just below its lowest one; with an empty queue every message is indexed.
  await sql`insert into messages_fts_state (id, indexed_upto) values (1, coalesce(
    (select min(message_rowid) - 1 from messages_fts_pending), (select max(rowid) from messages), 0))`.execute(db);
  await dropTriggers(db);
  await createTriggers(db);
  await sql`drop table messages_fts_pending`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (dialectOf(db) === 'postgres') return;
  await dropTriggers(db);
  // 0013's queue and triggers, the messages above the mark queued.
  await sql`create table messages_fts_pending (message_rowid integer primary key)`.execute(db);
  await createQueueTriggers(db);
  await sql`insert into messages_fts_pending (message_rowid)
    select rowid from messages where rowid > (select indexed_upto from messages_fts_state)`.execute(db);
  await sql`drop table messages_fts_state`.execute(db);
}

async function dropTriggers(db: Kysely<unknown>): Promise<void> {
  for (const t of ['messages_fts_ai', 'messages_fts_ad', 'messages_fts_au']) await sql`drop trigger if exists ${sql.id(t)}`.execute(db);
}

async function createTriggers(db: Kysely<unknown>): Promise<void> {
  await sql`create trigger messages_fts_ad after delete on messages begin
    insert into messages_fts(messages_fts, rowid, body, conversation_id)
      select 'delete', old.rowid, old.body, old.conversation_id
      where old.rowid <= (select indexed_upto from messages_fts_state);
    update messages_fts_state set indexed_upto = (select coalesce(max(rowid), 0) from messages)
      where indexed_upto > (select coalesce(max(rowid), 0) from messages);
  end`.execute(db);
  await sql`create trigger messages_fts_au after update of body, conversation_id on messages
    when old.rowid <= (select indexed_upto from messages_fts_state)
  begin
    insert into messages_fts(messages_fts, rowid, body, conversation_id) values ('delete', old.rowid, old.body, old.conversation_id);
    insert into messages_fts(rowid, body, conversation_id) values (new.rowid, new.body, new.conversation_id);
  end`.execute(db);
}
