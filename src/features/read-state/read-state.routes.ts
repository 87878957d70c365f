import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { authErrors, NoContent } from '../../transport/http/schemas.ts';
import { MarkReadBody, MyConversationList, MyConversationsQuery, ReadPosition, Receipts, UnreadSummary } from './read-state.schemas.ts';
import type { ReadStateService } from './read-state.service.ts';

const tags = ['read state'];
const Id = Type.Object({ id: Type.String({ format: 'uuid' }) });

/** Read positions, unread counts, receipts, followed threads, the caller's conversation list. */
export const readStateRoutes: FastifyPluginAsyncTypebox<{ readState: ReadStateService }> = async (app, { readState }) => {
  app.post('/channels/:id/read', {
    schema: { tags, summary: 'Mark read up to a message (default: the latest)', params: Id, body: MarkReadBody, response: { 200: ReadPosition, ...authErrors } },
    handler: async (req) => readState.markRead(req.principal, req.params.id, req.body?.message_id),
  });
  app.get('/channels/:id/read-receipts', {
    schema: { tags, summary: 'Who has read up to where (direct and group conversations)', params: Id, response: { 200: Receipts, ...authErrors } },
    handler: async (req) => ({ data: await readState.receipts(req.principal, req.params.id) }),
  });
  app.get('/unread', {
    schema: { tags, summary: 'Your unread and mention counts, per conversation and per followed thread', response: { 200: UnreadSummary, ...authErrors } },
    handler: async (req) => readState.unread(req.principal),
  });
  app.get('/users/me/conversations', {
    schema: { tags, summary: 'Your conversations by last activity, with last message and unread count', querystring: MyConversationsQuery, response: { 200: MyConversationList, ...authErrors } },
    handler: async (req) => readState.myConversations(req.principal, req.query),
  });
  for (const [method, follow] of [['post', true], ['delete', false]] as const) {
    app[method]('/messages/:id/follow', {
      schema: { tags: ['threads'], summary: follow ? 'Follow a thread' : 'Stop following a thread', params: Id, response: { 204: NoContent, ...authErrors } },
      handler: async (req, reply) => {
        await readState.follow(req.principal, req.params.id, follow);
        return reply.status(204).send(null);
      },
    });
  }
  app.post('/messages/:id/thread/read', {
    schema: { tags: ['threads'], summary: 'Mark a followed thread read', params: Id, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await readState.markThreadRead(req.principal, req.params.id);
      return reply.status(204).send(null);
    },
  });
};
