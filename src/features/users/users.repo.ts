import type { Kysely, Selectable } from 'kysely';
import { startsWith } from '../../storage/like.ts';
import { dialectOf } from '../../storage/dialect.ts';
import type { DB, UsersTable } from '../../storage/schema.ts';

export type UserRow = Selectable<UsersTable>;
export type NewUserRow = UsersTable;

export interface UserFilter {
  role?: string;
  online?: boolean;
  active?: boolean;
  /** Prefix match on username, name or email (lower-cased by the caller). */
  q?: string;
  /** Keyset: usernames strictly after this one. */
  afterUsername?: string;
}


/** SQL for users. Every query is scoped by org_id except the explicitly cross-tenant login lookup. */
export class UsersRepo {
  constructor(private readonly db: Kysely<DB>) {}

  getById(orgId: string, id: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  findByExternalRef(orgId: string, ref: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('org_id', '=', orgId).where('external_ref', '=', ref).executeTakeFirst();
  }

  /**
   * Login candidates: users whose username or email equals `identifier` (already lower-cased),
   * in one organization or (orgId null) in any. At most `limit` rows.
   */
  findByLogin(identifier: string, orgId: string | null, limit: number): Promise<UserRow[]> {
    let q = this.db
      .selectFrom('users')
      .selectAll()
      .where((eb) => eb.or([eb('username', '=', identifier), eb('email', '=', identifier)]));
    if (orgId !== null) q = q.where('org_id', '=', orgId);
    return q.orderBy('created_at').limit(limit).execute();
  }

  async create(row: NewUserRow): Promise<UserRow> {
    await this.db.insertInto('users').values(row).execute();
    return row;
  }

  async update(orgId: string, id: string, patch: Partial<Omit<UsersTable, 'id' | 'org_id'>>): Promise<UserRow | undefined> {
    await this.db.updateTable('users').set(patch).where('org_id', '=', orgId).where('id', '=', id).execute();
    return this.getById(orgId, id);
  }

  list(orgId: string, f: UserFilter, limit: number): Promise<UserRow[]> {
    let q = this.db.selectFrom('users').selectAll().where('org_id', '=', orgId);
    if (f.role !== undefined) q = q.where('role', '=', f.role);
    if (f.active !== undefined) q = q.where('active', '=', f.active ? 1 : 0);
    if (f.online === true) q = q.where('status', '!=', 'offline');
    if (f.online === false) q = q.where('status', '=', 'offline');
    if (f.q !== undefined) {
      const input = f.q;
      q = q.where((eb) =>
        eb.or([startsWith(eb.ref('username'), input), startsWith(eb.fn('lower', ['name']), input), startsWith(eb.ref('email'), input)]),
      );
    }
    if (f.afterUsername !== undefined) q = q.where('username', '>', f.afterUsername);
    return q.orderBy('username').limit(limit).execute();
  }

  /**
   * Update a user unless that would leave the organization without an active admin. The check and
   * the write are one transaction; on PostgreSQL the org's active admin rows are locked first
   * (SELECT ... FOR UPDATE), so two concurrent demotions of the last two admins cannot both pass.
   * SQLite runs one write transaction at a time, which gives the same guarantee.
   */
  async updateKeepingAnAdmin(orgId: string, id: string, patch: Partial<Omit<UsersTable, 'id' | 'org_id'>>): Promise<UserRow | 'not_found' | 'last_admin'> {
    return this.db.transaction().execute(async (trx) => {
      let admins = trx.selectFrom('users').select('id').where('org_id', '=', orgId).where('role', '=', 'admin').where('active', '=', 1);
      if (dialectOf(trx) === 'postgres') admins = admins.forUpdate();
      const adminIds = (await admins.execute()).map((r) => r.id);
      const row = await trx.selectFrom('users').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
      if (!row) return 'not_found';
      const next = { ...row, ...patch };
      const losesAdmin = adminIds.includes(id) && (next.role !== 'admin' || next.active !== 1);
      if (losesAdmin && adminIds.length <= 1) return 'last_admin';
      await trx.updateTable('users').set(patch).where('org_id', '=', orgId).where('id', '=', id).execute();
      return next;
    });
  }
}
