import { requireAccess, type Principal } from '../../access/access.ts';
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { AppError } from '../../platform/errors.ts';
import { newId } from '../../platform/ids.ts';
import type { UsersService } from '../users/users.service.ts';
import type { ContactRow, ContactsRepo } from './contacts.repo.ts';
import type { ContactDto, CreateContactBody, ListContactsQuery, UpdateContactBody } from './contacts.schemas.ts';
import { normalizePhone } from './phone.ts';

const notFound = () => new AppError('contact.not_found', 'Contact not found');

/** What a platform tells about a person the first time it is seen. */
export interface Profile {
  name?: string | null;
  phone?: string | null;
  email?: string | null;
}

/**
 * Contacts: the people on the other side of support conversations (seed 000's external users),
 * with one identity per inbox (`unique(inbox, external id)`) and phones in E.164. A Brazilian
 * mobile seen with and without its ninth digit is one contact (CONNECTORS.md §8).
 */
export class ContactsService {
  constructor(
    private readonly repo: ContactsRepo,
    private readonly users: UsersService,
    private readonly clock: Clock,
    private readonly onNew: (contact: ContactDto, orgId: string) => void = () => undefined,
  ) {}

  async create(p: Principal, body: CreateContactBody): Promise<ContactDto> {
    requireAccess(p, 'contacts.manage');
    const phone = body.phone ? this.#phone(body.phone) : null;
    if (phone) {
      const existing = await this.repo.byPhones(p.orgId, phone.variants);
      if (existing) throw new AppError('contact.phone_taken', 'A contact with this phone number exists', { contact_id: existing.id });
    }
    if (body.user_id) await this.#requireUser(p.orgId, body.user_id);
    const now = isoNow(this.clock);
    const row: ContactRow = {
      id: newId(),
      org_id: p.orgId,
      name: body.name ?? null,
      email: body.email?.toLowerCase() ?? null,
      phone: phone?.e164 ?? null,
      user_id: body.user_id ?? null,
      custom_attributes: body.custom_attributes ? JSON.stringify(body.custom_attributes) : null,
      merged_into: null,
      created_at: now,
      updated_at: now,
    };
    await this.repo.create(row);
    const dto = (await this.#dtos([row]))[0]!;
    this.onNew(dto, p.orgId);
    return dto;
  }

  async list(p: Principal, q: ListContactsQuery): Promise<{ data: ContactDto[]; next_cursor: string | null }> {
    requireAccess(p, 'contacts.manage');
    const limit = q.limit ?? 50;
    const after = q.cursor ? (({ n, i }) => ({ name: n, id: i }))(decodeCursor(q.cursor, ['n', 'i'] as const)) : undefined;
    // A phone query matches every stored form of the number.
    const term = q.q?.trim();
    const phone = term && /^\+?[\d\s().-]{6,}$/.test(term) ? normalizePhone(term) : null;
    const rows = await this.repo.list(p.orgId, phone?.ok ? phone.e164 : term?.toLowerCase(), after, limit + 1);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { data: await this.#dtos(page), next_cursor: rows.length > limit && last ? encodeCursor({ n: last.name ?? '', i: last.id }) : null };
  }

  async get(p: Principal, id: string): Promise<ContactDto> {
    requireAccess(p, 'contacts.manage');
    const row = await this.repo.get(p.orgId, id);
    if (!row) throw notFound();
    return (await this.#dtos([row]))[0]!;
  }

  async update(p: Principal, id: string, body: UpdateContactBody): Promise<ContactDto> {
    requireAccess(p, 'contacts.manage');
    const row = await this.repo.get(p.orgId, id);
    if (!row) throw notFound();
    const patch: Partial<ContactRow> = { updated_at: isoNow(this.clock) };
    if (body.name !== undefined) patch.name = body.name;
    if (body.email !== undefined) patch.email = body.email?.toLowerCase() ?? null;
    if (body.phone !== undefined) {
      const phone = body.phone ? this.#phone(body.phone) : null;
      if (phone) {
        const other = await this.repo.byPhones(p.orgId, phone.variants);
        if (other && other.id !== id) throw new AppError('contact.phone_taken', 'Another contact has this phone number', { contact_id: other.id });
      }
      patch.phone = phone?.e164 ?? null;
    }
    if (body.user_id !== undefined) {
      if (body.user_id) await this.#requireUser(p.orgId, body.user_id);
      patch.user_id = body.user_id;
    }
    if (body.custom_attributes !== undefined) {
      // Attributes merge; a null value removes one.
      const merged = { ...(row.custom_attributes ? (JSON.parse(row.custom_attributes) as Record<string, unknown>) : {}), ...body.custom_attributes };
      for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
      patch.custom_attributes = JSON.stringify(merged);
    }
    await this.repo.update(p.orgId, id, patch);
    return (await this.#dtos([{ ...row, ...patch }]))[0]!;
  }

  /** Merge `fromId` into `id`: identities and conversations move; empty fields are filled from it. */
  async merge(p: Principal, id: string, fromId: string): Promise<ContactDto> {
    requireAccess(p, 'contacts.manage');
    if (id === fromId) throw new AppError('validation.failed', 'A contact cannot be merged into itself', { fields: [{ field: '/body/from_id', message: 'same contact' }] });
    const [into, from] = await Promise.all([this.repo.get(p.orgId, id), this.repo.get(p.orgId, fromId)]);
    if (!into || !from) throw notFound();
    const attrs = { ...(from.custom_attributes ? JSON.parse(from.custom_attributes) : {}), ...(into.custom_attributes ? JSON.parse(into.custom_attributes) : {}) } as Record<string, unknown>;
    const patch: Partial<ContactRow> = {
      name: into.name ?? from.name,
      email: into.email ?? from.email,
      phone: into.phone ?? from.phone,
      user_id: into.user_id ?? from.user_id,
      custom_attributes: Object.keys(attrs).length ? JSON.stringify(attrs) : null,
    };
    await this.repo.merge(p.orgId, id, fromId, patch, isoNow(this.clock));
    return this.get(p, id);
  }

  /**
   * The contact behind (inbox, external id), created on first sight: by identity first, then by
   * phone (any of its forms) within the organization; concurrent first sights agree on one contact.
   */
  async resolve(orgId: string, inboxId: string, externalId: string, profile: Profile = {}): Promise<{ contact: ContactRow; created: boolean }> {
    const known = await this.repo.identity(inboxId, externalId);
    if (known) {
      const c = await this.#live(orgId, known.contact_id);
      if (c) return { contact: c, created: false };
    }
    const phone = profile.phone ? normalizePhone(profile.phone) : null;
    let contact = phone?.ok ? await this.repo.byPhones(orgId, phone.variants) : undefined;
    let created = false;
    const now = isoNow(this.clock);
    if (!contact) {
      contact = {
        id: newId(),
        org_id: orgId,
        name: profile.name ?? null,
        email: profile.email?.toLowerCase() ?? null,
        phone: phone?.ok ? phone.e164 : null,
        user_id: null,
        custom_attributes: null,
        merged_into: null,
        created_at: now,
        updated_at: now,
      };
      await this.repo.create(contact);
      created = true;
    }
    if (!(await this.repo.addIdentity({ id: newId(), org_id: orgId, inbox_id: inboxId, contact_id: contact.id, external_id: externalId, created_at: now }))) {
      // Someone else saw this person first, concurrently: theirs wins (ours, if just made, stays unused).
      const winner = await this.repo.identity(inboxId, externalId);
      const c = winner ? await this.#live(orgId, winner.contact_id) : undefined;
      if (c) {
        if (created) await this.repo.update(orgId, contact.id, { merged_into: c.id, phone: null, updated_at: now });
        return { contact: c, created: false };
      }
    }
    if (created) this.onNew((await this.#dtos([contact]))[0]!, orgId);
    return { contact, created };
  }

  /** The contact of a Parley user (a `web` customer), created on first use. */
  async forUser(orgId: string, user: { id: string; name: string | null; email: string | null }): Promise<ContactRow> {
    const existing = await this.repo.byUser(orgId, user.id);
    if (existing) return existing;
    const now = isoNow(this.clock);
    const row: ContactRow = { id: newId(), org_id: orgId, name: user.name, email: user.email, phone: null, user_id: user.id, custom_attributes: null, merged_into: null, created_at: now, updated_at: now };
    await this.repo.create(row);
    this.onNew((await this.#dtos([row]))[0]!, orgId);
    return row;
  }

  getRow(orgId: string, id: string): Promise<ContactRow | undefined> {
    return this.repo.get(orgId, id);
  }

  /** Follows merges to the live contact. */
  async #live(orgId: string, id: string): Promise<ContactRow | undefined> {
    for (let hops = 0; hops < 10; hops++) {
      const c = await this.repo.getAny(orgId, id);
      if (!c) return undefined;
      if (c.merged_into === null) return c;
      id = c.merged_into;
    }
    return undefined;
  }

  #phone(input: string) {
    const r = normalizePhone(input);
    if (!r.ok) throw new AppError('contact.invalid_phone', `Invalid phone number: ${r.reason}`, { fields: [{ field: '/body/phone', message: r.reason }] });
    return r;
  }

  async #requireUser(orgId: string, userId: string): Promise<void> {
    if (!(await this.users.getRow(orgId, userId))) throw new AppError('user.not_found', 'User not found');
  }

  async #dtos(rows: ContactRow[]): Promise<ContactDto[]> {
    const ids = await this.repo.identities(rows.map((r) => r.id));
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      email: r.email,
      phone: r.phone,
      user_id: r.user_id,
      custom_attributes: r.custom_attributes ? (JSON.parse(r.custom_attributes) as Record<string, unknown>) : {},
      identities: ids.filter((i) => i.contact_id === r.id).map(({ inbox_id, external_id }) => ({ inbox_id, external_id })),
      created_at: r.created_at,
      updated_at: r.updated_at,
    }));
  }
}
