import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUser, type TestUser } from '../../../test/helpers/factories.ts';
import { freePort } from '../../../test/helpers/process.ts';
import { signWebhook, verifyWebhook } from './signature.ts';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A local webhook receiver: records every request, answers `status` (changeable). */
async function startReceiver(port = 0, status = 200) {
  const received: Received[] = [];
  const state = { status };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(state.status, { 'content-type': 'text/plain' }).end(state.status >= 300 ? 'receiver says no' : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    received,
    state,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/parley`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ENV = {
  WEBHOOKS_ALLOW_PRIVATE: 'true',
  OUTBOX_POLL_MS: '50',
  OUTBOX_RETRY_BASE_MS: '50',
  OUTBOX_RETRY_MAX_MS: '300',
  // Enough attempts for the down-then-up test to see the row waiting before it gives up.
  OUTBOX_MAX_ATTEMPTS: '6',
  WEBHOOK_TIMEOUT_MS: '2000',
};

for (const dialect of testDialects()) {
  describe(`webhooks (${dialect})`, () => {
    let t: TestApp;
    let admin: TestUser;
    let otherAdmin: TestUser;
    const members: Record<string, TestUser> = {};
    before(async () => {
      t = await newTestApp({ dialect, env: ENV });
      const org = await makeOrg(t.services);
      admin = await makeUser(t.app, t.services, org.id, 'admin');
      for (const role of ['super-agent', 'agent', 'member', 'customer']) members[role] = await makeUser(t.app, t.services, org.id, role);
      otherAdmin = await makeUser(t.app, t.services, (await makeOrg(t.services)).id, 'admin');
    });
    after(() => t.close());

    const createEndpoint = async (url: string, events?: string[], token = admin.token) => {
      const r = await call(t.app, 'POST', '/api/v1/webhooks', { token, body: events ? { url, events } : { url } });
      assert.equal(r.statusCode, 201, r.body);
      return r.data as { id: string; url: string; events: string[]; active: boolean; secret: string };
    };
    const record = async (orgId: string, name: string, data: Record<string, unknown>) => {
      const id = await t.db.db.transaction().execute((trx) => t.services.integrations.record(trx, orgId, name, data));
      t.services.integrations.kick();
      return id;
    };
    const deliveries = async (endpointId: string, token = admin.token) => {
      const r = await call(t.app, 'GET', `/api/v1/webhooks/${endpointId}/deliveries`, { token });
      assert.equal(r.statusCode, 200, r.body);
      return r.data.data as Array<{ id: string; event_id: string; status: string; attempts: number; response_status: number | null; last_error: string | null; delivered_at: string | null }>;
    };

    it('a receiver that is down, then up: retried until delivered, signed by the documented recipe, logged, redeliverable', async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}/hooks/parley`;
      const ep = await createEndpoint(url, ['chat.message.*']);
      assert.match(ep.secret, /^whsec_[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(ep.events, ['chat.message.*']);

      const eventId = await record(admin.orgId, 'chat.message.new', { conversation_id: 'c1', message: { id: 'm1', body: 'hello' } });
      await record(admin.orgId, 'chat.conversation.new', { conversation: { id: 'c2' } }); // filtered out

      // Down: attempts fail and are visible in the delivery log while the row waits.
      const failing = await until('failed attempts', async () => (await deliveries(ep.id)).find((d) => d.attempts >= 2));
      assert.equal(failing.status, 'pending');
      assert.equal(failing.event_id, eventId);
      assert.match(failing.last_error ?? '', /ECONNREFUSED/);

      // Up: delivered on a later attempt.
      const receiver = await startReceiver(port);
      try {
        const got = await until('delivery', () => receiver.received[0]);
        const h = got.headers;
        assert.equal(h['content-type'], 'application/json');
        assert.equal(h['x-parley-event'], 'chat.message.new');
        assert.equal(h['x-parley-event-id'], eventId);
        assert.equal(h['x-parley-delivery-id'], failing.id);
        const body = JSON.parse(got.body);
        assert.deepEqual(body, { event_id: eventId, event: 'chat.message.new', occurred_at: body.occurred_at, org_id: admin.orgId, conversation_id: 'c1', message: { id: 'm1', body: 'hello' } });
        // The recipe of docs/events.md, by hand, and through the verifier receivers can copy.
        const ts = String(h['x-parley-timestamp']);
        assert.equal(h['x-parley-signature'], signWebhook(ep.secret, ts, got.body));
        assert.equal(verifyWebhook(ep.secret, { timestamp: ts, signature: String(h['x-parley-signature']) }, got.body, Math.floor(Date.now() / 1000)), true);

        const done = await until('logged as done', async () => (await deliveries(ep.id)).find((d) => d.id === failing.id && d.status === 'done'));
        assert.equal(done.response_status, 200);
        assert.equal(done.last_error, null);
        assert.ok(done.delivered_at, 'delivered_at');
        assert.ok(done.attempts >= 2, `attempts: ${done.attempts}`);
        assert.equal(receiver.received.length, 1, 'the filtered-out event was not sent');

        // Manual redelivery: sent again, same event id, fresh attempts.
        const re = await call(t.app, 'POST', `/api/v1/webhooks/deliveries/${failing.id}/redeliver`, { token: admin.token });
        assert.equal(re.statusCode, 202, re.body);
        assert.equal(re.data.status, 'pending');
        assert.equal(re.data.attempts, 0);
        await until('redelivered', () => receiver.received.length === 2);
        assert.equal(receiver.received[1]!.headers['x-parley-event-id'], eventId);
        assert.equal(receiver.received[1]!.body, got.body, 'the same bytes');
        const again = await until('done again', async () => (await deliveries(ep.id)).find((d) => d.id === failing.id && d.status === 'done'));
        assert.equal(again.attempts, 1);
      } finally {
        await receiver.close();
      }
    });

    it('a receiver that keeps failing: failed after the last attempt, listed in /outbox?status=failed and metrics; redelivery after the fix', async () => {
      const receiver = await startReceiver(0, 500);
      try {
        const ep = await createEndpoint(receiver.url);
        const eventId = await record(admin.orgId, 'chat.conversation.status_changed', { conversation_id: 'c9', status: 'resolved', previous_status: 'open' });
        const failed = await until('failed', async () => (await deliveries(ep.id)).find((d) => d.event_id === eventId && d.status === 'failed'));
        assert.equal(failed.attempts, 6);
        assert.equal(failed.response_status, 500);
        assert.equal(failed.last_error, 'HTTP 500: receiver says no');
        assert.equal(receiver.received.length, 6);

        const list = await call(t.app, 'GET', '/api/v1/outbox?status=failed', { token: admin.token });
        assert.equal(list.statusCode, 200, list.body);
        assert.ok(list.data.data.some((d: { id: string }) => d.id === failed.id), 'listed as failed');
        assert.ok(list.data.data.every((d: { status: string }) => d.status === 'failed'), 'only failed rows');
        const pending = await call(t.app, 'GET', '/api/v1/outbox?status=pending&target=webhook', { token: admin.token });
        assert.equal(pending.statusCode, 200);
        assert.ok(!pending.data.data.some((d: { id: string }) => d.id === failed.id), 'not pending');
        const metrics = await t.app.metrics.registry.metrics();
        assert.match(metrics, /chat_outbox_deliveries_total\{target="webhook",outcome="failed"\} [1-9]/);
        assert.match(metrics, /chat_outbox_deliveries_total\{target="webhook",outcome="retry"\} [1-9]/);
        assert.match(metrics, /chat_outbox_depth \d+/);

        receiver.state.status = 204;
        const re = await call(t.app, 'POST', `/api/v1/outbox/${failed.id}/redeliver`, { token: admin.token });
        assert.equal(re.statusCode, 202, re.body);
        const done = await until('done', async () => (await deliveries(ep.id)).find((d) => d.id === failed.id && d.status === 'done'));
        assert.equal(done.response_status, 204);
      } finally {
        await receiver.close();
      }
    });

    it('pages the delivery log with a cursor', async () => {
      const ep = await createEndpoint('http://127.0.0.1:9/none', ['chat.page.*']);
      await call(t.app, 'PATCH', `/api/v1/webhooks/${ep.id}`, { token: admin.token, body: { active: false } });
      // Inactive endpoints get no rows: reactivate, then record.
      await call(t.app, 'PATCH', `/api/v1/webhooks/${ep.id}`, { token: admin.token, body: { active: true } });
      for (let i = 0; i < 5; i++) await record(admin.orgId, 'chat.page.test', { i });
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const r: any = await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}/deliveries?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: admin.token });
        assert.equal(r.statusCode, 200, r.body);
        seen.push(...r.data.data.map((d: { id: string }) => d.id));
        cursor = r.data.next_cursor;
      } while (cursor);
      assert.equal(seen.length, 5);
      assert.equal(new Set(seen).size, 5);
      const bad = await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}/deliveries?cursor=nonsense`, { token: admin.token });
      assert.equal(bad.statusCode, 400);
      assert.equal((await call(t.app, 'DELETE', `/api/v1/webhooks/${ep.id}`, { token: admin.token })).statusCode, 204);
      const after = await call(t.app, 'GET', '/api/v1/outbox?target=webhook&limit=200', { token: admin.token });
      const mine = after.data.data.filter((d: { endpoint_id: string }) => d.endpoint_id === ep.id);
      assert.equal(mine.length, 5, 'the log outlives the endpoint');
      assert.deepEqual(mine.map((d: { status: string; last_error: string }) => [d.status, d.last_error]), Array(5).fill(['failed', 'the webhook endpoint was deleted']));
    });

    it('CRUD: list, read, change, validate, rotate the secret, delete', async () => {
      const ep = await createEndpoint('http://127.0.0.1:9/crud');
      assert.deepEqual(ep.events, ['*']);
      assert.equal(ep.active, true);
      const list = await call(t.app, 'GET', '/api/v1/webhooks', { token: admin.token });
      assert.ok(list.data.data.some((e: { id: string }) => e.id === ep.id), 'listed');
      const patched = await call(t.app, 'PATCH', `/api/v1/webhooks/${ep.id}`, { token: admin.token, body: { events: ['chat.conversation.new', 'chat.message.*'], active: false, url: 'https://127.0.0.1:9/x' } });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.deepEqual(patched.data.events, ['chat.conversation.new', 'chat.message.*']);
      assert.equal(patched.data.active, false);
      assert.equal(patched.data.url, 'https://127.0.0.1:9/x');
      for (const body of [{ url: 'ftp://127.0.0.1/' }, { url: 'http://u:p@127.0.0.1/x' }, { events: ['Chat New'] }, { events: [] }, {}, { secret: 'mine' }]) {
        const r = await call(t.app, 'PATCH', `/api/v1/webhooks/${ep.id}`, { token: admin.token, body });
        assert.equal(r.statusCode, 400, JSON.stringify(body));
      }
      const rotated = await call(t.app, 'POST', `/api/v1/webhooks/${ep.id}/rotate-secret`, { token: admin.token });
      assert.equal(rotated.statusCode, 200);
      assert.match(rotated.data.secret, /^whsec_/);
      assert.notEqual(rotated.data.secret, ep.secret);
      assert.equal((await call(t.app, 'DELETE', `/api/v1/webhooks/${ep.id}`, { token: admin.token })).statusCode, 204);
      const gone = await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}`, { token: admin.token });
      assert.equal(gone.statusCode, 404);
      assert.equal(gone.data.error.code, 'webhook.not_found');
    });

    it('the signing secret appears only in the create and rotate answers: never in later answers, the database or the logs', async () => {
      const receiver = await startReceiver();
      try {
        const ep = await createEndpoint(receiver.url);
        const rotated = (await call(t.app, 'POST', `/api/v1/webhooks/${ep.id}/rotate-secret`, { token: admin.token })).data.secret as string;
        await record(admin.orgId, 'chat.contact.new', { contact: { id: 'k1' } });
        await until('delivery', () => receiver.received.length >= 1);
        assert.equal(receiver.received[0]!.headers['x-parley-signature'], signWebhook(rotated, String(receiver.received[0]!.headers['x-parley-timestamp']), receiver.received[0]!.body), 'signed with the new secret');
        const answers = [
          await call(t.app, 'GET', '/api/v1/webhooks', { token: admin.token }),
          await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}`, { token: admin.token }),
          await call(t.app, 'PATCH', `/api/v1/webhooks/${ep.id}`, { token: admin.token, body: { events: ['*'] } }),
          await call(t.app, 'GET', `/api/v1/webhooks/${ep.id}/deliveries`, { token: admin.token }),
          await call(t.app, 'GET', '/api/v1/outbox', { token: admin.token }),
          await call(t.app, 'GET', '/openapi.json'),
        ];
        const stored = JSON.stringify(await t.db.db.selectFrom('webhook_endpoints').selectAll().where('id', '=', ep.id).execute());
        const logs = t.logs.join('');
        assert.ok(logs.length > 0 && logs.includes('/api/v1/webhooks'), 'requests were logged');
        for (const secret of [ep.secret, rotated]) {
          const core = secret.slice('whsec_'.length);
          for (const a of answers) assert.ok(!a.body.includes(core), `${a.statusCode} answer leaks the secret`);
          assert.ok(!stored.includes(core), 'stored sealed');
          assert.ok(!logs.includes(core), 'never logged');
          assert.ok(!receiver.received.some((r) => JSON.stringify(r).includes(core)), 'never sent');
        }
      } finally {
        await receiver.close();
      }
    });

    it('access: admins (and API keys) manage webhooks and the outbox; other roles get 403; another organization’s objects are 404', async () => {
      const ep = await createEndpoint('http://127.0.0.1:9/matrix');
      const eventId = await record(admin.orgId, 'chat.conversation.assigned', { conversation_id: 'c', assignee_id: 'u', team_id: null, previous_assignee_id: null });
      const delivery = await until('row', async () => (await deliveries(ep.id)).find((d) => d.event_id === eventId));
      const routes: Array<[string, string, unknown?]> = [
        ['GET', '/api/v1/webhooks'],
        ['POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/x' }],
        ['GET', `/api/v1/webhooks/${ep.id}`],
        ['PATCH', `/api/v1/webhooks/${ep.id}`, { active: true }],
        ['POST', `/api/v1/webhooks/${ep.id}/rotate-secret`],
        ['GET', `/api/v1/webhooks/${ep.id}/deliveries`],
        ['POST', `/api/v1/webhooks/deliveries/${delivery.id}/redeliver`],
        ['GET', '/api/v1/outbox?status=pending'],
        ['POST', `/api/v1/outbox/${delivery.id}/redeliver`],
        ['DELETE', `/api/v1/webhooks/${ep.id}`],
      ];
      for (const [role, user] of Object.entries(members)) {
        for (const [method, url, body] of routes) {
          const r = await call(t.app, method as 'GET', url, { token: user.token, body });
          assert.equal(r.statusCode, 403, `${role} ${method} ${url}: ${r.body}`);
        }
      }
      for (const [method, url, body] of routes) {
        assert.equal((await call(t.app, method as 'GET', url, { body })).statusCode, 401, `anonymous ${method} ${url}`);
      }
      // Another organization's admin: the lists are its own; our objects do not exist for it.
      const theirList = await call(t.app, 'GET', '/api/v1/webhooks', { token: otherAdmin.token });
      assert.equal(theirList.statusCode, 200);
      assert.ok(!theirList.body.includes(ep.id), 'not in their list');
      const theirOutbox = await call(t.app, 'GET', '/api/v1/outbox', { token: otherAdmin.token });
      assert.ok(!theirOutbox.body.includes(delivery.id), 'not in their outbox');
      for (const [method, url, body] of routes.slice(2)) {
        if (url.endsWith('?status=pending')) continue;
        const r = await call(t.app, method as 'GET', url, { token: otherAdmin.token, body });
        assert.equal(r.statusCode, 404, `other org ${method} ${url}: ${r.body}`);
        assert.match(r.data.error.code, /^(webhook|outbox)\.not_found$/);
      }
      // The same requests as our admin work (same setup: the denials above are not for another reason).
      const key = await call(t.app, 'POST', '/api/v1/api-keys', { token: admin.token, body: { name: 'host' } });
      for (const token of [admin.token, key.data.key as string]) {
        for (const [method, url, body] of routes.slice(0, -1)) {
          const r = await call(t.app, method as 'GET', url, { token, body });
          assert.ok(r.statusCode < 300, `${method} ${url}: ${r.statusCode} ${r.body}`);
        }
      }
      assert.equal((await call(t.app, 'DELETE', `/api/v1/webhooks/${ep.id}`, { token: admin.token })).statusCode, 204);
    });
  });
}

describe('webhook URLs: private and loopback targets are refused by default (SECURITY.md class E)', () => {
  let t: TestApp;
  let admin: TestUser;
  before(async () => {
    t = await newTestApp();
    admin = await makeUser(t.app, t.services, (await makeOrg(t.services)).id, 'admin');
  });
  after(() => t.close());

  it('refuses loopback, private, link-local and mapped addresses, and names resolving to them', async () => {
    for (const url of ['http://127.0.0.1:8080/hook', 'http://localhost/hook', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://169.254.169.254/latest', 'http://10.0.0.8/', 'http://192.168.1.20/', 'http://0.0.0.0/']) {
      const r = await call(t.app, 'POST', '/api/v1/webhooks', { token: admin.token, body: { url } });
      assert.equal(r.statusCode, 400, url);
      assert.equal(r.data.error.code, 'webhook.url_not_allowed', url);
    }
    assert.equal((await call(t.app, 'GET', '/api/v1/webhooks', { token: admin.token })).data.data.length, 0);
  });

  it('re-checks at delivery time: an endpoint stored before the rule applied is not reached', async () => {
    const receiver = await startReceiver();
    try {
      // Written directly, as if saved while private targets were allowed.
      const sealed = t.services.secrets.seal('whsec_x');
      const now = new Date().toISOString();
      const id = '00000000-0000-4000-8000-00000000e001';
      await t.db.db.insertInto('webhook_endpoints').values({ id, org_id: admin.orgId, url: receiver.url, secret_enc: sealed, events: '["*"]', active: 1, created_at: now, updated_at: now }).execute();
      await t.db.db.transaction().execute((trx) => t.services.integrations.record(trx, admin.orgId, 'chat.contact.new', { contact: { id: 'k' } }));
      t.services.integrations.kick();
      const row = await until('attempt', async () => {
        const r = await call(t.app, 'GET', `/api/v1/webhooks/${id}/deliveries`, { token: admin.token });
        return r.data.data.find((d: { last_error: string | null }) => d.last_error !== null) as { last_error: string } | undefined;
      });
      assert.match(row.last_error, /refused: .*private or reserved address/);
      assert.equal(receiver.received.length, 0);
    } finally {
      await receiver.close();
    }
  });
});
