import { type Kysely, sql } from 'kysely';
import { columnTypes, dialectOf } from '../dialect.ts';

/**
 * Per-message counters kept in the same transaction as the rows they count, so a page of history
 * only queries reactions and attachments for the messages that have some (most have none); and a
 * per-conversation version that every change to its messages moves, so a page read once can be
 * reused until the conversation changes (on any node: the version is read from the database).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('conversations').addColumn('messages_version', columnTypes(dialectOf(db)).bigint, (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('messages').addColumn('reaction_count', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('messages').addColumn('attachment_count', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await sql`update messages set reaction_count = (select count(*) from reactions r where r.message_id = messages.id)
            where id in (select message_id from reactions)`.execute(db);
  await sql`update messages set attachment_count = (select count(*) from message_attachments a where a.message_id = messages.id)
            where id in (select message_id from message_attachments)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('conversations').dropColumn('messages_version').execute();
  await db.schema.alterTable('messages').dropColumn('attachment_count').execute();
  await db.schema.alterTable('messages').dropColumn('reaction_count').execute();
}
