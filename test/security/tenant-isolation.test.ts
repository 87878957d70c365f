/**
 * The tenant isolation matrix: two organizations A and B, every principal of A against every
 * object of B. A denial must look exactly like "does not exist" (same status, code and message as
 * for a random uuid), must leave B's object unchanged, and must have a matching allowed case run
 * against the very same object (B's own principals can do what A's cannot), so that a denial can
 * never pass for the wrong reason (a wrong id, a broken route, a bad body).
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { makeOrg, makeUser, type TestUser } from '../helpers/factories.ts';
import { call, newTestApp, type TestApp } from '../helpers/new-test-app.ts';
import { testDialects } from '../helpers/new-test-db.ts';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface Tenant {
  org: { id: string; slug: string; name: string };
  admin: TestUser;
  agent: TestUser;
  member: TestUser;
  customer: TestUser;
  /** The org's API key: id and the secret. */
  key: { id: string; secret: string };
  /** external_ref of the member (unique to this tenant). */
  memberRef: string;
}

/** Someone making requests: the headers that identify them and the base role they act with. */
interface Actor {
  name: string;
  headers: Record<string, string>;
  role: 'admin' | 'agent' | 'member' | 'customer';
}

/** The parts of an error answer that a client can see (request_id aside). */
const errorOf = (r: { statusCode: number; data: any }) => ({ status: r.statusCode, code: r.data?.error?.code, message: r.data?.error?.message });

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** external_ref present in both organizations (on each agent): must resolve inside the key's own org. */
const SHARED_REF = 'shared-host-id-42';

for (const dialect of testDialects()) {
  describe(`tenant isolation (${dialect})`, () => {
    let t: TestApp;
    let A: Tenant;
    let B: Tenant;
    let platform: TestUser;
    /** Every B object id, for the "nothing of B shows up" checks. */
    let bIds: Set<string>;

    const req = (method: Method, url: string, headers: Record<string, string>, body?: unknown) =>
      call(t.app, method, url, { headers, ...(body === undefined ? {} : { body }) });

    async function makeTenant(label: string): Promise<Tenant> {
      const org = await makeOrg(t.services, `${label}${randomBytes(3).toString('hex')}`);
      const admin = await makeUser(t.app, t.services, org.id, 'admin');
      const agent = await makeUser(t.app, t.services, org.id, 'agent');
      const member = await makeUser(t.app, t.services, org.id, 'member');
      const customer = await makeUser(t.app, t.services, org.id, 'customer');
      const memberRef = `ext-${label}-${randomBytes(4).toString('hex')}`;
      await t.services.users.doUpdate(org.id, member.id, { external_ref: memberRef });
      await t.services.users.doUpdate(org.id, agent.id, { external_ref: SHARED_REF });
      const k = await call(t.app, 'POST', '/api/v1/api-keys', { token: admin.token, body: { name: `${label} backend` } });
      assert.equal(k.statusCode, 201, k.body);
      assert.match(k.data.key, /^prl_/);
      return { org: { id: org.id, slug: org.slug, name: org.name }, admin, agent, member, customer, key: { id: k.data.id, secret: k.data.key }, memberRef };
    }

    /** Org A's principals that must not see or touch anything of B. */
    const attackers = (): Actor[] => [
      { name: 'A admin', headers: bearer(A.admin.token), role: 'admin' },
      { name: 'A agent', headers: bearer(A.agent.token), role: 'agent' },
      { name: 'A member', headers: bearer(A.member.token), role: 'member' },
      { name: 'A customer', headers: bearer(A.customer.token), role: 'customer' },
      { name: 'A key (X-Api-Key)', headers: { 'x-api-key': A.key.secret }, role: 'admin' },
      { name: 'A key (Authorization: Bearer)', headers: bearer(A.key.secret), role: 'admin' },
      { name: 'A key on behalf of A admin (id)', headers: { 'x-api-key': A.key.secret, 'x-on-behalf-of': A.admin.id }, role: 'admin' },
      { name: 'A key on behalf of A member (id)', headers: { 'x-api-key': A.key.secret, 'x-on-behalf-of': A.member.id }, role: 'member' },
      { name: 'A key on behalf of A member (external:)', headers: { 'x-api-key': A.key.secret, 'x-on-behalf-of': `external:${A.memberRef}` }, role: 'member' },
      { name: 'A key on behalf of A customer (id)', headers: { 'x-api-key': A.key.secret, 'x-on-behalf-of': A.customer.id }, role: 'customer' },
      // Acting as the platform admin through a key never carries platform powers.
      { name: 'A key on behalf of the platform admin', headers: { 'x-api-key': A.key.secret, 'x-on-behalf-of': platform.id }, role: 'admin' },
    ];

    /** B's own principals: the matching "allowed" side. */
    const bAdmin = (): Actor => ({ name: 'B admin', headers: bearer(B.admin.token), role: 'admin' });

    /** Everything B owns that an id-taking endpoint can name, read back as B's admin. */
    async function snapshotB() {
      const h = bearer(B.admin.token);
      const users: Record<string, unknown> = {};
      for (const u of [B.admin, B.agent, B.member, B.customer]) {
        const r = await req('GET', `/api/v1/users/${u.id}`, h);
        assert.equal(r.statusCode, 200, r.body);
        users[u.id] = r.data;
      }
      const org = await req('GET', `/api/v1/organizations/${B.org.id}`, h);
      assert.equal(org.statusCode, 200, org.body);
      const keys = await req('GET', '/api/v1/api-keys', h);
      assert.equal(keys.statusCode, 200, keys.body);
      // last_used_at moves whenever B's key is used: compare the rest.
      const key = keys.data.data.find((k: { id: string }) => k.id === B.key.id);
      assert.ok(key, "B's key is listed for B's admin");
      const { last_used_at: _ignored, ...keyStable } = key;
      return { users, org: org.data, key: keyStable };
    }

    before(async () => {
      // The global per-IP limit would otherwise trip on this many requests from one address.
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0' } });
      A = await makeTenant('tenanta');
      B = await makeTenant('tenantb');
      platform = await makeUser(t.app, t.services, A.org.id, 'admin', { platformAdmin: true });
      // Everyone online, so /users/presence has something of both orgs to (not) show.
      for (const u of [A.admin, A.agent, A.member, A.customer, platform, B.admin, B.agent, B.member, B.customer]) {
        const r = await call(t.app, 'PUT', '/api/v1/users/status', { token: u.token, body: { status: 'online' } });
        assert.equal(r.statusCode, 200, r.body);
      }
      bIds = new Set([B.org.id, B.admin.id, B.agent.id, B.member.id, B.customer.id, B.key.id]);
    });
    after(() => t.close());

    it('the setup is what the matrix assumes (B objects exist and are readable by B)', async () => {
      const snap = await snapshotB();
      assert.equal(Object.keys(snap.users).length, 4);
      assert.equal(snap.org.id, B.org.id);
      assert.equal(snap.key.revoked_at, null);
      // B's key works, as itself and on behalf of B's member (the allowed side of the key cases).
      const asKey = await req('GET', '/api/v1/users', { 'x-api-key': B.key.secret });
      assert.equal(asKey.statusCode, 200, asKey.body);
      const onBehalf = await req('GET', '/api/v1/users/me', { 'x-api-key': B.key.secret, 'x-on-behalf-of': B.member.id });
      assert.equal(onBehalf.statusCode, 200, onBehalf.body);
      assert.equal(onBehalf.data.id, B.member.id);
      // And A's key works for A, in every shape the attackers use.
      for (const a of attackers()) {
        const r = await req('GET', `/api/v1/organizations/${A.org.id}`, a.headers);
        assert.equal(r.statusCode, 200, `${a.name}: ${r.body}`);
        assert.equal(r.data.id, A.org.id, a.name);
      }
    });

    describe('id-taking endpoints: B objects answer exactly like a random uuid', () => {
      interface Target {
        name: string;
        method: Method;
        /** URL for an id. */
        url: (id: string) => string;
        bId: () => string;
        body?: unknown;
        /** Admin-only (403 forbidden for the other roles, before any lookup)? */
        adminOnly: boolean;
        notFoundCode: string;
        /** The same request, by B's own principal, on the same object: succeeds (run at the end). */
        allowed: () => { actor: Actor; status: number };
      }

      const userTargets = (): Array<[string, () => TestUser]> => [
        ['admin', () => B.admin],
        ['agent', () => B.agent],
        ['member', () => B.member],
        ['customer', () => B.customer],
      ];

      const targets: Target[] = [
        ...userTargets().map(([label, u]): Target => ({
          name: `GET /users/:id (B ${label})`,
          method: 'GET',
          url: (id) => `/api/v1/users/${id}`,
          bId: () => u().id,
          adminOnly: false,
          notFoundCode: 'user.not_found',
          allowed: () => ({ actor: bAdmin(), status: 200 }),
        })),
        ...userTargets().map(([label, u]): Target => ({
          name: `PATCH /users/:id (B ${label})`,
          method: 'PATCH',
          url: (id) => `/api/v1/users/${id}`,
          bId: () => u().id,
          body: { name: 'pwned by A', role: label === 'admin' ? 'customer' : 'admin', active: false },
          adminOnly: true,
          notFoundCode: 'user.not_found',
          allowed: () => ({ actor: bAdmin(), status: 200 }),
        })),
        {
          name: 'GET /organizations/:id (B)',
          method: 'GET',
          url: (id) => `/api/v1/organizations/${id}`,
          bId: () => B.org.id,
          adminOnly: false,
          notFoundCode: 'organization.not_found',
          allowed: () => ({ actor: bAdmin(), status: 200 }),
        },
        {
          name: 'PUT /organizations/:id (B)',
          method: 'PUT',
          url: (id) => `/api/v1/organizations/${id}`,
          bId: () => B.org.id,
          body: { name: 'pwned by A', registration_open: false, settings: { owned: true } },
          // The service answers 404 for another org before it looks at the role.
          adminOnly: false,
          notFoundCode: 'organization.not_found',
          allowed: () => ({ actor: bAdmin(), status: 200 }),
        },
        {
          name: 'DELETE /organizations/:id (B)',
          method: 'DELETE',
          url: (id) => `/api/v1/organizations/${id}`,
          bId: () => B.org.id,
          adminOnly: false,
          notFoundCode: 'organization.not_found',
          allowed: () => ({ actor: { name: 'platform admin', headers: bearer(platform.token), role: 'admin' }, status: 204 }),
        },
        {
          name: 'DELETE /api-keys/:id (B key)',
          method: 'DELETE',
          url: (id) => `/api/v1/api-keys/${id}`,
          bId: () => B.key.id,
          adminOnly: true,
          notFoundCode: 'api_key.not_found',
          allowed: () => ({ actor: bAdmin(), status: 204 }),
        },
      ];

      const expected = (target: Target, actor: Actor) =>
        target.adminOnly && actor.role !== 'admin' ? { status: 403, code: 'forbidden' } : { status: 404, code: target.notFoundCode };

      it('every principal of A gets the same answer for B’s object as for a random uuid, and B is unchanged', async () => {
        const beforeSnap = await snapshotB();
        let checked = 0;
        for (const target of targets) {
          for (const actor of attackers()) {
            const label = `${actor.name} → ${target.method} ${target.name}`;
            const onB = await req(target.method, target.url(target.bId()), actor.headers, target.body);
            const onRandom = await req(target.method, target.url(randomUUID()), actor.headers, target.body);
            const want = expected(target, actor);
            assert.equal(onRandom.statusCode, want.status, `${label} (random uuid): ${onRandom.body}`);
            assert.equal(onRandom.data.error.code, want.code, `${label} (random uuid)`);
            assert.deepEqual(errorOf(onB), errorOf(onRandom), `${label}: B's object must answer like a missing one`);
            checked++;
          }
        }
        assert.equal(checked, targets.length * attackers().length);
        assert.deepEqual(await snapshotB(), beforeSnap, 'nothing of B changed');
        // B's key still works (not revoked through the matrix).
        assert.equal((await req('GET', '/api/v1/users', { 'x-api-key': B.key.secret })).statusCode, 200);
      });

      it('the platform admin is confined like any A admin on users and API keys of B', async () => {
        const beforeSnap = await snapshotB();
        const p: Actor = { name: 'platform admin', headers: bearer(platform.token), role: 'admin' };
        for (const target of targets.filter((x) => !x.name.includes('/organizations/'))) {
          const onB = await req(target.method, target.url(target.bId()), p.headers, target.body);
          const onRandom = await req(target.method, target.url(randomUUID()), p.headers, target.body);
          assert.equal(onRandom.statusCode, 404, target.name);
          assert.equal(onRandom.data.error.code, target.notFoundCode, target.name);
          assert.deepEqual(errorOf(onB), errorOf(onRandom), `platform admin → ${target.name}`);
        }
        assert.deepEqual(await snapshotB(), beforeSnap);
      });

      it('the allowed side: B’s own principals can do each of these on the same objects', async () => {
        // Non-destructive reads first.
        for (const target of targets.filter((x) => x.method === 'GET')) {
          const { actor, status } = target.allowed();
          const r = await req('GET', target.url(target.bId()), actor.headers);
          assert.equal(r.statusCode, status, `${actor.name} → ${target.name}: ${r.body}`);
          assert.equal(r.data.id, target.bId());
        }
        // B's key reads the same objects too (as itself and on behalf of B's member).
        for (const headers of [{ 'x-api-key': B.key.secret }, { 'x-api-key': B.key.secret, 'x-on-behalf-of': `external:${B.memberRef}` }] as Array<Record<string, string>>) {
          assert.equal((await req('GET', `/api/v1/users/${B.customer.id}`, headers)).statusCode, 200);
          assert.equal((await req('GET', `/api/v1/organizations/${B.org.id}`, headers)).statusCode, 200);
        }
        // Writes with the attackers' bodies (the customer target, so B keeps its admin).
        const patch = await req('PATCH', `/api/v1/users/${B.customer.id}`, bearer(B.admin.token), { name: 'renamed by B', role: 'customer', active: true });
        assert.equal(patch.statusCode, 200, patch.body);
        assert.equal(patch.data.name, 'renamed by B');
        assert.equal(patch.data.role, 'customer');
        const put = await req('PUT', `/api/v1/organizations/${B.org.id}`, bearer(B.admin.token), { name: 'B renamed', settings: { by: 'b' } });
        assert.equal(put.statusCode, 200, put.body);
        assert.equal(put.data.name, 'B renamed');
        assert.deepEqual(put.data.settings, { by: 'b' });
      });
    });

    describe('list endpoints show nothing of B', () => {
      const userLists = ['/api/v1/users?limit=200', '/api/v1/users/active?limit=200', '/api/v1/users/presence', '/api/v1/users/role/admin', '/api/v1/users/role/agent', '/api/v1/users/role/member', '/api/v1/users/role/customer'];
      const idsOf = (url: string, data: any): string[] => (url.includes('/presence') ? data.data.map((u: { user_id: string }) => u.user_id) : data.data.map((u: { id: string }) => u.id));

      it('user lists: A’s listers see A’s users only; B’s admin sees B’s in the same lists', async () => {
        const listers = [...attackers().filter((a) => a.role !== 'customer'), { name: 'platform admin', headers: bearer(platform.token), role: 'admin' as const }];
        for (const url of userLists) {
          for (const actor of listers) {
            const r = await req('GET', url, actor.headers);
            assert.equal(r.statusCode, 200, `${actor.name} ${url}: ${r.body}`);
            const ids = idsOf(url, r.data);
            assert.ok(ids.length > 0, `${actor.name} ${url}: the list is not empty`);
            for (const id of ids) assert.ok(!bIds.has(id), `${actor.name} ${url} shows B's ${id}`);
            if (!url.includes('/presence')) for (const u of r.data.data) assert.equal(u.org_id, A.org.id, `${actor.name} ${url}`);
          }
          // Allowed side: the same list, B's admin, shows B's users (and none of A's).
          const b = await req('GET', url, bearer(B.admin.token));
          assert.equal(b.statusCode, 200);
          const bList = idsOf(url, b.data);
          assert.ok(bList.some((id) => bIds.has(id)), `B admin ${url} shows B's users`);
          for (const id of bList) assert.ok(![A.admin.id, A.agent.id, A.member.id, A.customer.id, platform.id].includes(id), `B admin ${url} shows A's ${id}`);
        }
        // Specific A users appear where they should, so "nothing of B" is not "nothing at all".
        const all = await req('GET', '/api/v1/users?limit=200', bearer(A.member.token));
        assert.deepEqual(new Set(idsOf('/users', all.data)), new Set([A.admin.id, A.agent.id, A.member.id, A.customer.id, platform.id]));
        const admins = await req('GET', '/api/v1/users/role/admin', { 'x-api-key': A.key.secret });
        assert.deepEqual(new Set(idsOf('/users', admins.data)), new Set([A.admin.id, platform.id]));
      });

      it('a q search for a B username finds nothing for A', async () => {
        const r = await req('GET', `/api/v1/users?q=${encodeURIComponent(B.member.username)}`, bearer(A.admin.token));
        assert.equal(r.statusCode, 200);
        assert.deepEqual(r.data.data, []);
        const b = await req('GET', `/api/v1/users?q=${encodeURIComponent(B.member.username)}`, bearer(B.admin.token));
        assert.deepEqual(b.data.data.map((u: { id: string }) => u.id), [B.member.id]);
      });

      it('/organizations lists only the caller’s own org (every non-platform principal of A)', async () => {
        for (const actor of attackers()) {
          const r = await req('GET', '/api/v1/organizations', actor.headers);
          assert.equal(r.statusCode, 200, `${actor.name}: ${r.body}`);
          assert.deepEqual(r.data.data.map((o: { id: string }) => o.id), [A.org.id], actor.name);
        }
        const b = await req('GET', '/api/v1/organizations', bearer(B.admin.token));
        assert.deepEqual(b.data.data.map((o: { id: string }) => o.id), [B.org.id]);
        // The platform admin, and only them, sees both.
        const p = await req('GET', '/api/v1/organizations', bearer(platform.token));
        assert.equal(p.statusCode, 200);
        const ids = p.data.data.map((o: { id: string }) => o.id);
        assert.ok(ids.includes(A.org.id) && ids.includes(B.org.id));
      });

      it('/api-keys lists A’s keys only for A’s admins and key; B’s admin sees B’s', async () => {
        const keyListers = [...attackers().filter((a) => a.role === 'admin'), { name: 'platform admin', headers: bearer(platform.token), role: 'admin' as const }];
        for (const actor of keyListers) {
          const r = await req('GET', '/api/v1/api-keys', actor.headers);
          assert.equal(r.statusCode, 200, `${actor.name}: ${r.body}`);
          const ids = r.data.data.map((k: { id: string }) => k.id);
          assert.deepEqual(ids, [A.key.id], actor.name);
          assert.ok(!JSON.stringify(r.data).includes(A.key.secret.slice('prl_0123456789abcdef_'.length)), 'the secret is never listed');
        }
        const b = await req('GET', '/api/v1/api-keys', bearer(B.admin.token));
        assert.deepEqual(b.data.data.map((k: { id: string }) => k.id), [B.key.id]);
      });
    });

    describe('X-On-Behalf-Of', () => {
      it('an A key naming a B user (id or external ref) is refused with 403 auth.on_behalf_invalid, like an unknown one', async () => {
        const names = [B.admin.id, B.agent.id, B.member.id, B.customer.id, `external:${B.memberRef}`, randomUUID(), 'external:nobody-has-this', 'not-a-uuid'];
        for (const name of names) {
          for (const keyHeaders of [{ 'x-api-key': A.key.secret }, bearer(A.key.secret)]) {
            for (const url of ['/api/v1/users/me', `/api/v1/users/${B.member.id}`, '/api/v1/users']) {
              const r = await req('GET', url, { ...keyHeaders, 'x-on-behalf-of': name });
              assert.equal(r.statusCode, 403, `${name} ${url}: ${r.body}`);
              assert.equal(r.data.error.code, 'auth.on_behalf_invalid', `${name} ${url}`);
            }
          }
        }
        // Allowed side: B's key on behalf of the same B users works.
        for (const u of [B.admin, B.agent, B.member, B.customer]) {
          const r = await req('GET', '/api/v1/users/me', { 'x-api-key': B.key.secret, 'x-on-behalf-of': u.id });
          assert.equal(r.statusCode, 200, r.body);
          assert.equal(r.data.id, u.id);
        }
        const ext = await req('GET', '/api/v1/users/me', { 'x-api-key': B.key.secret, 'x-on-behalf-of': `external:${B.memberRef}` });
        assert.equal(ext.data.id, B.member.id);
      });

      it('an external ref present in both orgs resolves inside the key’s own org', async () => {
        const a = await req('GET', '/api/v1/users/me', { 'x-api-key': A.key.secret, 'x-on-behalf-of': `external:${SHARED_REF}` });
        assert.equal(a.statusCode, 200, a.body);
        assert.equal(a.data.id, A.agent.id);
        assert.equal(a.data.org_id, A.org.id);
        const b = await req('GET', '/api/v1/users/me', { authorization: `Bearer ${B.key.secret}`, 'x-on-behalf-of': `external:${SHARED_REF}` });
        assert.equal(b.statusCode, 200, b.body);
        assert.equal(b.data.id, B.agent.id);
      });
    });

    describe('platform admin', () => {
      it('reads and updates org B through /organizations/:id (B’s admin sees the change)', async () => {
        const h = bearer(platform.token);
        const g = await req('GET', `/api/v1/organizations/${B.org.id}`, h);
        assert.equal(g.statusCode, 200, g.body);
        assert.equal(g.data.id, B.org.id);
        assert.equal(g.data.slug, B.org.slug);
        const u = await req('PUT', `/api/v1/organizations/${B.org.id}`, h, { name: 'Renamed by the platform', registration_open: false });
        assert.equal(u.statusCode, 200, u.body);
        assert.equal(u.data.name, 'Renamed by the platform');
        assert.equal(u.data.registration_open, false);
        const seen = await req('GET', `/api/v1/organizations/${B.org.id}`, bearer(B.admin.token));
        assert.equal(seen.data.name, 'Renamed by the platform');
        assert.equal(seen.data.registration_open, false);
        // Missing orgs are still 404 for them.
        const missing = await req('GET', `/api/v1/organizations/${randomUUID()}`, h);
        assert.equal(missing.statusCode, 404);
        assert.equal(missing.data.error.code, 'organization.not_found');
      });

      it('still gets 404 for GET /users/<B user id>, like a random uuid (platform powers are about organizations only)', async () => {
        const h = bearer(platform.token);
        for (const u of [B.admin, B.agent, B.member, B.customer]) {
          const r = await req('GET', `/api/v1/users/${u.id}`, h);
          const rnd = await req('GET', `/api/v1/users/${randomUUID()}`, h);
          assert.equal(r.statusCode, 404, r.body);
          assert.equal(r.data.error.code, 'user.not_found');
          assert.deepEqual(errorOf(r), errorOf(rnd));
        }
        // Allowed side: their own org's users are readable.
        const own = await req('GET', `/api/v1/users/${A.customer.id}`, h);
        assert.equal(own.statusCode, 200);
        assert.equal(own.data.id, A.customer.id);
      });
    });

    describe('anonymous', () => {
      it('gets 401 auth.required on every authenticated endpoint (taken from the OpenAPI document)', async () => {
        const spec = t.app.swagger() as { paths: Record<string, Record<string, unknown>> };
        const PUBLIC = new Set(['POST /api/v1/auth/register', 'POST /api/v1/auth/login', 'POST /api/v1/auth/refresh']);
        const bodies: Record<string, unknown> = {
          'PATCH /api/v1/users/me': { name: 'anon' },
          'PUT /api/v1/users/me/password': { current_password: 'x', new_password: 'something-long' },
          'PUT /api/v1/users/status': { status: 'online' },
          'PATCH /api/v1/users/{id}': { role: 'admin' },
          'POST /api/v1/organizations': { name: 'anon org' },
          'PUT /api/v1/organizations/{id}': { name: 'anon' },
          'POST /api/v1/api-keys': { name: 'anon' },
          'POST /api/v1/auth/logout': { all: true },
        };
        const fill = (path: string) =>
          path.replace('{id}', path.includes('/organizations/') ? B.org.id : path.includes('/api-keys/') ? B.key.id : B.member.id).replace('{role}', 'member');
        const seen: string[] = [];
        const throwaway = await makeUser(t.app, t.services, A.org.id, 'member');
        for (const [path, ops] of Object.entries(spec.paths)) {
          if (!path.startsWith('/api/v1/')) continue;
          for (const method of Object.keys(ops)) {
            const m = method.toUpperCase() as Method;
            if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(m)) continue;
            const key = `${m} ${path}`;
            if (PUBLIC.has(key)) continue;
            seen.push(key);
            const r = await req(m, fill(path), {}, bodies[key]);
            assert.equal(r.statusCode, 401, `${key}: ${r.body}`);
            assert.equal(r.data.error.code, 'auth.required', key);
            // Allowed side: the same request with a (throwaway A member's) token passes authentication.
            const token = key === 'POST /api/v1/auth/logout' ? (await makeUser(t.app, t.services, A.org.id, 'member')).token : throwaway.token;
            const withToken = await req(m, fill(path), bearer(token), bodies[key]);
            assert.notEqual(withToken.statusCode, 401, `${key} with a token: ${withToken.body}`);
            assert.ok(withToken.statusCode < 500, `${key} with a token: ${withToken.body}`);
          }
        }
        // The document must cover every authenticated route this matrix knows of (so none was missed).
        for (const known of [
          'GET /api/v1/users/me', 'PATCH /api/v1/users/me', 'PUT /api/v1/users/me/password', 'PUT /api/v1/users/status',
          'GET /api/v1/users', 'GET /api/v1/users/active', 'GET /api/v1/users/presence', 'GET /api/v1/users/role/{role}',
          'GET /api/v1/users/{id}', 'PATCH /api/v1/users/{id}',
          'GET /api/v1/organizations', 'POST /api/v1/organizations', 'GET /api/v1/organizations/{id}', 'PUT /api/v1/organizations/{id}', 'DELETE /api/v1/organizations/{id}',
          'GET /api/v1/api-keys', 'POST /api/v1/api-keys', 'DELETE /api/v1/api-keys/{id}',
          'POST /api/v1/auth/logout',
        ]) {
          assert.ok(seen.includes(known), `${known} is in the OpenAPI document and was tried`);
        }
        // Nothing of B moved.
        const org = await req('GET', `/api/v1/organizations/${B.org.id}`, bearer(B.admin.token));
        assert.equal(org.statusCode, 200);
        const keys = await req('GET', '/api/v1/api-keys', bearer(B.admin.token));
        assert.equal(keys.data.data.find((k: { id: string }) => k.id === B.key.id).revoked_at, null);
      });

      it('a wrong or revoked-looking API key is 401, not a silent anonymous pass', async () => {
        const fake = `prl_${'0'.repeat(16)}_${'a'.repeat(43)}`;
        for (const headers of [{ 'x-api-key': fake }, bearer(fake), { 'x-api-key': 'garbage' }]) {
          const r = await req('GET', '/api/v1/users', headers);
          assert.equal(r.statusCode, 401, r.body);
          assert.equal(r.data.error.code, 'auth.invalid_token');
        }
      });
    });

    describe('the destructive allowed cases, last, on the same objects', () => {
      it('B’s admin revokes B’s key (A could not); the key then stops working', async () => {
        const r = await req('DELETE', `/api/v1/api-keys/${B.key.id}`, bearer(B.admin.token));
        assert.equal(r.statusCode, 204, r.body);
        const use = await req('GET', '/api/v1/users', { 'x-api-key': B.key.secret });
        assert.equal(use.statusCode, 401);
        assert.equal(use.data.error.code, 'auth.invalid_token');
        // A's key is untouched.
        assert.equal((await req('GET', '/api/v1/users', { 'x-api-key': A.key.secret })).statusCode, 200);
      });

      it('the platform admin deletes org B (A could not); B’s admin is gone, A is intact', async () => {
        const r = await req('DELETE', `/api/v1/organizations/${B.org.id}`, bearer(platform.token));
        assert.equal(r.statusCode, 204, r.body);
        const g = await req('GET', `/api/v1/organizations/${B.org.id}`, bearer(platform.token));
        assert.equal(g.statusCode, 404);
        const b = await req('GET', '/api/v1/users/me', bearer(B.admin.token));
        assert.equal(b.statusCode, 401, b.body);
        const a = await req('GET', '/api/v1/users/me', bearer(A.admin.token));
        assert.equal(a.statusCode, 200);
        assert.equal(a.data.id, A.admin.id);
      });
    });
  });
}
