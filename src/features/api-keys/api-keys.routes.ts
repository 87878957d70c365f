import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authErrors, NoContent } from '../../transport/http/schemas.ts';
import { ApiKeyIdParams, ApiKeyList, CreateApiKeyBody, CreatedApiKey } from './api-keys.schemas.ts';
import type { ApiKeysService } from './api-keys.service.ts';

const tags = ['api-keys'];

/** /api-keys: org admins manage keys for the host backend. */
export const apiKeysRoutes: FastifyPluginAsyncTypebox<{ apiKeys: ApiKeysService }> = async (app, { apiKeys }) => {
  app.get('/api-keys', {
    schema: { tags, summary: 'List the organization’s API keys (never the secrets)', response: { 200: ApiKeyList, ...authErrors } },
    handler: async (req) => ({ data: await apiKeys.list(req.principal) }),
  });
  app.post('/api-keys', {
    schema: { tags, summary: 'Create a key; the secret is in this response only', body: CreateApiKeyBody, response: { 201: CreatedApiKey, ...authErrors } },
    handler: async (req, reply) => reply.status(201).send(await apiKeys.create(req.principal, req.body.name)),
  });
  app.delete('/api-keys/:id', {
    schema: { tags, summary: 'Revoke a key', params: ApiKeyIdParams, response: { 204: NoContent, ...authErrors } },
    handler: async (req, reply) => {
      await apiKeys.revoke(req.principal, req.params.id);
      return reply.status(204).send(null);
    },
  });
};
