import type { Kysely } from 'kysely';
import { requireAccess, type Principal } from '../../access/access.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { AppError } from '../../platform/errors.ts';
import { newId, randomToken } from '../../platform/ids.ts';
import type { SecretBox } from '../../platform/secret-box.ts';
import type { ChatwootMirrorsTable, DB } from '../../storage/schema.ts';
import type { InboxesService } from '../inboxes/inboxes.service.ts';
import type { ChatwootBody, ChatwootPatch, CreateSessionBody, MirrorDto, SessionDto, UpdateSessionBody } from './relay.schemas.ts';

export type MirrorRow = ChatwootMirrorsTable;
const GATEWAYS = ['codechat', 'evolution'];

/** A mirror with its secrets opened (jobs and the webhook receiver only). */
export interface OpenMirror {
  row: MirrorRow;
  token: string;
  webhookSecret: string | null;
}

/**
 * Chatwoot mirrors (issue 7): any inbox can have one — its conversations are copied into a
 * Chatwoot API inbox, and what Chatwoot agents write there goes out through the inbox's platform.
 * A relay session (seed 001) is a Codechat / Evolution gateway inbox with a mirror, created,
 * listed, changed and deleted as one thing under /sessions. Tokens are sealed at rest and never
 * returned. Admins only.
 */
export class MirrorsService {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly inboxes: InboxesService,
    private readonly secrets: SecretBox,
    private readonly clock: Clock,
    private readonly publicUrl: string,
  ) {}

  // --- mirrors of any inbox -------------------------------------------------------------------

  async put(p: Principal, inboxId: string, body: ChatwootBody): Promise<MirrorDto> {
    requireAccess(p, 'inboxes.manage');
    await this.inboxes.requireVisible(p, inboxId);
    const existing = await this.#row(p.orgId, inboxId);
    const now = isoNow(this.clock);
    const row: MirrorRow = {
      inbox_id: inboxId,
      org_id: p.orgId,
      url: body.url,
      account_id: body.account_id,
      cw_inbox_id: body.inbox_id,
      token_enc: this.secrets.seal(body.token),
      webhook_secret_enc: body.webhook_secret ? this.secrets.seal(body.webhook_secret) : null,
      signature_mode: body.signature ?? (body.webhook_secret ? 'enforce' : 'off'),
      sign_agent_name: body.sign_agent_name ? 1 : 0,
      description: existing?.description ?? null,
      webhook_token: existing?.webhook_token ?? randomToken(24),
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    if (existing) await this.db.updateTable('chatwoot_mirrors').set(row).where('inbox_id', '=', inboxId).execute();
    else await this.db.insertInto('chatwoot_mirrors').values(row).execute();
    return this.#dto(row);
  }

  async get(p: Principal, inboxId: string): Promise<MirrorDto> {
    requireAccess(p, 'inboxes.manage');
    await this.inboxes.requireVisible(p, inboxId);
    const row = await this.#row(p.orgId, inboxId);
    if (!row) throw new AppError('chatwoot.not_configured', 'This inbox has no Chatwoot mirror');
    return this.#dto(row);
  }

  async remove(p: Principal, inboxId: string): Promise<void> {
    requireAccess(p, 'inboxes.manage');
    await this.inboxes.requireVisible(p, inboxId);
    const r = await this.db.deleteFrom('chatwoot_mirrors').where('org_id', '=', p.orgId).where('inbox_id', '=', inboxId).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw new AppError('chatwoot.not_configured', 'This inbox has no Chatwoot mirror');
  }

  /** Mirror jobs of the inbox that gave up (Chatwoot refused, or retries ran out), newest first. */
  async failures(p: Principal, inboxId: string) {
    await this.get(p, inboxId);
    return this.db
      .selectFrom('outbox')
      .select(['id', 'event_name', 'event_id', 'attempts', 'last_error', 'created_at'])
      .where('org_id', '=', p.orgId)
      .where('target', '=', 'chatwoot_mirror')
      .where('status', '=', 'failed')
      .where('payload', 'like', `%"inbox_id":"${inboxId}"%`)
      .orderBy('created_at', 'desc')
      .limit(100)
      .execute();
  }

  // --- sessions (seed 001) -----------------------------------------------------------------

  async createSession(p: Principal, body: CreateSessionBody): Promise<SessionDto> {
    requireAccess(p, 'inboxes.manage');
    const id = body.session_id ?? newId();
    if (await this.db.selectFrom('inboxes').select('id').where('id', '=', id).executeTakeFirst()) throw new AppError('session.exists', 'A session (or inbox) with this id already exists');
    const g = body.gateway;
    await this.inboxes.create(p, { name: body.description ?? `${g.kind} ${g.instance}`, platform: g.kind, credentials: { base_url: g.base_url, instance: g.instance, api_key: g.api_key } }, { id });
    try {
      await this.put(p, id, body.chatwoot);
      if (body.description) await this.db.updateTable('chatwoot_mirrors').set({ description: body.description }).where('inbox_id', '=', id).execute();
    } catch (err) {
      await this.inboxes.delete(p, id);
      throw err;
    }
    return this.getSession(p, id);
  }

  async listSessions(p: Principal): Promise<SessionDto[]> {
    requireAccess(p, 'inboxes.manage');
    const rows = await this.db
      .selectFrom('chatwoot_mirrors as m')
      .innerJoin('inboxes as i', 'i.id', 'm.inbox_id')
      .select('m.inbox_id')
      .where('m.org_id', '=', p.orgId)
      .where('i.platform', 'in', GATEWAYS)
      .orderBy('m.created_at', 'desc')
      .limit(500)
      .execute();
    return Promise.all(rows.map((r) => this.getSession(p, r.inbox_id)));
  }

  async getSession(p: Principal, id: string): Promise<SessionDto> {
    requireAccess(p, 'inboxes.manage');
    const inbox = await this.inboxes.getRow(p.orgId, id);
    const row = inbox && GATEWAYS.includes(inbox.platform) ? await this.#row(p.orgId, id) : undefined;
    if (!inbox || !row) throw new AppError('session.not_found', 'Session not found');
    const creds = this.inboxes.credentials(inbox);
    const admin = await this.inboxes.get(p, id);
    return {
      session_id: id,
      description: row.description,
      gateway: { kind: inbox.platform, base_url: creds.base_url ?? '', instance: creds.instance ?? '', has_api_key: Boolean(creds.api_key), webhook_url: admin.webhook_url ?? '' },
      chatwoot: this.#dto(row),
      created_at: row.created_at,
      updated_at: row.updated_at > inbox.updated_at ? row.updated_at : inbox.updated_at,
    };
  }

  async updateSession(p: Principal, id: string, body: UpdateSessionBody): Promise<SessionDto> {
    const current = await this.getSession(p, id);
    if (body.gateway) {
      if (body.gateway.kind !== undefined && body.gateway.kind !== current.gateway.kind) throw new AppError('validation.failed', 'A session’s gateway kind cannot change; create a new session', { fields: [{ field: '/body/gateway/kind', message: 'immutable' }] });
      const inbox = (await this.inboxes.getRow(p.orgId, id))!;
      const creds = this.inboxes.credentials(inbox);
      const { kind: _kind, ...rest } = body.gateway;
      await this.inboxes.update(p, id, { credentials: { ...creds, ...rest } });
    }
    if (body.chatwoot) await this.#patchMirror(p, id, body.chatwoot);
    if (body.description !== undefined) {
      await this.db.updateTable('chatwoot_mirrors').set({ description: body.description, updated_at: isoNow(this.clock) }).where('inbox_id', '=', id).execute();
    }
    return this.getSession(p, id);
  }

  /** Deletes the gateway inbox, its conversations and its mirror. */
  async deleteSession(p: Principal, id: string): Promise<void> {
    await this.getSession(p, id);
    await this.inboxes.delete(p, id);
  }

  // --- for the relay's jobs and webhook receiver (no access check) ------------------------------

  /** The mirror of an inbox with its secrets opened. */
  async open(inboxId: string): Promise<OpenMirror | undefined> {
    const row = await this.db.selectFrom('chatwoot_mirrors').selectAll().where('inbox_id', '=', inboxId).executeTakeFirst();
    if (!row) return undefined;
    return { row, token: this.secrets.open(row.token_enc), webhookSecret: row.webhook_secret_enc ? this.secrets.open(row.webhook_secret_enc) : null };
  }

  async #patchMirror(p: Principal, inboxId: string, patch: ChatwootPatch): Promise<void> {
    const row = (await this.#row(p.orgId, inboxId))!;
    const next: Partial<MirrorRow> = { updated_at: isoNow(this.clock) };
    if (patch.url !== undefined) next.url = patch.url;
    if (patch.account_id !== undefined) next.account_id = patch.account_id;
    if (patch.inbox_id !== undefined) next.cw_inbox_id = patch.inbox_id;
    if (patch.token !== undefined) next.token_enc = this.secrets.seal(patch.token);
    if (patch.webhook_secret !== undefined) next.webhook_secret_enc = patch.webhook_secret === null ? null : this.secrets.seal(patch.webhook_secret);
    if (patch.signature !== undefined) next.signature_mode = patch.signature;
    else if (patch.webhook_secret !== undefined && row.signature_mode !== 'warn') next.signature_mode = patch.webhook_secret === null ? 'off' : 'enforce';
    if (patch.sign_agent_name !== undefined) next.sign_agent_name = patch.sign_agent_name ? 1 : 0;
    await this.db.updateTable('chatwoot_mirrors').set(next).where('inbox_id', '=', inboxId).execute();
  }

  #row(orgId: string, inboxId: string): Promise<MirrorRow | undefined> {
    return this.db.selectFrom('chatwoot_mirrors').selectAll().where('org_id', '=', orgId).where('inbox_id', '=', inboxId).executeTakeFirst();
  }

  #dto(r: MirrorRow): MirrorDto {
    return {
      inbox_id: r.inbox_id,
      url: r.url,
      account_id: Number(r.account_id),
      chatwoot_inbox_id: Number(r.cw_inbox_id),
      has_token: true,
      has_webhook_secret: r.webhook_secret_enc !== null,
      signature: r.signature_mode as MirrorDto['signature'],
      sign_agent_name: r.sign_agent_name === 1,
      webhook_url: `${this.publicUrl.replace(/\/$/, '')}/webhooks/chatwoot/${r.inbox_id}?token=${r.webhook_token}`,
      created_at: r.created_at,
      updated_at: r.updated_at,
    };
  }
}
