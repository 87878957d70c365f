import { sql, type Kysely } from 'kysely';
import { PreparedQuery } from '../../storage/prepared.ts';
import { dialectOf } from '../../storage/dialect.ts';
import type { ConversationRow, MembershipRow } from '../conversations/conversations.repo.ts';
import type { DB } from '../../storage/schema.ts';

export interface SupportListFilter {
  /** null: every inbox of the organization; else only these (an agent's inboxes). */
  inboxIds: string[] | null;
  /** A customer: only the conversations of this Parley user's contact. */
  customerUserId?: string;
  status?: string;
  assigneeId?: string;
  inboxId?: string;
  teamId?: string;
  unassigned?: boolean;
  archived: boolean;
  before?: { at: string; id: string };
}

const activity = sql<string>`coalesce(c.last_message_at, c.created_at)`;

// Both run for every inbound message: prepared (storage/prepared.ts).
const getSupport = (db: Kysely<DB>, orgId: unknown, id: unknown) =>
  db
    .selectFrom('conversations as c')
    .innerJoin('contacts as ct', 'ct.id', 'c.contact_id')
    .selectAll('c')
    .select(['ct.name as contact_name', 'ct.phone as contact_phone', 'ct.email as contact_email'])
    .where('c.org_id', '=', orgId as string)
    .where('c.id', '=', id as string)
    .where('c.kind', '=', 'support');
const GET = new PreparedQuery<[orgId: string, id: string], Awaited<ReturnType<ReturnType<typeof getSupport>['executeTakeFirstOrThrow']>>>((db: Kysely<DB>, param) => getSupport(db, param(0), param(1)));
const CURRENT_FOR_CONTACT = new PreparedQuery<[orgId: string, inboxId: string, contactId: string], { id: string }>((db: Kysely<DB>, param) =>
  db
    .selectFrom('conversations')
    .select('id')
    .where('org_id', '=', param(0))
    .where('inbox_id', '=', param(1))
    .where('contact_id', '=', param(2))
    .where('kind', '=', 'support')
    .where('archived_at', 'is', null)
    .orderBy('created_at', 'desc')
    .limit(1),
);

/** SQL for support conversations (kind 'support'). Every query is scoped by org_id. */
export class SupportRepo {
  constructor(private readonly db: Kysely<DB>) {}

  list(orgId: string, f: SupportListFilter, limit: number) {
    let q = this.db
      .selectFrom('conversations as c')
      .innerJoin('contacts as ct', 'ct.id', 'c.contact_id')
      .selectAll('c')
      .select(['ct.name as contact_name', 'ct.phone as contact_phone', 'ct.email as contact_email', activity.as('activity')])
      .where('c.org_id', '=', orgId)
      .where('c.kind', '=', 'support')
      .where('c.archived_at', f.archived ? 'is not' : 'is', null);
    if (f.inboxIds !== null) q = q.where('c.inbox_id', 'in', f.inboxIds.length ? f.inboxIds : ['']);
    if (f.customerUserId !== undefined) q = q.where('ct.user_id', '=', f.customerUserId);
    if (f.status) q = q.where('c.status', '=', f.status);
    if (f.assigneeId) q = q.where('c.assignee_id', '=', f.assigneeId);
    if (f.inboxId) q = q.where('c.inbox_id', '=', f.inboxId);
    if (f.teamId) q = q.where('c.team_id', '=', f.teamId);
    if (f.unassigned) q = q.where('c.assignee_id', 'is', null);
    if (f.before) q = q.where((eb) => eb.or([eb(activity, '<', f.before!.at), eb.and([eb(activity, '=', f.before!.at), eb('c.id', '<', f.before!.id)])]));
    return q.orderBy(activity, 'desc').orderBy('c.id', 'desc').limit(limit).execute();
  }

  get(orgId: string, id: string) {
    return GET.execute(this.db, [orgId, id]).then((r) => r[0]);
  }

  agentInboxIds(userId: string): Promise<string[]> {
    return this.db.selectFrom('inbox_members').select('inbox_id').where('user_id', '=', userId).execute().then((r) => r.map((x) => x.inbox_id));
  }

  /** Lock the inbox row until the end of the transaction (PostgreSQL; SQLite has one writer). */
  async lockInbox(trx: Kysely<DB>, inboxId: string): Promise<void> {
    if (dialectOf(trx) === 'postgres') await sql`select id from inboxes where id = ${inboxId} for update`.execute(trx);
  }

  /** Lock the contact row until the end of the transaction (PostgreSQL; SQLite has one writer). */
  async lockContact(trx: Kysely<DB>, contactId: string): Promise<void> {
    if (dialectOf(trx) === 'postgres') await sql`select id from contacts where id = ${contactId} for update`.execute(trx);
  }

  /** Open (not resolved or closed) conversations per assignee in an inbox. */
  async openLoad(trx: Kysely<DB>, inboxId: string): Promise<Map<string, number>> {
    const rows = await trx
      .selectFrom('conversations')
      .select(['assignee_id', (eb) => eb.fn.countAll<number>().as('n')])
      .where('inbox_id', '=', inboxId)
      .where('kind', '=', 'support')
      .where('status', 'in', ['open', 'pending', 'snoozed'])
      .where('assignee_id', 'is not', null)
      .groupBy('assignee_id')
      .execute();
    return new Map(rows.map((r) => [r.assignee_id!, Number(r.n)]));
  }

  /** Open conversations of an agent in inboxes that reassign when their agent goes offline. */
  assignedInReassigningInboxes(orgId: string, userId: string) {
    return this.db
      .selectFrom('conversations as c')
      .innerJoin('inboxes as i', 'i.id', 'c.inbox_id')
      .select(['c.id', 'c.inbox_id'])
      .where('c.org_id', '=', orgId)
      .where('c.assignee_id', '=', userId)
      .where('c.status', 'in', ['open', 'pending'])
      .where('i.reassign_offline', '=', 1)
      .execute();
  }

  /** The contact's newest conversation in the inbox that is not archived (in `trx` when given). */
  currentForContact(orgId: string, inboxId: string, contactId: string, trx: Kysely<DB> = this.db): Promise<{ id: string } | undefined> {
    return CURRENT_FOR_CONTACT.execute(trx, [orgId, inboxId, contactId]).then((r) => r[0]);
  }

  /** Run `work` in one transaction (the change and its integration events commit together). */
  transaction<T>(work: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(work);
  }

  async create(trx: Kysely<DB>, row: ConversationRow, members: MembershipRow[]): Promise<void> {
    await trx.insertInto('conversations').values(row).execute();
    if (members.length) await trx.insertInto('conversation_members').values(members).execute();
  }

  async update(trx: Kysely<DB>, orgId: string, id: string, patch: Partial<Omit<ConversationRow, 'id' | 'org_id'>>): Promise<void> {
    await trx.updateTable('conversations').set(patch).where('org_id', '=', orgId).where('id', '=', id).execute();
  }

  /** Make the user a member (their read position lives there); nothing when they are one. */
  async join(trx: Kysely<DB>, m: MembershipRow): Promise<void> {
    await trx.insertInto('conversation_members').values(m).onConflict((oc) => oc.columns(['conversation_id', 'user_id']).doNothing()).execute();
  }

  async touchAssigned(trx: Kysely<DB>, inboxId: string, userId: string, at: string): Promise<void> {
    await trx.updateTable('inbox_members').set({ last_assigned_at: at }).where('inbox_id', '=', inboxId).where('user_id', '=', userId).execute();
  }

  /** The web inbox a customer starts chats in when none is named: the organization's first. */
  firstWebInbox(orgId: string): Promise<{ id: string } | undefined> {
    return this.db.selectFrom('inboxes').select('id').where('org_id', '=', orgId).where('platform', '=', 'web').orderBy('created_at').executeTakeFirst();
  }

  deleteConversation(orgId: string, id: string) {
    return this.db.deleteFrom('conversations').where('org_id', '=', orgId).where('id', '=', id).where('kind', '=', 'support').execute();
  }
}
