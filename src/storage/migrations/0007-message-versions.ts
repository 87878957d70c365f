import type { Kysely } from 'kysely';
import { columnTypes, dialectOf } from '../dialect.ts';

/**
 * The realtime resume point of each message: `version_seq` is the conversation's messages_version
 * at the message's last change (new, edit, delete, reaction, pin, thread count). A client that
 * saw a conversation up to event seq N resumes with every message whose version_seq is above N,
 * read in that order through the index.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('messages').addColumn('version_seq', columnTypes(dialectOf(db)).bigint, (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.createIndex('messages_conversation_version_idx').on('messages').columns(['conversation_id', 'version_seq']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('messages_conversation_version_idx').execute();
  await db.schema.alterTable('messages').dropColumn('version_seq').execute();
}
