import type { Principal } from '../../access/access.ts';
import { isStaffRole, isValidRole } from '../../access/roles.ts';
import type { Config } from '../../config/config.ts';
import type { PrincipalCache } from '../../access/principal-cache.ts';
import type { RateLimiter } from '../../limits/rate-limiter.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { AppError, RateLimitedError } from '../../platform/errors.ts';
import { newId, randomToken, sha256Hex } from '../../platform/ids.ts';
import { verifyPassword } from '../../platform/passwords.ts';
import type { OrganizationsService } from '../organizations/organizations.service.ts';
import type { UserRow } from '../users/users.repo.ts';
import { toUserDto, type SessionRevoker, type UsersService } from '../users/users.service.ts';
import type { AuthRepo } from './auth.repo.ts';
import type { LoginBody, RegisterBody, TokenResponse } from './auth.schemas.ts';
import type { AccessTokens } from './tokens.ts';

export interface ClientInfo {
  ip: string;
  userAgent: string | null;
}

/** Registration, login with failure limits, refresh-token rotation with reuse detection, logout. */
export class AuthService implements SessionRevoker {
  constructor(
    private readonly repo: AuthRepo,
    private readonly users: UsersService,
    private readonly orgs: OrganizationsService,
    private readonly tokens: AccessTokens,
    private readonly limiter: RateLimiter,
    private readonly principals: PrincipalCache,
    private readonly config: Pick<Config, 'refreshTokenTtlSeconds' | 'loginLimit' | 'defaultOrganization'>,
    private readonly clock: Clock,
  ) {}

  async register(body: RegisterBody, client: ClientInfo): Promise<TokenResponse> {
    const org = await this.orgs.getBySlug(body.organization ?? this.config.defaultOrganization.slug);
    if (!org) throw new AppError('organization.not_found', 'Organization not found');
    if (org.registration_open !== 1) throw new AppError('auth.registration_closed', 'Registration is closed for this organization');
    const role = body.role ?? org.default_role;
    if (!isValidRole(role)) throw new AppError('validation.failed', 'Invalid role');
    if (isStaffRole(role)) throw new AppError('auth.role_not_allowed', `Registration cannot grant the role "${role}"; an admin assigns staff roles`);
    const user = await this.users.doCreate({ orgId: org.id, username: body.username, email: body.email ?? null, name: body.name ?? body.username, password: body.password, role });
    return this.#startSession(user, client);
  }

  async login(body: LoginBody, client: ClientInfo): Promise<TokenResponse> {
    const identifier = (body.username ?? body.email ?? '').toLowerCase();
    if (!identifier) throw new AppError('validation.failed', 'Send username (or email) and password', { fields: [{ field: '/body/username', message: 'is required' }] });
    const { perAccount, perIp, windowMs } = this.config.loginLimit;
    const ipKey = `login:ip:${client.ip}`;
    const acctKey = `login:acct:${identifier}`;
    for (const [key, max, scope] of [[ipKey, perIp, 'ip'], [acctKey, perAccount, 'account']] as const) {
      const w = await this.limiter.peek(key);
      if (w.count >= max) throw new RateLimitedError(Math.ceil(w.retryAfterMs / 1000), `login_${scope}`);
    }

    let orgId: string | null = null;
    if (body.organization) orgId = (await this.orgs.getBySlug(body.organization))?.id ?? 'none';
    const candidates = await this.users.findLoginCandidates(identifier, orgId);
    const matches: UserRow[] = [];
    for (const u of candidates) if (await verifyPassword(u.password_hash, body.password)) matches.push(u);
    if (candidates.length === 0) await verifyPassword(null, body.password);

    if (matches.length === 0) {
      await this.limiter.hit(ipKey, windowMs);
      await this.limiter.hit(acctKey, windowMs);
      throw new AppError('auth.invalid_credentials', 'Wrong username or password');
    }
    if (matches.length > 1) throw new AppError('auth.organization_required', 'This login exists in several organizations: send "organization"');
    const user = matches[0]!;
    if (user.active !== 1) throw new AppError('auth.user_inactive', 'This account is deactivated');
    await this.limiter.reset(acctKey);
    return this.#startSession(user, client);
  }

  async refresh(refreshToken: string): Promise<TokenResponse> {
    const row = await this.repo.findRefreshByHash(sha256Hex(refreshToken));
    const now = isoNow(this.clock);
    if (!row || row.session_revoked_at !== null || row.expires_at <= now || row.session_expires_at <= now) {
      throw new AppError('auth.refresh_invalid', 'Invalid or expired refresh token');
    }
    const next = this.#newRefresh(row.org_id, row.session_id);
    const rotated = row.used_at === null && (await this.repo.rotateRefresh(row.id, now, next.row, next.row.expires_at));
    if (!rotated) {
      // A used token came back: someone holds a copy. Kill the whole family (the session).
      await this.repo.revokeSession(row.session_id, now, 'refresh_reuse');
      await this.principals.invalidate({ sessionId: row.session_id });
      throw new AppError('auth.refresh_reused', 'This refresh token was already used; the session has been revoked');
    }
    const user = await this.users.getRow(row.org_id, row.session_user_id);
    if (!user || user.active !== 1) throw new AppError('auth.user_inactive', 'This account is deactivated');
    return this.#tokenResponse(user, row.session_id, next.token);
  }

  /** Revoke the caller's session (or all their sessions). API keys and host tokens have no session: nothing to do. */
  async logout(p: Principal, all: boolean): Promise<void> {
    const now = isoNow(this.clock);
    if (all && p.userId) {
      await this.repo.revokeAllForUser(p.orgId, p.userId, now, 'logout_all', null);
      await this.principals.invalidate({ userId: p.userId });
    } else if (p.sessionId) {
      await this.repo.revokeSession(p.sessionId, now, 'logout');
      await this.principals.invalidate({ sessionId: p.sessionId });
    }
  }

  async revokeAllForUser(orgId: string, userId: string, reason: string, exceptSessionId: string | null = null): Promise<void> {
    await this.repo.revokeAllForUser(orgId, userId, isoNow(this.clock), reason, exceptSessionId);
    // Drops the kept session too; it is simply re-read on its next request.
    await this.principals.invalidate({ userId });
  }

  /** The session behind an access token, with its user, for the per-request check. */
  getSessionWithUser(sessionId: string): ReturnType<AuthRepo['getSessionWithUser']> {
    return this.repo.getSessionWithUser(sessionId);
  }

  async #startSession(user: UserRow, client: ClientInfo): Promise<TokenResponse> {
    const sessionId = newId();
    const refresh = this.#newRefresh(user.org_id, sessionId);
    await this.repo.createSession(
      { id: sessionId, org_id: user.org_id, user_id: user.id, created_at: isoNow(this.clock), expires_at: refresh.row.expires_at, revoked_at: null, revoked_reason: null, user_agent: client.userAgent?.slice(0, 512) ?? null, ip: client.ip },
      refresh.row,
    );
    return this.#tokenResponse(user, sessionId, refresh.token);
  }

  #newRefresh(orgId: string, sessionId: string) {
    const token = randomToken(32);
    const now = this.clock.now();
    return {
      token,
      row: {
        id: newId(),
        org_id: orgId,
        session_id: sessionId,
        token_hash: sha256Hex(token),
        created_at: new Date(now).toISOString(),
        expires_at: new Date(now + this.config.refreshTokenTtlSeconds * 1000).toISOString(),
        used_at: null,
      },
    };
  }

  async #tokenResponse(user: UserRow, sessionId: string, refreshToken: string): Promise<TokenResponse> {
    return {
      token: await this.tokens.sign(user.id, user.org_id, sessionId),
      refresh_token: refreshToken,
      expires_in: this.tokens.ttl,
      token_type: 'Bearer',
      user: toUserDto(user),
    };
  }
}
