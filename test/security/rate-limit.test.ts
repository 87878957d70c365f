import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { call, newTestApp } from '../helpers/new-test-app.ts';
import { makeOrg, makeUser, PASSWORD } from '../helpers/factories.ts';
import { waitFor } from '../helpers/platform-app.ts';

const stores = [{ name: 'memory', redis: false }, ...(process.env.PARLEY_TEST_REDIS_URL ? [{ name: 'redis', redis: true }] : [])];
if (!process.env.PARLEY_TEST_REDIS_URL) {
  describe('rate limits on Redis', () => it('needs Redis', (t) => t.skip('SKIPPED: no Redis in this run')));
}

for (const store of stores) {
  describe(`rate limits (${store.name} store)`, () => {
    it('the per-IP API limit answers 429 with Retry-After, and rotating X-Forwarded-For from an untrusted peer does not escape it', async () => {
      const t = await newTestApp({ redis: store.redis, env: { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000' } });
      try {
        const statuses: number[] = [];
        let last;
        for (let i = 0; i < 8; i++) {
          last = await t.app.inject({ method: 'GET', url: '/api/v1/users/me', headers: { 'x-forwarded-for': `203.0.113.${i}` } });
          statuses.push(last.statusCode);
        }
        assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
        const body = JSON.parse(last!.body);
        assert.equal(body.error.code, 'rate_limited');
        const retry = Number(last!.headers['retry-after']);
        assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
        // Health stays reachable for load balancers.
        assert.equal((await t.app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
      } finally {
        await t.close();
      }
    });

    it('behind a trusted proxy, clients are told apart by X-Forwarded-For', async () => {
      const t = await newTestApp({ redis: store.redis, env: { RATE_LIMIT_MAX: '2', TRUST_PROXY: '127.0.0.1' } });
      try {
        const a = [];
        for (let i = 0; i < 3; i++) a.push((await t.app.inject({ method: 'GET', url: '/api/v1/users/me', headers: { 'x-forwarded-for': '198.51.100.7' } })).statusCode);
        const b = (await t.app.inject({ method: 'GET', url: '/api/v1/users/me', headers: { 'x-forwarded-for': '198.51.100.8' } })).statusCode;
        assert.deepEqual(a, [401, 401, 429]);
        assert.equal(b, 401, 'another client behind the proxy has its own budget');
      } finally {
        await t.close();
      }
    });

    it('failed logins are limited per account: after the limit even the right password waits', async () => {
      const t = await newTestApp({ redis: store.redis, env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_MAX_FAILURES_PER_IP: '100' } });
      try {
        const org = await makeOrg(t.services);
        const u = await makeUser(t.app, t.services, org.id);
        const attempt = (password: string) => call(t.app, 'POST', '/api/v1/auth/login', { body: { username: u.username, password } });
        for (let i = 0; i < 3; i++) assert.equal((await attempt('wrong password')).statusCode, 401);
        const locked = await attempt(PASSWORD);
        assert.equal(locked.statusCode, 429);
        assert.equal(locked.data.error.code, 'rate_limited');
        assert.equal(locked.data.error.details.scope, 'login_account');
        assert.ok(Number(locked.headers['retry-after']) > 0);
        // Another account from the same IP is not locked by this one.
        const other = await makeUser(t.app, t.services, org.id);
        assert.equal((await call(t.app, 'POST', '/api/v1/auth/login', { body: { username: other.username, password: PASSWORD } })).statusCode, 200);
      } finally {
        await t.close();
      }
    });

    it('failed logins are limited per IP across accounts', async () => {
      const t = await newTestApp({ redis: store.redis, env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '100', LOGIN_MAX_FAILURES_PER_IP: '4' } });
      try {
        const statuses = [];
        for (let i = 0; i < 6; i++) statuses.push((await call(t.app, 'POST', '/api/v1/auth/login', { body: { username: `nobody${i}`, password: 'whatever1' } })).statusCode);
        assert.deepEqual(statuses, [401, 401, 401, 401, 429, 429]);
      } finally {
        await t.close();
      }
    });

    it('a successful login resets the account counter', async () => {
      const t = await newTestApp({ redis: store.redis, env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' } });
      try {
        const org = await makeOrg(t.services);
        const u = await makeUser(t.app, t.services, org.id);
        const attempt = (password: string) => call(t.app, 'POST', '/api/v1/auth/login', { body: { username: u.username, password } });
        await attempt('bad one 1');
        await attempt('bad one 2');
        assert.equal((await attempt(PASSWORD)).statusCode, 200);
        await attempt('bad one 3');
        await attempt('bad one 4');
        assert.equal((await attempt(PASSWORD)).statusCode, 200, 'two failures after a reset do not lock');
      } finally {
        await t.close();
      }
    });

    it('platform and relay webhook deliveries are not counted in the per-IP API limit (a gateway delivers every inbox from one address)', async () => {
      const t = await newTestApp({ redis: store.redis, env: { RATE_LIMIT_MAX: '20', OUTBOX_POLL_MS: '20' } });
      try {
        // Set up from the default address; the deliveries come from another one.
        const org = await makeOrg(t.services);
        const admin = await makeUser(t.app, t.services, org.id, 'admin');
        const inbox = (await call(t.app, 'POST', '/api/v1/inboxes', { token: admin.token, body: { name: 'WA', platform: 'whatsapp', credentials: { app_secret: 'rate-limit-secret', access_token: 'x' } } })).data as { id: string };
        const gateway = '203.0.113.77';
        const statuses: number[] = [];
        for (let i = 0; i < 30; i++) {
          const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: 'W', changes: [{ field: 'messages', value: { contacts: [{ profile: { name: 'C' }, wa_id: '15550001111' }], messages: [{ from: '15550001111', id: `wamid.rl${i}`, timestamp: '1700000000', type: 'text', text: { body: `m${i}` } }] } }] }] });
          const signature = `sha256=${createHmac('sha256', 'rate-limit-secret').update(body).digest('hex')}`;
          statuses.push((await t.app.inject({ method: 'POST', url: `/webhooks/whatsapp/${inbox.id}`, payload: body, remoteAddress: gateway, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature } })).statusCode);
        }
        assert.deepEqual(statuses, Array(30).fill(200));
        // Chatwoot's deliveries to the relay, refused here (no such inbox), are not counted either.
        for (let i = 0; i < 5; i++) {
          const r = await t.app.inject({ method: 'POST', url: '/webhooks/chatwoot/00000000-0000-4000-8000-000000000000?token=x', payload: '{}', remoteAddress: gateway, headers: { 'content-type': 'application/json' } });
          assert.notEqual(r.statusCode, 429);
        }
        // The same address still has its whole API budget, and no more.
        const api: number[] = [];
        for (let i = 0; i < 21; i++) api.push((await t.app.inject({ method: 'GET', url: '/api/v1/users/me', remoteAddress: gateway })).statusCode);
        assert.deepEqual(api, [...Array(20).fill(401), 429]);
        // Nothing refused, nothing lost: the 30 messages are stored.
        await waitFor(async () => (await t.db.db.selectFrom('messages').select('id').where('external_id', 'like', 'wamid.rl%').execute()).length === 30);
      } finally {
        await t.close();
      }
    });
  });
}
