import { checkAccess, requireAccess, requireUser, type Principal } from '../../access/access.ts';
import { baseRole, isValidRole } from '../../access/roles.ts';
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts';
import { AppError, notFound } from '../../platform/errors.ts';
import { newId } from '../../platform/ids.ts';
import { hashPassword, verifyPassword } from '../../platform/passwords.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { mapUnique, type UniqueViolation } from '../../storage/errors.ts';
import type { PrincipalCache } from '../../access/principal-cache.ts';
import type { UsersRepo, UserRow } from './users.repo.ts';
import type { AdminUpdateUserBody, ListUsersQuery, UpdateProfileBody, UpdateStatusBody, UserDto } from './users.schemas.ts';

/** Revokes a user's sessions; implemented by the auth capability (it owns sessions). */
export interface SessionRevoker {
  revokeAllForUser(orgId: string, userId: string, reason: string, exceptSessionId?: string | null): Promise<void>;
}

export interface NewUser {
  orgId: string;
  username: string;
  email: string | null;
  name: string;
  password: string | null;
  role: string;
  externalRef?: string | null;
  platformAdmin?: boolean;
}

export function toUserDto(u: UserRow): UserDto {
  return {
    id: u.id,
    org_id: u.org_id,
    username: u.username,
    email: u.email,
    name: u.name,
    role: u.role,
    status: u.status,
    status_text: u.status_text,
    is_online: u.status !== 'offline',
    avatar_url: u.avatar_url,
    external_ref: u.external_ref,
    active: u.active === 1,
    platform_admin: u.platform_admin === 1,
    last_seen_at: u.last_seen_at,
    created_at: u.created_at,
    updated_at: u.updated_at,
  };
}

function uniqueToAppError(v: UniqueViolation): AppError {
  if (v.constraint.includes('email')) return new AppError('user.email_taken', 'This email is already registered');
  if (v.constraint.includes('username')) return new AppError('user.username_taken', 'This username is taken');
  return new AppError('conflict', 'This user already exists');
}

/** Users: profiles, directory, presence status, admin changes. */
export class UsersService {
  #revoker: SessionRevoker | null = null;

  constructor(
    private readonly repo: UsersRepo,
    private readonly principals: PrincipalCache,
    private readonly clock: Clock,
  ) {}

  /** Wire the session revoker (auth is built after users). */
  setSessionRevoker(r: SessionRevoker): void {
    this.#revoker = r;
  }

  // ---- internal (no permission check: callers are other services) ----

  getRow(orgId: string, id: string): Promise<UserRow | undefined> {
    return this.repo.getById(orgId, id);
  }

  findLoginCandidates(identifier: string, orgId: string | null): Promise<UserRow[]> {
    return this.repo.findByLogin(identifier.toLowerCase(), orgId, 5);
  }

  findByExternalRef(orgId: string, ref: string): Promise<UserRow | undefined> {
    return this.repo.findByExternalRef(orgId, ref);
  }

  /** Create a user (the caller has decided it may). Username and email are stored lower-cased. */
  async doCreate(u: NewUser): Promise<UserRow> {
    const now = isoNow(this.clock);
    const row = {
      id: newId(),
      org_id: u.orgId,
      username: u.username.toLowerCase(),
      email: u.email?.toLowerCase() ?? null,
      name: u.name,
      password_hash: u.password === null ? null : await hashPassword(u.password),
      role: u.role,
      status: 'offline',
      status_text: null,
      avatar_url: null,
      external_ref: u.externalRef ?? null,
      active: 1,
      platform_admin: u.platformAdmin ? 1 : 0,
      last_seen_at: null,
      created_at: now,
      updated_at: now,
    };
    return mapUnique(() => this.repo.create(row), uniqueToAppError);
  }

  /** Apply a change without permission checks (host JWT sync, bootstrap). */
  async doUpdate(orgId: string, id: string, patch: Parameters<UsersRepo['update']>[2]): Promise<UserRow> {
    const row = await mapUnique(() => this.repo.update(orgId, id, { ...patch, updated_at: isoNow(this.clock) }), uniqueToAppError);
    if (!row) throw notFound('user.not_found', 'User');
    await this.principals.invalidate({ userId: id });
    return row;
  }

  // ---- API ----

  /**
   * The caller, as read when their credentials were resolved (no query; the principal cache is
   * invalidated by every user update). Synchronous: this is the hottest read of the API.
   */
  me(p: Principal): UserDto {
    requireUser(p);
    if (!p.user) throw notFound('user.not_found', 'User');
    return toUserDto(p.user);
  }

  async list(p: Principal, query: ListUsersQuery): Promise<{ data: UserDto[]; next_cursor: string | null }> {
    requireAccess(p, 'users.list');
    const limit = query.limit ?? 50;
    const after = query.cursor ? decodeCursor(query.cursor, ['u'] as const).u : undefined;
    const rows = await this.repo.list(
      p.orgId,
      { role: query.role, online: query.online, active: query.active, q: query.q?.toLowerCase(), afterUsername: after },
      limit + 1,
    );
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { data: page.map(toUserDto), next_cursor: rows.length > limit && last ? encodeCursor({ u: last.username }) : null };
  }

  /** A user of the caller's organization. Customers see themselves and staff only; anything else is 404. */
  async get(p: Principal, id: string): Promise<UserDto> {
    const row = await this.repo.getById(p.orgId, id);
    const visible = row && (checkAccess(p, 'users.list') || row.id === p.userId || ['admin', 'super-agent', 'agent'].includes(baseRole(row.role)));
    if (!row || !visible) throw notFound('user.not_found', 'User');
    return toUserDto(row);
  }

  async presence(p: Principal): Promise<UserDto[]> {
    requireAccess(p, 'users.list');
    const rows = await this.repo.list(p.orgId, { online: true, active: true }, 1000);
    return rows.map(toUserDto);
  }

  async updateStatus(p: Principal, body: UpdateStatusBody): Promise<UserDto> {
    const id = requireUser(p);
    const status = body.status ?? (body.isOnline === undefined ? undefined : body.isOnline ? 'online' : 'offline');
    if (status === undefined && body.status_text === undefined) {
      throw new AppError('validation.failed', 'Send status, status_text or isOnline', { fields: [{ field: '/body/status', message: 'is required' }] });
    }
    const patch: Parameters<UsersRepo['update']>[2] = { last_seen_at: isoNow(this.clock) };
    if (status !== undefined) patch.status = status;
    if (body.status_text !== undefined) patch.status_text = body.status_text;
    return toUserDto(await this.doUpdate(p.orgId, id, patch));
  }

  async updateProfile(p: Principal, body: UpdateProfileBody): Promise<UserDto> {
    const id = requireUser(p);
    const patch: Parameters<UsersRepo['update']>[2] = {};
    if (body.name !== undefined) patch.name = body.name;
    if (body.email !== undefined) patch.email = body.email?.toLowerCase() ?? null;
    if (body.avatar_url !== undefined) patch.avatar_url = body.avatar_url;
    return toUserDto(await this.doUpdate(p.orgId, id, patch));
  }

  /** Change one's own password; every other session of the user is revoked. */
  async changePassword(p: Principal, current: string, next: string): Promise<void> {
    const id = requireUser(p);
    const row = await this.repo.getById(p.orgId, id);
    if (!row) throw notFound('user.not_found', 'User');
    if (!(await verifyPassword(row.password_hash, current))) throw new AppError('user.invalid_password', 'The current password is wrong');
    await this.doUpdate(p.orgId, id, { password_hash: await hashPassword(next) });
    await this.#revoker?.revokeAllForUser(p.orgId, id, 'password_changed', p.sessionId);
  }

  /** Admin: change role, (de)activate, rename. The last active admin cannot be demoted or deactivated. */
  async adminUpdate(p: Principal, id: string, body: AdminUpdateUserBody): Promise<UserDto> {
    requireAccess(p, 'users.manage');
    if (body.role !== undefined && !isValidRole(body.role)) throw new AppError('validation.failed', 'Invalid role');
    const patch: Parameters<UsersRepo['update']>[2] = { updated_at: isoNow(this.clock) };
    if (body.role !== undefined) patch.role = body.role;
    if (body.name !== undefined) patch.name = body.name;
    if (body.active !== undefined) patch.active = body.active ? 1 : 0;
    if (body.active === false) patch.status = 'offline';
    const result = await mapUnique(() => this.repo.updateKeepingAnAdmin(p.orgId, id, patch), uniqueToAppError);
    if (result === 'not_found') throw notFound('user.not_found', 'User');
    if (result === 'last_admin') throw new AppError('user.last_admin', 'The organization must keep at least one active admin');
    await this.principals.invalidate({ userId: id });
    if (body.active === false) await this.#revoker?.revokeAllForUser(p.orgId, id, 'deactivated');
    return toUserDto(result);
  }
}
