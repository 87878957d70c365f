import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

const Ready = Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.String()) });

/** Liveness and readiness. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ checks: ReadinessCheck[] }> = async (app, { checks }) => {
  app.get('/health', {
    schema: { tags: ['operations'], summary: 'Liveness', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    handler: async () => ({ status: 'ok' as const }),
  });
  app.get('/ready', {
    schema: { tags: ['operations'], summary: 'Readiness: database (and Redis when configured) reachable', response: { 200: Ready, 503: Ready } },
    handler: async (_req, reply) => {
      const results: Record<string, string> = {};
      await Promise.all(
        checks.map(async (c) => {
          try {
            await Promise.race([c.check(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref())]);
            results[c.name] = 'ok';
          } catch (err) {
            results[c.name] = `error: ${(err as Error).message}`;
          }
        }),
      );
      const ok = Object.values(results).every((v) => v === 'ok');
      return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', checks: results });
    },
  });
};
