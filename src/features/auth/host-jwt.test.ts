import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type GenerateKeyPairResult, type JWK } from 'jose';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';

const HOST_SECRET = 'host-app-shared-secret-0123456789abcdef';
const hs = (claims: Record<string, unknown>, opts: { secret?: string; exp?: string | number; iss?: string } = {}) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(opts.iss ?? 'host-app')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '10m')
    .sign(new TextEncoder().encode(opts.secret ?? HOST_SECRET));

/** A JWKS endpoint on loopback, like the host app (or its identity provider) serves. */
async function jwksServer(keys: JWK[]): Promise<{ url: string; server: Server; hits: () => number }> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`, server, hits: () => hits };
}

for (const dialect of testDialects()) {
  describe(`host-issued JWTs, HS256 (${dialect})`, () => {
    let t: TestApp;
    let orgSlug: string;
    before(async () => {
      t = await newTestApp({ dialect, env: { HOST_JWT_SECRET: HOST_SECRET, HOST_JWT_ISSUER: 'host-app', HOST_JWT_CLAIM_ROLE: 'app_metadata.role', HOST_JWT_CLAIM_ORGANIZATION: 'tenant' } });
      orgSlug = (await t.services.orgs.doCreate({ name: 'Acme', slug: `acme-${dialect}` })).slug;
    });
    after(() => t.close());

    it('creates the user on first sight with mapped claims, and finds the same user next time', async () => {
      const token = await hs({ sub: 'host-42', name: 'Brenda Broker', email: 'brenda@acme.test', tenant: orgSlug, preferred_username: 'brenda', app_metadata: { role: 'broker' } });
      const first = await call(t.app, 'GET', '/api/v1/users/me', { token });
      assert.equal(first.statusCode, 200, first.body);
      assert.equal(first.data.external_ref, 'host-42');
      assert.equal(first.data.name, 'Brenda Broker');
      assert.equal(first.data.username, 'brenda');
      assert.equal(first.data.email, 'brenda@acme.test');
      assert.equal(first.data.role, 'broker');
      const again = await call(t.app, 'GET', '/api/v1/users/me', { token: await hs({ sub: 'host-42', tenant: orgSlug, name: 'Brenda B.', app_metadata: { role: 'broker' } }) });
      assert.equal(again.data.id, first.data.id);
      assert.equal(again.data.name, 'Brenda B.', 'later changes of the host profile are followed');
    });

    it('concurrent first requests create one user', async () => {
      const token = await hs({ sub: 'host-race', tenant: orgSlug, name: 'Racer' });
      const rs = await Promise.all(Array.from({ length: 8 }, () => call(t.app, 'GET', '/api/v1/users/me', { token })));
      assert.ok(rs.every((r) => r.statusCode === 200), rs.map((r) => r.body).join('\n'));
      assert.equal(new Set(rs.map((r) => r.data.id)).size, 1);
    });

    it('refuses a wrong secret, a wrong issuer, an expired token, an unknown organization, alg none', async () => {
      const cases: Array<[string, string, string]> = [
        ['wrong secret', await hs({ sub: 'x1', tenant: orgSlug }, { secret: 'some-other-secret-some-other-secret-0000' }), 'auth.invalid_token'],
        ['wrong issuer', await hs({ sub: 'x2', tenant: orgSlug }, { iss: 'evil' }), 'auth.invalid_token'],
        ['expired', await hs({ sub: 'x3', tenant: orgSlug }, { exp: Math.floor(Date.now() / 1000) - 60 }), 'auth.token_expired'],
        ['unknown org', await hs({ sub: 'x4', tenant: 'no-such-org' }), 'auth.unknown_organization'],
        ['no subject', await hs({ tenant: orgSlug }), 'auth.invalid_token'],
        ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'x5', tenant: orgSlug, iss: 'host-app' })).toString('base64url')}.`, 'auth.invalid_token'],
      ];
      for (const [name, token, code] of cases) {
        const r = await call(t.app, 'GET', '/api/v1/users/me', { token });
        assert.equal(r.statusCode, 401, `${name}: ${r.body}`);
        assert.equal(r.data.error.code, code, name);
      }
    });

    it('a host user deactivated in Parley is refused', async () => {
      const token = await hs({ sub: 'host-off', tenant: orgSlug });
      const me = await call(t.app, 'GET', '/api/v1/users/me', { token });
      await t.services.users.doUpdate(me.data.org_id, me.data.id, { active: 0 });
      const r = await call(t.app, 'GET', '/api/v1/users/me', { token });
      assert.equal(r.statusCode, 403);
      assert.equal(r.data.error.code, 'auth.user_inactive');
    });

    it("Parley's own tokens keep working beside host tokens", async () => {
      const reg = await call(t.app, 'POST', '/api/v1/auth/register', { body: { username: 'local1', password: 'long enough pw' } });
      assert.equal((await call(t.app, 'GET', '/api/v1/users/me', { token: reg.data.token })).statusCode, 200);
    });
  });

  describe(`host-issued JWTs, RS256 and ES256 through a JWKS URL (${dialect})`, () => {
    let t: TestApp;
    let jwks: Awaited<ReturnType<typeof jwksServer>>;
    let rsa: GenerateKeyPairResult;
    let ec: GenerateKeyPairResult;
    let stranger: GenerateKeyPairResult;
    let orgSlug: string;
    before(async () => {
      rsa = (await generateKeyPair('RS256'));
      ec = (await generateKeyPair('ES256'));
      stranger = (await generateKeyPair('RS256'));
      const keys = [
        { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
        { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
      ];
      jwks = await jwksServer(keys);
      t = await newTestApp({ dialect, env: { HOST_JWT_JWKS_URL: jwks.url, HOST_JWT_AUDIENCE: 'parley', HOST_JWT_DEFAULT_ORGANIZATION: 'default' } });
      orgSlug = 'default';
    });
    after(async () => {
      await t.close();
      jwks.server.close();
    });

    const sign = (key: GenerateKeyPairResult['privateKey'], alg: string, kid: string, claims: Record<string, unknown>, aud = 'parley') =>
      new SignJWT(claims).setProtectedHeader({ alg, kid }).setAudience(aud).setIssuedAt().setExpirationTime('5m').sign(key);

    it('accepts RS256 and ES256 tokens signed by keys in the JWKS; the default organization applies', async () => {
      const a = await call(t.app, 'GET', '/api/v1/users/me', { token: await sign(rsa.privateKey, 'RS256', 'rsa-1', { sub: 'r-1', name: 'Rita' }) });
      assert.equal(a.statusCode, 200, a.body);
      assert.equal(a.data.external_ref, 'r-1');
      assert.equal(a.data.role, 'member');
      const org = await t.services.orgs.getBySlug(orgSlug);
      assert.equal(a.data.org_id, org!.id);
      const b = await call(t.app, 'GET', '/api/v1/users/me', { token: await sign(ec.privateKey, 'ES256', 'ec-1', { sub: 'e-1' }) });
      assert.equal(b.statusCode, 200, b.body);
      assert.ok(jwks.hits() >= 1, 'the JWKS was fetched from the local server');
    });

    it('refuses a key not in the JWKS, a wrong audience, and an HS256 token (no secret configured)', async () => {
      const cases = [
        await sign(stranger.privateKey, 'RS256', 'rsa-1', { sub: 's-1' }),
        await sign(rsa.privateKey, 'RS256', 'rsa-1', { sub: 's-2' }, 'someone-else'),
        await hs({ sub: 's-3' }),
      ];
      for (const token of cases) {
        const r = await call(t.app, 'GET', '/api/v1/users/me', { token });
        assert.equal(r.statusCode, 401, r.body);
        assert.equal(r.data.error.code, 'auth.invalid_token');
      }
    });
  });
}
