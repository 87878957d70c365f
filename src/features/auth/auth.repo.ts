import type { Kysely, Selectable } from 'kysely';
import type { DB, RefreshTokensTable, SessionsTable } from '../../storage/schema.ts';
import type { UserRow } from '../users/users.repo.ts';

export type SessionRow = Selectable<SessionsTable>;
export type RefreshTokenRow = Selectable<RefreshTokensTable>;

/** SQL for sessions and refresh tokens. */
export class AuthRepo {
  constructor(private readonly db: Kysely<DB>) {}

  async createSession(session: SessionRow, refresh: RefreshTokenRow): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('sessions').values(session).execute();
      await trx.insertInto('refresh_tokens').values(refresh).execute();
    });
  }

  /**
   * The session and its user in one round trip (the per-request auth check). NOTE: reads the
   * users table owned by the users capability; a join here saves a query on every request.
   */
  async getSessionWithUser(sessionId: string): Promise<{ session: SessionRow; user: UserRow } | undefined> {
    const row = await this.db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .selectAll('users')
      .select([
        'sessions.id as s_id',
        'sessions.org_id as s_org_id',
        'sessions.created_at as s_created_at',
        'sessions.expires_at as s_expires_at',
        'sessions.revoked_at as s_revoked_at',
        'sessions.revoked_reason as s_revoked_reason',
        'sessions.user_agent as s_user_agent',
        'sessions.ip as s_ip',
      ])
      .where('sessions.id', '=', sessionId)
      .executeTakeFirst();
    if (!row) return undefined;
    const { s_id, s_org_id, s_created_at, s_expires_at, s_revoked_at, s_revoked_reason, s_user_agent, s_ip, ...user } = row;
    return {
      session: {
        id: s_id,
        org_id: s_org_id,
        user_id: user.id,
        created_at: s_created_at,
        expires_at: s_expires_at,
        revoked_at: s_revoked_at,
        revoked_reason: s_revoked_reason,
        user_agent: s_user_agent,
        ip: s_ip,
      },
      user,
    };
  }

  findRefreshByHash(hash: string): Promise<(RefreshTokenRow & { session_revoked_at: string | null; session_user_id: string; session_expires_at: string }) | undefined> {
    return this.db
      .selectFrom('refresh_tokens')
      .innerJoin('sessions', 'sessions.id', 'refresh_tokens.session_id')
      .selectAll('refresh_tokens')
      .select(['sessions.revoked_at as session_revoked_at', 'sessions.user_id as session_user_id', 'sessions.expires_at as session_expires_at'])
      .where('refresh_tokens.token_hash', '=', hash)
      .executeTakeFirst();
  }

  /**
   * Rotate: mark `oldId` used and insert its successor, in one transaction. Returns false when the
   * old token was already used (a concurrent refresh won): the caller treats that as reuse.
   */
  async rotateRefresh(oldId: string, usedAt: string, next: RefreshTokenRow, sessionExpiresAt: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx.updateTable('refresh_tokens').set({ used_at: usedAt }).where('id', '=', oldId).where('used_at', 'is', null).executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      await trx.insertInto('refresh_tokens').values(next).execute();
      await trx.updateTable('sessions').set({ expires_at: sessionExpiresAt }).where('id', '=', next.session_id).execute();
      return true;
    });
  }

  async revokeSession(sessionId: string, at: string, reason: string): Promise<void> {
    await this.db.updateTable('sessions').set({ revoked_at: at, revoked_reason: reason }).where('id', '=', sessionId).where('revoked_at', 'is', null).execute();
  }

  async revokeAllForUser(orgId: string, userId: string, at: string, reason: string, exceptSessionId: string | null): Promise<void> {
    let q = this.db
      .updateTable('sessions')
      .set({ revoked_at: at, revoked_reason: reason })
      .where('org_id', '=', orgId)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null);
    if (exceptSessionId) q = q.where('id', '!=', exceptSessionId);
    await q.execute();
  }
}
