import type { Kysely } from 'kysely';
import { columnTypes, dialectOf } from '../dialect.ts';

/** Threads, pins and mentions on messages; reactions; followed threads. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(dialectOf(db));

  // One ALTER per column: SQLite adds a single column per statement.
  await db.schema.alterTable('messages').addColumn('in_channel', 'integer', (c) => c.notNull().defaultTo(1)).execute();
  await db.schema.alterTable('messages').addColumn('reply_count', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('messages').addColumn('last_reply_at', t.timestamp).execute();
  await db.schema.alterTable('messages').addColumn('pinned_at', t.timestamp).execute();
  await db.schema.alterTable('messages').addColumn('pinned_by', 'text').execute();
  // JSON {"users": [ids], "channel": bool, "here": bool}, parsed from the body at send.
  await db.schema.alterTable('messages').addColumn('mentions', 'text').execute();
  // Channel history reads the messages shown in the channel (top level, or replies also sent there).
  await db.schema.createIndex('messages_channel_view_idx').on('messages').columns(['conversation_id', 'in_channel', 'seq']).execute();
  await db.schema.createIndex('messages_pinned_idx').on('messages').columns(['conversation_id', 'pinned_at']).execute();

  await db.schema
    .createTable('reactions')
    .addColumn('message_id', 'text', (c) => c.notNull().references('messages.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('emoji', 'text', (c) => c.notNull())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addPrimaryKeyConstraint('reactions_pk', ['message_id', 'user_id', 'emoji'])
    .execute();

  await db.schema
    .createTable('message_mentions')
    .addColumn('message_id', 'text', (c) => c.notNull().references('messages.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id').onDelete('cascade'))
    .addColumn('seq', t.bigint, (c) => c.notNull())
    .addPrimaryKeyConstraint('message_mentions_pk', ['message_id', 'user_id'])
    .execute();
  await db.schema.createIndex('message_mentions_user_idx').on('message_mentions').columns(['user_id', 'conversation_id', 'seq']).execute();

  await db.schema
    .createTable('thread_follows')
    .addColumn('root_id', 'text', (c) => c.notNull().references('messages.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id').onDelete('cascade'))
    .addColumn('last_read_seq', t.bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addPrimaryKeyConstraint('thread_follows_pk', ['root_id', 'user_id'])
    .execute();
  await db.schema.createIndex('thread_follows_user_idx').on('thread_follows').columns(['user_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['thread_follows', 'message_mentions', 'reactions']) await db.schema.dropTable(table).execute();
  for (const index of ['messages_pinned_idx', 'messages_channel_view_idx']) await db.schema.dropIndex(index).execute();
  for (const column of ['mentions', 'pinned_by', 'pinned_at', 'last_reply_at', 'reply_count', 'in_channel']) {
    await db.schema.alterTable('messages').dropColumn(column).execute();
  }
}
