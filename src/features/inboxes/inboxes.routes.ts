import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authErrors, NoContent } from '../../transport/http/schemas.ts';
import { CreateInboxBody, Inbox, InboxList, InboxMemberBody, InboxMemberParams, InboxMembers, InboxParams, UpdateInboxBody } from './inboxes.schemas.ts';
import type { InboxesService } from './inboxes.service.ts';

const tags = ['inboxes'];

/** /inboxes: connected platform accounts and their agents. */
export const inboxesRoutes: FastifyPluginAsyncTypebox<{ inboxes: InboxesService }> = async (app, { inboxes }) => {
  app.get('/inboxes', {
    schema: { tags, summary: 'Inboxes you handle (all of them for super-agents and admins)', response: { 200: InboxList, ...authErrors } },
    handler: async (req) => ({ data: await inboxes.list(req.principal) }),
  });
  app.post('/inboxes', {
    schema: { tags, summary: 'Create an inbox (admins); credentials are write-only', body: CreateInboxBody, response: { 201: Inbox, ...authErrors } },
    handler: async (req, reply) => reply.status(201).send(await inboxes.create(req.principal, req.body)),
  });
  app.get('/inboxes/:id', {
    schema: { tags, summary: 'An inbox', params: InboxParams, response: { 200: Inbox, ...authErrors } },
    handler: async (req) => inboxes.get(req.principal, req.params.id),
  });
  app.patch('/inboxes/:id', {
    schema: { tags, summary: 'Update an inbox (admins); new credentials replace the old ones', params: InboxParams, body: UpdateInboxBody, response: { 200: Inbox, ...authErrors } },
    handler: async (req) => inboxes.update(req.principal, req.params.id, req.body),
  });
  app.delete('/inboxes/:id', {
    schema: { tags, summary: 'Delete an inbox and its conversations (admins)', params: InboxParams, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await inboxes.delete(req.principal, req.params.id);
      return reply.status(204).send(null);
    },
  });
  app.get('/inboxes/:id/members', {
    schema: { tags, summary: 'The inbox’s agents', params: InboxParams, response: { 200: InboxMembers, ...authErrors } },
    handler: async (req) => ({ data: await inboxes.members(req.principal, req.params.id) }),
  });
  app.post('/inboxes/:id/members', {
    schema: { tags, summary: 'Add an agent (admins)', params: InboxParams, body: InboxMemberBody, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await inboxes.addMember(req.principal, req.params.id, req.body.user_id);
      return reply.status(204).send(null);
    },
  });
  app.delete('/inboxes/:id/members/:userId', {
    schema: { tags, summary: 'Remove an agent (admins)', params: InboxMemberParams, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await inboxes.removeMember(req.principal, req.params.id, req.params.userId);
      return reply.status(204).send(null);
    },
  });
};
