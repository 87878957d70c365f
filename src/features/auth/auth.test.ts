import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT, UnsecuredJWT } from 'jose';
import { call, newTestApp, TEST_JWT_SECRET, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { PASSWORD } from '../../../test/helpers/factories.ts';

for (const dialect of testDialects()) {
  describe(`auth (${dialect})`, () => {
    let t: TestApp;
    before(async () => {
      t = await newTestApp({ dialect });
    });
    after(() => t.close());

    const register = (username: string, extra: Record<string, unknown> = {}) =>
      call(t.app, 'POST', '/api/v1/auth/register', { body: { username, email: `${username}@ex.test`, password: PASSWORD, ...extra } });
    const login = (username: string, password = PASSWORD) => call(t.app, 'POST', '/api/v1/auth/login', { body: { username, password } });

    it('registers, logs in by username and by email, and reads /users/me', async () => {
      const r = await register('alice', { name: 'Alice' });
      assert.equal(r.statusCode, 201, r.body);
      assert.equal(r.data.user.username, 'alice');
      assert.equal(r.data.user.role, 'member');
      assert.equal(r.data.token_type, 'Bearer');
      assert.equal(r.data.expires_in, 900);
      assert.ok(!('password_hash' in r.data.user));

      const byName = await login('alice');
      assert.equal(byName.statusCode, 200);
      const byEmail = await call(t.app, 'POST', '/api/v1/auth/login', { body: { email: 'ALICE@ex.test', password: PASSWORD } });
      assert.equal(byEmail.statusCode, 200);
      assert.equal(byEmail.data.user.id, r.data.user.id);

      const me = await call(t.app, 'GET', '/api/v1/users/me', { token: byName.data.token });
      assert.equal(me.statusCode, 200);
      assert.equal(me.data.id, r.data.user.id);
      assert.equal(me.data.name, 'Alice');
    });

    it('refuses a taken username with 409 and a staff role at registration with 403', async () => {
      await register('bob');
      const dup = await register('BOB', { email: 'other@ex.test' });
      assert.equal(dup.statusCode, 409);
      assert.equal(dup.data.error.code, 'user.username_taken');
      for (const role of ['admin', 'super-agent', 'agent']) {
        const r = await register(`staff${role.replace('-', '')}`, { role });
        assert.equal(r.statusCode, 403, role);
        assert.equal(r.data.error.code, 'auth.role_not_allowed');
      }
      const buyer = await register('buyer1', { role: 'buyer' });
      assert.equal(buyer.statusCode, 201);
      assert.equal(buyer.data.user.role, 'buyer');
    });

    it('answers wrong password and unknown user the same way (401 auth.invalid_credentials)', async () => {
      await register('carol');
      const wrong = await login('carol', 'not the password');
      const unknown = await login('nobody-here', 'whatever1');
      for (const r of [wrong, unknown]) {
        assert.equal(r.statusCode, 401);
        assert.equal(r.data.error.code, 'auth.invalid_credentials');
        assert.equal(r.data.error.message, 'Wrong username or password');
      }
    });

    it('refuses missing, malformed, tampered, alg:none, wrongly signed and expired tokens', async () => {
      const ok = (await register('dave')).data.token as string;
      const [h, p, s] = ok.split('.');
      const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
      const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: '00000000-0000-4000-8000-000000000000' })).toString('base64url')}.${s}`;
      const none = new UnsecuredJWT({ ...payload }).encode();
      const otherKey = await new SignJWT({ org: payload.org, sid: payload.sid }).setProtectedHeader({ alg: 'HS256' }).setSubject(payload.sub).setIssuer('parley').setAudience('parley-api').setExpirationTime('10m').sign(new TextEncoder().encode('another-secret-another-secret-another-secret'));
      const expired = await new SignJWT({ org: payload.org, sid: payload.sid }).setProtectedHeader({ alg: 'HS256' }).setSubject(payload.sub).setIssuer('parley').setAudience('parley-api').setIssuedAt(1_600_000_000).setExpirationTime(1_600_000_900).sign(new TextEncoder().encode(TEST_JWT_SECRET));
      const cases: Array<[string, Record<string, string>, string]> = [
        ['missing', {}, 'auth.required'],
        ['not bearer', { authorization: `Basic ${ok}` }, 'auth.invalid_token'],
        ['garbage', { authorization: 'Bearer not.a.jwt' }, 'auth.invalid_token'],
        ['tampered', { authorization: `Bearer ${tampered}` }, 'auth.invalid_token'],
        ['alg none', { authorization: `Bearer ${none}` }, 'auth.invalid_token'],
        ['other key', { authorization: `Bearer ${otherKey}` }, 'auth.invalid_token'],
        ['expired', { authorization: `Bearer ${expired}` }, 'auth.token_expired'],
      ];
      for (const [name, headers, code] of cases) {
        const r = await call(t.app, 'GET', '/api/v1/users/me', { headers });
        assert.equal(r.statusCode, 401, name);
        assert.equal(r.data.error.code, code, name);
      }
      // Same setup, valid token: accepted (so the refusals above are for the reason tested).
      assert.equal((await call(t.app, 'GET', '/api/v1/users/me', { token: ok })).statusCode, 200);
    });

    it('logout revokes the session: the access token and its refresh token stop working', async () => {
      const s = (await register('erin')).data;
      assert.equal((await call(t.app, 'GET', '/api/v1/users/me', { token: s.token })).statusCode, 200);
      const out = await call(t.app, 'POST', '/api/v1/auth/logout', { token: s.token });
      assert.equal(out.statusCode, 204);
      const me = await call(t.app, 'GET', '/api/v1/users/me', { token: s.token });
      assert.equal(me.statusCode, 401);
      assert.equal(me.data.error.code, 'auth.session_revoked');
      const ref = await call(t.app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: s.refresh_token } });
      assert.equal(ref.statusCode, 401);
    });

    it('logout with {"all": true} ends every session of the user', async () => {
      await register('frank');
      const a = (await login('frank')).data;
      const b = (await login('frank')).data;
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/logout', { token: a.token, body: { all: true } })).statusCode, 204);
      assert.equal((await call(t.app, 'GET', '/api/v1/users/me', { token: b.token })).statusCode, 401);
    });

    it('rotates refresh tokens; reusing an old one revokes the whole family', async () => {
      const s = (await register('gina')).data;
      const r1 = await call(t.app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: s.refresh_token } });
      assert.equal(r1.statusCode, 200);
      assert.notEqual(r1.data.refresh_token, s.refresh_token);
      assert.equal((await call(t.app, 'GET', '/api/v1/users/me', { token: r1.data.token })).statusCode, 200);

      const reuse = await call(t.app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: s.refresh_token } });
      assert.equal(reuse.statusCode, 401);
      assert.equal(reuse.data.error.code, 'auth.refresh_reused');
      // The legitimate holder's newer tokens die with the family.
      assert.equal((await call(t.app, 'GET', '/api/v1/users/me', { token: r1.data.token })).statusCode, 401);
      const r2 = await call(t.app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: r1.data.refresh_token } });
      assert.equal(r2.statusCode, 401);
    });

    it('two concurrent refreshes with one token: one wins, the family is revoked', async () => {
      const s = (await register('hank')).data;
      const [a, b] = await Promise.all([
        call(t.app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: s.refresh_token } }),
        call(t.app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: s.refresh_token } }),
      ]);
      assert.deepEqual([a.statusCode, b.statusCode].sort(), [200, 401]);
    });

    it('refuses an unknown refresh token', async () => {
      const r = await call(t.app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: 'nope' } });
      assert.equal(r.statusCode, 401);
      assert.equal(r.data.error.code, 'auth.refresh_invalid');
    });

    it('a deactivated user is refused at once, and cannot log in', async () => {
      const admin = (await register('ivy-admin')).data;
      await t.services.users.doUpdate(admin.user.org_id, admin.user.id, { role: 'admin' });
      const victim = (await register('jack')).data;
      const d = await call(t.app, 'PATCH', `/api/v1/users/${victim.user.id}`, { token: admin.token, body: { active: false } });
      assert.equal(d.statusCode, 200, d.body);
      assert.equal(d.data.active, false);
      assert.equal((await call(t.app, 'GET', '/api/v1/users/me', { token: victim.token })).statusCode, 401);
      const l = await login('jack');
      assert.equal(l.statusCode, 403);
      assert.equal(l.data.error.code, 'auth.user_inactive');
    });

    it('closed registration is refused with 403', async () => {
      const org = await t.services.orgs.doCreate({ name: 'Closed', slug: `closed-${dialect}`, registration_open: false });
      const r = await register('kate', { organization: org.slug });
      assert.equal(r.statusCode, 403);
      assert.equal(r.data.error.code, 'auth.registration_closed');
    });

    it('validation errors list the fields', async () => {
      const r = await call(t.app, 'POST', '/api/v1/auth/register', { body: { username: 'x', password: 'short', email: 'not-an-email' } });
      assert.equal(r.statusCode, 400);
      assert.equal(r.data.error.code, 'validation.failed');
      const fields = r.data.error.details.fields.map((f: { field: string }) => f.field).sort();
      assert.deepEqual(fields, ['/body/email', '/body/password', '/body/username']);
    });
  });
}
