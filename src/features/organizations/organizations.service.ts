import { checkAccess, requirePlatformAdmin, type Principal } from '../../access/access.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { AppError, forbidden, notFound } from '../../platform/errors.ts';
import { newId, randomHex } from '../../platform/ids.ts';
import { mapUnique } from '../../storage/errors.ts';
import type { PrincipalCache } from '../../access/principal-cache.ts';
import type { UsersService } from '../users/users.service.ts';
import type { OrganizationRow, OrganizationsRepo } from './organizations.repo.ts';
import type { CreateOrganizationBody, OrganizationDto, UpdateOrganizationBody } from './organizations.schemas.ts';

export function toOrganizationDto(o: OrganizationRow): OrganizationDto {
  return {
    id: o.id,
    name: o.name,
    slug: o.slug,
    registration_open: o.registration_open === 1,
    default_role: o.default_role,
    settings: JSON.parse(o.settings) as Record<string, unknown>,
    created_at: o.created_at,
    updated_at: o.updated_at,
  };
}

const slugify = (name: string): string =>
  name
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40) || 'org';

/** Organizations (tenants). Platform admins manage all; an org admin manages their own. */
export class OrganizationsService {
  constructor(
    private readonly repo: OrganizationsRepo,
    private readonly users: UsersService,
    private readonly principals: PrincipalCache,
    private readonly clock: Clock,
  ) {}

  // ---- internal ----

  getRow(id: string): Promise<OrganizationRow | undefined> {
    return this.repo.getById(id);
  }

  getBySlug(slug: string): Promise<OrganizationRow | undefined> {
    return this.repo.getBySlug(slug);
  }

  /** Create an organization (the caller decided it may). A taken slug is a 409. */
  async doCreate(body: Omit<CreateOrganizationBody, 'admin'>): Promise<OrganizationRow> {
    const now = isoNow(this.clock);
    const row: OrganizationRow = {
      id: newId(),
      name: body.name,
      slug: body.slug ?? `${slugify(body.name)}-${randomHex(3)}`,
      registration_open: body.registration_open === false ? 0 : 1,
      default_role: body.default_role ?? 'member',
      settings: JSON.stringify(body.settings ?? {}),
      created_at: now,
      updated_at: now,
    };
    return mapUnique(
      () => this.repo.create(row),
      () => new AppError('organization.slug_taken', 'This slug is taken'),
    );
  }

  /** The organization with this slug, created if missing (start-up bootstrap; race-safe). */
  async ensure(slug: string, name: string, registrationOpen: boolean): Promise<OrganizationRow> {
    const existing = await this.repo.getBySlug(slug);
    if (existing) return existing;
    try {
      return await this.doCreate({ name, slug, registration_open: registrationOpen });
    } catch (err) {
      const again = await this.repo.getBySlug(slug);
      if (again) return again;
      throw err;
    }
  }

  // ---- API ----

  async list(p: Principal): Promise<OrganizationDto[]> {
    if (p.platformAdmin) return (await this.repo.list(1000)).map(toOrganizationDto);
    const own = await this.repo.getById(p.orgId);
    return own ? [toOrganizationDto(own)] : [];
  }

  async create(p: Principal, body: CreateOrganizationBody): Promise<OrganizationDto> {
    requirePlatformAdmin(p);
    const org = await this.doCreate(body);
    if (body.admin) {
      const a = body.admin;
      await this.users.doCreate({ orgId: org.id, username: a.username, email: a.email ?? null, name: a.name ?? a.username, password: a.password, role: 'admin' });
    }
    return toOrganizationDto(org);
  }

  async get(p: Principal, id: string): Promise<OrganizationDto> {
    const row = p.platformAdmin || p.orgId === id ? await this.repo.getById(id) : undefined;
    if (!row) throw notFound('organization.not_found', 'Organization');
    return toOrganizationDto(row);
  }

  async update(p: Principal, id: string, body: UpdateOrganizationBody): Promise<OrganizationDto> {
    const own = p.orgId === id;
    if (!p.platformAdmin && !own) throw notFound('organization.not_found', 'Organization');
    if (!p.platformAdmin && !checkAccess(p, 'org.update')) throw forbidden();
    const patch: Partial<OrganizationRow> = { updated_at: isoNow(this.clock) };
    if (body.name !== undefined) patch.name = body.name;
    if (body.registration_open !== undefined) patch.registration_open = body.registration_open ? 1 : 0;
    if (body.default_role !== undefined) patch.default_role = body.default_role;
    if (body.settings !== undefined) patch.settings = JSON.stringify(body.settings);
    const row = await this.repo.update(id, patch);
    if (!row) throw notFound('organization.not_found', 'Organization');
    return toOrganizationDto(row);
  }

  /** Platform admins only; their own organization cannot be deleted from under them. */
  async delete(p: Principal, id: string): Promise<void> {
    if (!p.platformAdmin && p.orgId !== id) throw notFound('organization.not_found', 'Organization');
    requirePlatformAdmin(p);
    if (p.orgId === id) throw new AppError('conflict', 'You cannot delete the organization you belong to');
    if (!(await this.repo.delete(id))) throw notFound('organization.not_found', 'Organization');
    await this.principals.invalidate({ orgId: id });
  }
}
