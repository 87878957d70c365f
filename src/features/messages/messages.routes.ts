import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authErrors, NoContent } from '../../transport/http/schemas.ts';
import { Type } from 'typebox';
import {
  ConversationParams,
  EditMessageBody,
  ListMessagesQuery,
  Message,
  MessagePage,
  MessageParams,
  ReactionBody,
  ReactionParams,
  ReplyBody,
  SendMessageBody,
  ThreadPage,
  ThreadQuery,
} from './messages.schemas.ts';
import { messagePageJson, type MessagesService } from './messages.service.ts';

const tags = ['messages'];

/** /channels/:id/messages and /messages/:id. */
export const messagesRoutes: FastifyPluginAsyncTypebox<{ messages: MessagesService }> = async (app, { messages }) => {
  app.get('/channels/:id/messages', {
    schema: { tags, summary: 'History, ascending by seq: latest page, or before / after / around a message', params: ConversationParams, querystring: ListMessagesQuery, response: { 200: MessagePage, ...authErrors } },
    // The messages come as JSON text from the database (see MessagesRepo.listRangeJson); a string
    // with a JSON content type is sent as it is, without the response serializer.
    handler: async (req, reply) => reply.type('application/json; charset=utf-8').send(messagePageJson(await messages.list(req.principal, req.params.id, req.query))),
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
  app.get('/channels/:id/messages/pinned', {
    schema: { tags, summary: 'Pinned messages, latest pin first (pinned_by, pinned_at)', params: ConversationParams, response: { 200: Type.Object({ data: Type.Array(Message) }), ...authErrors } },
    handler: async (req) => ({ data: await messages.pinned(req.principal, req.params.id) }),
  });
  app.get('/messages/:id/thread', {
    schema: { tags: ['threads'], summary: 'A thread: its first message and replies (after_seq, limit)', params: MessageParams, querystring: ThreadQuery, response: { 200: ThreadPage, ...authErrors } },
    handler: async (req) => messages.thread(req.principal, req.params.id, req.query),
  });
  app.post('/messages/:id/thread', {
    schema: { tags: ['threads'], summary: 'Reply in a thread (201; 200 for a client_msg_id retry)', params: MessageParams, body: ReplyBody, response: { 200: Message, 201: Message, ...authErrors } },
    handler: async (req, reply) => {
      const { message, replayed } = await messages.reply(req.principal, req.params.id, req.body);
      return reply.status(replayed ? 200 : 201).send(message);
    },
  });
  app.post('/messages/:id/reactions', {
    schema: { tags: ['reactions'], summary: 'React (one reaction per user and emoji; repeating is a no-op)', params: MessageParams, body: ReactionBody, response: { 200: Message, ...authErrors } },
    handler: async (req) => messages.react(req.principal, req.params.id, req.body.emoji, true),
  });
  app.delete('/messages/:id/reactions/:emoji', {
    schema: { tags: ['reactions'], summary: 'Remove your reaction', params: ReactionParams, response: { 200: Message, ...authErrors } },
    handler: async (req) => messages.react(req.principal, req.params.id, req.params.emoji, false),
  });
  for (const [method, pinned] of [['post', true], ['delete', false]] as const) {
    app[method]('/messages/:id/pin', {
      schema: { tags: ['pins'], summary: pinned ? 'Pin a message' : 'Unpin a message', params: MessageParams, response: { 200: Message, ...authErrors } },
      handler: async (req) => messages.pin(req.principal, req.params.id, pinned),
    });
  }
};
