import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Principal } from '../../access/access.ts';
import type { Authenticator } from '../../features/auth/authenticator.ts';
import { firstHeader } from '../../platform/headers.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth plugin on every route registered in its context. */
    principal: Principal;
  }
}


/**
 * Authenticates every request of the context it is registered in (before the body is parsed),
 * so that routes registered there can rely on `request.principal`. Public routes live outside.
 */
export const authPlugin = fp<{ authenticator: Authenticator }>(
  async (app: FastifyInstance, { authenticator }) => {
    app.decorateRequest('principal', null as unknown as Principal);
    // Callback style: a credential resolved recently is answered synchronously, without a promise.
    app.addHook('onRequest', (req, _reply, done) => {
      const credentials = { authorization: firstHeader(req.headers, 'authorization'), apiKey: firstHeader(req.headers, 'x-api-key'), onBehalfOf: firstHeader(req.headers, 'x-on-behalf-of') };
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
