import { sql, type Kysely } from 'kysely';
import { dialectOf } from '../dialect.ts';

/**
 * Full-text search over message bodies, kept in step with the messages table by the database
 * itself: no service has to remember to update the index on send, edit, delete, or when a
 * conversation or an organization is deleted (cascades).
 *
 * NOTE: the search repository (src/features/search/search.repo.ts) is the only reader of what
 * this creates; the tokenization below and its query building must agree.
 *
 * Both engines tokenize the same way on purpose: lower-cased words, no stemming, no stop words,
 * accents kept. Messages come in any language (often several in one organization); a language
 * configuration ('english') would stem and drop words for every other language, and make the two
 * engines find different messages. Hence 'simple' on PostgreSQL and unicode61 with
 * remove_diacritics 0 on SQLite.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (dialectOf(db) === 'postgres') {
    // A stored generated column: computed on insert and on every update of body, so edits and
    // tombstones (body '') re-index themselves; ranking reads it instead of re-parsing bodies.
    // Besides the words it holds one lexeme for the conversation, 'conversation ' and the last 12
    // characters of its id (a parsed word never contains a space, so no search text can produce
    // it): a search in a few conversations (in:, a customer's) narrows inside the GIN index
    // instead of fetching every hit of a common word.
    await sql`alter table messages add column body_tsv tsvector generated always as (
      to_tsvector('simple', body) || array_to_tsvector(array['conversation ' || right(conversation_id, 12)])) stored`.execute(db);
    await sql`create index messages_body_tsv_idx on messages using gin (body_tsv)`.execute(db);
    // A search ranks only the newest matches of a very common word; newest first over this index
    // (checking each row against the query) beats collecting every match from the GIN index.
    await sql`create index messages_org_created_idx on messages (org_id, created_at, id)`.execute(db);
    return;
  }
  // An external-content FTS5 index over messages.body, keyed by the implicit rowid (messages has
  // a TEXT primary key). Only the index is stored; snippets read the body from messages. The
  // conversation id is indexed too, like on PostgreSQL above; searches name the body column for
  // the words, so a word never matches a part of an id.
  // NOTE: VACUUM may renumber the rowids of a table without an INTEGER PRIMARY KEY; after a
  // VACUUM run `insert into messages_fts(messages_fts) values ('rebuild')`. (Search joins back
  // to messages and applies every permission filter to the joined row, so a stale index can
  // give wrong hits but never an unreadable message.)
  await sql`create virtual table messages_fts using fts5(body, conversation_id, content='messages', content_rowid='rowid', tokenize='unicode61 remove_diacritics 0')`.execute(db);
  await sql`insert into messages_fts(messages_fts) values ('rebuild')`.execute(db);
  await createIndexingTriggers(db);
}

/**
 * The index always holds exactly the tokens of every row; 'delete' must be given the values
 * that were indexed, which these unconditional triggers guarantee. A deleted message has body
 * '' and so no tokens; the search also requires deleted_at is null. (Migration 0013 replaces them
 * with batched indexing; its down migration puts these back.)
 */
export async function createIndexingTriggers(db: Kysely<unknown>): Promise<void> {
  await sql`create trigger messages_fts_ai after insert on messages begin
    insert into messages_fts(rowid, body, conversation_id) values (new.rowid, new.body, new.conversation_id);
  end`.execute(db);
  await sql`create trigger messages_fts_ad after delete on messages begin
    insert into messages_fts(messages_fts, rowid, body, conversation_id) values ('delete', old.rowid, old.body, old.conversation_id);
  end`.execute(db);
  await sql`create trigger messages_fts_au after update of body, conversation_id on messages begin
    insert into messages_fts(messages_fts, rowid, body, conversation_id) values ('delete', old.rowid, old.body, old.conversation_id);
    insert into messages_fts(rowid, body, conversation_id) values (new.rowid, new.body, new.conversation_id);
  end`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (dialectOf(db) === 'postgres') {
    await sql`drop index if exists messages_org_created_idx`.execute(db);
    await sql`drop index if exists messages_body_tsv_idx`.execute(db);
    await sql`alter table messages drop column if exists body_tsv`.execute(db);
    return;
  }
  for (const t of ['messages_fts_ai', 'messages_fts_ad', 'messages_fts_au']) await sql`drop trigger if exists ${sql.id(t)}`.execute(db);
  await sql`drop table if exists messages_fts`.execute(db);
}
