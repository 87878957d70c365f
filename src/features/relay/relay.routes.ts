import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { authErrors, NoContent } from '../../transport/http/schemas.ts';
import { InboxParams } from '../inboxes/inboxes.schemas.ts';
import { requireJsonWebhook, WEBHOOK_BODY_LIMIT } from '../connectors/inbound.routes.ts';
import type { ChatwootInbound } from './chatwoot-in.ts';
import type { MirrorsService } from './mirrors.service.ts';
import { ChatwootBody, CreateSessionBody, Mirror, Session, SessionList, SessionParams, UpdateSessionBody } from './relay.schemas.ts';

/** /sessions (seed 001's relay sessions) and /inboxes/:id/chatwoot (a mirror on any inbox); admins. */
export const relayRoutes: FastifyPluginAsyncTypebox<{ mirrors: MirrorsService }> = async (app, { mirrors }) => {
  const tags = ['relay'];
  app.post('/sessions', {
    schema: { tags, summary: 'Create a relay session: a Codechat / Evolution gateway inbox mirrored into a Chatwoot inbox', body: CreateSessionBody, response: { 201: Session, ...authErrors } },
    handler: async (req, reply) => reply.status(201).send(await mirrors.createSession(req.principal, req.body)),
  });
  app.get('/sessions', {
    schema: { tags, summary: 'Relay sessions of the organization', response: { 200: SessionList, ...authErrors } },
    handler: async (req) => ({ data: await mirrors.listSessions(req.principal) }),
  });
  app.get('/sessions/:id', {
    schema: { tags, summary: 'A relay session', params: SessionParams, response: { 200: Session, ...authErrors } },
    handler: async (req) => mirrors.getSession(req.principal, req.params.id),
  });
  app.patch('/sessions/:id', {
    schema: { tags, summary: 'Change a session’s description, gateway or Chatwoot side (secrets are replaced, never shown)', params: SessionParams, body: UpdateSessionBody, response: { 200: Session, ...authErrors } },
    handler: async (req) => mirrors.updateSession(req.principal, req.params.id, req.body),
  });
  app.delete('/sessions/:id', {
    schema: { tags, summary: 'Delete a session: its gateway inbox, conversations and mirror', params: SessionParams, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await mirrors.deleteSession(req.principal, req.params.id);
      return reply.status(204).send(null);
    },
  });
  app.put('/inboxes/:id/chatwoot', {
    schema: { tags, summary: 'Mirror an inbox into a Chatwoot API inbox (set or replace)', params: InboxParams, body: ChatwootBody, response: { 200: Mirror, ...authErrors } },
    handler: async (req) => mirrors.put(req.principal, req.params.id, req.body),
  });
  app.get('/inboxes/:id/chatwoot', {
    schema: { tags, summary: 'The inbox’s Chatwoot mirror', params: InboxParams, response: { 200: Mirror, ...authErrors } },
    handler: async (req) => mirrors.get(req.principal, req.params.id),
  });
  app.get('/inboxes/:id/chatwoot/failures', {
    schema: {
      tags,
      summary: 'Mirror jobs that gave up (Chatwoot refused the message, or retries ran out); deliveries from Chatwoot that failed are in /webhook-events',
      params: InboxParams,
      response: { 200: Type.Object({ data: Type.Array(Type.Object({ id: Type.String(), event_name: Type.String(), event_id: Type.String(), attempts: Type.Integer(), last_error: Type.Union([Type.String(), Type.Null()]), created_at: Type.String() })) }), ...authErrors },
    },
    handler: async (req) => ({ data: await mirrors.failures(req.principal, req.params.id) }),
  });
  app.delete('/inboxes/:id/chatwoot', {
    schema: { tags, summary: 'Stop mirroring the inbox', params: InboxParams, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await mirrors.remove(req.principal, req.params.id);
      return reply.status(204).send(null);
    },
  });
};

/** `/webhooks/chatwoot/:inboxId?token=…`: where Chatwoot delivers (the raw bytes are kept: signatures are over them). */
export const chatwootWebhookRoutes: FastifyPluginAsyncTypebox<{ chatwoot: ChatwootInbound }> = async (app, { chatwoot }) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_req, body, done) => done(null, body));
  app.post('/webhooks/chatwoot/:inboxId', {
    schema: { hide: true, params: Type.Object({ inboxId: Type.String({ maxLength: 64 }) }) },
    bodyLimit: WEBHOOK_BODY_LIMIT,
    preValidation: requireJsonWebhook,
    handler: async (req, reply) => {
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const answer = await chatwoot.receive(req.params.inboxId, { raw, headers: req.headers, query: req.query as Record<string, string | undefined> });
      return reply.status(answer.status).send(answer.body);
    },
  });
};
