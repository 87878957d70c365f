import type { Kysely } from 'kysely';
import { columnTypes, dialectOf } from '../dialect.ts';

/**
 * Platform webhooks in: every delivery as received (raw body, outcome; replayable), the dedupe of
 * inbound platform messages per inbox, and the platform side of messages (their external id and,
 * for ours, the delivery status the platform reports).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(dialectOf(db));
  await db.schema
    .createTable('webhook_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('inbox_id', 'text', (c) => c.notNull().references('inboxes.id').onDelete('cascade'))
    .addColumn('platform', 'text', (c) => c.notNull())
    // The exact bytes as received (signatures are over them), UTF-8.
    .addColumn('body', 'text', (c) => c.notNull())
    // received, processed, failed (see `error`); `summary` says what it became.
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('summary', 'text')
    .addColumn('error', 'text')
    .addColumn('received_at', t.timestamp, (c) => c.notNull())
    .addColumn('processed_at', t.timestamp)
    .execute();
  await db.schema.createIndex('webhook_events_inbox_idx').on('webhook_events').columns(['org_id', 'inbox_id', 'received_at']).execute();

  await db.schema
    .createTable('inbound_dedupe')
    .addColumn('inbox_id', 'text', (c) => c.notNull().references('inboxes.id').onDelete('cascade'))
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addPrimaryKeyConstraint('inbound_dedupe_pk', ['inbox_id', 'external_id'])
    .execute();

  await db.schema.alterTable('messages').addColumn('external_id', 'text').execute();
  // Outbound messages: pending, sent, delivered, read, played, failed (platform-reported).
  await db.schema.alterTable('messages').addColumn('delivery_status', 'text').execute();
  await db.schema.alterTable('messages').addColumn('delivery_error', 'text').execute();
  await db.schema.createIndex('messages_external_idx').on('messages').columns(['external_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('messages_external_idx').execute();
  for (const c of ['delivery_error', 'delivery_status', 'external_id']) await db.schema.alterTable('messages').dropColumn(c).execute();
  for (const table of ['inbound_dedupe', 'webhook_events']) await db.schema.dropTable(table).execute();
}
