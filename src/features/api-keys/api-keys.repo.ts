import type { Kysely, Selectable } from 'kysely';
import type { ApiKeysTable, DB } from '../../storage/schema.ts';

export type ApiKeyRow = Selectable<ApiKeysTable>;

/** SQL for API keys. */
export class ApiKeysRepo {
  constructor(private readonly db: Kysely<DB>) {}

  async create(row: ApiKeyRow): Promise<ApiKeyRow> {
    await this.db.insertInto('api_keys').values(row).execute();
    return row;
  }

  /** By public prefix, across organizations: the prefix comes from the presented key itself. */
  getByPrefix(prefix: string): Promise<ApiKeyRow | undefined> {
    return this.db.selectFrom('api_keys').selectAll().where('prefix', '=', prefix).executeTakeFirst();
  }

  list(orgId: string): Promise<ApiKeyRow[]> {
    return this.db.selectFrom('api_keys').selectAll().where('org_id', '=', orgId).orderBy('created_at', 'desc').limit(1000).execute();
  }

  async revoke(orgId: string, id: string, at: string): Promise<ApiKeyRow | undefined> {
    await this.db.updateTable('api_keys').set({ revoked_at: at }).where('org_id', '=', orgId).where('id', '=', id).where('revoked_at', 'is', null).execute();
    return this.db.selectFrom('api_keys').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  async touch(id: string, at: string): Promise<void> {
    await this.db.updateTable('api_keys').set({ last_used_at: at }).where('id', '=', id).execute();
  }
}
