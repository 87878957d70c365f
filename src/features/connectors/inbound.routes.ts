import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { Type } from 'typebox';
import { authErrors, NoContent } from '../../transport/http/schemas.ts';
import type { InboxesService } from '../inboxes/inboxes.service.ts';
import type { InboundService } from './inbound.service.ts';
import { registerTelegramWebhook } from './telegram/register.ts';

/** Largest webhook delivery accepted (413 request.too_large beyond). */
export const WEBHOOK_BODY_LIMIT = 2 * 1024 * 1024;

/** Every platform posts JSON: anything else is refused before the body is looked at (415). Callback style: no promise per delivery. */
export function requireJsonWebhook(req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const header = req.headers['content-type'] ?? '';
  if (header === 'application/json' || header.split(';')[0]!.trim().toLowerCase() === 'application/json') return done();
  void reply.status(415).send({ error: { code: 'request.unsupported_media_type', message: 'Webhook deliveries must be Content-Type: application/json' } });
}

const Params = Type.Object({ platform: Type.String({ maxLength: 20 }), inboxId: Type.String({ maxLength: 64 }) });

/**
 * `/webhooks/:platform/:inboxId`: where platforms deliver (no API authentication: each delivery
 * is authenticated by its platform's signature or secret). The body is kept as raw bytes: the
 * signature is over them.
 */
export const inboundWebhookRoutes: FastifyPluginAsyncTypebox<{ inbound: InboundService }> = async (app, { inbound }) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_req, body, done) => done(null, body));
  app.get('/webhooks/:platform/:inboxId', { schema: { hide: true, params: Params } }, async (req, reply) => {
    const challenge = await inbound.challenge(req.params.platform, req.params.inboxId, req.query as Record<string, string | undefined>);
    if (challenge === null) return reply.status(403).type('text/plain').send('verification failed');
    return reply.type('text/plain').send(challenge);
  });
  app.post('/webhooks/:platform/:inboxId', { schema: { hide: true, params: Params }, bodyLimit: WEBHOOK_BODY_LIMIT, preValidation: requireJsonWebhook }, async (req, reply) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const answer = await inbound.receive(req.params.platform, req.params.inboxId, { raw, headers: req.headers, query: req.query as Record<string, string | undefined> });
    return reply.status(answer.status).send(answer.body);
  });
};

const WebhookEvent = Type.Object({
  id: Type.String(),
  inbox_id: Type.String(),
  platform: Type.String(),
  status: Type.String(),
  summary: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  received_at: Type.String(),
  processed_at: Type.Union([Type.String(), Type.Null()]),
});

/** /webhook-events: every delivery with its outcome (admins), and replay; Telegram webhook registration. */
export const webhookEventsRoutes: FastifyPluginAsyncTypebox<{ inbound: InboundService; inboxes: InboxesService; telegramApi: string; timeoutMs: number }> = async (app, { inbound, inboxes, telegramApi, timeoutMs }) => {
  app.post('/inboxes/:id/register-webhook', {
    schema: { tags: ['inboxes'], summary: 'Telegram: register the inbox’s webhook URL and secret token with setWebhook (admins)', params: Type.Object({ id: Type.String({ format: 'uuid' }) }), response: { 200: Type.Object({ ok: Type.Boolean(), url: Type.String() }), ...authErrors } },
    handler: async (req) => registerTelegramWebhook(req.principal, inboxes, req.params.id, telegramApi, timeoutMs),
  });
  app.get('/webhook-events', {
    schema: { tags: ['inboxes'], summary: 'Platform deliveries, newest first, with their outcome', querystring: Type.Object({ inbox_id: Type.Optional(Type.String({ format: 'uuid' })) }), response: { 200: Type.Object({ data: Type.Array(WebhookEvent) }), ...authErrors } },
    handler: async (req) => ({ data: await inbound.list(req.principal, req.query.inbox_id) }),
  });
  app.post('/webhook-events/:id/replay', {
    schema: { tags: ['inboxes'], summary: 'Process a stored delivery again (what was stored stays once)', params: Type.Object({ id: Type.String({ format: 'uuid' }) }), response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await inbound.replay(req.principal, req.params.id);
      return reply.status(204).send(null);
    },
  });
};
