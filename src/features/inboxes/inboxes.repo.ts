import type { Kysely, Selectable } from 'kysely';
import { PreparedQuery } from '../../storage/prepared.ts';
import type { DB, InboxesTable } from '../../storage/schema.ts';

export type InboxRow = Selectable<InboxesTable>;

/** Read for every inbound delivery processed: prepared (storage/prepared.ts). */
const GET = new PreparedQuery<[orgId: string, id: string], InboxRow>((db: Kysely<DB>, param) => db.selectFrom('inboxes').selectAll().where('org_id', '=', param(0)).where('id', '=', param(1)));

/** SQL for inboxes and their agents. Every query is scoped by org_id. */
export class InboxesRepo {
  constructor(private readonly db: Kysely<DB>) {}

  get(orgId: string, id: string): Promise<InboxRow | undefined> {
    return GET.execute(this.db, [orgId, id]).then((r) => r[0]);
  }

  /** All of the organization's inboxes, or only those `memberId` is an agent of. */
  list(orgId: string, memberId?: string): Promise<InboxRow[]> {
    let q = this.db.selectFrom('inboxes').selectAll().where('org_id', '=', orgId);
    if (memberId !== undefined) q = q.where('id', 'in', (eb) => eb.selectFrom('inbox_members').select('inbox_id').where('user_id', '=', memberId));
    return q.orderBy('name').execute();
  }

  async create(row: InboxRow): Promise<void> {
    await this.db.insertInto('inboxes').values(row).execute();
  }

  async update(orgId: string, id: string, patch: Partial<Omit<InboxRow, 'id' | 'org_id'>>): Promise<void> {
    await this.db.updateTable('inboxes').set(patch).where('org_id', '=', orgId).where('id', '=', id).execute();
  }

  async delete(orgId: string, id: string): Promise<void> {
    await this.db.deleteFrom('inboxes').where('org_id', '=', orgId).where('id', '=', id).execute();
  }

  isMember(inboxId: string, userId: string): Promise<boolean> {
    return this.db.selectFrom('inbox_members').select('user_id').where('inbox_id', '=', inboxId).where('user_id', '=', userId).executeTakeFirst().then(Boolean);
  }

  members(orgId: string, inboxId: string) {
    return this.db
      .selectFrom('inbox_members as im')
      .innerJoin('users as u', 'u.id', 'im.user_id')
      .select(['im.user_id', 'u.username', 'u.name', 'u.role', 'u.status', 'im.last_assigned_at'])
      .where('im.org_id', '=', orgId)
      .where('im.inbox_id', '=', inboxId)
      .where('u.active', '=', 1)
      .orderBy('u.username')
      .execute();
  }

  async addMember(orgId: string, inboxId: string, userId: string, now: string): Promise<void> {
    await this.db
      .insertInto('inbox_members')
      .values({ inbox_id: inboxId, user_id: userId, org_id: orgId, last_assigned_at: null, created_at: now })
      .onConflict((oc) => oc.columns(['inbox_id', 'user_id']).doNothing())
      .execute();
  }

  async removeMember(orgId: string, inboxId: string, userId: string): Promise<boolean> {
    const r = await this.db.deleteFrom('inbox_members').where('org_id', '=', orgId).where('inbox_id', '=', inboxId).where('user_id', '=', userId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
