import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUser, makeUsers, type TestUser } from '../../../test/helpers/factories.ts';
import { TestSocket } from '../../../test/helpers/ws-client.ts';

const SECRET_TOKEN = 'EAAG-very-secret-whatsapp-token-123456';

for (const dialect of testDialects()) {
  describe(`customer conversations (${dialect})`, () => {
    let t: TestApp;
    let admin: TestUser;
    let agent: TestUser;
    let otherAgent: TestUser;
    let superAgent: TestUser;
    let customer: TestUser;
    let otherCustomer: TestUser;
    let member: TestUser;
    let stranger: TestUser;
    let web: string;
    let wa: string;
    const redisUrl = process.env.PARLEY_TEST_REDIS_URL;
    before(async () => {
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0', ...(redisUrl ? { REDIS_URL: redisUrl, INTEGRATION_REDIS_EVENTS: 'true' } : {}) }, redis: Boolean(redisUrl) });
      const org = await makeOrg(t.services);
      admin = await makeUser(t.app, t.services, org.id, 'admin');
      agent = await makeUser(t.app, t.services, org.id, 'agent');
      otherAgent = await makeUser(t.app, t.services, org.id, 'agent');
      superAgent = await makeUser(t.app, t.services, org.id, 'super-agent');
      customer = await makeUser(t.app, t.services, org.id, 'customer');
      otherCustomer = await makeUser(t.app, t.services, org.id, 'customer');
      member = await makeUser(t.app, t.services, org.id, 'member');
      const org2 = await makeOrg(t.services);
      stranger = await makeUser(t.app, t.services, org2.id, 'admin');
      web = (await ok('POST', '/api/v1/inboxes', { name: 'Website', platform: 'web' }, admin)).id;
      wa = (await ok('POST', '/api/v1/inboxes', { name: 'WhatsApp', platform: 'whatsapp', credentials: { access_token: SECRET_TOKEN, app_secret: 'app-secret-xyz' } }, admin)).id;
      for (const inbox of [web, wa]) await ok('POST', `/api/v1/inboxes/${inbox}/members`, { user_id: agent.id }, admin);
    });
    after(() => t.close());

    const ok = async (method: string, url: string, body: Record<string, unknown> | undefined, who: TestUser) => {
      const r = await call(t.app, method, url, { token: who.token, body });
      assert.ok(r.statusCode < 300, `${method} ${url} as ${who.username}: ${r.statusCode} ${r.body}`);
      return r.data;
    };
    const status = async (method: string, url: string, body: Record<string, unknown> | undefined, who: TestUser) => (await call(t.app, method, url, { token: who.token, body })).statusCode;

    it('inboxes: credentials are write-only and never logged; agents see only their inboxes; other organizations see nothing', async () => {
      const asAdmin = await ok('GET', `/api/v1/inboxes/${wa}`, undefined, admin);
      assert.equal(asAdmin.has_credentials, true);
      assert.match(asAdmin.webhook_url, new RegExp(`/webhooks/whatsapp/${wa}$`));
      assert.ok(asAdmin.verify_token.length >= 20);
      const asAgent = await ok('GET', `/api/v1/inboxes/${wa}`, undefined, agent);
      assert.equal(asAgent.webhook_url, null, 'webhook details are for admins');
      assert.equal(asAgent.verify_token, null);
      assert.deepEqual((await ok('GET', '/api/v1/inboxes', undefined, otherAgent)).data, [], 'an agent of no inbox sees none');
      assert.equal((await ok('GET', '/api/v1/inboxes', undefined, superAgent)).data.length, 2);
      assert.equal(await status('GET', `/api/v1/inboxes/${wa}`, undefined, otherAgent), 404);
      assert.equal(await status('GET', `/api/v1/inboxes/${wa}`, undefined, stranger), 404);
      assert.equal(await status('POST', '/api/v1/inboxes', { name: 'x', platform: 'telegram' }, agent), 403);
      assert.equal(await status('GET', '/api/v1/inboxes', undefined, member), 403);
      assert.equal(await status('POST', '/api/v1/inboxes', { name: 'WhatsApp', platform: 'whatsapp' }, admin), 409);
      await ok('PATCH', `/api/v1/inboxes/${wa}`, { credentials: { access_token: `${SECRET_TOKEN}-rotated` } }, admin);
      // The secret is in no answer and no log line; the stored value is ciphertext.
      const everything = t.logs.join('\n') + JSON.stringify(await ok('GET', '/api/v1/inboxes', undefined, admin));
      assert.ok(!everything.includes(SECRET_TOKEN));
      assert.ok(!everything.includes('app-secret-xyz'));
      const stored = await t.db.db.selectFrom('inboxes').select('credentials_enc').where('id', '=', wa).executeTakeFirstOrThrow();
      assert.ok(stored.credentials_enc && !stored.credentials_enc.includes(SECRET_TOKEN));
      const row = (await t.services.inboxes.getRow(admin.orgId, wa))!;
      assert.equal(t.services.inboxes.credentials(row).access_token, `${SECRET_TOKEN}-rotated`);
    });

    it('contacts: E.164, one contact for both forms of a Brazilian mobile, never a 9 on a landline; invalid numbers refused; merge', async () => {
      const c = await ok('POST', '/api/v1/contacts', { name: 'Maria', phone: '+55 81 98788-5943', custom_attributes: { plan: 'gold' } }, agent);
      assert.equal(c.phone, '+5581987885943');
      const dup = await call(t.app, 'POST', '/api/v1/contacts', { token: agent.token, body: { phone: '558187885943' } });
      assert.equal(dup.statusCode, 409);
      assert.equal(dup.data.error.code, 'contact.phone_taken');
      const bad = await call(t.app, 'POST', '/api/v1/contacts', { token: agent.token, body: { phone: '+55 81 1234' } });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.data.error.code, 'contact.invalid_phone');
      const landline = await ok('POST', '/api/v1/contacts', { phone: '+55 11 5136-2804' }, agent);
      assert.equal(landline.phone, '+551151362804');
      // The platform reports the 12-digit registered form: still Maria, under concurrent first sights.
      const seen = await Promise.all(Array.from({ length: 5 }, () => t.services.contacts.resolve(admin.orgId, wa, '558187885943', { phone: '558187885943', name: 'M.' })));
      assert.deepEqual([...new Set(seen.map((s) => s.contact.id))], [c.id]);
      const again = await ok('GET', `/api/v1/contacts/${c.id}`, undefined, agent);
      assert.deepEqual(again.identities, [{ inbox_id: wa, external_id: '558187885943' }]);
      assert.equal((await ok('GET', `/api/v1/contacts?q=${encodeURIComponent('558187885943')}`, undefined, agent)).data[0].id, c.id, 'searching by the other form finds her');
      const other = await ok('POST', '/api/v1/contacts', { name: 'Maria (email)', email: 'Maria@Example.com', custom_attributes: { tier: 2 } }, agent);
      const merged = await ok('POST', `/api/v1/contacts/${c.id}/merge`, { from_id: other.id }, agent);
      assert.equal(merged.email, 'maria@example.com');
      assert.deepEqual(merged.custom_attributes, { plan: 'gold', tier: 2 });
      assert.equal(await status('GET', `/api/v1/contacts/${other.id}`, undefined, agent), 404);
      assert.equal(await status('GET', '/api/v1/contacts', undefined, customer), 403);
      assert.equal(await status('GET', `/api/v1/contacts/${c.id}`, undefined, stranger), 404);
    });

    it('a customer starts a web chat and sees only their own; agents of the inbox, super-agents and admins see it; nobody else', async () => {
      const conv = await ok('POST', '/api/v1/conversations', { body: 'Hello, I need help' }, customer);
      assert.equal(conv.status, 'open');
      assert.equal(conv.inbox_id, web);
      const mine = await ok('GET', '/api/v1/conversations', undefined, customer);
      assert.deepEqual(mine.data.map((c: { id: string }) => c.id), [conv.id]);
      for (const who of [agent, superAgent, admin]) assert.equal(await status('GET', `/api/v1/conversations/${conv.id}`, undefined, who), 200, who.username);
      for (const who of [otherCustomer, otherAgent, member, stranger]) assert.equal(await status('GET', `/api/v1/conversations/${conv.id}`, undefined, who), 404, who.username);
      assert.equal(await status('GET', `/api/v1/conversations/${conv.id}/messages`, undefined, otherAgent), 404);
      assert.ok((await ok('GET', '/api/v1/conversations', undefined, agent)).data.some((c: { id: string }) => c.id === conv.id));
      assert.ok(!(await ok('GET', '/api/v1/conversations', undefined, otherAgent)).data.some((c: { id: string }) => c.id === conv.id));
      assert.deepEqual((await ok('GET', '/api/v1/conversations', undefined, otherCustomer)).data, []);
      // Customers cannot manage.
      assert.equal(await status('PATCH', `/api/v1/conversations/${conv.id}/status`, { status: 'resolved' }, customer), 403);
      assert.equal(await status('PATCH', `/api/v1/conversations/${conv.id}/assign`, { assignee_id: agent.id }, customer), 403);
    });

    it('private notes never reach the customer: history, the message, threads, search, realtime', async () => {
      const conv = await ok('POST', '/api/v1/conversations', { body: 'where is my order?' }, customer);
      const note = await ok('POST', `/api/v1/conversations/${conv.id}/messages`, { body: 'internal: customer is VIP, refund ok', private: true }, agent);
      await ok('POST', `/api/v1/conversations/${conv.id}/messages`, { body: 'On its way!' }, agent);
      const staffView = (await ok('GET', `/api/v1/conversations/${conv.id}/messages`, undefined, agent)).data.map((m: { body: string }) => m.body);
      assert.deepEqual(staffView, ['where is my order?', 'internal: customer is VIP, refund ok', 'On its way!']);
      const customerView = (await ok('GET', `/api/v1/conversations/${conv.id}/messages`, undefined, customer)).data.map((m: { body: string }) => m.body);
      assert.deepEqual(customerView, ['where is my order?', 'On its way!']);
      assert.equal(await status('GET', `/api/v1/messages/${note.id}`, undefined, customer), 404);
      assert.equal(await status('GET', `/api/v1/messages/${note.id}/thread`, undefined, customer), 404);
      const found = await ok('GET', `/api/v1/search?q=${encodeURIComponent('VIP')}`, undefined, customer);
      assert.deepEqual(found.data, []);
      // A customer cannot write a private note, nor can anyone in team chat.
      assert.equal(await status('POST', `/api/v1/conversations/${conv.id}/messages`, { body: 'sneaky', private: true }, customer), 400);
      // Realtime: the customer's socket gets the public reply, not the note; the agent's gets both.
      await t.app.listen({ port: 0, host: '127.0.0.1' }).catch(() => undefined);
      const base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
      const cs = await TestSocket.connect(base, customer.token);
      const as = await TestSocket.connect(base, agent.token);
      try {
        await cs.request({ type: 'subscribe', channel_id: conv.id });
        await as.request({ type: 'subscribe', channel_id: conv.id });
        await ok('POST', `/api/v1/conversations/${conv.id}/messages`, { body: 'note 2', private: true }, agent);
        await ok('POST', `/api/v1/conversations/${conv.id}/messages`, { body: 'public 2' }, agent);
        await as.next((f) => f.type === 'message' && f.payload.body === 'public 2');
        await cs.next((f) => f.type === 'message' && f.payload.body === 'public 2');
        assert.ok(as.frames.some((f) => f.type === 'message' && f.payload.body === 'note 2'));
        assert.ok(!cs.frames.some((f) => JSON.stringify(f).includes('note 2')), 'the note never reached the customer');
        // Resuming as the customer does not replay notes either.
        const r = await TestSocket.connect(base, customer.token);
        await r.request({ type: 'subscribe', channel_id: conv.id, since_seq: 0 });
        assert.ok(!r.frames.some((f) => JSON.stringify(f).includes('note 2') || JSON.stringify(f).includes('VIP')));
        r.ws.terminate();
      } finally {
        cs.ws.terminate();
        as.ws.terminate();
      }
    });

    it('assignment and status: only inbox agents (or super-agents, admins) are assignable; snooze needs a future time; a customer message reopens', async () => {
      const conv = await ok('POST', '/api/v1/conversations', { body: 'hi' }, customer);
      assert.equal(await status('PATCH', `/api/v1/conversations/${conv.id}/assign`, { assignee_id: otherAgent.id }, admin), 400);
      assert.equal((await ok('PATCH', `/api/v1/conversations/${conv.id}/assign`, { assignee_id: agent.id }, admin)).assignee_id, agent.id);
      assert.ok((await ok('GET', '/api/v1/conversations?mine=true', undefined, agent)).data.some((c: { id: string }) => c.id === conv.id));
      assert.equal((await ok('PATCH', `/api/v1/conversations/${conv.id}/assign`, { assignee_id: null }, agent)).assignee_id, null);
      // Teams: admins make them; a conversation is assigned to one of this organization's teams.
      const team = await ok('POST', '/api/v1/teams', { name: `billing-${dialect}` }, admin);
      await ok('PUT', `/api/v1/teams/${team.id}/members/${agent.id}`, undefined, admin);
      assert.equal(await status('POST', '/api/v1/teams', { name: 'x' }, agent), 403);
      assert.deepEqual((await ok('GET', '/api/v1/teams', undefined, agent)).data.find((x: { id: string }) => x.id === team.id).member_ids, [agent.id]);
      assert.equal((await ok('PATCH', `/api/v1/conversations/${conv.id}/assign`, { team_id: team.id }, agent)).team_id, team.id);
      assert.equal(await status('PATCH', `/api/v1/conversations/${conv.id}/assign`, { team_id: '00000000-0000-4000-8000-000000000000' }, agent), 404);
      assert.deepEqual((await ok('GET', `/api/v1/conversations?team_id=${team.id}`, undefined, agent)).data.map((c: { id: string }) => c.id), [conv.id]);
      assert.equal(await status('PATCH', `/api/v1/conversations/${conv.id}/status`, { status: 'snoozed', snoozed_until: '2000-01-01T00:00:00Z' }, agent), 400);
      const snoozed = await ok('PATCH', `/api/v1/conversations/${conv.id}/status`, { status: 'snoozed', snoozed_until: new Date(Date.now() + 3_600_000).toISOString() }, agent);
      assert.equal(snoozed.status, 'snoozed');
      assert.ok(snoozed.snoozed_until);
      for (const s of ['pending', 'resolved', 'closed']) assert.equal((await ok('PATCH', `/api/v1/conversations/${conv.id}/status`, { status: s }, agent)).status, s);
      await ok('POST', `/api/v1/conversations/${conv.id}/messages`, { body: 'still broken' }, customer);
      const reopened = await ok('GET', `/api/v1/conversations/${conv.id}`, undefined, agent);
      assert.equal(reopened.status, 'open');
      assert.equal(reopened.snoozed_until, null);
      assert.equal((await ok('PATCH', `/api/v1/conversations/${conv.id}/priority`, { priority: 'urgent' }, agent)).priority, 'urgent');
      assert.equal((await ok('POST', `/api/v1/conversations/${conv.id}/archive`, undefined, agent)).archived, true);
      assert.ok((await ok('GET', '/api/v1/conversations?archived=true', undefined, agent)).data.some((c: { id: string }) => c.id === conv.id));
      assert.equal(await status('DELETE', `/api/v1/conversations/${conv.id}`, undefined, agent), 403);
      assert.equal(await status('DELETE', `/api/v1/conversations/${conv.id}`, undefined, superAgent), 204);
      // Every change left its integration event in the outbox, in the same transaction.
      if (redisUrl) {
        // Member changes of any conversation are integration events too.
        const channel = await ok('POST', '/api/v1/channels', { name: `events-${dialect}` }, member);
        await ok('POST', `/api/v1/channels/${channel.id}/members`, { user_id: agent.id }, member);
        await ok('DELETE', `/api/v1/channels/${channel.id}/members/${agent.id}`, undefined, member);
        const names = (await t.db.db.selectFrom('outbox').select('event_name').execute()).map((r) => r.event_name);
        for (const n of ['chat.conversation.member_added', 'chat.conversation.member_removed']) assert.ok(names.includes(n), `${n} recorded`);
        for (const n of ['chat.conversation.new', 'chat.message.new', 'chat.conversation.assigned', 'chat.conversation.status_changed', 'chat.contact.new']) assert.ok(names.includes(n), `${n} recorded`);
      }
    });

    it('auto-assignment: round robin among online agents, fair under concurrency, within capacity', async () => {
      const agents = await makeUsers(t.app, t.services, admin.orgId, 3, 'agent');
      const inbox = (await ok('POST', '/api/v1/inboxes', { name: `Auto ${dialect}`, platform: 'api', auto_assign: true, agent_capacity: 2 }, admin)).id;
      for (const a of [...agents, otherAgent]) await ok('POST', `/api/v1/inboxes/${inbox}/members`, { user_id: a.id }, admin);
      await t.app.listen({ port: 0, host: '127.0.0.1' }).catch(() => undefined);
      const base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
      // The three are online; otherAgent is not, so never chosen.
      const sockets = await Promise.all(agents.map((a) => TestSocket.connect(base, a.token)));
      try {
        const contacts = await Promise.all(Array.from({ length: 7 }, (_, i) => ok('POST', '/api/v1/contacts', { name: `auto ${dialect} ${i}` }, admin)));
        const convs = await Promise.all(contacts.map((c) => ok('POST', '/api/v1/conversations', { inbox_id: inbox, contact_id: c.id }, admin)));
        const final = await Promise.all(convs.map((c) => ok('GET', `/api/v1/conversations/${c.id}`, undefined, admin)));
        const load = new Map<string | null, number>();
        for (const c of final) load.set(c.assignee_id, (load.get(c.assignee_id) ?? 0) + 1);
        for (const a of agents) assert.equal(load.get(a.id), 2, `two each (capacity 2): ${JSON.stringify([...load])}`);
        assert.equal(load.get(null), 1, 'the seventh waits: everyone is at capacity');
        assert.equal(load.get(otherAgent.id), undefined, 'offline agents get nothing');
      } finally {
        for (const s of sockets) s.ws.terminate();
      }
    });

    it('reassigns an agent’s open conversations when they go offline, if the inbox asks for it', async () => {
      const [first, second] = await makeUsers(t.app, t.services, admin.orgId, 2, 'agent');
      const inbox = (await ok('POST', '/api/v1/inboxes', { name: `Reassign ${dialect}`, platform: 'api', auto_assign: true, reassign_offline: true }, admin)).id;
      for (const a of [first!, second!]) await ok('POST', `/api/v1/inboxes/${inbox}/members`, { user_id: a.id }, admin);
      await t.app.listen({ port: 0, host: '127.0.0.1' }).catch(() => undefined);
      const base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
      const s1 = await TestSocket.connect(base, first!.token);
      const contact = await ok('POST', '/api/v1/contacts', { name: `reassign ${dialect}` }, admin);
      const conv = await ok('POST', '/api/v1/conversations', { inbox_id: inbox, contact_id: contact.id }, admin);
      assert.equal(conv.assignee_id, first!.id, 'the only one online');
      const s2 = await TestSocket.connect(base, second!.token);
      try {
        await s1.close();
        let now = conv.assignee_id as string | null;
        for (let i = 0; i < 40 && now !== second!.id; i++) {
          await new Promise((r) => setTimeout(r, 50));
          now = (await ok('GET', `/api/v1/conversations/${conv.id}`, undefined, admin)).assignee_id;
        }
        assert.equal(now, second!.id, 'moved to the agent still online');
      } finally {
        s2.ws.terminate();
      }
    });
  });
}
