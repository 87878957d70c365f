import type { Kysely, Selectable } from 'kysely';
import type { DB, FilesTable } from '../../storage/schema.ts';

export type FileRow = Selectable<FilesTable>;

/** SQL for files and the attachment rows that tie them to messages. Every query is scoped by org_id. */
export class FilesRepo {
  constructor(private readonly db: Kysely<DB>) {}

  async create(row: FileRow): Promise<void> {
    await this.db.insertInto('files').values(row).execute();
  }

  getById(orgId: string, id: string): Promise<FileRow | undefined> {
    return this.db.selectFrom('files').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  findMany(orgId: string, ids: string[]): Promise<FileRow[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.db.selectFrom('files').selectAll().where('org_id', '=', orgId).where('id', 'in', ids).execute();
  }

  /** The conversations in which a message that is not deleted carries the file (at most `limit`). */
  async conversationsCarrying(orgId: string, fileId: string, limit = 100): Promise<string[]> {
    const rows = await this.db
      .selectFrom('message_attachments as a')
      .innerJoin('messages as m', 'm.id', 'a.message_id')
      .select('m.conversation_id')
      .distinct()
      .where('a.org_id', '=', orgId)
      .where('a.file_id', '=', fileId)
      .where('m.deleted_at', 'is', null)
      .limit(limit)
      .execute();
    return rows.map((r) => r.conversation_id);
  }

  /** The files attached to each of the messages, in attachment order: one query for a page. */
  async attachmentsOf(orgId: string, messageIds: string[]): Promise<Array<FileRow & { message_id: string }>> {
    if (messageIds.length === 0) return [];
    return this.db
      .selectFrom('message_attachments as a')
      .innerJoin('files as f', 'f.id', 'a.file_id')
      .selectAll('f')
      .select('a.message_id')
      .where('a.org_id', '=', orgId)
      .where('a.message_id', 'in', messageIds)
      .orderBy('a.message_id')
      .orderBy('a.position')
      .execute();
  }
}
