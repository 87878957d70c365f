import type { Kysely } from 'kysely';
import { checkAccess, requireUser, type Principal } from '../../access/access.ts';
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { AppError } from '../../platform/errors.ts';
import { newId } from '../../platform/ids.ts';
import type { DB } from '../../storage/schema.ts';
import type { ContactsService } from '../contacts/contacts.service.ts';
import { NOT_SUPPORT, type ConversationsService } from '../conversations/conversations.service.ts';
import type { ConversationRow } from '../conversations/conversations.repo.ts';
import type { InboxesService } from '../inboxes/inboxes.service.ts';
import type { MessagesService } from '../messages/messages.service.ts';
import type { PresenceService } from '../realtime/presence.ts';
import type { RealtimePublisher } from '../realtime/publisher.ts';
import type { UsersService } from '../users/users.service.ts';
import type { SupportRepo } from './support.repo.ts';
import type { AssignBody, ListSupportQuery, StartSupportBody, StatusBody, SupportConversationDto, SupportStatus } from './support.schemas.ts';

/** Writes an integration event into the outbox, inside the caller's transaction. */
export interface EventRecorder {
  record(trx: Kysely<DB>, orgId: string, name: string, data: Record<string, unknown>): Promise<string>;
}

const notFound = () => new AppError('conversation.not_found', 'Conversation not found');
type Row = NonNullable<Awaited<ReturnType<SupportRepo['get']>>>;

function toDto(r: Row): SupportConversationDto {
  return {
    id: r.id,
    inbox_id: r.inbox_id!,
    contact: { id: r.contact_id!, name: r.contact_name, phone: r.contact_phone, email: r.contact_email },
    status: (r.status ?? 'open') as SupportStatus,
    assignee_id: r.assignee_id,
    team_id: r.team_id,
    priority: r.priority as SupportConversationDto['priority'],
    snoozed_until: r.snoozed_until,
    archived: r.archived_at !== null,
    last_seq: Number(r.last_seq),
    last_message_at: r.last_message_at,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

/**
 * Customer conversations (seeds 000 and 004) on the same conversations, messages and realtime
 * pipeline as team chat: a support conversation is kind 'support' with an inbox and a contact.
 * Access is ConversationsService.requireConversation's (agents of the inbox, super-agents and
 * admins, the customer themself). Every change is announced to the gateways and written as an
 * integration event in the transaction of the change.
 */
export class SupportService {
  #events: EventRecorder | null = null;

  constructor(
    private readonly repo: SupportRepo,
    private readonly conversations: ConversationsService,
    private readonly messages: MessagesService,
    private readonly inboxes: InboxesService,
    private readonly contacts: ContactsService,
    private readonly users: UsersService,
    private readonly presence: PresenceService,
    private readonly clock: Clock,
    private readonly realtime: RealtimePublisher | null = null,
    private readonly teams: { require(orgId: string, id: string): Promise<void> } | null = null,
  ) {}

  /** The outbox writer (set once the integrations feature is wired). */
  setEventRecorder(events: EventRecorder): void {
    this.#events = events;
  }

  async list(p: Principal, q: ListSupportQuery): Promise<{ data: SupportConversationDto[]; next_cursor: string | null }> {
    const userId = requireUser(p);
    const limit = q.limit ?? 50;
    const staffAll = checkAccess(p, 'support.all');
    const agent = checkAccess(p, 'support.handle');
    const before = q.cursor ? (({ a, i }) => ({ at: a, id: i }))(decodeCursor(q.cursor, ['a', 'i'] as const)) : undefined;
    const rows = await this.repo.list(
      p.orgId,
      {
        inboxIds: staffAll ? null : agent ? await this.repo.agentInboxIds(userId) : null,
        ...(agent ? {} : { customerUserId: userId }),
        status: q.status,
        assigneeId: q.mine ? userId : q.assignee_id,
        inboxId: q.inbox_id,
        teamId: q.team_id,
        unassigned: q.unassigned,
        archived: q.archived === true,
        before,
      },
      limit + 1,
    );
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { data: page.map(toDto), next_cursor: rows.length > limit && last ? encodeCursor({ a: last.activity, i: last.id }) : null };
  }

  async get(p: Principal, id: string): Promise<SupportConversationDto> {
    await this.#require(p, id, 'read');
    return toDto((await this.repo.get(p.orgId, id))!);
  }

  /**
   * A new conversation. A customer starts their own chat in a `web` inbox (seed 004); staff start
   * one with a contact in an inbox they handle. Auto-assignment runs when the inbox has it on.
   */
  async start(p: Principal, body: StartSupportBody): Promise<SupportConversationDto> {
    const userId = requireUser(p);
    const staff = checkAccess(p, 'support.handle');
    let inboxId = body.inbox_id;
    let contactId: string;
    if (staff) {
      if (!inboxId || !body.contact_id) throw new AppError('validation.failed', 'Staff start a conversation in an inbox with a contact', { fields: [{ field: '/body', message: 'inbox_id and contact_id are required' }] });
      await this.inboxes.requireVisible(p, inboxId);
      const contact = await this.contacts.getRow(p.orgId, body.contact_id);
      if (!contact) throw new AppError('contact.not_found', 'Contact not found');
      contactId = contact.id;
    } else {
      if (body.contact_id) throw new AppError('forbidden', 'Customers start conversations for themselves');
      inboxId ??= (await this.repo.firstWebInbox(p.orgId))?.id;
      const inbox = inboxId ? await this.inboxes.getRow(p.orgId, inboxId) : undefined;
      if (!inbox || inbox.platform !== 'web') throw new AppError('inbox.not_found', 'No web inbox to start a chat in');
      const user = p.user ?? (await this.users.getRow(p.orgId, userId));
      contactId = (await this.contacts.forUser(p.orgId, { id: userId, name: user?.name ?? null, email: user?.email ?? null })).id;
    }
    const now = isoNow(this.clock);
    const id = newId();
    const row: ConversationRow = {
      id,
      org_id: p.orgId,
      kind: 'support',
      name: null,
      topic: null,
      purpose: null,
      dm_key: null,
      created_by: userId,
      archived_at: null,
      last_seq: 0,
      messages_version: 0,
      ...NOT_SUPPORT,
      inbox_id: inboxId!,
      contact_id: contactId,
      status: 'open',
      last_message_at: null,
      created_at: now,
      updated_at: now,
    };
    const role = staff ? 'agent' : 'customer';
    await this.repo.transaction(async (trx) => {
      await this.repo.create(trx, row, [{ conversation_id: id, user_id: userId, org_id: p.orgId, role, last_read_seq: 0, muted: 0, joined_at: now }]);
      await this.#events?.record(trx, p.orgId, 'chat.conversation.new', { conversation: toDto({ ...(await trx.selectFrom('conversations').selectAll().where('id', '=', id).executeTakeFirstOrThrow()), ...(await this.#contactSummary(trx, contactId)) }) });
    });
    this.#announce(p.orgId, id);
    await this.autoAssign(p.orgId, id, inboxId!);
    if (body.body) await this.messages.send(p, id, { body: body.body });
    return toDto((await this.repo.get(p.orgId, id))!);
  }

  /** Assign to an agent of the inbox (or a super-agent / admin), and / or a team; null unassigns. */
  async assign(p: Principal, id: string, body: AssignBody): Promise<SupportConversationDto> {
    const c = await this.#require(p, id, 'manage');
    const patch: Partial<ConversationRow> = { updated_at: isoNow(this.clock) };
    if (body.assignee_id !== undefined) {
      if (body.assignee_id !== null) await this.#requireAgent(p.orgId, c.inbox_id!, body.assignee_id);
      patch.assignee_id = body.assignee_id;
    }
    if (body.team_id !== undefined) {
      if (body.team_id !== null) await this.teams?.require(p.orgId, body.team_id);
      patch.team_id = body.team_id;
    }
    await this.#setAssignee(p.orgId, c, patch);
    return toDto((await this.repo.get(p.orgId, id))!);
  }

  /** open, pending, snoozed (until a time in the future), resolved, closed. */
  async setStatus(p: Principal, id: string, body: StatusBody): Promise<SupportConversationDto> {
    const c = await this.#require(p, id, 'manage');
    let snoozed: string | null = null;
    if (body.status === 'snoozed') {
      if (!body.snoozed_until || Date.parse(body.snoozed_until) <= this.clock.now()) {
        throw new AppError('validation.failed', 'Snoozing needs a time in the future', { fields: [{ field: '/body/snoozed_until', message: 'must be in the future' }] });
      }
      snoozed = new Date(body.snoozed_until).toISOString();
    }
    await this.#changeStatus(p.orgId, c, body.status as SupportStatus, snoozed);
    return toDto((await this.repo.get(p.orgId, id))!);
  }

  async setPriority(p: Principal, id: string, priority: string | null): Promise<SupportConversationDto> {
    await this.#require(p, id, 'manage');
    await this.repo.transaction((trx) => this.repo.update(trx, p.orgId, id, { priority, updated_at: isoNow(this.clock) }));
    this.#announce(p.orgId, id);
    return toDto((await this.repo.get(p.orgId, id))!);
  }

  async setArchived(p: Principal, id: string, archived: boolean): Promise<SupportConversationDto> {
    const c = await this.#require(p, id, 'read');
    if (!checkAccess(p, 'support.handle')) throw new AppError('forbidden', 'Only staff archive conversations');
    const now = isoNow(this.clock);
    await this.repo.transaction((trx) => this.repo.update(trx, p.orgId, id, { archived_at: archived ? (c.archived_at ?? now) : null, updated_at: now }));
    this.#announce(p.orgId, id);
    return toDto((await this.repo.get(p.orgId, id))!);
  }

  async delete(p: Principal, id: string): Promise<void> {
    await this.#require(p, id, 'read');
    if (!checkAccess(p, 'support.all')) throw new AppError('forbidden', 'Only super-agents and admins delete conversations');
    await this.repo.deleteConversation(p.orgId, id);
    this.realtime?.toConversation(id, 'conversation_update', { id, deleted: true });
  }

  /**
   * The conversation of a contact in an inbox, for a message from the platform: the latest one that
   * is not archived (a closed one is reopened by the message), else a new one — created once, also
   * when deliveries race (the contact row is locked on PostgreSQL; SQLite has one writer), with its
   * integration event and auto-assignment.
   */
  async openForContact(orgId: string, inboxId: string, contactId: string): Promise<string> {
    const now = isoNow(this.clock);
    // Almost always there already: found without a write transaction (a commit per message).
    const found = await this.repo.currentForContact(orgId, inboxId, contactId);
    if (found) return found.id;
    const { id, created } = await this.repo.transaction(async (trx) => {
      await this.repo.lockContact(trx, contactId);
      const existing = await this.repo.currentForContact(orgId, inboxId, contactId, trx);
      if (existing) return { id: existing.id, created: false };
      const id = newId();
      const row: ConversationRow = {
        id,
        org_id: orgId,
        kind: 'support',
        name: null,
        topic: null,
        purpose: null,
        dm_key: null,
        created_by: null,
        archived_at: null,
        last_seq: 0,
        messages_version: 0,
        ...NOT_SUPPORT,
        inbox_id: inboxId,
        contact_id: contactId,
        status: 'open',
        last_message_at: null,
        created_at: now,
        updated_at: now,
      };
      await this.repo.create(trx, row, []);
      await this.#events?.record(trx, orgId, 'chat.conversation.new', { conversation: toDto({ ...row, ...(await this.#contactSummary(trx, contactId)) }) });
      return { id, created: true };
    });
    if (created) {
      this.#announce(orgId, id);
      await this.autoAssign(orgId, id, inboxId);
    }
    return id;
  }

  /**
   * A message from the customer reopens a conversation that was pending, snoozed, resolved or
   * closed (called after the message is stored).
   */
  async onCustomerMessage(orgId: string, conversationId: string): Promise<void> {
    const c = await this.repo.get(orgId, conversationId);
    if (c && c.status !== 'open') await this.#changeStatus(orgId, c, 'open', null);
  }

  /**
   * Round robin among the inbox's online agents under their capacity: the one with the fewest
   * open conversations in the inbox, then the one assigned longest ago. The inbox is locked for
   * the choice (PostgreSQL; SQLite has one writer), so concurrent new conversations are spread
   * evenly instead of all landing on the same agent. Returns the assignee, or null.
   */
  async autoAssign(orgId: string, conversationId: string, inboxId: string): Promise<string | null> {
    const inbox = await this.inboxes.getRow(orgId, inboxId);
    if (!inbox || inbox.auto_assign !== 1) return null;
    const members = await this.inboxes.agentRows(orgId, inboxId);
    const statuses = await this.presence.statuses(members.map((m) => ({ id: m.user_id, status: m.status })));
    const online = members.filter((m) => statuses.get(m.user_id) === 'online');
    if (online.length === 0) return null;
    const now = isoNow(this.clock);
    const chosen = await this.repo.transaction(async (trx) => {
      await this.repo.lockInbox(trx, inboxId);
      const current = await trx.selectFrom('conversations').select(['assignee_id', 'status']).where('id', '=', conversationId).executeTakeFirst();
      if (!current || current.assignee_id !== null) return null;
      const load = await this.repo.openLoad(trx, inboxId);
      const assigned = await trx.selectFrom('inbox_members').select(['user_id', 'last_assigned_at']).where('inbox_id', '=', inboxId).execute();
      const lastAt = new Map(assigned.map((a) => [a.user_id, a.last_assigned_at ?? '']));
      const pick = online
        .filter((m) => inbox.agent_capacity === 0 || (load.get(m.user_id) ?? 0) < inbox.agent_capacity)
        .sort((a, b) => (load.get(a.user_id) ?? 0) - (load.get(b.user_id) ?? 0) || (lastAt.get(a.user_id) ?? '').localeCompare(lastAt.get(b.user_id) ?? '') || a.user_id.localeCompare(b.user_id))[0];
      if (!pick) return null;
      await this.repo.update(trx, orgId, conversationId, { assignee_id: pick.user_id, updated_at: now });
      await this.repo.join(trx, { conversation_id: conversationId, user_id: pick.user_id, org_id: orgId, role: 'agent', last_read_seq: 0, muted: 0, joined_at: now });
      await this.repo.touchAssigned(trx, inboxId, pick.user_id, now);
      await this.#events?.record(trx, orgId, 'chat.conversation.assigned', { conversation_id: conversationId, assignee_id: pick.user_id, team_id: null, previous_assignee_id: null, auto: true });
      return pick.user_id;
    });
    if (chosen) this.#announceAssignment(orgId, conversationId, chosen);
    return chosen;
  }

  /** An agent went offline: in inboxes that ask for it, their open conversations go to someone online. */
  async reassignFrom(orgId: string, userId: string): Promise<number> {
    const rows = await this.repo.assignedInReassigningInboxes(orgId, userId);
    for (const r of rows) {
      await this.repo.transaction(async (trx) => {
        await this.repo.update(trx, orgId, r.id, { assignee_id: null, updated_at: isoNow(this.clock) });
        await this.#events?.record(trx, orgId, 'chat.conversation.assigned', { conversation_id: r.id, assignee_id: null, team_id: null, previous_assignee_id: userId, reason: 'agent_offline' });
      });
      await this.autoAssign(orgId, r.id, r.inbox_id!);
    }
    return rows.length;
  }

  async #setAssignee(orgId: string, c: ConversationRow, patch: Partial<ConversationRow>): Promise<void> {
    const now = isoNow(this.clock);
    await this.repo.transaction(async (trx) => {
      await this.repo.update(trx, orgId, c.id, patch);
      if (patch.assignee_id) {
        await this.repo.join(trx, { conversation_id: c.id, user_id: patch.assignee_id, org_id: orgId, role: 'agent', last_read_seq: 0, muted: 0, joined_at: now });
        await this.repo.touchAssigned(trx, c.inbox_id!, patch.assignee_id, now);
      }
      await this.#events?.record(trx, orgId, 'chat.conversation.assigned', {
        conversation_id: c.id,
        assignee_id: patch.assignee_id === undefined ? c.assignee_id : patch.assignee_id,
        team_id: patch.team_id === undefined ? c.team_id : patch.team_id,
        previous_assignee_id: c.assignee_id,
      });
    });
    this.#announceAssignment(orgId, c.id, patch.assignee_id === undefined ? c.assignee_id : patch.assignee_id);
  }

  async #changeStatus(orgId: string, c: ConversationRow, status: SupportStatus, snoozedUntil: string | null): Promise<void> {
    const previous = c.status;
    await this.repo.transaction(async (trx) => {
      await this.repo.update(trx, orgId, c.id, { status, snoozed_until: snoozedUntil, updated_at: isoNow(this.clock) });
      if (previous !== status) await this.#events?.record(trx, orgId, 'chat.conversation.status_changed', { conversation_id: c.id, status, previous_status: previous, snoozed_until: snoozedUntil });
    });
    this.#announce(orgId, c.id);
  }

  async #require(p: Principal, id: string, need: 'read' | 'write' | 'manage'): Promise<ConversationRow> {
    const c = await this.conversations.requireConversation(p, id, need);
    if (c.kind !== 'support') throw notFound();
    return c;
  }

  async #requireAgent(orgId: string, inboxId: string, userId: string): Promise<void> {
    const user = await this.users.getRow(orgId, userId);
    const agents = await this.inboxes.agentRows(orgId, inboxId);
    const ok = user && user.active === 1 && (['admin', 'super-agent'].includes(user.role) || agents.some((a) => a.user_id === userId));
    if (!ok) throw new AppError('support.invalid_assignee', 'Assign to an agent of this inbox, a super-agent or an admin');
  }

  async #contactSummary(trx: Kysely<DB>, contactId: string) {
    const ct = await trx.selectFrom('contacts').select(['name', 'phone', 'email']).where('id', '=', contactId).executeTakeFirstOrThrow();
    return { contact_name: ct.name, contact_phone: ct.phone, contact_email: ct.email };
  }

  /** The conversation's subscribers and the inbox's staff hear of the change (conversation_update). */
  #announce(orgId: string, id: string): void {
    if (!this.realtime) return;
    void this.repo.get(orgId, id).then((r) => r && this.realtime!.toConversation(id, 'conversation_update', toDto(r)));
  }

  #announceAssignment(orgId: string, id: string, assigneeId: string | null): void {
    this.#announce(orgId, id);
    if (assigneeId && this.realtime) void this.repo.get(orgId, id).then((r) => r && this.realtime!.toUser(assigneeId, 'conversation_new', toDto(r), id));
  }
}
