import type { Kysely } from 'kysely';
import { columnTypes, dialectOf } from '../dialect.ts';

/** Uploaded files and the messages that carry them. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(dialectOf(db));

  await db.schema
    .createTable('files')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('uploader_id', 'text', (c) => c.references('users.id').onDelete('set null'))
    // Where the bytes are in the file storage (local folder or S3 bucket): "<org id>/<file id>".
    .addColumn('storage_key', 'text', (c) => c.notNull())
    .addColumn('filename', 'text', (c) => c.notNull())
    // Sniffed from the bytes at upload, never taken from the client.
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('size', t.bigint, (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('width', 'integer')
    .addColumn('height', 'integer')
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('files_org_uploader_idx').on('files').columns(['org_id', 'uploader_id', 'created_at']).execute();

  await db.schema
    .createTable('message_attachments')
    .addColumn('message_id', 'text', (c) => c.notNull().references('messages.id').onDelete('cascade'))
    .addColumn('file_id', 'text', (c) => c.notNull().references('files.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('position', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('message_attachments_pk', ['message_id', 'file_id'])
    .execute();
  // Download access: which messages carry this file?
  await db.schema.createIndex('message_attachments_file_idx').on('message_attachments').column('file_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['message_attachments', 'files']) await db.schema.dropTable(table).execute();
}
