import type { Kysely } from 'kysely';

/**
 * Finding a contact's open conversation in an inbox (every inbound message does it:
 * SupportService.openForContact) filters on inbox_id and contact_id and takes the newest. With
 * conversations_inbox_contact_idx ending in `status`, SQLite preferred conversations_support_idx
 * (org_id, kind, …) and walked every support conversation of the organization, then sorted:
 * 156 µs per message with 1,000 contacts (inbound benchmark). Ending the index in created_at
 * serves the filter and the order, and the planner takes it. Nothing else used `status` there.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('conversations_inbox_contact_idx').execute();
  await db.schema.createIndex('conversations_inbox_contact_idx').on('conversations').columns(['inbox_id', 'contact_id', 'created_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('conversations_inbox_contact_idx').execute();
  await db.schema.createIndex('conversations_inbox_contact_idx').on('conversations').columns(['inbox_id', 'contact_id', 'status']).execute();
}
