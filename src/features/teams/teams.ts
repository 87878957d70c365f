import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Kysely } from 'kysely';
import { Type } from 'typebox';
import { checkAccess, requireAccess, type Principal } from '../../access/access.ts';
import { isoNow, type Clock } from '../../platform/clock.ts';
import { AppError } from '../../platform/errors.ts';
import { newId } from '../../platform/ids.ts';
import { mapUnique } from '../../storage/errors.ts';
import type { DB } from '../../storage/schema.ts';
import { authErrors, NoContent } from '../../transport/http/schemas.ts';

/**
 * Teams of agents (support conversations are assigned to an agent and / or a team). Small enough
 * for one file: admins create teams and choose their members; staff list them.
 */
export class TeamsService {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly clock: Clock,
  ) {}

  async list(p: Principal) {
    requireAccess(p, 'support.handle');
    const teams = await this.db.selectFrom('teams').select(['id', 'name', 'created_at']).where('org_id', '=', p.orgId).orderBy('name').execute();
    const members = teams.length ? await this.db.selectFrom('team_members').select(['team_id', 'user_id']).where('team_id', 'in', teams.map((t) => t.id)).execute() : [];
    return teams.map((t) => ({ ...t, member_ids: members.filter((m) => m.team_id === t.id).map((m) => m.user_id) }));
  }

  async create(p: Principal, name: string) {
    requireAccess(p, 'inboxes.manage');
    const row = { id: newId(), org_id: p.orgId, name, created_at: isoNow(this.clock) };
    await mapUnique(
      () => this.db.insertInto('teams').values(row).execute(),
      () => new AppError('conflict', `A team named "${name}" already exists`),
    );
    return { id: row.id, name, created_at: row.created_at, member_ids: [] as string[] };
  }

  async delete(p: Principal, id: string): Promise<void> {
    requireAccess(p, 'inboxes.manage');
    const r = await this.db.deleteFrom('teams').where('org_id', '=', p.orgId).where('id', '=', id).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) throw new AppError('not_found', 'Team not found');
  }

  async setMember(p: Principal, teamId: string, userId: string, member: boolean): Promise<void> {
    requireAccess(p, 'inboxes.manage');
    await this.require(p.orgId, teamId);
    const user = await this.db.selectFrom('users').select(['id', 'role']).where('org_id', '=', p.orgId).where('id', '=', userId).executeTakeFirst();
    if (!user) throw new AppError('user.not_found', 'User not found');
    if (member) await this.db.insertInto('team_members').values({ team_id: teamId, user_id: userId, org_id: p.orgId }).onConflict((oc) => oc.columns(['team_id', 'user_id']).doNothing()).execute();
    else await this.db.deleteFrom('team_members').where('team_id', '=', teamId).where('user_id', '=', userId).execute();
  }

  /** The team, within the organization (404 otherwise). */
  async require(orgId: string, id: string): Promise<void> {
    if (!(await this.db.selectFrom('teams').select('id').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst())) throw new AppError('not_found', 'Team not found');
  }

  /** Whether the caller sees teams at all (staff). */
  static visibleTo(p: Principal): boolean {
    return checkAccess(p, 'support.handle');
  }
}

const Team = Type.Object({ id: Type.String(), name: Type.String(), created_at: Type.String(), member_ids: Type.Array(Type.String()) });
const Id = Type.Object({ id: Type.String({ format: 'uuid' }) });
const Member = Type.Object({ id: Type.String({ format: 'uuid' }), userId: Type.String({ format: 'uuid' }) });

export const teamsRoutes: FastifyPluginAsyncTypebox<{ teams: TeamsService }> = async (app, { teams }) => {
  const tags = ['teams'];
  app.get('/teams', { schema: { tags, summary: 'Teams (staff)', response: { 200: Type.Object({ data: Type.Array(Team) }), ...authErrors } }, handler: async (req) => ({ data: await teams.list(req.principal) }) });
  app.post('/teams', {
    schema: { tags, summary: 'Create a team (admins)', body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false }), response: { 201: Team, ...authErrors } },
    handler: async (req, reply) => reply.status(201).send(await teams.create(req.principal, req.body.name)),
  });
  app.delete('/teams/:id', {
    schema: { tags, summary: 'Delete a team (admins)', params: Id, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await teams.delete(req.principal, req.params.id);
      return reply.status(204).send(null);
    },
  });
  for (const [method, member] of [['put', true], ['delete', false]] as const) {
    app[method]('/teams/:id/members/:userId', {
      schema: { tags, summary: member ? 'Add a member (admins)' : 'Remove a member (admins)', params: Member, response: { 204: NoContent, ...authErrors } },
      handler: async (req, reply) => {
        await teams.setMember(req.principal, req.params.id, req.params.userId, member);
        return reply.status(204).send(null);
      },
    });
  }
};
