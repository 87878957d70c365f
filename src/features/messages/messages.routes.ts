import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authErrors, NoContent } from '../../transport/http/schemas.ts';
import { ConversationParams, EditMessageBody, ListMessagesQuery, Message, MessagePage, MessageParams, SendMessageBody } from './messages.schemas.ts';
import type { MessagesService } from './messages.service.ts';

const tags = ['messages'];

/** /channels/:id/messages and /messages/:id. */
export const messagesRoutes: FastifyPluginAsyncTypebox<{ messages: MessagesService }> = async (app, { messages }) => {
  app.get('/channels/:id/messages', {
    schema: { tags, summary: 'History, ascending by seq: latest page, or before / after / around a message', params: ConversationParams, querystring: ListMessagesQuery, response: { 200: MessagePage, ...authErrors } },
    handler: async (req) => messages.list(req.principal, req.params.id, req.query),
  });
  app.post('/channels/:id/messages', {
    schema: {
      tags,
      summary: 'Send a message (201); a retry with the same client_msg_id returns the first one (200)',
      params: ConversationParams,
      body: SendMessageBody,
      response: { 200: Message, 201: Message, ...authErrors },
    },
    handler: async (req, reply) => {
      const { message, replayed } = await messages.send(req.principal, req.params.id, req.body);
      return reply.status(replayed ? 200 : 201).send(message);
    },
  });
  app.get('/messages/:id', {
    schema: { tags, summary: 'One message', params: MessageParams, response: { 200: Message, ...authErrors } },
    handler: async (req) => messages.get(req.principal, req.params.id),
  });
  app.put('/messages/:id', {
    schema: { tags, summary: 'Edit your message', params: MessageParams, body: EditMessageBody, response: { 200: Message, ...authErrors } },
    handler: async (req) => messages.edit(req.principal, req.params.id, req.body.body),
  });
  app.delete('/messages/:id', {
    schema: { tags, summary: 'Delete (author, channel admins, org admins); a tombstone stays', params: MessageParams, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await messages.delete(req.principal, req.params.id);
      return reply.status(204).send(null);
    },
  });
};
