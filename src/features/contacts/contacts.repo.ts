import { sql, type Kysely, type Selectable } from 'kysely';
import { PreparedQuery } from '../../storage/prepared.ts';
import { startsWith } from '../../storage/like.ts';
import type { ContactsTable, DB } from '../../storage/schema.ts';

export type ContactRow = Selectable<ContactsTable>;

// Read for every inbound delivery processed: prepared (storage/prepared.ts).
const GET = new PreparedQuery<[orgId: string, id: string], ContactRow>((db: Kysely<DB>, param) =>
  db.selectFrom('contacts').selectAll().where('org_id', '=', param(0)).where('id', '=', param(1)).where('merged_into', 'is', null),
);
const IDENTITY = new PreparedQuery<[inboxId: string, externalId: string], { contact_id: string }>((db: Kysely<DB>, param) =>
  db.selectFrom('contact_identities').select('contact_id').where('inbox_id', '=', param(0)).where('external_id', '=', param(1)),
);

/** SQL for contacts and their per-inbox identities. Every query is scoped by org_id. */
export class ContactsRepo {
  constructor(private readonly db: Kysely<DB>) {}

  get(orgId: string, id: string): Promise<ContactRow | undefined> {
    return GET.execute(this.db, [orgId, id]).then((r) => r[0]);
  }

  /** Also a merged one (to follow `merged_into`). */
  getAny(orgId: string, id: string): Promise<ContactRow | undefined> {
    return this.db.selectFrom('contacts').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  /** Live contacts by name, email or phone prefix (lower case input), ordered by name then id. */
  list(orgId: string, q: string | undefined, after: { name: string; id: string } | undefined, limit: number): Promise<ContactRow[]> {
    let query = this.db.selectFrom('contacts').selectAll().where('org_id', '=', orgId).where('merged_into', 'is', null);
    if (q !== undefined) {
      query = query.where((eb) => eb.or([startsWith(sql`lower(coalesce(name, ''))`, q), startsWith(sql`lower(coalesce(email, ''))`, q), startsWith(sql`coalesce(phone, '')`, q)]));
    }
    if (after) query = query.where((eb) => eb.or([eb(sql`coalesce(name, '')`, '>', after.name), eb.and([eb(sql`coalesce(name, '')`, '=', after.name), eb('id', '>', after.id)])]));
    return query.orderBy(sql`coalesce(name, '')`).orderBy('id').limit(limit).execute();
  }

  byPhones(orgId: string, phones: string[]): Promise<ContactRow | undefined> {
    return this.db.selectFrom('contacts').selectAll().where('org_id', '=', orgId).where('phone', 'in', phones).where('merged_into', 'is', null).orderBy('created_at').executeTakeFirst();
  }

  byUser(orgId: string, userId: string): Promise<ContactRow | undefined> {
    return this.db.selectFrom('contacts').selectAll().where('org_id', '=', orgId).where('user_id', '=', userId).where('merged_into', 'is', null).executeTakeFirst();
  }

  identities(contactIds: string[]): Promise<Array<{ contact_id: string; inbox_id: string; external_id: string }>> {
    if (contactIds.length === 0) return Promise.resolve([]);
    return this.db.selectFrom('contact_identities').select(['contact_id', 'inbox_id', 'external_id']).where('contact_id', 'in', contactIds).orderBy('created_at').execute();
  }

  identity(inboxId: string, externalId: string): Promise<{ contact_id: string } | undefined> {
    return IDENTITY.execute(this.db, [inboxId, externalId]).then((r) => r[0]);
  }

  async create(row: ContactRow): Promise<void> {
    await this.db.insertInto('contacts').values(row).execute();
  }

  /** The identity; false when (inbox, external id) already belongs to someone (a concurrent first sight). */
  async addIdentity(r: { id: string; org_id: string; inbox_id: string; contact_id: string; external_id: string; created_at: string }): Promise<boolean> {
    const res = await this.db.insertInto('contact_identities').values(r).onConflict((oc) => oc.columns(['inbox_id', 'external_id']).doNothing()).executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async update(orgId: string, id: string, patch: Partial<Omit<ContactRow, 'id' | 'org_id'>>): Promise<void> {
    await this.db.updateTable('contacts').set(patch).where('org_id', '=', orgId).where('id', '=', id).execute();
  }

  /** Move `fromId`'s identities and conversations to `intoId` and mark it merged, in one transaction. */
  async merge(orgId: string, intoId: string, fromId: string, patch: Partial<ContactRow>, now: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable('contact_identities').set({ contact_id: intoId }).where('org_id', '=', orgId).where('contact_id', '=', fromId).execute();
      await trx.updateTable('conversations').set({ contact_id: intoId }).where('org_id', '=', orgId).where('contact_id', '=', fromId).execute();
      await trx.updateTable('contacts').set({ ...patch, updated_at: now }).where('org_id', '=', orgId).where('id', '=', intoId).execute();
      await trx.updateTable('contacts').set({ merged_into: intoId, phone: null, email: null, user_id: null, updated_at: now }).where('org_id', '=', orgId).where('id', '=', fromId).execute();
    });
  }
}
