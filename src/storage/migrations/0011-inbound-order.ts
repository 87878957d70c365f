import { sql, type Kysely } from 'kysely';

/**
 * Inbound deliveries are processed in arrival order per inbox: a job first processes the inbox's
 * earlier deliveries not yet tried. This partial index finds those (few) rows without reading the
 * processed ones.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('webhook_events_waiting_idx')
    .on('webhook_events')
    .columns(['inbox_id', 'platform', 'id'])
    .where(sql<boolean>`status = 'received'`)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('webhook_events_waiting_idx').execute();
}
