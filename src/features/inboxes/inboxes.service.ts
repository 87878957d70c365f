import { checkAccess, requireAccess, type Principal } from '../../access/access.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { AppError } from '../../platform/errors.ts';
import { newId, randomToken } from '../../platform/ids.ts';
import type { SecretBox } from '../../platform/secret-box.ts';
import { mapUnique } from '../../storage/errors.ts';
import type { UsersService } from '../users/users.service.ts';
import type { InboxRow, InboxesRepo } from './inboxes.repo.ts';
import type { CreateInboxBody, InboxDto, Platform, UpdateInboxBody } from './inboxes.schemas.ts';

const notFound = () => new AppError('inbox.not_found', 'Inbox not found');
const nameTaken = (name: string | undefined) => () => new AppError('inbox.name_taken', `An inbox named "${name}" already exists`);

/**
 * Inboxes: the organization's connected platform accounts (seed 000's chat channels). Admins set
 * them up; credentials are sealed (AES-256-GCM) and never leave again — not in answers, not in logs.
 * Agents see the inboxes they belong to; super-agents and admins all of them.
 */
/** Opened inbox credentials kept (see credentials()). */
const OPENED_MAX = 1000;

export class InboxesService {
  readonly #opened = new Map<string, Readonly<Record<string, string>>>();
  readonly #listeners: Array<(inboxId: string) => void> = [];

  constructor(
    private readonly repo: InboxesRepo,
    private readonly users: UsersService,
    private readonly secrets: SecretBox,
    private readonly clock: Clock,
    private readonly publicUrl: string,
  ) {}

  /** `opts.id`: the new inbox's id (a relay session names its own); made when absent. */
  async create(p: Principal, body: CreateInboxBody, opts: { id?: string } = {}): Promise<InboxDto> {
    requireAccess(p, 'inboxes.manage');
    const now = isoNow(this.clock);
    const row: InboxRow = {
      id: opts.id ?? newId(),
      org_id: p.orgId,
      name: body.name,
      platform: body.platform,
      credentials_enc: body.credentials ? this.secrets.seal(JSON.stringify(body.credentials)) : null,
      webhook_token: randomToken(24),
      settings: body.settings ? JSON.stringify(body.settings) : null,
      auto_assign: body.auto_assign ? 1 : 0,
      agent_capacity: body.agent_capacity ?? 0,
      reassign_offline: body.reassign_offline ? 1 : 0,
      created_at: now,
      updated_at: now,
    };
    await mapUnique(() => this.repo.create(row), nameTaken(body.name));
    return this.#dto(p, row);
  }

  async list(p: Principal): Promise<InboxDto[]> {
    requireAccess(p, 'support.handle');
    const rows = await this.repo.list(p.orgId, checkAccess(p, 'support.all') ? undefined : p.userId ?? '');
    return rows.map((r) => this.#dto(p, r));
  }

  async get(p: Principal, id: string): Promise<InboxDto> {
    return this.#dto(p, await this.requireVisible(p, id));
  }

  async update(p: Principal, id: string, body: UpdateInboxBody): Promise<InboxDto> {
    requireAccess(p, 'inboxes.manage');
    const row = await this.requireVisible(p, id);
    const patch: Partial<InboxRow> = { updated_at: isoNow(this.clock) };
    if (body.name !== undefined) patch.name = body.name;
    if (body.credentials !== undefined) patch.credentials_enc = this.secrets.seal(JSON.stringify(body.credentials));
    if (body.settings !== undefined) patch.settings = JSON.stringify(body.settings);
    if (body.auto_assign !== undefined) patch.auto_assign = body.auto_assign ? 1 : 0;
    if (body.agent_capacity !== undefined) patch.agent_capacity = body.agent_capacity;
    if (body.reassign_offline !== undefined) patch.reassign_offline = body.reassign_offline ? 1 : 0;
    await mapUnique(() => this.repo.update(p.orgId, id, patch), nameTaken(body.name));
    this.#changed(id);
    return this.#dto(p, { ...row, ...patch });
  }

  async delete(p: Principal, id: string): Promise<void> {
    requireAccess(p, 'inboxes.manage');
    await this.requireVisible(p, id);
    await this.repo.delete(p.orgId, id);
    this.#changed(id);
  }

  /** `fn(inboxId)` after this process changed or deleted an inbox (caches of inbox rows listen). */
  onChange(fn: (inboxId: string) => void): void {
    this.#listeners.push(fn);
  }

  #changed(id: string): void {
    for (const fn of this.#listeners) fn(id);
  }

  async members(p: Principal, id: string) {
    await this.requireVisible(p, id);
    return (await this.repo.members(p.orgId, id)).map(({ last_assigned_at: _l, status: _s, ...m }) => m);
  }

  async addMember(p: Principal, id: string, userId: string): Promise<void> {
    requireAccess(p, 'inboxes.manage');
    await this.requireVisible(p, id);
    const user = await this.users.getRow(p.orgId, userId);
    if (!user || user.active !== 1) throw new AppError('user.not_found', 'User not found');
    if (!['admin', 'super-agent', 'agent'].includes(user.role)) throw new AppError('validation.failed', 'Only agents, super-agents and admins can be inbox agents', { fields: [{ field: '/body/user_id', message: 'not staff' }] });
    await this.repo.addMember(p.orgId, id, userId, isoNow(this.clock));
  }

  async removeMember(p: Principal, id: string, userId: string): Promise<void> {
    requireAccess(p, 'inboxes.manage');
    await this.requireVisible(p, id);
    if (!(await this.repo.removeMember(p.orgId, id, userId))) throw new AppError('not_found', 'This user is not an agent of the inbox');
  }

  /** The inbox, if the caller may see it (other organizations' and other agents' answer 404). */
  async requireVisible(p: Principal, id: string): Promise<InboxRow> {
    const row = await this.repo.get(p.orgId, id);
    if (!row) throw notFound();
    if (checkAccess(p, 'support.all')) return row;
    if (checkAccess(p, 'support.handle') && p.userId && (await this.repo.isMember(id, p.userId))) return row;
    throw notFound();
  }

  /** An inbox by id within an organization, no access check (inbound webhooks, the support service). */
  getRow(orgId: string, id: string): Promise<InboxRow | undefined> {
    return this.repo.get(orgId, id);
  }

  /** The inbox's active agents with their chosen status (auto-assignment), no access check. */
  async agentRows(orgId: string, inboxId: string): Promise<Array<{ user_id: string; status: string }>> {
    return (await this.repo.members(orgId, inboxId)).filter((m) => ['admin', 'super-agent', 'agent'].includes(m.role)).map((m) => ({ user_id: m.user_id, status: m.status }));
  }

  /** The decrypted credentials (connectors only; never for an API answer). */
  credentials(row: InboxRow): Record<string, string> {
    if (!row.credentials_enc) return {};
    // Every webhook delivery needs its inbox's secret: opened once per sealed value (a new value —
    // credentials changed, keys rotated — is another entry), not an AES-GCM open per request.
    let open = this.#opened.get(row.credentials_enc);
    if (!open) {
      open = Object.freeze(JSON.parse(this.secrets.open(row.credentials_enc)) as Record<string, string>);
      if (this.#opened.size >= OPENED_MAX) this.#opened.delete(this.#opened.keys().next().value!);
      this.#opened.set(row.credentials_enc, open);
    }
    return open;
  }

  #dto(p: Principal, r: InboxRow): InboxDto {
    const admin = checkAccess(p, 'inboxes.manage');
    return {
      id: r.id,
      name: r.name,
      platform: r.platform as Platform,
      has_credentials: r.credentials_enc !== null,
      settings: r.settings ? (JSON.parse(r.settings) as Record<string, unknown>) : {},
      auto_assign: r.auto_assign === 1,
      agent_capacity: r.agent_capacity,
      reassign_offline: r.reassign_offline === 1,
      // Gateways sign nothing: their URL carries the inbox's secret token.
      webhook_url: admin ? `${this.publicUrl.replace(/\/$/, '')}/webhooks/${r.platform}/${r.id}${r.platform === 'codechat' || r.platform === 'evolution' ? `?token=${r.webhook_token}` : ''}` : null,
      verify_token: admin ? r.webhook_token : null,
      created_at: r.created_at,
      updated_at: r.updated_at,
    };
  }
}
