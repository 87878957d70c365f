import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authErrors, NoContent } from '../../transport/http/schemas.ts';
import {
  CreatedWebhookEndpoint,
  CreateWebhookBody,
  DeliveriesQuery,
  Delivery,
  DeliveryList,
  IdParams,
  OutboxQuery,
  UpdateWebhookBody,
  WebhookEndpoint,
  WebhookEndpointList,
  WebhookSecret,
} from './webhooks.schemas.ts';
import type { WebhooksService } from './webhooks.service.ts';

const tags = ['webhooks'];

/** /webhooks and /outbox: admins manage outgoing webhooks and watch deliveries (docs/events.md). */
export const webhooksRoutes: FastifyPluginAsyncTypebox<{ webhooks: WebhooksService }> = async (app, { webhooks }) => {
  app.get('/webhooks', {
    schema: { tags, summary: 'List the organization’s webhook endpoints (never their secrets)', response: { 200: WebhookEndpointList, ...authErrors } },
    handler: async (req) => ({ data: await webhooks.list(req.principal) }),
  });
  app.post('/webhooks', {
    schema: { tags, summary: 'Add an endpoint; its signing secret is in this response only', body: CreateWebhookBody, response: { 201: CreatedWebhookEndpoint, ...authErrors } },
    handler: async (req, reply) => reply.status(201).send(await webhooks.create(req.principal, req.body)),
  });
  app.get('/webhooks/:id', {
    schema: { tags, summary: 'One endpoint', params: IdParams, response: { 200: WebhookEndpoint, ...authErrors } },
    handler: async (req) => webhooks.get(req.principal, req.params.id),
  });
  app.patch('/webhooks/:id', {
    schema: { tags, summary: 'Change the URL, the event filter or whether it is active', params: IdParams, body: UpdateWebhookBody, response: { 200: WebhookEndpoint, ...authErrors } },
    handler: async (req) => webhooks.update(req.principal, req.params.id, req.body),
  });
  app.delete('/webhooks/:id', {
    schema: { tags, summary: 'Delete an endpoint (its waiting deliveries are marked failed)', params: IdParams, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await webhooks.delete(req.principal, req.params.id);
      return reply.status(204).send(null);
    },
  });
  app.post('/webhooks/:id/rotate-secret', {
    schema: { tags, summary: 'Replace the signing secret; the new one is in this response only', params: IdParams, response: { 200: WebhookSecret, ...authErrors } },
    handler: async (req) => webhooks.rotateSecret(req.principal, req.params.id),
  });
  app.get('/webhooks/:id/deliveries', {
    schema: { tags, summary: 'Delivery log of an endpoint, newest first', params: IdParams, querystring: DeliveriesQuery, response: { 200: DeliveryList, ...authErrors } },
    handler: async (req) => webhooks.deliveries(req.principal, req.params.id, req.query),
  });
  app.post('/webhooks/deliveries/:id/redeliver', {
    schema: { tags, summary: 'Deliver again now, with a fresh set of attempts', params: IdParams, response: { 202: Delivery, ...authErrors } },
    handler: async (req, reply) => reply.status(202).send(await webhooks.redeliver(req.principal, req.params.id, true)),
  });
  app.get('/outbox', {
    schema: { tags, summary: 'Outbox rows (every target), newest first: ?status=failed|pending|done, ?target=redis|webhook', querystring: OutboxQuery, response: { 200: DeliveryList, ...authErrors } },
    handler: async (req) => webhooks.listOutbox(req.principal, req.query),
  });
  app.post('/outbox/:id/redeliver', {
    schema: { tags, summary: 'Deliver an outbox row again now', params: IdParams, response: { 202: Delivery, ...authErrors } },
    handler: async (req, reply) => reply.status(202).send(await webhooks.redeliver(req.principal, req.params.id, false)),
  });
};
