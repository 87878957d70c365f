import { sql, type Kysely } from 'kysely';

/**
 * Inbound deliveries are processed in arrival order per chat (ArrivalOrder): each delivery keeps
 * the chat it is about (`order_key`, '' when unknown), and a job first processes the chat's earlier
 * deliveries not yet tried — found by a partial index that holds only those (few) rows.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('webhook_events').addColumn('order_key', 'text', (c) => c.notNull().defaultTo('')).execute();
  await db.schema
    .createIndex('webhook_events_waiting_idx')
    .on('webhook_events')
    .columns(['inbox_id', 'platform', 'order_key', 'id'])
    .where(sql<boolean>`status = 'received'`)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('webhook_events_waiting_idx').execute();
  await db.schema.alterTable('webhook_events').dropColumn('order_key').execute();
}
