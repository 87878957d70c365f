import type { Kysely, Selectable } from 'kysely';
import type { DB, OrganizationsTable } from '../../storage/schema.ts';

export type OrganizationRow = Selectable<OrganizationsTable>;

/** SQL for organizations (the tenant table itself). */
export class OrganizationsRepo {
  constructor(private readonly db: Kysely<DB>) {}

  getById(id: string): Promise<OrganizationRow | undefined> {
    return this.db.selectFrom('organizations').selectAll().where('id', '=', id).executeTakeFirst();
  }

  getBySlug(slug: string): Promise<OrganizationRow | undefined> {
    return this.db.selectFrom('organizations').selectAll().where('slug', '=', slug).executeTakeFirst();
  }

  list(limit: number): Promise<OrganizationRow[]> {
    return this.db.selectFrom('organizations').selectAll().orderBy('created_at').orderBy('id').limit(limit).execute();
  }

  async create(row: OrganizationRow): Promise<OrganizationRow> {
    await this.db.insertInto('organizations').values(row).execute();
    return row;
  }

  async update(id: string, patch: Partial<Omit<OrganizationRow, 'id'>>): Promise<OrganizationRow | undefined> {
    await this.db.updateTable('organizations').set(patch).where('id', '=', id).execute();
    return this.getById(id);
  }

  /** Deletes the organization; every tenant row goes with it (ON DELETE CASCADE). */
  async delete(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('organizations').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
