import type { Kysely } from 'kysely';
import { columnTypes, dialectOf } from '../dialect.ts';

/** Conversations (channels, DMs, groups; support later), their members, and messages. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(dialectOf(db));

  await db.schema
    .createTable('conversations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('topic', 'text')
    .addColumn('purpose', 'text')
    // "<user id>:<user id>" (sorted) for direct conversations: one DM per pair, enforced by a unique index.
    .addColumn('dm_key', 'text')
    .addColumn('created_by', 'text', (c) => c.references('users.id').onDelete('set null'))
    .addColumn('archived_at', t.timestamp)
    .addColumn('last_seq', t.bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('last_message_at', t.timestamp)
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('conversations_org_dm_key_uq').on('conversations').columns(['org_id', 'dm_key']).unique().execute();
  // Channel names are unique in an organization (DMs and groups have none).
  await db.schema.createIndex('conversations_org_name_uq').on('conversations').columns(['org_id', 'name']).unique().execute();
  await db.schema.createIndex('conversations_org_activity_idx').on('conversations').columns(['org_id', 'last_message_at']).execute();

  await db.schema
    .createTable('conversation_members')
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull().defaultTo('member'))
    .addColumn('last_read_seq', t.bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('muted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('joined_at', t.timestamp, (c) => c.notNull())
    .addPrimaryKeyConstraint('conversation_members_pk', ['conversation_id', 'user_id'])
    .execute();
  await db.schema.createIndex('conversation_members_user_idx').on('conversation_members').columns(['user_id', 'conversation_id']).execute();

  await db.schema
    .createTable('messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id').onDelete('cascade'))
    .addColumn('seq', t.bigint, (c) => c.notNull())
    .addColumn('sender_type', 'text', (c) => c.notNull())
    .addColumn('sender_id', 'text')
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('metadata', 'text')
    .addColumn('parent_id', 'text')
    .addColumn('client_msg_id', 'text')
    .addColumn('private', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('edited_at', t.timestamp)
    .addColumn('deleted_at', t.timestamp)
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .execute();
  // Gapless, unique seq per conversation; the history index too (ORDER BY seq).
  await db.schema.createIndex('messages_conversation_seq_uq').on('messages').columns(['conversation_id', 'seq']).unique().execute();
  // Idempotent send: one message per (conversation, sender, client_msg_id).
  await db.schema.createIndex('messages_client_msg_uq').on('messages').columns(['conversation_id', 'sender_id', 'client_msg_id']).unique().execute();
  await db.schema.createIndex('messages_parent_idx').on('messages').columns(['parent_id', 'seq']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['messages', 'conversation_members', 'conversations']) await db.schema.dropTable(table).execute();
}
