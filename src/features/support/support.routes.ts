import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authErrors, NoContent } from '../../transport/http/schemas.ts';
import { ListMessagesQuery, Message, MessagePage, SendMessageBody } from '../messages/messages.schemas.ts';
import { messagePageJson, type MessagesService } from '../messages/messages.service.ts';
import { AssignBody, ListSupportQuery, PriorityBody, StartSupportBody, StatusBody, SupportConversation, SupportList, SupportParams } from './support.schemas.ts';
import type { SupportService } from './support.service.ts';

const tags = ['conversations'];

/** /conversations: customer conversations (seeds 000 and 004). */
export const supportRoutes: FastifyPluginAsyncTypebox<{ support: SupportService; messages: MessagesService }> = async (app, { support, messages }) => {
  app.get('/conversations', {
    schema: { tags, summary: 'Support conversations you may see, by last activity (filters: status, assignee, inbox, team, unassigned, mine)', querystring: ListSupportQuery, response: { 200: SupportList, ...authErrors } },
    handler: async (req) => support.list(req.principal, req.query),
  });
  app.post('/conversations', {
    schema: { tags, summary: 'Start a conversation: a customer in a web inbox, or staff with a contact', body: StartSupportBody, response: { 201: SupportConversation, ...authErrors } },
    handler: async (req, reply) => reply.status(201).send(await support.start(req.principal, req.body)),
  });
  app.get('/conversations/:id', {
    schema: { tags, summary: 'A support conversation', params: SupportParams, response: { 200: SupportConversation, ...authErrors } },
    handler: async (req) => support.get(req.principal, req.params.id),
  });
  app.patch('/conversations/:id/assign', {
    schema: { tags, summary: 'Assign to an agent and / or a team (null unassigns)', params: SupportParams, body: AssignBody, response: { 200: SupportConversation, ...authErrors } },
    handler: async (req) => support.assign(req.principal, req.params.id, req.body),
  });
  app.patch('/conversations/:id/status', {
    schema: { tags, summary: 'open, pending, snoozed (with snoozed_until), resolved, closed', params: SupportParams, body: StatusBody, response: { 200: SupportConversation, ...authErrors } },
    handler: async (req) => support.setStatus(req.principal, req.params.id, req.body),
  });
  app.patch('/conversations/:id/priority', {
    schema: { tags, summary: 'urgent, high, medium, low or null', params: SupportParams, body: PriorityBody, response: { 200: SupportConversation, ...authErrors } },
    handler: async (req) => support.setPriority(req.principal, req.params.id, req.body.priority),
  });
  for (const [path, archived] of [['archive', true], ['unarchive', false]] as const) {
    app.post(`/conversations/:id/${path}`, {
      schema: { tags, summary: archived ? 'Archive (staff)' : 'Unarchive (staff)', params: SupportParams, response: { 200: SupportConversation, ...authErrors } },
      handler: async (req) => support.setArchived(req.principal, req.params.id, archived),
    });
  }
  app.delete('/conversations/:id', {
    schema: { tags, summary: 'Delete (super-agents and admins)', params: SupportParams, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await support.delete(req.principal, req.params.id);
      return reply.status(204).send(null);
    },
  });
  app.get('/conversations/:id/messages', {
    schema: { tags, summary: 'History (customers never see private notes)', params: SupportParams, querystring: ListMessagesQuery, response: { 200: MessagePage, ...authErrors } },
    handler: async (req, reply) => {
      await support.get(req.principal, req.params.id);
      return reply.type('application/json; charset=utf-8').send(messagePageJson(await messages.list(req.principal, req.params.id, req.query)));
    },
  });
  app.post('/conversations/:id/messages', {
    schema: { tags, summary: 'Send; staff may send a private note (`private: true`); a customer’s message reopens the conversation', params: SupportParams, body: SendMessageBody, response: { 200: Message, 201: Message, ...authErrors } },
    handler: async (req, reply) => {
      await support.get(req.principal, req.params.id);
      const { message, replayed } = await messages.send(req.principal, req.params.id, req.body);
      return reply.status(replayed ? 200 : 201).send(message);
    },
  });
};
