import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { buildApp } from '../../app.ts';
import { loadConfig } from '../../config/config.ts';
import { createDb } from '../../storage/db.ts';
import { call, newTestApp, TEST_JWT_SECRET, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUser, type TestUser } from '../../../test/helpers/factories.ts';
import type { Principal } from '../../access/access.ts';
import { messagePageJson } from './messages.service.ts';

type Msg = { id: string; body: string; deleted: boolean; edited_at: string | null; pinned: boolean; reply_count: number; reactions: Array<{ emoji: string; count: number; me: boolean }> };

for (const dialect of testDialects()) {
  describe(`history page cache (${dialect})`, () => {
    let t: TestApp;
    let alice: TestUser;
    let bob: TestUser;
    let id: string;
    before(async () => {
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0', HISTORY_CACHE_PAGES: '100' } });
      const org = await makeOrg(t.services);
      alice = await makeUser(t.app, t.services, org.id, 'member');
      bob = await makeUser(t.app, t.services, org.id, 'member');
      const r = await call(t.app, 'POST', '/api/v1/channels', { token: alice.token, body: { name: `cache-${dialect}`, members: [bob.id] } });
      id = r.data.id;
    });
    after(() => t.close());

    const page = async (who: TestUser = alice): Promise<Msg[]> => {
      const r = await call(t.app, 'GET', `/api/v1/channels/${id}/messages?limit=10`, { token: who.token });
      assert.equal(r.statusCode, 200, r.body);
      return r.data.data;
    };
    const ok = async (method: string, url: string, body?: Record<string, unknown>, who: TestUser = alice) => {
      const r = await call(t.app, method, url, { token: who.token, body });
      assert.ok(r.statusCode < 300, `${method} ${url}: ${r.statusCode} ${r.body}`);
      return r.data;
    };

    it('serves an unchanged page from the cache and every change to the conversation at once', async () => {
      const m1 = await ok('POST', `/api/v1/channels/${id}/messages`, { body: 'one' });
      await page();
      const stats = t.services.messages.historyCacheStats;
      const hits = stats.hits;
      assert.deepEqual((await page()).map((m) => m.body), ['one']);
      assert.equal(stats.hits, hits + 1, 'the same page again, nothing changed: a hit');

      await ok('POST', `/api/v1/channels/${id}/messages`, { body: 'two' }, bob);
      assert.deepEqual((await page()).map((m) => m.body), ['one', 'two'], 'new message');
      await ok('PUT', `/api/v1/messages/${m1.id}`, { body: 'one, edited' });
      let first = (await page())[0]!;
      assert.equal(first.body, 'one, edited', 'edit');
      assert.ok(first.edited_at);
      await ok('POST', `/api/v1/messages/${m1.id}/reactions`, { emoji: '👍' }, bob);
      assert.deepEqual((await page())[0]!.reactions, [{ emoji: '👍', count: 1, me: false }], 'reaction');
      assert.deepEqual((await page(bob))[0]!.reactions, [{ emoji: '👍', count: 1, me: true }], 'the same cached page, "me" per reader');
      await ok('DELETE', `/api/v1/messages/${m1.id}/reactions/${encodeURIComponent('👍')}`, undefined, bob);
      assert.deepEqual((await page())[0]!.reactions, [], 'reaction removed');
      await ok('POST', `/api/v1/messages/${m1.id}/pin`);
      assert.equal((await page())[0]!.pinned, true, 'pin');
      await ok('DELETE', `/api/v1/messages/${m1.id}/pin`);
      assert.equal((await page())[0]!.pinned, false, 'unpin');
      await ok('POST', `/api/v1/messages/${m1.id}/thread`, { body: 'a reply' }, bob);
      first = (await page())[0]!;
      assert.equal(first.reply_count, 1, 'thread reply counted on the root');
      await ok('DELETE', `/api/v1/messages/${m1.id}`);
      first = (await page())[0]!;
      assert.equal(first.deleted, true, 'delete');
      assert.equal(first.body, '');
    });

    it('a page the same for every reader keeps its response body: made once, sent to everyone; not with reactions, not after a change', async () => {
      const principal = async (x: TestUser): Promise<Principal> => ({ kind: 'user', orgId: x.orgId, userId: x.id, role: 'member', platformAdmin: false, sessionId: null, apiKeyId: null, user: (await t.services.users.getRow(x.orgId, x.id)) ?? null });
      const [pa, pb] = [await principal(alice), await principal(bob)];
      const r = await call(t.app, 'POST', '/api/v1/channels', { token: alice.token, body: { name: `bodies-${dialect}`, members: [bob.id] } });
      const channel: string = r.data.id;
      const m = await ok('POST', `/api/v1/channels/${channel}/messages`, { body: 'plain' });
      const list = (who: Principal) => t.services.messages.list(who, channel, { limit: 10 });
      assert.equal((await list(pa)).body, null, 'a page read once (a cache miss) keeps no body');
      const first = await list(pa);
      assert.ok(first.body, 'kept with the cached page from its second read on');
      assert.equal((await list(pb)).body, first.body, 'the same bytes for another reader, not made again');
      const http = await call(t.app, 'GET', `/api/v1/channels/${channel}/messages?limit=10`, { token: bob.token });
      assert.equal(http.body, first.body!.toString('utf8'), 'what the route sends');
      assert.deepEqual(JSON.parse(http.body), JSON.parse(messagePageJson({ ...first, body: undefined }) as string), 'the same JSON as built per request');
      await ok('POST', `/api/v1/messages/${m.id}/reactions`, { emoji: '👍' }, bob);
      const [ra, rb] = [await list(pa), await list(pb)];
      assert.equal(ra.body, undefined, 'a page with reactions is per reader');
      assert.equal(rb.body, undefined);
      assert.deepEqual([JSON.parse(ra.data[0]!).reactions[0].me, JSON.parse(rb.data[0]!).reactions[0].me], [false, true]);
      await ok('DELETE', `/api/v1/messages/${m.id}/reactions/${encodeURIComponent('👍')}`, undefined, bob);
      await ok('POST', `/api/v1/channels/${channel}/messages`, { body: 'second' }, bob);
      await list(pa);
      const after = await list(pa);
      assert.ok(after.body && after.body !== first.body);
      assert.deepEqual((JSON.parse(after.body.toString('utf8')) as { data: Msg[] }).data.map((x) => [x.body, x.reactions.length]), [['plain', 0], ['second', 0]]);
    });

    if (dialect === 'postgres') {
      it('another process on the same database never serves a page older than the last change', async () => {
        const config = loadConfig({ NODE_ENV: 'test', JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'silent', METRICS_ENABLED: 'false', HISTORY_CACHE_PAGES: '100' });
        const database = createDb(t.db.url);
        const other = await buildApp({ config, database, redis: null, jwtSecret: TEST_JWT_SECRET, loggerInstance: pino({ level: 'silent' }) });
        try {
          const read = async () => {
            const r = await call(other, 'GET', `/api/v1/channels/${id}/messages?limit=10`, { token: alice.token });
            assert.equal(r.statusCode, 200, r.body);
            return (r.data.data as Msg[]).map((m) => m.body);
          };
          const before = await read();
          assert.deepEqual(await read(), before);
          const m = await ok('POST', `/api/v1/channels/${id}/messages`, { body: 'from node A' });
          assert.deepEqual(await read(), [...before, 'from node A']);
          await ok('PUT', `/api/v1/messages/${m.id}`, { body: 'edited on node A' });
          assert.equal((await read()).at(-1), 'edited on node A');
        } finally {
          await other.close();
          await database.close();
        }
      });
    }
  });
}
