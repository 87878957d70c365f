import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Principal } from '../../access/access.ts';
import type { Authenticator } from '../../features/auth/authenticator.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth plugin on every route registered in its context. */
    principal: Principal;
  }
}

const header = (req: FastifyRequest, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * Authenticates every request of the context it is registered in (before the body is parsed),
 * so that routes registered there can rely on `request.principal`. Public routes live outside.
 */
export const authPlugin = fp<{ authenticator: Authenticator }>(
  async (app: FastifyInstance, { authenticator }) => {
    app.decorateRequest('principal', null as unknown as Principal);
    // Callback style: a credential resolved recently is answered synchronously, without a promise.
    app.addHook('onRequest', (req, _reply, done) => {
      const credentials = { authorization: header(req, 'authorization'), apiKey: header(req, 'x-api-key'), onBehalfOf: header(req, 'x-on-behalf-of') };
      const known = authenticator.cached(credentials);
      if (known) {
        req.principal = known;
        return done();
      }
      authenticator.authenticate(credentials).then((p) => {
        req.principal = p;
        done();
      }, done);
    });
  },
  { name: 'parley-auth', encapsulate: false },
);
