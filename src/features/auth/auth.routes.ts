import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { errorsWith, NoContent } from '../../transport/http/schemas.ts';
import { LoginBody, LogoutBody, RefreshBody, RegisterBody, TokenResponse } from './auth.schemas.ts';
import type { AuthService, ClientInfo } from './auth.service.ts';

const client = (req: FastifyRequest): ClientInfo => ({ ip: req.ip, userAgent: req.headers['user-agent'] ?? null });

/** Public auth routes: register, login, refresh (no token needed). */
export const publicAuthRoutes: FastifyPluginAsyncTypebox<{ auth: AuthService }> = async (app, { auth }) => {
  app.post('/auth/register', {
    schema: { tags: ['auth'], summary: 'Create an account (non-staff role) and log in', body: RegisterBody, response: { 201: TokenResponse, ...errorsWith(400, 403, 404, 409, 429) } },
    handler: async (req, reply) => reply.status(201).send(await auth.register(req.body, client(req))),
  });
  app.post('/auth/login', {
    schema: { tags: ['auth'], summary: 'Log in with username or email', body: LoginBody, response: { 200: TokenResponse, ...errorsWith(400, 401, 403, 429) } },
    handler: async (req) => auth.login(req.body, client(req)),
  });
  app.post('/auth/refresh', {
    schema: { tags: ['auth'], summary: 'Rotate a refresh token; a reused one revokes its session', body: RefreshBody, response: { 200: TokenResponse, ...errorsWith(400, 401, 403) } },
    handler: async (req) => auth.refresh(req.body.refresh_token),
  });
};

/** Authenticated auth routes. */
export const authRoutes: FastifyPluginAsyncTypebox<{ auth: AuthService }> = async (app, { auth }) => {
  app.post('/auth/logout', {
    schema: { tags: ['auth'], summary: 'End the current session (or all with {"all": true})', body: LogoutBody, response: { 204: NoContent, ...errorsWith(401) } },
    handler: async (req, reply) => {
      await auth.logout(req.principal, req.body?.all === true);
      return reply.status(204).send(null);
    },
  });
};

