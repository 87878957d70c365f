import { decodeJwt } from 'jose';
import type { Principal } from '../../access/access.ts';
import { isValidRole } from '../../access/roles.ts';
import type { HostJwtConfig } from '../../config/config.ts';
import { AppError } from '../../platform/errors.ts';
import { randomHex } from '../../platform/ids.ts';
import { ApiKeysService } from '../api-keys/api-keys.service.ts';
import type { OrganizationsService } from '../organizations/organizations.service.ts';
import type { UserRow } from '../users/users.repo.ts';
import type { UsersService } from '../users/users.service.ts';
import type { PrincipalCache } from '../../access/principal-cache.ts';
import type { AuthService } from './auth.service.ts';
import type { HostIdentity, HostJwtVerifier } from './host-jwt.ts';
import { PARLEY_ISSUER, type AccessTokens } from './tokens.ts';

/** What a request presents. */
export interface Credentials {
  /** The Authorization header: `Bearer <jwt>` or `Bearer prl_...` (API key). */
  authorization?: string | undefined;
  /** The X-Api-Key header. */
  apiKey?: string | undefined;
  /** X-On-Behalf-Of: a user id, or `external:<host id>`, for an API key acting as a user. */
  onBehalfOf?: string | undefined;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Turns credentials into a Principal, re-checking on every call what can change after a token
 * was issued: the session (logout, reuse detection), the user (deactivation) and the key (revocation).
 */
export class Authenticator {
  constructor(
    private readonly tokens: AccessTokens,
    private readonly auth: AuthService,
    private readonly apiKeys: ApiKeysService,
    private readonly users: UsersService,
    private readonly orgs: OrganizationsService,
    private readonly host: HostJwtVerifier,
    private readonly principals: PrincipalCache,
    private readonly hostConfig: HostJwtConfig,
  ) {}

  /** The principal for credentials resolved recently, synchronously; undefined when they must be checked. */
  cached(c: Credentials): Principal | undefined {
    const key = cacheKey(c);
    return key === undefined ? undefined : this.principals.get(key);
  }

  /** Resolve credentials, from the principal cache when this exact credential was resolved recently. */
  async authenticate(c: Credentials): Promise<Principal> {
    const key = cacheKey(c);
    if (key === undefined) throw new AppError('auth.required', 'Authentication required');
    const cached = this.principals.get(key);
    if (cached) return cached;
    const generation = this.principals.generation;
    const { principal, expiresAtMs } = await this.#resolve(c);
    this.principals.set(key, principal, generation, expiresAtMs);
    return principal;
  }

  async #resolve(c: Credentials): Promise<{ principal: Principal; expiresAtMs?: number }> {
    const bearer = c.authorization ? /^Bearer\s+(\S+)\s*$/i.exec(c.authorization)?.[1] : undefined;
    if (c.authorization && !bearer) throw new AppError('auth.invalid_token', 'The Authorization header must be "Bearer <token>"');
    const key = c.apiKey ?? (bearer && ApiKeysService.looksLikeKey(bearer) ? bearer : undefined);
    if (key) return { principal: await this.#fromApiKey(key, c.onBehalfOf) };
    if (!bearer) throw new AppError('auth.required', 'Authentication required');
    let claims: { iss?: unknown; exp?: unknown };
    try {
      claims = decodeJwt(bearer);
    } catch {
      throw new AppError('auth.invalid_token', 'Invalid token');
    }
    const principal = claims.iss === PARLEY_ISSUER || !this.host.enabled ? await this.#fromAccessToken(bearer) : await this.#fromHostToken(bearer);
    // Verified by now, so exp is the token's real expiry: a cached principal never outlives it.
    return { principal, expiresAtMs: typeof claims.exp === 'number' ? claims.exp * 1000 : undefined };
  }

  async #fromAccessToken(token: string): Promise<Principal> {
    const claims = await this.tokens.verify(token);
    const found = await this.auth.getSessionWithUser(claims.sid);
    if (!found || found.session.user_id !== claims.sub || found.session.org_id !== claims.org) throw new AppError('auth.invalid_token', 'Invalid token');
    if (found.session.revoked_at !== null) throw new AppError('auth.session_revoked', 'This session has ended; log in again');
    if (found.user.active !== 1) throw new AppError('auth.user_inactive', 'This account is deactivated');
    return userPrincipal(found.user, claims.sid);
  }

  async #fromApiKey(key: string, onBehalfOf: string | undefined): Promise<Principal> {
    const row = await this.apiKeys.authenticate(key);
    if (!row) throw new AppError('auth.invalid_token', 'Invalid or revoked API key');
    const base: Principal = { kind: 'api_key', orgId: row.org_id, userId: null, role: 'admin', platformAdmin: false, sessionId: null, apiKeyId: row.id, user: null };
    if (!onBehalfOf) return base;
    const ext = onBehalfOf.startsWith('external:') ? onBehalfOf.slice('external:'.length) : null;
    const user =
      ext !== null ? await this.users.findByExternalRef(row.org_id, ext) : UUID_RE.test(onBehalfOf) ? await this.users.getRow(row.org_id, onBehalfOf) : undefined;
    if (!user || user.active !== 1) throw new AppError('auth.on_behalf_invalid', 'X-On-Behalf-Of names no active user of this organization');
    // Acting as a user means acting with that user's rights, never more.
    return { ...base, userId: user.id, role: user.role, platformAdmin: false, user };
  }

  async #fromHostToken(token: string): Promise<Principal> {
    const id = await this.host.verify(token);
    if (!id.organization) throw new AppError('auth.unknown_organization', 'The host token names no organization and no default is configured');
    const org = (await this.orgs.getBySlug(id.organization)) ?? (UUID_RE.test(id.organization) ? await this.orgs.getRow(id.organization) : undefined);
    if (!org) throw new AppError('auth.unknown_organization', 'The host token names an unknown organization');
    const user = await this.#syncHostUser(org.id, id);
    if (user.active !== 1) throw new AppError('auth.user_inactive', 'This account is deactivated');
    return userPrincipal(user, null);
  }

  /** Find the host's user by external_ref; create on first sight; follow later changes of name, email, role. */
  async #syncHostUser(orgId: string, id: HostIdentity): Promise<UserRow> {
    const role = id.role && isValidRole(id.role.toLowerCase()) ? id.role.toLowerCase() : null;
    const existing = await this.users.findByExternalRef(orgId, id.externalRef);
    if (existing) {
      const patch: Partial<UserRow> = {};
      if (id.name && id.name !== existing.name) patch.name = id.name;
      if (role && role !== existing.role) patch.role = role;
      if (id.email && id.email.toLowerCase() !== existing.email) patch.email = id.email.toLowerCase();
      if (Object.keys(patch).length === 0) return existing;
      return this.users.doUpdate(orgId, existing.id, patch).catch(() => existing);
    }
    const baseName = (id.username ?? id.email?.split('@')[0] ?? `user-${id.externalRef}`).toLowerCase().replace(/[^a-z0-9._-]/g, '-').slice(0, 48);
    const create = (username: string, email: string | null) =>
      this.users.doCreate({ orgId, username, email, name: id.name ?? id.username ?? baseName, password: null, role: role ?? this.hostConfig.defaultRole, externalRef: id.externalRef });
    try {
      return await create(baseName, id.email);
    } catch (err) {
      // A concurrent first request may have created it; otherwise the username or email is taken by someone else.
      const raced = await this.users.findByExternalRef(orgId, id.externalRef);
      if (raced) return raced;
      if (!(err instanceof AppError)) throw err;
      return create(`${baseName}-${randomHex(3)}`, err.code === 'user.email_taken' ? null : id.email);
    }
  }
}

function cacheKey(c: Credentials): string | undefined {
  const credential = c.apiKey ?? c.authorization;
  if (credential === undefined) return undefined;
  return c.onBehalfOf === undefined ? credential : `${credential}\u0000${c.onBehalfOf}`;
}

function userPrincipal(user: UserRow, sessionId: string | null): Principal {
  return { kind: 'user', orgId: user.org_id, userId: user.id, role: user.role, platformAdmin: user.platform_admin === 1, sessionId, apiKeyId: null, user };
}
