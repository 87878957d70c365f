import type { Kysely } from 'kysely';
import { columnTypes, dialectOf } from '../dialect.ts';

/**
 * Customer conversations (seed 000 / 004): inboxes (connected platform accounts) and their agents,
 * teams, contacts with one identity per inbox, support fields on conversations; and the outbox with
 * the organization's webhook endpoints (everything that must leave the process).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(dialectOf(db));

  await db.schema
    .createTable('inboxes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    // whatsapp, telegram, instagram, messenger, codechat, evolution, api, web
    .addColumn('platform', 'text', (c) => c.notNull())
    // AES-256-GCM: "<key id>:<iv>:<tag>:<ciphertext>", base64url parts; never returned.
    .addColumn('credentials_enc', 'text')
    // Secret part of the inbound webhook URL / the Meta verify token.
    .addColumn('webhook_token', 'text', (c) => c.notNull())
    .addColumn('settings', 'text')
    .addColumn('auto_assign', 'integer', (c) => c.notNull().defaultTo(0))
    // Open conversations an agent may hold in this inbox before auto-assignment skips them (0 = no limit).
    .addColumn('agent_capacity', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('reassign_offline', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .addUniqueConstraint('inboxes_org_name_uq', ['org_id', 'name'])
    .execute();

  await db.schema
    .createTable('inbox_members')
    .addColumn('inbox_id', 'text', (c) => c.notNull().references('inboxes.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    // Round robin: who was assigned longest ago goes first.
    .addColumn('last_assigned_at', t.timestamp)
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addPrimaryKeyConstraint('inbox_members_pk', ['inbox_id', 'user_id'])
    .execute();
  await db.schema.createIndex('inbox_members_user_idx').on('inbox_members').columns(['user_id', 'inbox_id']).execute();

  await db.schema
    .createTable('teams')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addUniqueConstraint('teams_org_name_uq', ['org_id', 'name'])
    .execute();
  await db.schema
    .createTable('team_members')
    .addColumn('team_id', 'text', (c) => c.notNull().references('teams.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('team_members_pk', ['team_id', 'user_id'])
    .execute();

  await db.schema
    .createTable('contacts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('name', 'text')
    .addColumn('email', 'text')
    // E.164 (libphonenumber-js /max); Brazilian mobiles in their 9-digit form (CONNECTORS.md §8).
    .addColumn('phone', 'text')
    // A Parley user this contact is (a `web` inbox customer).
    .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('set null'))
    .addColumn('custom_attributes', 'text')
    // Set when merged into another contact (this one then only redirects).
    .addColumn('merged_into', 'text')
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('contacts_org_phone_idx').on('contacts').columns(['org_id', 'phone']).execute();
  await db.schema.createIndex('contacts_org_email_idx').on('contacts').columns(['org_id', 'email']).execute();
  await db.schema.createIndex('contacts_org_user_idx').on('contacts').columns(['org_id', 'user_id']).execute();

  await db.schema
    .createTable('contact_identities')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('inbox_id', 'text', (c) => c.notNull().references('inboxes.id').onDelete('cascade'))
    .addColumn('contact_id', 'text', (c) => c.notNull().references('contacts.id').onDelete('cascade'))
    // The platform's id of the person (WhatsApp wa_id, Telegram chat id, Instagram IGSID, ...).
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addUniqueConstraint('contact_identities_inbox_external_uq', ['inbox_id', 'external_id'])
    .execute();
  await db.schema.createIndex('contact_identities_contact_idx').on('contact_identities').column('contact_id').execute();

  // Support conversations: kind = 'support'.
  for (const [name, type] of [
    ['inbox_id', 'text'],
    ['contact_id', 'text'],
    ['assignee_id', 'text'],
    ['team_id', 'text'],
    ['priority', 'text'],
    ['snoozed_until', t.timestamp],
  ] as const) {
    await db.schema.alterTable('conversations').addColumn(name, type).execute();
  }
  // open, pending, snoozed, resolved, closed (support conversations only).
  await db.schema.alterTable('conversations').addColumn('status', 'text').execute();
  await db.schema.createIndex('conversations_support_idx').on('conversations').columns(['org_id', 'kind', 'status', 'last_message_at']).execute();
  await db.schema.createIndex('conversations_assignee_idx').on('conversations').columns(['assignee_id', 'status']).execute();
  await db.schema.createIndex('conversations_inbox_contact_idx').on('conversations').columns(['inbox_id', 'contact_id', 'status']).execute();

  // Everything that must leave the process, written in the transaction of the change it reports.
  await db.schema
    .createTable('outbox')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    // redis (integration event on Pub/Sub), webhook (one endpoint), later platform sends and relay calls.
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('endpoint_id', 'text')
    .addColumn('event_name', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    // One row per (event, target): a retried producer cannot enqueue twice.
    .addColumn('idempotency_key', 'text', (c) => c.notNull().unique())
    // pending, done, failed (gave up after the last attempt; can be redelivered)
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', t.timestamp, (c) => c.notNull())
    .addColumn('locked_until', t.timestamp)
    .addColumn('last_error', 'text')
    .addColumn('response_status', 'integer')
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('delivered_at', t.timestamp)
    .execute();
  await db.schema.createIndex('outbox_due_idx').on('outbox').columns(['status', 'next_attempt_at']).execute();
  await db.schema.createIndex('outbox_org_endpoint_idx').on('outbox').columns(['org_id', 'endpoint_id', 'created_at']).execute();

  await db.schema
    .createTable('webhook_endpoints')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('url', 'text', (c) => c.notNull())
    // Encrypted like inbox credentials; shown once at creation.
    .addColumn('secret_enc', 'text', (c) => c.notNull())
    // JSON array of event names, or ["*"].
    .addColumn('events', 'text', (c) => c.notNull())
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('webhook_endpoints_org_idx').on('webhook_endpoints').column('org_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const i of ['conversations_support_idx', 'conversations_assignee_idx', 'conversations_inbox_contact_idx']) await db.schema.dropIndex(i).execute();
  for (const c of ['status', 'snoozed_until', 'priority', 'team_id', 'assignee_id', 'contact_id', 'inbox_id']) await db.schema.alterTable('conversations').dropColumn(c).execute();
  for (const table of ['webhook_endpoints', 'outbox', 'contact_identities', 'contacts', 'team_members', 'teams', 'inbox_members', 'inboxes']) await db.schema.dropTable(table).execute();
}
