import { sql, type Kysely } from 'kysely';

/**
 * Indexes on columns most messages leave empty hold only the rows that have a value: a pin, a
 * platform id, a client id, a thread parent. Every full index costs each insert a B-tree update and,
 * on SQLite, a 4 KiB page in the WAL: a plain channel message wrote 20 WAL pages, 5 of them for
 * these four indexes (measured by page owner, scratch of 2026-11-21). Lookups keep using them: an
 * equality or `is not null` on the column implies the index's condition (SQLite and PostgreSQL).
 * The client-id index stays unique (NULLs never conflicted).
 *
 * And a send updates the conversation's last_message_at: two conversation indexes carried it, so
 * every send moved their entries too, yet no query can use it from them — the conversation lists
 * sort by coalesce(last_message_at, created_at), an expression. conversations_org_activity_idx
 * (org_id, last_message_at) goes (org_id lookups have the name and DM-key indexes);
 * conversations_support_idx keeps (org_id, kind, status), what the support list filters on.
 * Together: 20 → 13 WAL pages per plain send.
 */
const PARTIAL: Array<{ name: string; columns: string[]; column: string; unique?: boolean }> = [
  { name: 'messages_pinned_idx', columns: ['conversation_id', 'pinned_at'], column: 'pinned_at' },
  { name: 'messages_external_idx', columns: ['external_id'], column: 'external_id' },
  { name: 'messages_client_msg_uq', columns: ['conversation_id', 'sender_id', 'client_msg_id'], column: 'client_msg_id', unique: true },
  { name: 'messages_parent_idx', columns: ['parent_id', 'seq'], column: 'parent_id' },
];

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('conversations_org_activity_idx').execute();
  await db.schema.dropIndex('conversations_support_idx').execute();
  await db.schema.createIndex('conversations_support_idx').on('conversations').columns(['org_id', 'kind', 'status']).execute();
  for (const i of PARTIAL) {
    await db.schema.dropIndex(i.name).execute();
    let create = db.schema.createIndex(i.name).on('messages').columns(i.columns);
    if (i.unique) create = create.unique();
    await create.where(sql<boolean>`${sql.ref(i.column)} is not null`).execute();
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('conversations_support_idx').execute();
  await db.schema.createIndex('conversations_support_idx').on('conversations').columns(['org_id', 'kind', 'status', 'last_message_at']).execute();
  await db.schema.createIndex('conversations_org_activity_idx').on('conversations').columns(['org_id', 'last_message_at']).execute();
  for (const i of PARTIAL) {
    await db.schema.dropIndex(i.name).execute();
    let create = db.schema.createIndex(i.name).on('messages').columns(i.columns);
    if (i.unique) create = create.unique();
    await create.execute();
  }
}
