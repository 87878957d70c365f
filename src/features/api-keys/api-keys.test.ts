import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUser, type TestUser } from '../../../test/helpers/factories.ts';

for (const dialect of testDialects()) {
  describe(`API keys (${dialect})`, () => {
    let t: TestApp;
    let admin: TestUser;
    let member: TestUser;
    before(async () => {
      t = await newTestApp({ dialect });
      const org = await makeOrg(t.services);
      admin = await makeUser(t.app, t.services, org.id, 'admin');
      member = await makeUser(t.app, t.services, org.id, 'member');
      await t.services.users.doUpdate(org.id, member.id, { external_ref: 'host-member-7' });
    });
    after(() => t.close());

    const create = async (name = 'backend') => {
      const r = await call(t.app, 'POST', '/api/v1/api-keys', { token: admin.token, body: { name } });
      assert.equal(r.statusCode, 201, r.body);
      return r.data as { id: string; key: string; prefix: string };
    };

    it('creates a key shown once, stored hashed, listed without its secret', async () => {
      const k = await create();
      assert.match(k.key, /^prl_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
      assert.ok(k.key.startsWith(k.prefix));
      const list = await call(t.app, 'GET', '/api/v1/api-keys', { token: admin.token });
      assert.equal(list.statusCode, 200);
      assert.ok(list.data.data.some((x: { id: string }) => x.id === k.id));
      assert.ok(!list.body.includes(k.key.slice(k.prefix.length + 1)), 'the secret never appears in a list');
      const stored = await t.db.db.selectFrom('api_keys').selectAll().where('id', '=', k.id).executeTakeFirstOrThrow();
      assert.ok(!JSON.stringify(stored).includes(k.key.split('_').slice(2).join('_')), 'the secret is not stored');
    });

    it('authenticates with X-Api-Key and with Authorization: Bearer', async () => {
      const k = await create();
      const viaHeader = await call(t.app, 'GET', '/api/v1/users', { headers: { 'x-api-key': k.key } });
      assert.equal(viaHeader.statusCode, 200, viaHeader.body);
      const viaBearer = await call(t.app, 'GET', '/api/v1/users', { token: k.key });
      assert.equal(viaBearer.statusCode, 200);
      const me = await call(t.app, 'GET', '/api/v1/users/me', { token: k.key });
      assert.equal(me.statusCode, 400);
      assert.equal(me.data.error.code, 'auth.user_required');
    });

    it('acts on behalf of a user by id or by external ref, with that user’s rights', async () => {
      const k = await create();
      const byId = await call(t.app, 'GET', '/api/v1/users/me', { token: k.key, headers: { 'x-on-behalf-of': member.id } });
      assert.equal(byId.statusCode, 200);
      assert.equal(byId.data.id, member.id);
      const byRef = await call(t.app, 'GET', '/api/v1/users/me', { token: k.key, headers: { 'x-on-behalf-of': 'external:host-member-7' } });
      assert.equal(byRef.data.id, member.id);
      // As the member, an admin-only action is refused; as itself the key may do it.
      const asMember = await call(t.app, 'PATCH', `/api/v1/users/${admin.id}`, { token: k.key, headers: { 'x-on-behalf-of': member.id }, body: { name: 'x' } });
      assert.equal(asMember.statusCode, 403);
      const asKey = await call(t.app, 'PATCH', `/api/v1/users/${member.id}`, { token: k.key, body: { name: 'Renamed by backend' } });
      assert.equal(asKey.statusCode, 200);
      const nobody = await call(t.app, 'GET', '/api/v1/users/me', { token: k.key, headers: { 'x-on-behalf-of': '00000000-0000-4000-8000-000000000000' } });
      assert.equal(nobody.statusCode, 403);
      assert.equal(nobody.data.error.code, 'auth.on_behalf_invalid');
    });

    it('a key cannot mint keys', async () => {
      const k = await create();
      const r = await call(t.app, 'POST', '/api/v1/api-keys', { token: k.key, body: { name: 'child' } });
      assert.equal(r.statusCode, 403);
    });

    it('revocation takes effect at once; wrong or malformed keys are refused', async () => {
      const k = await create();
      assert.equal((await call(t.app, 'GET', '/api/v1/users', { token: k.key })).statusCode, 200);
      assert.equal((await call(t.app, 'DELETE', `/api/v1/api-keys/${k.id}`, { token: admin.token })).statusCode, 204);
      const after = await call(t.app, 'GET', '/api/v1/users', { token: k.key });
      assert.equal(after.statusCode, 401);
      assert.equal(after.data.error.code, 'auth.invalid_token');
      const k2 = await create();
      const wrongSecret = `${k2.prefix}_${'A'.repeat(43)}`;
      for (const bad of [wrongSecret, 'prl_nothex', `${k2.key}x`]) {
        const r = await call(t.app, 'GET', '/api/v1/users', { headers: { 'x-api-key': bad } });
        assert.equal(r.statusCode, 401, bad);
      }
      assert.equal((await call(t.app, 'DELETE', `/api/v1/api-keys/${k.id}`, { token: admin.token })).statusCode, 204, 'revoking twice is idempotent');
      const missing = await call(t.app, 'DELETE', '/api/v1/api-keys/00000000-0000-4000-8000-000000000000', { token: admin.token });
      assert.equal(missing.statusCode, 404);
      assert.equal(missing.data.error.code, 'api_key.not_found');
    });

    it('only admins manage keys', async () => {
      for (const [method, url] of [['GET', '/api/v1/api-keys'], ['POST', '/api/v1/api-keys']] as const) {
        const r = await call(t.app, method, url, { token: member.token, body: method === 'POST' ? { name: 'x' } : undefined });
        assert.equal(r.statusCode, 403, `${method} ${url}`);
      }
    });
  });
}
