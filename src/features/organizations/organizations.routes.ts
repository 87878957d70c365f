import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authErrors, NoContent } from '../../transport/http/schemas.ts';
import { CreateOrganizationBody, Organization, OrganizationIdParams, OrganizationList, UpdateOrganizationBody } from './organizations.schemas.ts';
import type { OrganizationsService } from './organizations.service.ts';

const tags = ['organizations'];

/** /organizations: platform admins manage all tenants; org admins their own. */
export const organizationsRoutes: FastifyPluginAsyncTypebox<{ orgs: OrganizationsService }> = async (app, { orgs }) => {
  app.get('/organizations', {
    schema: { tags, summary: 'Organizations you can see (all, for a platform admin)', response: { 200: OrganizationList, ...authErrors } },
    handler: async (req) => ({ data: await orgs.list(req.principal) }),
  });
  app.post('/organizations', {
    schema: { tags, summary: 'Platform admin: create an organization, optionally with its first admin', body: CreateOrganizationBody, response: { 201: Organization, ...authErrors } },
    handler: async (req, reply) => reply.status(201).send(await orgs.create(req.principal, req.body)),
  });
  app.get('/organizations/:id', {
    schema: { tags, summary: 'One organization', params: OrganizationIdParams, response: { 200: Organization, ...authErrors } },
    handler: async (req) => orgs.get(req.principal, req.params.id),
  });
  app.put('/organizations/:id', {
    schema: { tags, summary: 'Org admin or platform admin: update', params: OrganizationIdParams, body: UpdateOrganizationBody, response: { 200: Organization, ...authErrors } },
    handler: async (req) => orgs.update(req.principal, req.params.id, req.body),
  });
  app.delete('/organizations/:id', {
    schema: { tags, summary: 'Platform admin: delete an organization and everything in it', params: OrganizationIdParams, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await orgs.delete(req.principal, req.params.id);
      return reply.status(204).send(null);
    },
  });
};
