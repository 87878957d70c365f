import type { Kysely } from 'kysely';
import { columnTypes, dialectOf } from '../dialect.ts';

/**
 * The Chatwoot mirror (issue 7): an inbox's conversations mirrored into a Chatwoot API inbox and
 * Chatwoot agents' replies sent back out through the inbox's platform. `chatwoot_links` maps ids
 * both ways (contacts, conversations, messages); `chatwoot_cursors` is how far each conversation
 * has been mirrored, so messages reach Chatwoot in order whatever order their jobs run in.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(dialectOf(db));
  await db.schema
    .createTable('chatwoot_mirrors')
    .addColumn('inbox_id', 'text', (c) => c.primaryKey().references('inboxes.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('account_id', 'integer', (c) => c.notNull())
    .addColumn('cw_inbox_id', 'integer', (c) => c.notNull())
    // Sealed with the SecretBox (ENCRYPTION_KEYS), like inbox credentials.
    .addColumn('token_enc', 'text', (c) => c.notNull())
    .addColumn('webhook_secret_enc', 'text')
    // off | warn | enforce (CONNECTORS.md §5.2: some installs sign with a secret that does not match).
    .addColumn('signature_mode', 'text', (c) => c.notNull())
    .addColumn('sign_agent_name', 'integer', (c) => c.notNull().defaultTo(0))
    // Sessions (seed 001): the description given at creation.
    .addColumn('description', 'text')
    // The secret in the URL Chatwoot posts to (older installs sign nothing).
    .addColumn('webhook_token', 'text', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('chatwoot_mirrors_org_idx').on('chatwoot_mirrors').columns(['org_id', 'created_at']).execute();

  await db.schema
    .createTable('chatwoot_links')
    .addColumn('inbox_id', 'text', (c) => c.notNull().references('inboxes.id').onDelete('cascade'))
    // contact | conversation | message
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('parley_id', 'text', (c) => c.notNull())
    // Null while the Chatwoot side is being created (the row is the claim).
    .addColumn('cw_id', 'text')
    // Contacts: the contact_inbox source_id conversations are created with.
    .addColumn('source_id', 'text')
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addPrimaryKeyConstraint('chatwoot_links_pk', ['inbox_id', 'kind', 'parley_id'])
    .execute();
  await db.schema.createIndex('chatwoot_links_cw_idx').on('chatwoot_links').columns(['inbox_id', 'kind', 'cw_id']).execute();

  await db.schema
    .createTable('chatwoot_cursors')
    .addColumn('conversation_id', 'text', (c) => c.primaryKey().references('conversations.id').onDelete('cascade'))
    .addColumn('inbox_id', 'text', (c) => c.notNull().references('inboxes.id').onDelete('cascade'))
    .addColumn('mirrored_seq', 'integer', (c) => c.notNull())
    .addColumn('locked_until', t.timestamp)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['chatwoot_cursors', 'chatwoot_links', 'chatwoot_mirrors']) await db.schema.dropTable(table).execute();
}
