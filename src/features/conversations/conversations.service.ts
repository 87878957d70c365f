import { checkAccess, requireAccess, requireUser, type Principal } from '../../access/access.ts';
import type { RealtimePublisher } from '../realtime/publisher.ts';
import type { Kysely } from 'kysely';
import type { DB } from '../../storage/schema.ts';
import type { EventRecorder } from '../support/support.service.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts';
import { AppError } from '../../platform/errors.ts';
import { newId } from '../../platform/ids.ts';
import { mapUnique } from '../../storage/errors.ts';
import type { UsersService } from '../users/users.service.ts';
import type { ConversationAccess, ConversationRow, ConversationsRepo, ConversationWithMembership, MembershipRow } from './conversations.repo.ts';
import type { ConversationDto, CreateChannelBody, ListChannelsQuery, MemberDto, OpenDmBody, UpdateChannelBody } from './conversations.schemas.ts';

/** The channel's owners and admins, and org-wide moderators, manage it. */
function requireManager(p: Principal, c: ConversationAccess): void {
  if (c.member_role === 'owner' || c.member_role === 'admin' || checkAccess(p, 'conversations.moderate')) return;
  throw new AppError('forbidden', 'Only the channel’s owners and admins can do this');
}

/** The one access check (see ConversationsService): the conversation as read, or throws. */
function checkConversation<C extends ConversationAccess>(p: Principal, c: C | undefined, need: ConversationNeed): C {
  if (!c) throw notFound();
  if (c.kind === 'support') return requireSupport(p, c, need);
  const member = c.member_role !== null;
  const visible = member || (c.kind === 'public' && checkAccess(p, 'channels.browse_public'));
  if (!visible) throw notFound();
  if (need === 'write' && !member) throw new AppError('conversation.not_member', 'Join the conversation first');
  if (need === 'manage') requireManager(p, c);
  if (need !== 'read' && c.archived_at !== null) throw new AppError('conversation.archived', 'This conversation is archived');
  return c;
}

/** What the caller wants to do with a conversation. */
export type ConversationNeed = 'read' | 'write' | 'manage';

/**
 * Support conversations: super-agents and admins see all of the organization's; agents those of
 * the inboxes they belong to; a customer only their own (the conversation's contact is them).
 * Staff may manage (assign, status); everyone who sees it may write, unless archived.
 */
function requireSupport<C extends ConversationAccess>(p: Principal, c: C, need: ConversationNeed): C {
  const staff = checkAccess(p, 'support.all') || (checkAccess(p, 'support.handle') && c.inbox_member != null);
  const customer = p.userId !== null && c.contact_user_id === p.userId;
  if (!staff && !customer) throw notFound();
  if (need === 'manage' && !staff) throw new AppError('forbidden', 'Only the inbox’s agents handle this conversation');
  if (need !== 'read' && c.archived_at !== null) throw new AppError('conversation.archived', 'This conversation is archived');
  return { ...c, member_role: c.member_role ?? (staff ? 'agent' : 'customer') };
}

/** The support fields of a conversation that is not a support conversation. */
export const NOT_SUPPORT = { inbox_id: null, contact_id: null, assignee_id: null, team_id: null, priority: null, snoozed_until: null, status: null } as const;

const notFound = () => new AppError('conversation.not_found', 'Conversation not found');
const MAX_GROUP = 8;

export function toConversationDto(c: ConversationWithMembership): ConversationDto {
  return {
    id: c.id,
    org_id: c.org_id,
    kind: c.kind,
    name: c.name,
    topic: c.topic,
    purpose: c.purpose,
    created_by: c.created_by,
    archived: c.archived_at !== null,
    archived_at: c.archived_at,
    last_seq: c.last_seq,
    last_message_at: c.last_message_at,
    is_member: c.member_role !== null,
    member_role: c.member_role,
    created_at: c.created_at,
    updated_at: c.updated_at,
  };
}

/**
 * Channels, direct and group conversations, and membership. `requireConversation` is the one
 * access check for everything that happens in a conversation (messages use it too):
 * - a private, direct or group conversation is invisible (404) to non-members;
 * - a public channel can be read by any staff or member of the organization, written by members;
 * - managing needs the channel's owner or admin role, or the org-wide moderate permission;
 * - an archived conversation is read-only.
 */
export class ConversationsService {
  constructor(
    private readonly repo: ConversationsRepo,
    private readonly users: UsersService,
    private readonly clock: Clock,
    private readonly realtime: RealtimePublisher | null = null,
  ) {}

  async requireConversation(p: Principal, id: string, need: ConversationNeed): Promise<ConversationWithMembership> {
    return checkConversation(p, await this.repo.getWithMembership(p.orgId, id, p.userId), need);
  }

  /** requireConversation for callers that need only the kind and the caller's role (sending). */
  async requireAccess(p: Principal, id: string, need: ConversationNeed): Promise<ConversationAccess> {
    return checkConversation(p, await this.repo.getAccess(p.orgId, id, p.userId), need);
  }


  async createChannel(p: Principal, body: CreateChannelBody): Promise<ConversationDto> {
    requireAccess(p, 'channels.create');
    const userId = requireUser(p);
    const now = isoNow(this.clock);
    const id = newId();
    const others = await this.#checkUsers(p, (body.members ?? []).filter((m) => m !== userId));
    const row = { id, org_id: p.orgId, kind: body.private ? 'private' : 'public', name: body.name, topic: body.topic ?? null, purpose: body.purpose ?? null, dm_key: null, created_by: userId, archived_at: null, last_seq: 0, messages_version: 0, ...NOT_SUPPORT, last_message_at: null, created_at: now, updated_at: now };
    const members = [this.#member(p.orgId, id, userId, 'owner', now), ...others.map((u) => this.#member(p.orgId, id, u, 'member', now))];
    await mapUnique(
      () => this.repo.create(row, members),
      () => new AppError('conversation.name_taken', `A channel named "${body.name}" already exists`),
    );
    this.#announceNew(row, members);
    return toConversationDto({ ...row, member_role: 'owner' });
  }

  async listChannels(p: Principal, q: ListChannelsQuery, joinedOnly: boolean): Promise<{ data: ConversationDto[]; next_cursor: string | null }> {
    const userId = requireUser(p);
    const limit = q.limit ?? 50;
    const afterName = q.cursor ? decodeCursor(q.cursor, ['n'] as const).n : undefined;
    const rows = await this.repo.listChannels(
      p.orgId,
      userId,
      // Names are lower case; so is the prefix, so matching is the same on both engines.
      { joinedOnly, includePublic: checkAccess(p, 'channels.browse_public'), includeArchived: q.include_archived === true, prefix: q.q?.toLowerCase(), afterName },
      limit + 1,
    );
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { data: page.map(toConversationDto), next_cursor: rows.length > limit && last?.name ? encodeCursor({ n: last.name }) : null };
  }

  async get(p: Principal, id: string): Promise<ConversationDto> {
    return toConversationDto(await this.requireConversation(p, id, 'read'));
  }

  async update(p: Principal, id: string, body: UpdateChannelBody): Promise<ConversationDto> {
    const c = await this.#requireChannel(p, id, 'manage');
    if (body.name !== undefined && c.kind === 'group') throw new AppError('conversation.invalid_members', 'Groups have no name; create a channel instead');
    const patch = { updated_at: isoNow(this.clock), ...body };
    await mapUnique(
      () => this.repo.update(p.orgId, id, patch),
      () => new AppError('conversation.name_taken', `A channel named "${body.name}" already exists`),
    );
    this.#announceUpdate({ ...c, ...patch });
    return toConversationDto({ ...c, ...patch });
  }

  async setArchived(p: Principal, id: string, archived: boolean): Promise<ConversationDto> {
    // Archived conversations refuse 'manage'; unarchiving checks visibility, then the role itself.
    const c = await this.requireConversation(p, id, archived ? 'manage' : 'read');
    requireManager(p, c);
    const now = isoNow(this.clock);
    const patch = { archived_at: archived ? (c.archived_at ?? now) : null, updated_at: now };
    await this.repo.update(p.orgId, id, patch);
    this.#announceUpdate({ ...c, ...patch });
    return toConversationDto({ ...c, ...patch });
  }

  /** The channel's owner or an org admin. */
  async delete(p: Principal, id: string): Promise<void> {
    const c = await this.requireConversation(p, id, 'read');
    if (!(c.member_role === 'owner' || checkAccess(p, 'conversations.moderate'))) throw new AppError('forbidden', 'Only the channel’s owner or an admin can delete it');
    const members = await this.repo.listMembers(p.orgId, id);
    await this.repo.delete(p.orgId, id);
    this.realtime?.toConversation(id, 'conversation_update', { id, deleted: true });
    for (const m of members) this.realtime?.toUser(m.user_id, 'membership', { action: 'removed', conversation_id: id, reason: 'deleted' }, id);
  }

  async join(p: Principal, id: string): Promise<ConversationDto> {
    const userId = requireUser(p);
    const c = await this.requireConversation(p, id, 'read');
    if (c.member_role !== null) return toConversationDto(c);
    if (c.kind !== 'public') throw notFound();
    if (c.archived_at !== null) throw new AppError('conversation.archived', 'This conversation is archived');
    if (await this.repo.addMember(this.#member(p.orgId, id, userId, 'member', isoNow(this.clock)), this.#event(p.orgId, 'chat.conversation.member_added', id, userId))) this.#announceJoin(c, userId, 'member');
    return toConversationDto({ ...c, member_role: 'member' });
  }

  async leave(p: Principal, id: string): Promise<void> {
    const userId = requireUser(p);
    const c = await this.requireConversation(p, id, 'read');
    if (c.kind === 'direct') throw new AppError('conversation.invalid_members', 'A direct conversation cannot be left');
    if (c.member_role === null) throw new AppError('conversation.not_member', 'You are not a member');
    if (await this.repo.removeMember(id, userId, this.#event(p.orgId, 'chat.conversation.member_removed', id, userId))) this.#announceLeave(id, userId);
  }

  async listMembers(p: Principal, id: string): Promise<MemberDto[]> {
    await this.requireConversation(p, id, 'read');
    return (await this.repo.listMembers(p.orgId, id)).map((m) => ({ user_id: m.user_id, username: m.username, name: m.name, role: m.role, joined_at: m.joined_at, last_read_seq: m.last_read_seq }));
  }

  /** Members with username and presence status, for resolving mentions (no access check: callers did it). */
  async memberDirectory(orgId: string, id: string): Promise<Array<{ userId: string; username: string; status: string; role: string }>> {
    return (await this.repo.listMembers(orgId, id)).map((m) => ({ userId: m.user_id, username: m.username, status: m.status, role: m.role }));
  }

  /**
   * Members add people to channels and groups; owners, admins and org moderators may too (without
   * being members), and only they choose the admin role. A group never grows past 8 people.
   */
  async addMember(p: Principal, id: string, userId: string, role: 'member' | 'admin' = 'member'): Promise<void> {
    const need = role === 'admin' || checkAccess(p, 'conversations.moderate') ? 'manage' : 'write';
    const c = await this.#requireChannel(p, id, need);
    await this.#checkUsers(p, [userId]);
    if (c.kind === 'group' && !(await this.repo.getMember(c.id, userId)) && (await this.repo.countMembers(c.id)) >= MAX_GROUP) {
      throw new AppError('conversation.invalid_members', `A group has at most ${MAX_GROUP} people`);
    }
    // Adding someone who is already a member changes nothing (idempotent).
    if (await this.repo.addMember(this.#member(p.orgId, c.id, userId, role, isoNow(this.clock)), this.#event(p.orgId, 'chat.conversation.member_added', c.id, userId))) this.#announceJoin(c, userId, role);
  }

  /** Removing someone else needs manage rights; removing yourself is leaving. */
  async removeMember(p: Principal, id: string, userId: string): Promise<void> {
    if (userId === p.userId) return this.leave(p, id);
    const c = await this.#requireChannel(p, id, 'manage');
    const target = await this.repo.getMember(c.id, userId);
    if (!target) throw new AppError('conversation.not_member', 'This user is not a member');
    if (target.role === 'owner' && !checkAccess(p, 'conversations.moderate')) throw new AppError('forbidden', 'An owner can only be removed by an admin');
    if (await this.repo.removeMember(c.id, userId, this.#event(p.orgId, 'chat.conversation.member_removed', c.id, userId))) this.#announceLeave(c.id, userId);
  }

  /**
   * Change a member's role. Owners and admins of the channel (and org moderators) manage it; only
   * owners and moderators make or unmake owners; the last owner keeps the role.
   */
  async setMemberRole(p: Principal, id: string, userId: string, role: 'owner' | 'admin' | 'member'): Promise<MemberDto> {
    const c = await this.#requireChannel(p, id, 'manage');
    const target = await this.repo.getMember(c.id, userId);
    if (!target) throw new AppError('conversation.not_member', 'This user is not a member');
    const ownerPowers = c.member_role === 'owner' || checkAccess(p, 'conversations.moderate');
    if ((role === 'owner' || target.role === 'owner') && !ownerPowers) throw new AppError('forbidden', 'Only an owner or an org admin can make or unmake owners');
    if (target.role === 'owner' && role !== 'owner' && (await this.repo.countOwners(c.id)) <= 1) {
      throw new AppError('conflict', 'The channel must keep at least one owner');
    }
    if (target.role !== role) await this.repo.setRole(c.id, userId, role);
    const m = (await this.repo.listMembers(p.orgId, c.id)).find((x) => x.user_id === userId)!;
    return { user_id: m.user_id, username: m.username, name: m.name, role: m.role, joined_at: m.joined_at, last_read_seq: m.last_read_seq };
  }

  /** The direct conversation with a user, created on first use; exactly one per pair, also under concurrency. */
  async openDirect(p: Principal, otherId: string): Promise<{ conversation: ConversationDto; created: boolean }> {
    requireAccess(p, 'dm.open');
    const userId = requireUser(p);
    if (otherId === userId) throw new AppError('conversation.invalid_members', 'A direct conversation needs another person');
    await this.#checkUsers(p, [otherId]);
    const dmKey = [userId, otherId].sort().join(':');
    const existing = await this.repo.getByDmKey(p.orgId, dmKey);
    if (existing) return { conversation: toConversationDto({ ...existing, member_role: 'member' }), created: false };
    const now = isoNow(this.clock);
    const id = newId();
    const row = { id, org_id: p.orgId, kind: 'direct', name: null, topic: null, purpose: null, dm_key: dmKey, created_by: userId, archived_at: null, last_seq: 0, messages_version: 0, ...NOT_SUPPORT, last_message_at: null, created_at: now, updated_at: now };
    try {
      const members = [this.#member(p.orgId, id, userId, 'member', now), this.#member(p.orgId, id, otherId, 'member', now)];
      await this.repo.create(row, members);
      this.#announceNew(row, members);
      return { conversation: toConversationDto({ ...row, member_role: 'member' }), created: true };
    } catch (err) {
      // A concurrent call created it first: answer with that one.
      const raced = await this.repo.getByDmKey(p.orgId, dmKey);
      if (!raced) throw err;
      return { conversation: toConversationDto({ ...raced, member_role: 'member' }), created: false };
    }
  }

  /** The direct conversation with a user, if it exists. */
  async getDirect(p: Principal, otherId: string): Promise<ConversationDto> {
    const userId = requireUser(p);
    const c = await this.repo.getByDmKey(p.orgId, [userId, otherId].sort().join(':'));
    if (!c) throw notFound();
    return toConversationDto({ ...c, member_role: 'member' });
  }

  /** A group conversation of 3 to 8 people, the caller included. */
  async openGroup(p: Principal, userIds: string[]): Promise<ConversationDto> {
    requireAccess(p, 'dm.open');
    const userId = requireUser(p);
    const others = [...new Set(userIds.filter((u) => u !== userId))];
    if (others.length < 2 || others.length > MAX_GROUP - 1) throw new AppError('conversation.invalid_members', `A group has 3 to ${MAX_GROUP} people, you included`);
    await this.#checkUsers(p, others);
    const now = isoNow(this.clock);
    const id = newId();
    const row = { id, org_id: p.orgId, kind: 'group', name: null, topic: null, purpose: null, dm_key: null, created_by: userId, archived_at: null, last_seq: 0, messages_version: 0, ...NOT_SUPPORT, last_message_at: null, created_at: now, updated_at: now };
    const members = [this.#member(p.orgId, id, userId, 'owner', now), ...others.map((u) => this.#member(p.orgId, id, u, 'member', now))];
    await this.repo.create(row, members);
    this.#announceNew(row, members);
    return toConversationDto({ ...row, member_role: 'owner' });
  }

  async open(p: Principal, body: OpenDmBody): Promise<{ conversation: ConversationDto; created: boolean }> {
    if (body.user_id !== undefined && body.user_ids === undefined) return this.openDirect(p, body.user_id);
    if (body.user_ids !== undefined && body.user_id === undefined) return { conversation: await this.openGroup(p, body.user_ids), created: true };
    throw new AppError('validation.failed', 'Send either user_id (direct) or user_ids (group)', { fields: [{ field: '/body', message: 'needs exactly one of user_id, user_ids' }] });
  }

  /** The outbox writer for integration events (set once the integrations feature is wired). */
  setEventRecorder(events: EventRecorder): void {
    this.#events = events;
  }
  #events: EventRecorder | null = null;

  /** A member change's integration event, written in the transaction of the change. */
  #event(orgId: string, name: string, conversationId: string, userId: string) {
    const events = this.#events;
    return events ? (trx: Kysely<DB>) => events.record(trx, orgId, name, { conversation_id: conversationId, user_id: userId }) : undefined;
  }

  /** A new conversation: each member hears of it on their personal topic, with their own role. */
  #announceNew(row: ConversationRow, members: Array<{ user_id: string; role: string }>): void {
    for (const m of members) this.realtime?.toUser(m.user_id, 'conversation_new', toConversationDto({ ...row, member_role: m.role }), row.id);
  }

  #announceUpdate(c: ConversationWithMembership): void {
    this.realtime?.toConversation(c.id, 'conversation_update', toConversationDto({ ...c, member_role: null }));
  }

  /** Joined or added: the conversation's subscribers, and the person (personal topic). */
  #announceJoin(c: ConversationWithMembership, userId: string, role: string): void {
    this.realtime?.toConversation(c.id, 'member_join', { user_id: userId, role });
    this.realtime?.toUser(userId, 'membership', { action: 'added', conversation: toConversationDto({ ...c, member_role: role }) }, c.id);
  }

  /** Left or removed: gateways also drop the person's subscriptions to it (the `membership` event). */
  #announceLeave(conversationId: string, userId: string): void {
    this.realtime?.toConversation(conversationId, 'member_leave', { user_id: userId });
    this.realtime?.toUser(userId, 'membership', { action: 'removed', conversation_id: conversationId }, conversationId);
  }

  async #requireChannel(p: Principal, id: string, need: ConversationNeed): Promise<ConversationWithMembership> {
    const c = await this.requireConversation(p, id, need);
    if (c.kind !== 'public' && c.kind !== 'private' && c.kind !== 'group') throw new AppError('conversation.invalid_members', 'The members of a direct conversation cannot change');
    return c;
  }

  /** Every id must be an active user of the caller's organization; otherwise 400 naming them. */
  async #checkUsers(p: Principal, ids: string[]): Promise<string[]> {
    const missing: string[] = [];
    for (const id of ids) {
      const u = await this.users.getRow(p.orgId, id);
      if (!u || u.active !== 1) missing.push(id);
    }
    if (missing.length) throw new AppError('conversation.invalid_members', 'Some users do not exist in this organization', { user_ids: missing });
    return ids;
  }

  #member(orgId: string, conversationId: string, userId: string, role: string, at: string): MembershipRow {
    return { conversation_id: conversationId, user_id: userId, org_id: orgId, role, last_read_seq: 0, muted: 0, joined_at: at };
  }
}
