import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { apiKeysRoutes } from './features/api-keys/api-keys.routes.ts';
import { authRoutes, publicAuthRoutes } from './features/auth/auth.routes.ts';
import { conversationsRoutes } from './features/conversations/conversations.routes.ts';
import { filesRoutes } from './features/files/files.routes.ts';
import { healthRoutes, type ReadinessCheck } from './features/health/health.routes.ts';
import { messagesRoutes } from './features/messages/messages.routes.ts';
import { readStateRoutes } from './features/read-state/read-state.routes.ts';
import type { Gateway } from './features/realtime/gateway.ts';
import { registerRealtime } from './features/realtime/realtime.routes.ts';
import { organizationsRoutes } from './features/organizations/organizations.routes.ts';
import { searchRoutes } from './features/search/search.routes.ts';
import { contactsRoutes } from './features/contacts/contacts.routes.ts';
import { inboxesRoutes } from './features/inboxes/inboxes.routes.ts';
import { supportRoutes } from './features/support/support.routes.ts';
import { teamsRoutes } from './features/teams/teams.ts';
import { inboundWebhookRoutes, webhookEventsRoutes } from './features/connectors/inbound.routes.ts';
import { chatwootWebhookRoutes, relayRoutes } from './features/relay/relay.routes.ts';
import { webhooksRoutes } from './features/integrations/webhooks.routes.ts';
import { usersRoutes } from './features/users/users.routes.ts';
import { newId } from './platform/ids.ts';
import { loggerOptions, requestLoggerFactory } from './platform/logger.ts';
import { createServices, type ServiceDeps, type Services } from './services.ts';
import { authPlugin } from './transport/http/auth-plugin.ts';
import { registerErrorHandling } from './transport/http/error-handler.ts';
import { createMetrics, registerRequestMetrics, type Metrics } from './transport/http/metrics.ts';
import { registerRateLimit } from './transport/http/rate-limit.ts';
import { registerSecurityHeaders } from './transport/http/security-headers.ts';
import { ErrorBody } from './transport/http/schemas.ts';

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
    metrics: Metrics;
    gateway: Gateway;
  }
}

export interface AppOptions extends ServiceDeps {
  /** A pino logger to use (main.ts shares its own; tests pass one writing to a captured stream). */
  loggerInstance?: FastifyServerOptions['loggerInstance'];
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** Build the HTTP application (no listen). The caller owns the database and Redis connections. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { config } = opts;
  const app = Fastify({
    ...(opts.loggerInstance ? { loggerInstance: opts.loggerInstance } : { logger: loggerOptions(config.logLevel) }),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy === false ? false : config.trustProxy,
    // Keep a well-formed X-Request-Id from the caller (a proxy's), else make one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : newId();
    },
    forceCloseConnections: 'idle',
    childLoggerFactory: requestLoggerFactory as unknown as FastifyServerOptions['childLoggerFactory'],
    ajv: { customOptions: { allErrors: true, coerceTypes: 'array', removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const metrics = createMetrics();
  const services = createServices({ ...opts, registry: metrics.registry, onBackgroundError: (err) => app.log.error({ err }, 'background error'), log: app.log });
  await services.principals.start();
  app.decorate('services', services);
  app.decorate('metrics', metrics);
  app.addSchema(ErrorBody);

  // The API speaks JSON: any other body type is a 415, not a string handed to validation.
  app.removeContentTypeParser('text/plain');
  registerErrorHandling(app, registerRequestMetrics(app, metrics));
  registerSecurityHeaders(app, config.publicUrl);
  if (config.corsEnabled && config.corsAllowedOrigins.length) {
    const all = config.corsAllowedOrigins.includes('*');
    await app.register(cors, {
      origin: all ? true : config.corsAllowedOrigins,
      credentials: !all,
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
      allowedHeaders: ['Authorization', 'Content-Type', 'X-Api-Key', 'X-On-Behalf-Of', 'X-Request-Id'],
      exposedHeaders: ['X-Request-Id', 'Retry-After'],
      maxAge: 600,
    });
  }
  registerRateLimit(app, services.limiter, config.rateLimit);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Parley API', version: '0.1.0', description: 'The whole chat backend of a product. Errors: `{ error: { code, message, details? }, request_id }`.' },
      servers: [{ url: config.publicUrl }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or API key (prl_...)' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key' },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const checks: ReadinessCheck[] = [{ name: 'database', check: () => opts.database.ping() }];
  if (opts.redis) {
    const redis = opts.redis;
    checks.push({ name: 'redis', check: async () => void (await redis.ping()) });
  }
  await app.register(healthRoutes, { checks });
  await app.register(inboundWebhookRoutes, { inbound: services.inbound });
  await app.register(chatwootWebhookRoutes, { chatwoot: services.chatwoot });
  app.decorate('gateway', await registerRealtime(app, services, config.realtime, metrics.registry, config.trustProxy));

  await app.register(
    async (api) => {
      await api.register(publicAuthRoutes, { auth: services.auth });
      await api.register(async (authed) => {
        await authed.register(authPlugin, { authenticator: services.authenticator });
        await authed.register(authRoutes, { auth: services.auth });
        await authed.register(usersRoutes, { users: services.users });
        await authed.register(organizationsRoutes, { orgs: services.orgs });
        await authed.register(apiKeysRoutes, { apiKeys: services.apiKeys });
        await authed.register(conversationsRoutes, { conversations: services.conversations });
        await authed.register(messagesRoutes, { messages: services.messages });
        await authed.register(readStateRoutes, { readState: services.readState });
        await authed.register(filesRoutes, { files: services.files });
        await authed.register(searchRoutes, { search: services.search });
        await authed.register(inboxesRoutes, { inboxes: services.inboxes });
        await authed.register(contactsRoutes, { contacts: services.contacts });
        await authed.register(supportRoutes, { support: services.support, messages: services.messages });
        await authed.register(webhookEventsRoutes, { inbound: services.inbound, inboxes: services.inboxes, telegramApi: config.platformApis.telegram, timeoutMs: config.platformApis.timeoutMs });
        await authed.register(teamsRoutes, { teams: services.teams });
        await authed.register(webhooksRoutes, { webhooks: services.webhooks });
        await authed.register(relayRoutes, { mirrors: services.mirrors });
      });
    },
    { prefix: '/api/v1' },
  );

  // The outbox dispatcher runs once the app is ready (listen, or ready() in tests) and stops first
  // on close, while the database is still open (OUTBOX_DISPATCHER=false: this process only writes).
  if (config.integrations.outbox.dispatcher) app.addHook('onReady', async () => services.dispatcher.start());
  app.addHook('onReady', async () => services.ftsIndexer?.start());
  app.addHook('onClose', async () => {
    await services.dispatcher.stop();
    await services.ftsIndexer?.stop();
    await services.limiter.close();
    await services.bus.close();
    await services.files.close();
  });
  return app;
}
