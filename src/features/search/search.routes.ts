import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authErrors } from '../../transport/http/schemas.ts';
import { SearchPage, SearchQuery } from './search.schemas.ts';
import type { SearchService } from './search.service.ts';

const tags = ['search'];

/** GET /search. */
export const searchRoutes: FastifyPluginAsyncTypebox<{ search: SearchService }> = async (app, { search }) => {
  app.get('/search', {
    schema: {
      tags,
      summary: 'Search the messages you may read: words, "phrases", in:, from:, before:, after:, has:file; best first',
      querystring: SearchQuery,
      response: { 200: SearchPage, ...authErrors },
    },
    handler: async (req) => search.search(req.principal, req.query),
  });
};
