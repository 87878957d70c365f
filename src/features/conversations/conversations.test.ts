/**
 * Conversations, functionally: channels (create, list, filter, paginate, update, archive, delete,
 * join, leave, members), direct conversations (one per pair, also under concurrent creation) and
 * groups. The access matrix across principals is in test/security/conversations-access.test.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { makeOrg, makeUser, type TestUser } from '../../../test/helpers/factories.ts';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import type { Principal } from '../../access/access.ts';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
interface Conv {
  id: string;
  kind: string;
  name: string | null;
  is_member: boolean;
  member_role: string | null;
  archived: boolean;
  topic: string | null;
  purpose: string | null;
  created_by: string | null;
  last_seq: number;
}
interface Page {
  data: Conv[];
  next_cursor: string | null;
}

const codeOf = (r: { data: any }) => r.data?.error?.code as string | undefined;

for (const dialect of testDialects()) {
  describe(`conversations (${dialect})`, () => {
    let t: TestApp;
    let orgId: string;
    let owner: TestUser;
    let bob: TestUser;
    let carol: TestUser;
    let admin: TestUser;
    let customer: TestUser;
    let stranger: TestUser;

    before(async () => {
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0' } });
      const org = await makeOrg(t.services);
      orgId = org.id;
      owner = await makeUser(t.app, t.services, org.id, 'member');
      bob = await makeUser(t.app, t.services, org.id, 'member');
      carol = await makeUser(t.app, t.services, org.id, 'member');
      admin = await makeUser(t.app, t.services, org.id, 'admin');
      customer = await makeUser(t.app, t.services, org.id, 'customer');
      const other = await makeOrg(t.services);
      stranger = await makeUser(t.app, t.services, other.id, 'member');
    });
    after(() => t.close());

    const api = (who: TestUser, method: Method, url: string, body?: unknown) =>
      call(t.app, method, `/api/v1${url}`, { token: who.token, ...(body === undefined ? {} : { body }) });

    let n = 0;
    const uniqueName = (p = 'c') => `${p}-${++n}`;

    const createChannel = async (who: TestUser, body: Record<string, unknown>): Promise<Conv> => {
      const r = await api(who, 'POST', '/channels', body);
      assert.equal(r.statusCode, 201, r.body);
      return r.data as Conv;
    };
    const memberIds = async (id: string, who: TestUser = owner) => {
      const r = await api(who, 'GET', `/channels/${id}/members`);
      assert.equal(r.statusCode, 200, r.body);
      return (r.data.data as Array<{ user_id: string }>).map((m) => m.user_id).sort();
    };
    const roleOf = async (id: string, userId: string) => {
      const r = await api(owner, 'GET', `/channels/${id}/members`);
      assert.equal(r.statusCode, 200, r.body);
      return (r.data.data as Array<{ user_id: string; role: string }>).find((m) => m.user_id === userId)?.role;
    };
    const send = (who: TestUser, id: string, text = 'hi') => api(who, 'POST', `/channels/${id}/messages`, { body: text });
    /** Every page of a channel list, in order, as names. */
    const listAll = async (who: TestUser, path: string, query: string, limit: number) => {
      const pages: string[][] = [];
      let cursor: string | null = null;
      do {
        const qs: string = `?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const r = await api(who, 'GET', `${path}${qs}`);
        assert.equal(r.statusCode, 200, r.body);
        const page = r.data as Page;
        assert.ok(page.data.length <= limit, 'a page never holds more than the limit');
        pages.push(page.data.map((c) => c.name ?? '?'));
        cursor = page.next_cursor;
        assert.ok(pages.length <= 50, 'pagination terminates');
      } while (cursor !== null);
      return pages;
    };

    describe('creating channels', () => {
      it('creates a public channel whose creator is its owner and only member', async () => {
        const name = uniqueName('general');
        const c = await createChannel(owner, { name, topic: 'Company-wide', purpose: 'Announcements' });
        assert.equal(c.kind, 'public');
        assert.equal(c.name, name);
        assert.equal(c.topic, 'Company-wide');
        assert.equal(c.purpose, 'Announcements');
        assert.equal(c.created_by, owner.id);
        assert.equal(c.is_member, true);
        assert.equal(c.member_role, 'owner');
        assert.equal(c.archived, false);
        assert.equal(c.last_seq, 0);
        const got = await api(owner, 'GET', `/channels/${c.id}`);
        assert.equal(got.statusCode, 200);
        assert.deepEqual(got.data, c, 'what POST answered is what GET reads back');
        const members = await api(owner, 'GET', `/channels/${c.id}/members`);
        assert.deepEqual(
          members.data.data.map((m: { user_id: string; role: string; username: string }) => [m.user_id, m.role, m.username]),
          [[owner.id, 'owner', owner.username]],
        );
        // Another staff member sees it, as a non-member.
        const asBob = await api(bob, 'GET', `/channels/${c.id}`);
        assert.equal(asBob.statusCode, 200);
        assert.equal(asBob.data.is_member, false);
        assert.equal(asBob.data.member_role, null);
      });

      it('creates a private channel with initial members, invisible to everyone else', async () => {
        const c = await createChannel(owner, { name: uniqueName('secret'), private: true, members: [bob.id, owner.id] });
        assert.equal(c.kind, 'private');
        assert.equal(c.member_role, 'owner');
        assert.deepEqual(await memberIds(c.id), [owner.id, bob.id].sort(), 'listing yourself in members does not add you twice');
        assert.equal(await roleOf(c.id, bob.id), 'member');
        const asBob = await api(bob, 'GET', `/channels/${c.id}`);
        assert.equal(asBob.statusCode, 200);
        assert.equal(asBob.data.member_role, 'member');
        const asCarol = await api(carol, 'GET', `/channels/${c.id}`);
        assert.equal(asCarol.statusCode, 404);
        assert.equal(codeOf(asCarol), 'conversation.not_found');
      });

      it('refuses a duplicate name in the organization with 409 conversation.name_taken, public or private', async () => {
        const name = uniqueName('dup');
        const first = await createChannel(owner, { name });
        for (const body of [{ name }, { name, private: true }]) {
          const again = await api(bob, 'POST', '/channels', body);
          assert.equal(again.statusCode, 409, again.body);
          assert.equal(codeOf(again), 'conversation.name_taken');
        }
        const rows = await t.db.db.selectFrom('conversations').select('id').where('org_id', '=', orgId).where('name', '=', name).execute();
        assert.deepEqual(rows.map((r) => r.id), [first.id], 'nothing was stored by the refused creates');
        // Names are unique per organization only.
        const elsewhere = await api(stranger, 'POST', '/channels', { name });
        assert.equal(elsewhere.statusCode, 201, elsewhere.body);
      });

      it('refuses bad names and bodies with 400 validation.failed', async () => {
        const bad: unknown[] = [
          {},
          { name: '' },
          { name: 'General' },
          { name: 'has space' },
          { name: '-leading-dash' },
          { name: '_leading' },
          { name: 'dots.not.allowed' },
          { name: 'émoji' },
          { name: 'x'.repeat(81) },
          { name: uniqueName('ok'), unknown: true },
          { name: uniqueName('ok'), topic: 'x'.repeat(251) },
          { name: uniqueName('ok'), members: ['not-a-uuid'] },
        ];
        for (const body of bad) {
          const r = await api(owner, 'POST', '/channels', body);
          assert.equal(r.statusCode, 400, `${JSON.stringify(body)} → ${r.body}`);
          assert.equal(codeOf(r), 'validation.failed', JSON.stringify(body));
        }
        // The boundaries that are fine.
        await createChannel(owner, { name: `${'x'.repeat(79)}${n++ % 10}` });
        await createChannel(owner, { name: `0_a-b${n++}` });
      });

      it('refuses members who are not active users of the organization (400 conversation.invalid_members)', async () => {
        for (const members of [[stranger.id], [randomUUID()], [bob.id, stranger.id]]) {
          const name = uniqueName('badmembers');
          const r = await api(owner, 'POST', '/channels', { name, members });
          assert.equal(r.statusCode, 400, r.body);
          assert.equal(codeOf(r), 'conversation.invalid_members');
          const stored = await t.db.db.selectFrom('conversations').select('id').where('name', '=', name).execute();
          assert.equal(stored.length, 0, 'nothing is half-created');
        }
      });

      it('customers cannot create channels (403)', async () => {
        const r = await api(customer, 'POST', '/channels', { name: uniqueName('cust') });
        assert.equal(r.statusCode, 403);
        assert.equal(codeOf(r), 'forbidden');
      });
    });

    describe('listing channels', () => {
      // A fresh organization, so that the lists can be compared exactly.
      let x: TestUser;
      let y: TestUser;
      let cust: TestUser;
      let ids: Record<string, string>;
      before(async () => {
        const org = await makeOrg(t.services);
        x = await makeUser(t.app, t.services, org.id, 'member');
        y = await makeUser(t.app, t.services, org.id, 'agent');
        cust = await makeUser(t.app, t.services, org.id, 'customer');
        ids = {};
        ids.alpha = (await createChannel(x, { name: 'alpha' })).id;
        ids.bravo = (await createChannel(x, { name: 'bravo', private: true })).id;
        ids.charlie = (await createChannel(y, { name: 'charlie' })).id;
        ids.delta = (await createChannel(y, { name: 'delta', private: true })).id;
        ids.echo = (await createChannel(y, { name: 'echo', private: true, members: [x.id] })).id;
        // Direct and group conversations are not channels: never listed here.
        const dm = await api(x, 'POST', '/dm', { user_id: y.id });
        assert.equal(dm.statusCode, 201, dm.body);
        const grp = await api(x, 'POST', '/dm', { user_ids: [y.id, cust.id] });
        assert.equal(grp.statusCode, 201, grp.body);
      });

      const names = async (who: TestUser, path: string, query = '') => {
        const r = await api(who, 'GET', `${path}${query}`);
        assert.equal(r.statusCode, 200, r.body);
        return (r.data as Page).data.map((c) => c.name);
      };

      it('GET /channels: every public channel and your own private ones, by name; never others’ private ones', async () => {
        assert.deepEqual(await names(x, '/channels'), ['alpha', 'bravo', 'charlie', 'echo']);
        assert.deepEqual(await names(y, '/channels'), ['alpha', 'charlie', 'delta', 'echo']);
        const r = await api(x, 'GET', '/channels');
        const byName = new Map((r.data as Page).data.map((c) => [c.name, c]));
        assert.deepEqual(
          ['alpha', 'bravo', 'charlie', 'echo'].map((k) => [k, byName.get(k)?.is_member, byName.get(k)?.member_role]),
          [['alpha', true, 'owner'], ['bravo', true, 'owner'], ['charlie', false, null], ['echo', true, 'member']],
        );
        assert.equal(r.data.next_cursor, null);
        // Not even by asking for it by name.
        assert.deepEqual(await names(y, '/channels', '?q=bravo'), []);
        assert.deepEqual(await names(x, '/channels', '?q=delta'), []);
      });

      it('GET /channels/joined: only the channels you are a member of', async () => {
        assert.deepEqual(await names(x, '/channels/joined'), ['alpha', 'bravo', 'echo']);
        assert.deepEqual(await names(y, '/channels/joined'), ['charlie', 'delta', 'echo']);
        const join = await api(y, 'POST', `/channels/${ids.alpha}/join`);
        assert.equal(join.statusCode, 200);
        assert.deepEqual(await names(y, '/channels/joined'), ['alpha', 'charlie', 'delta', 'echo']);
        assert.equal((await api(y, 'POST', `/channels/${ids.alpha}/leave`)).statusCode, 204);
        assert.deepEqual(await names(y, '/channels/joined'), ['charlie', 'delta', 'echo']);
      });

      it('customers list only what they are a member of', async () => {
        assert.deepEqual(await names(cust, '/channels'), []);
        assert.deepEqual(await names(cust, '/channels/joined'), []);
        const add = await api(y, 'POST', `/channels/${ids.charlie}/members`, { user_id: cust.id });
        assert.equal(add.statusCode, 204, add.body);
        assert.deepEqual(await names(cust, '/channels'), ['charlie']);
        assert.deepEqual(await names(cust, '/channels/joined'), ['charlie']);
        assert.equal((await api(cust, 'POST', `/channels/${ids.charlie}/leave`)).statusCode, 204);
        assert.deepEqual(await names(cust, '/channels'), []);
      });

      it('archived channels are left out unless include_archived=true', async () => {
        assert.equal((await api(x, 'POST', `/channels/${ids.alpha}/archive`)).statusCode, 200);
        try {
          assert.deepEqual(await names(x, '/channels'), ['bravo', 'charlie', 'echo']);
          assert.deepEqual(await names(x, '/channels/joined'), ['bravo', 'echo']);
          assert.deepEqual(await names(x, '/channels', '?include_archived=true'), ['alpha', 'bravo', 'charlie', 'echo']);
          assert.deepEqual(await names(y, '/channels', '?include_archived=true'), ['alpha', 'charlie', 'delta', 'echo']);
        } finally {
          assert.equal((await api(x, 'POST', `/channels/${ids.alpha}/unarchive`)).statusCode, 200);
        }
        assert.deepEqual(await names(x, '/channels'), ['alpha', 'bravo', 'charlie', 'echo']);
      });
    });

    describe('the name prefix filter q', () => {
      let x: TestUser;
      let y: TestUser;
      before(async () => {
        const org = await makeOrg(t.services);
        x = await makeUser(t.app, t.services, org.id, 'member');
        y = await makeUser(t.app, t.services, org.id, 'member');
        for (const name of ['ops', 'ops-alerts', 'ops_deploys', 'opsx', 'op', 'dev-ops', 'xops']) await createChannel(x, { name });
        await createChannel(y, { name: 'ops-private', private: true });
      });
      const sortedNames = async (who: TestUser, q: string) => {
        const r = await api(who, 'GET', `/channels?q=${encodeURIComponent(q)}`);
        assert.equal(r.statusCode, 200, r.body);
        // Order of '-' and '_' depends on the collation; the set is what q decides.
        return (r.data as Page).data.map((c) => c.name).sort();
      };

      it('keeps the channels whose name starts with q, and only visible ones', async () => {
        assert.deepEqual(await sortedNames(x, 'ops'), ['ops', 'ops-alerts', 'ops_deploys', 'opsx']);
        assert.deepEqual(await sortedNames(y, 'ops'), ['ops', 'ops-alerts', 'ops-private', 'ops_deploys', 'opsx']);
        assert.deepEqual(await sortedNames(x, 'op'), ['op', 'ops', 'ops-alerts', 'ops_deploys', 'opsx']);
        assert.deepEqual(await sortedNames(x, 'ops-a'), ['ops-alerts']);
        assert.deepEqual(await sortedNames(x, 'zzz'), []);
        assert.deepEqual(await sortedNames(x, 'ops-alerts-and-more'), []);
      });

      it('matches LIKE wildcards literally (_ and % are not patterns)', async () => {
        assert.deepEqual(await sortedNames(x, 'ops_'), ['ops_deploys'], '_ is not "any character"');
        assert.deepEqual(await sortedNames(x, 'ops%'), [], '% is not "anything"');
        assert.deepEqual(await sortedNames(x, '%ops'), []);
        assert.deepEqual(await sortedNames(x, '_ps'), []);
      });

      it('an upper-case q finds the same channels on every engine', async () => {
        // Channel names are lower case only, so an upper-case q can only mean the same letters.
        assert.deepEqual(await sortedNames(x, 'OPS'), ['ops', 'ops-alerts', 'ops_deploys', 'opsx']);
        assert.deepEqual(await sortedNames(x, 'Ops-A'), ['ops-alerts']);
      });

      it('refuses an empty q (400)', async () => {
        const r = await api(x, 'GET', '/channels?q=');
        assert.equal(r.statusCode, 400);
        assert.equal(codeOf(r), 'validation.failed');
      });
    });

    describe('cursor pagination', () => {
      let x: TestUser;
      const all = ['p01', 'p02', 'p03', 'p04', 'p05', 'p06'];
      before(async () => {
        const org = await makeOrg(t.services);
        x = await makeUser(t.app, t.services, org.id, 'member');
        const y = await makeUser(t.app, t.services, org.id, 'member');
        for (const name of all) await createChannel(x, { name });
        // Invisible to x, sorted in the middle of x's pages: must neither show nor shift the pages.
        await createChannel(y, { name: 'p03b', private: true });
        await createChannel(y, { name: 'p06z', private: true });
      });

      it('an exact multiple of the page size: full pages, and the last one has next_cursor null (no empty page)', async () => {
        assert.deepEqual(await listAll(x, '/channels', '', 3), [['p01', 'p02', 'p03'], ['p04', 'p05', 'p06']]);
        assert.deepEqual(await listAll(x, '/channels', '', 2), [['p01', 'p02'], ['p03', 'p04'], ['p05', 'p06']]);
        assert.deepEqual(await listAll(x, '/channels', '', 6), [all]);
      });

      it('a partial last page, and a limit larger than everything', async () => {
        assert.deepEqual(await listAll(x, '/channels', '', 4), [['p01', 'p02', 'p03', 'p04'], ['p05', 'p06']]);
        assert.deepEqual(await listAll(x, '/channels', '', 5), [['p01', 'p02', 'p03', 'p04', 'p05'], ['p06']]);
        assert.deepEqual(await listAll(x, '/channels', '', 200), [all]);
      });

      it('limit 1 walks every channel once, in order', async () => {
        assert.deepEqual(await listAll(x, '/channels', '', 1), all.map((name) => [name]));
        assert.deepEqual(await listAll(x, '/channels/joined', '', 1), all.map((name) => [name]));
      });

      it('pages combine with q and with the joined list', async () => {
        assert.deepEqual(await listAll(x, '/channels', '&q=p0', 4), [['p01', 'p02', 'p03', 'p04'], ['p05', 'p06']]);
        assert.deepEqual(await listAll(x, '/channels/joined', '', 3), [['p01', 'p02', 'p03'], ['p04', 'p05', 'p06']]);
      });

      it('the cursor of a page carries on after that page', async () => {
        const first = await api(x, 'GET', '/channels?limit=2');
        assert.ok(first.data.next_cursor);
        const second = await api(x, 'GET', `/channels?limit=2&cursor=${encodeURIComponent(first.data.next_cursor)}`);
        assert.deepEqual((second.data as Page).data.map((c) => c.name), ['p03', 'p04']);
        assert.ok(second.data.next_cursor);
      });

      it('refuses bad cursors and limits (400)', async () => {
        for (const qs of ['?cursor=not-a-cursor', `?cursor=${Buffer.from('{"x":1}').toString('base64url')}`, '?limit=0', '?limit=201', '?limit=abc']) {
          const r = await api(x, 'GET', `/channels${qs}`);
          assert.equal(r.statusCode, 400, `${qs}: ${r.body}`);
          assert.equal(codeOf(r), 'validation.failed', qs);
        }
      });
    });

    describe('updating, archiving, deleting', () => {
      it('owners, channel admins and org admins update; members and others get 403', async () => {
        const c = await createChannel(owner, { name: uniqueName('upd'), members: [bob.id] });
        assert.equal((await api(owner, 'POST', `/channels/${c.id}/members`, { user_id: carol.id, role: 'admin' })).statusCode, 204);
        assert.equal(await roleOf(c.id, carol.id), 'admin');
        const byOwner = await api(owner, 'PUT', `/channels/${c.id}`, { topic: 'by owner', purpose: 'p' });
        assert.equal(byOwner.statusCode, 200, byOwner.body);
        assert.equal(byOwner.data.topic, 'by owner');
        assert.equal(byOwner.data.purpose, 'p');
        assert.equal((await api(bob, 'GET', `/channels/${c.id}`)).data.topic, 'by owner', 'stored');
        for (const who of [bob, customer, stranger]) {
          const r = await api(who, 'PUT', `/channels/${c.id}`, { topic: 'hijack' });
          assert.equal(r.statusCode, who === bob ? 403 : 404, `${who.username}: ${r.body}`);
        }
        const nonMember = await makeUser(t.app, t.services, orgId, 'agent');
        const r = await api(nonMember, 'PUT', `/channels/${c.id}`, { topic: 'hijack' });
        assert.equal(r.statusCode, 403, 'a staff non-member of a public channel can read it but not manage it');
        assert.equal((await api(owner, 'GET', `/channels/${c.id}`)).data.topic, 'by owner', 'the refused updates changed nothing');
        const byAdmin = await api(admin, 'PUT', `/channels/${c.id}`, { topic: null });
        assert.equal(byAdmin.statusCode, 200, 'org admin, not a member');
        assert.equal(byAdmin.data.topic, null);
        const byCarol = await api(carol, 'PUT', `/channels/${c.id}`, { topic: 'by carol' });
        assert.equal(byCarol.statusCode, 200, 'channel admin');
        assert.equal((await api(bob, 'GET', `/channels/${c.id}`)).data.topic, 'by carol');
      });

      it('a channel admin (added as admin) updates; renaming checks the name', async () => {
        const c = await createChannel(owner, { name: uniqueName('ren') });
        assert.equal((await api(owner, 'POST', `/channels/${c.id}/members`, { user_id: bob.id, role: 'admin' })).statusCode, 204);
        assert.equal(await roleOf(c.id, bob.id), 'admin');
        const newName = uniqueName('renamed');
        const renamed = await api(bob, 'PUT', `/channels/${c.id}`, { name: newName });
        assert.equal(renamed.statusCode, 200, renamed.body);
        assert.equal(renamed.data.name, newName);
        assert.equal((await api(owner, 'GET', `/channels/${c.id}`)).data.name, newName);
        const taken = await createChannel(owner, { name: uniqueName('taken') });
        const clash = await api(bob, 'PUT', `/channels/${c.id}`, { name: taken.name });
        assert.equal(clash.statusCode, 409);
        assert.equal(codeOf(clash), 'conversation.name_taken');
        assert.equal((await api(owner, 'GET', `/channels/${c.id}`)).data.name, newName);
        for (const body of [{}, { name: 'Bad Name' }, { archived: true }, { topic: 'x'.repeat(251) }]) {
          const r = await api(owner, 'PUT', `/channels/${c.id}`, body);
          assert.equal(r.statusCode, 400, JSON.stringify(body));
        }
        const same = await api(owner, 'PUT', `/channels/${c.id}`, { name: newName });
        assert.equal(same.statusCode, 200, 'renaming to its own name is fine');
      });

      it('archive makes the channel read-only (send 409 conversation.archived); unarchive restores it', async () => {
        const c = await createChannel(owner, { name: uniqueName('arch'), members: [bob.id] });
        const before = await send(bob, c.id, 'before');
        assert.equal(before.statusCode, 201);
        const byBob = await api(bob, 'POST', `/channels/${c.id}/archive`);
        assert.equal(byBob.statusCode, 403, 'members cannot archive');
        const archived = await api(owner, 'POST', `/channels/${c.id}/archive`);
        assert.equal(archived.statusCode, 200, archived.body);
        assert.equal(archived.data.archived, true);
        assert.ok(archived.data.archived_at);
        const refused = await send(bob, c.id, 'after');
        assert.equal(refused.statusCode, 409);
        assert.equal(codeOf(refused), 'conversation.archived');
        assert.equal((await send(owner, c.id, 'owner too')).statusCode, 409);
        const edit = await api(bob, 'PUT', `/messages/${before.data.id}`, { body: 'edited' });
        assert.equal(edit.statusCode, 409, 'editing is writing');
        assert.equal(codeOf(edit), 'conversation.archived');
        const history = await api(bob, 'GET', `/channels/${c.id}/messages`);
        assert.equal(history.statusCode, 200, 'still readable');
        assert.deepEqual(history.data.data.map((m: { body: string }) => m.body), ['before']);
        const join = await api(carol, 'POST', `/channels/${c.id}/join`);
        assert.equal(join.statusCode, 409);
        assert.equal(codeOf(join), 'conversation.archived');
        const upd = await api(owner, 'PUT', `/channels/${c.id}`, { topic: 'x' });
        assert.equal(upd.statusCode, 409, 'an archived channel is not updated');
        const twice = await api(owner, 'POST', `/channels/${c.id}/archive`);
        assert.equal(twice.statusCode, 409);
        const unByBob = await api(bob, 'POST', `/channels/${c.id}/unarchive`);
        assert.equal(unByBob.statusCode, 403, 'members cannot unarchive');
        const un = await api(owner, 'POST', `/channels/${c.id}/unarchive`);
        assert.equal(un.statusCode, 200, un.body);
        assert.equal(un.data.archived, false);
        assert.equal(un.data.archived_at, null);
        const after = await send(bob, c.id, 'after');
        assert.equal(after.statusCode, 201, after.body);
        assert.equal(after.data.seq, 2, 'no seq was used by the refused sends');
      });

      it('an archived channel is read-only for message deletion too (409 conversation.archived, as for edit and send)', async () => {
        const c = await createChannel(owner, { name: uniqueName('archdel'), members: [bob.id] });
        const m = await send(bob, c.id, 'keep me');
        assert.equal(m.statusCode, 201);
        assert.equal((await api(owner, 'POST', `/channels/${c.id}/archive`)).statusCode, 200);
        const edit = await api(bob, 'PUT', `/messages/${m.data.id}`, { body: 'changed' });
        assert.equal(edit.statusCode, 409, 'editing is refused');
        const del = await api(bob, 'DELETE', `/messages/${m.data.id}`);
        assert.equal(del.statusCode, 409, `deleting should be refused the same way: ${del.statusCode} ${del.body}`);
        assert.equal(codeOf(del), 'conversation.archived');
        const after = await api(bob, 'GET', `/messages/${m.data.id}`);
        assert.equal(after.data.deleted, false, 'the archived history is unchanged');
        assert.equal(after.data.body, 'keep me');
      });

      it('an org admin archives and unarchives a public channel they are not in', async () => {
        const c = await createChannel(owner, { name: uniqueName('admarch') });
        assert.equal((await api(admin, 'POST', `/channels/${c.id}/archive`)).statusCode, 200);
        assert.equal((await api(owner, 'GET', `/channels/${c.id}`)).data.archived, true);
        assert.equal((await api(admin, 'POST', `/channels/${c.id}/unarchive`)).statusCode, 200);
        assert.equal((await api(owner, 'GET', `/channels/${c.id}`)).data.archived, false);
      });

      it('the owner deletes a channel with its history; the name is free again', async () => {
        const c = await createChannel(owner, { name: uniqueName('del'), members: [bob.id] });
        const m = await send(bob, c.id, 'doomed');
        assert.equal(m.statusCode, 201);
        assert.equal((await api(owner, 'POST', `/channels/${c.id}/members`, { user_id: carol.id, role: 'admin' })).statusCode, 204);
        for (const who of [bob, carol]) {
          const r = await api(who, 'DELETE', `/channels/${c.id}`);
          assert.equal(r.statusCode, 403, `${who === bob ? 'member' : 'channel admin'}: ${r.body}`);
          assert.equal(codeOf(r), 'forbidden');
        }
        assert.equal((await api(owner, 'GET', `/channels/${c.id}`)).statusCode, 200, 'still there after the refusals');
        const del = await api(owner, 'DELETE', `/channels/${c.id}`);
        assert.equal(del.statusCode, 204, del.body);
        const gone = await api(owner, 'GET', `/channels/${c.id}`);
        assert.equal(gone.statusCode, 404);
        assert.equal(codeOf(gone), 'conversation.not_found');
        const msg = await api(bob, 'GET', `/messages/${m.data.id}`);
        assert.equal(msg.statusCode, 404);
        assert.equal(codeOf(msg), 'message.not_found');
        const rows = await t.db.db.selectFrom('messages').select('id').where('conversation_id', '=', c.id).execute();
        assert.equal(rows.length, 0, 'messages are deleted with the channel');
        const members = await t.db.db.selectFrom('conversation_members').select('user_id').where('conversation_id', '=', c.id).execute();
        assert.equal(members.length, 0);
        await createChannel(bob, { name: c.name });
        assert.equal((await api(owner, 'DELETE', `/channels/${c.id}`)).statusCode, 404, 'deleting twice');
      });

      it('an org admin deletes a public channel they are not in; a staff non-member cannot', async () => {
        const c = await createChannel(owner, { name: uniqueName('admdel') });
        const r = await api(carol, 'DELETE', `/channels/${c.id}`);
        assert.equal(r.statusCode, 403);
        const del = await api(admin, 'DELETE', `/channels/${c.id}`);
        assert.equal(del.statusCode, 204, del.body);
        assert.equal((await api(owner, 'GET', `/channels/${c.id}`)).statusCode, 404);
      });
    });

    describe('joining, leaving, members', () => {
      it('joins a public channel (idempotent); a private one answers 404 and adds nobody', async () => {
        const pub = await createChannel(owner, { name: uniqueName('pubjoin') });
        const j = await api(carol, 'POST', `/channels/${pub.id}/join`);
        assert.equal(j.statusCode, 200, j.body);
        assert.equal(j.data.is_member, true);
        assert.equal(j.data.member_role, 'member');
        assert.deepEqual(await memberIds(pub.id), [owner.id, carol.id].sort());
        const again = await api(carol, 'POST', `/channels/${pub.id}/join`);
        assert.equal(again.statusCode, 200);
        assert.deepEqual(await memberIds(pub.id), [owner.id, carol.id].sort());
        const ownerJoins = await api(owner, 'POST', `/channels/${pub.id}/join`);
        assert.equal(ownerJoins.data.member_role, 'owner', 'joining again does not demote the owner');
        assert.equal(await roleOf(pub.id, owner.id), 'owner');
        assert.equal((await send(carol, pub.id)).statusCode, 201, 'a joined member writes');

        const priv = await createChannel(owner, { name: uniqueName('privjoin'), private: true });
        const pj = await api(carol, 'POST', `/channels/${priv.id}/join`);
        assert.equal(pj.statusCode, 404);
        assert.equal(codeOf(pj), 'conversation.not_found');
        assert.deepEqual(await memberIds(priv.id), [owner.id]);

        const cj = await api(customer, 'POST', `/channels/${pub.id}/join`);
        assert.equal(cj.statusCode, 404, 'customers do not see public channels');
        assert.deepEqual(await memberIds(pub.id), [owner.id, carol.id].sort());
      });

      it('leaves a channel; leaving again is 403 conversation.not_member; a non-member cannot write', async () => {
        const c = await createChannel(owner, { name: uniqueName('leave'), members: [bob.id] });
        assert.equal((await send(bob, c.id)).statusCode, 201);
        assert.equal((await api(bob, 'POST', `/channels/${c.id}/leave`)).statusCode, 204);
        assert.deepEqual(await memberIds(c.id), [owner.id]);
        const again = await api(bob, 'POST', `/channels/${c.id}/leave`);
        assert.equal(again.statusCode, 403);
        assert.equal(codeOf(again), 'conversation.not_member');
        const w = await send(bob, c.id);
        assert.equal(w.statusCode, 403);
        assert.equal(codeOf(w), 'conversation.not_member');
        // Leaving through DELETE /members/<yourself> is the same.
        assert.equal((await api(bob, 'POST', `/channels/${c.id}/join`)).statusCode, 200);
        assert.equal((await api(bob, 'DELETE', `/channels/${c.id}/members/${bob.id}`)).statusCode, 204);
        assert.deepEqual(await memberIds(c.id), [owner.id]);
      });

      it('members add people; only owners and admins choose the admin role; only org users can be added', async () => {
        const c = await createChannel(owner, { name: uniqueName('members'), private: true, members: [bob.id] });
        const asAdmin = await api(bob, 'POST', `/channels/${c.id}/members`, { user_id: carol.id, role: 'admin' });
        assert.equal(asAdmin.statusCode, 403, 'a member cannot hand out the admin role');
        assert.deepEqual(await memberIds(c.id), [owner.id, bob.id].sort());
        const add = await api(bob, 'POST', `/channels/${c.id}/members`, { user_id: carol.id });
        assert.equal(add.statusCode, 204, add.body);
        assert.deepEqual(await memberIds(c.id), [owner.id, bob.id, carol.id].sort());
        assert.equal(await roleOf(c.id, carol.id), 'member');
        const again = await api(bob, 'POST', `/channels/${c.id}/members`, { user_id: carol.id });
        assert.equal(again.statusCode, 204, 'adding a member again changes nothing');
        assert.deepEqual(await memberIds(c.id), [owner.id, bob.id, carol.id].sort());
        const cust = await api(owner, 'POST', `/channels/${c.id}/members`, { user_id: customer.id, role: 'admin' });
        assert.equal(cust.statusCode, 204);
        assert.equal(await roleOf(c.id, customer.id), 'admin');
        // A customer who is a member sees the channel.
        assert.equal((await api(customer, 'GET', `/channels/${c.id}`)).statusCode, 200);
        for (const userId of [stranger.id, randomUUID()]) {
          const r = await api(owner, 'POST', `/channels/${c.id}/members`, { user_id: userId });
          assert.equal(r.statusCode, 400, r.body);
          assert.equal(codeOf(r), 'conversation.invalid_members');
        }
        assert.equal((await api(owner, 'POST', `/channels/${c.id}/members`, { user_id: 'nope' })).statusCode, 400);
        assert.deepEqual(await memberIds(c.id), [owner.id, bob.id, carol.id, customer.id].sort());
        const list = await api(bob, 'GET', `/channels/${c.id}/members`);
        const row = (list.data.data as Array<Record<string, unknown>>).find((m) => m.user_id === carol.id);
        assert.deepEqual(Object.keys(row ?? {}).sort(), ['joined_at', 'last_read_seq', 'name', 'role', 'user_id', 'username']);
        assert.equal(row?.username, carol.username);
      });

      it('an org admin who is not a member gets the same answer adding a plain member as adding a channel admin', async () => {
        const outcomes: Record<string, string> = {};
        for (const role of ['member', 'admin'] as const) {
          const c = await createChannel(owner, { name: uniqueName(`modadd-${role}`) });
          const r = await api(admin, 'POST', `/channels/${c.id}/members`, { user_id: carol.id, role });
          outcomes[role] = `${r.statusCode} ${codeOf(r) ?? ''}`.trim();
          const added = (await memberIds(c.id)).includes(carol.id);
          assert.equal(added, r.statusCode === 204, `${role}: the answer matches what happened`);
        }
        // Adding with role admin needs more ('manage') than adding a member ('write'), yet only the
        // former is allowed to an org admin: whichever way it is fixed, the two must agree.
        assert.equal(outcomes.member, outcomes.admin, JSON.stringify(outcomes));
      });

      it('owners and admins remove members; members cannot; an owner is removed only by an org admin', async () => {
        const c = await createChannel(owner, { name: uniqueName('remove'), members: [bob.id, carol.id] });
        assert.equal((await api(owner, 'POST', `/channels/${c.id}/members`, { user_id: admin.id, role: 'admin' })).statusCode, 204);
        const byBob = await api(bob, 'DELETE', `/channels/${c.id}/members/${carol.id}`);
        assert.equal(byBob.statusCode, 403);
        assert.equal(codeOf(byBob), 'forbidden');
        assert.deepEqual(await memberIds(c.id), [owner.id, bob.id, carol.id, admin.id].sort());
        const byOwner = await api(owner, 'DELETE', `/channels/${c.id}/members/${carol.id}`);
        assert.equal(byOwner.statusCode, 204);
        assert.deepEqual(await memberIds(c.id), [owner.id, bob.id, admin.id].sort());
        const notMember = await api(owner, 'DELETE', `/channels/${c.id}/members/${carol.id}`);
        assert.equal(notMember.statusCode, 403);
        assert.equal(codeOf(notMember), 'conversation.not_member');
        // A channel admin who is not an org admin cannot remove the owner.
        assert.equal((await api(owner, 'POST', `/channels/${c.id}/members`, { user_id: carol.id, role: 'admin' })).statusCode, 204);
        const carolOnOwner = await api(carol, 'DELETE', `/channels/${c.id}/members/${owner.id}`);
        assert.equal(carolOnOwner.statusCode, 403);
        assert.deepEqual(await memberIds(c.id), [owner.id, bob.id, carol.id, admin.id].sort());
        const carolOnBob = await api(carol, 'DELETE', `/channels/${c.id}/members/${bob.id}`);
        assert.equal(carolOnBob.statusCode, 204, 'a channel admin removes a member');
        const adminOnOwner = await api(admin, 'DELETE', `/channels/${c.id}/members/${owner.id}`);
        assert.equal(adminOnOwner.statusCode, 204, 'an org admin removes the owner');
        assert.deepEqual(await memberIds(c.id, admin), [carol.id, admin.id].sort());
      });
    });

    describe('direct conversations', () => {
      it('POST /dm twice gives the same conversation: 201, then 200 (from either side)', async () => {
        const first = await api(owner, 'POST', '/dm', { user_id: bob.id });
        assert.equal(first.statusCode, 201, first.body);
        assert.equal(first.data.kind, 'direct');
        assert.equal(first.data.name, null);
        assert.equal(first.data.is_member, true);
        const again = await api(owner, 'POST', '/dm', { user_id: bob.id });
        assert.equal(again.statusCode, 200);
        assert.equal(again.data.id, first.data.id);
        const other = await api(bob, 'POST', '/dm', { user_id: owner.id });
        assert.equal(other.statusCode, 200);
        assert.equal(other.data.id, first.data.id);
        assert.deepEqual(await memberIds(first.data.id), [owner.id, bob.id].sort());
        assert.equal((await send(bob, first.data.id, 'hello')).statusCode, 201);
        // Not a channel.
        const listed = await api(owner, 'GET', '/channels?limit=200');
        assert.ok(!(listed.data as Page).data.some((c) => c.id === first.data.id));
        const joined = await api(owner, 'GET', '/channels/joined?limit=200');
        assert.ok(!(joined.data as Page).data.some((c) => c.id === first.data.id));
        // Fixed membership.
        const add = await api(owner, 'POST', `/channels/${first.data.id}/members`, { user_id: carol.id });
        assert.equal(add.statusCode, 400);
        assert.equal(codeOf(add), 'conversation.invalid_members');
        const leave = await api(owner, 'POST', `/channels/${first.data.id}/leave`);
        assert.equal(leave.statusCode, 400);
        assert.equal(codeOf(leave), 'conversation.invalid_members');
        assert.deepEqual(await memberIds(first.data.id), [owner.id, bob.id].sort());
      });

      it('GET /dm/:userId finds the conversation from both sides, 404 when there is none', async () => {
        const dm = await api(carol, 'POST', '/dm', { user_id: admin.id });
        assert.equal(dm.statusCode, 201);
        const a = await api(carol, 'GET', `/dm/${admin.id}`);
        assert.equal(a.statusCode, 200);
        assert.equal(a.data.id, dm.data.id);
        assert.equal(a.data.kind, 'direct');
        const b = await api(admin, 'GET', `/dm/${carol.id}`);
        assert.equal(b.data.id, dm.data.id);
        for (const [who, userId] of [[carol, customer.id], [carol, carol.id], [carol, randomUUID()], [carol, stranger.id], [stranger, admin.id], [bob, admin.id]] as const) {
          const r = await api(who, 'GET', `/dm/${userId}`);
          assert.equal(r.statusCode, 404, r.body);
          assert.equal(codeOf(r), 'conversation.not_found');
        }
        assert.equal((await api(carol, 'GET', '/dm/not-a-uuid')).statusCode, 400);
      });

      it('refuses a DM with a user of another organization, with yourself, or with nobody (400)', async () => {
        for (const userId of [stranger.id, owner.id, randomUUID()]) {
          const r = await api(owner, 'POST', '/dm', { user_id: userId });
          assert.equal(r.statusCode, 400, r.body);
          assert.equal(codeOf(r), 'conversation.invalid_members');
        }
        const cross = await api(stranger, 'POST', '/dm', { user_id: owner.id });
        assert.equal(cross.statusCode, 400);
        assert.equal(codeOf(cross), 'conversation.invalid_members');
        for (const body of [{}, { user_id: bob.id, user_ids: [carol.id, admin.id] }, { user_id: 'x' }, { user_id: bob.id, extra: 1 }]) {
          const r = await api(owner, 'POST', '/dm', body);
          assert.equal(r.statusCode, 400, JSON.stringify(body));
          assert.equal(codeOf(r), 'validation.failed', JSON.stringify(body));
        }
        const rows = await t.db.db
          .selectFrom('conversations')
          .select('dm_key')
          .where('kind', '=', 'direct')
          .where((eb) => eb.or([eb('dm_key', 'like', `%${stranger.id}%`), eb('dm_key', '=', `${owner.id}:${owner.id}`)]))
          .execute();
        assert.deepEqual(rows, [], 'nothing was created');
      });

      it('customers cannot open conversations (403), but can be messaged directly', async () => {
        const r = await api(customer, 'POST', '/dm', { user_id: owner.id });
        assert.equal(r.statusCode, 403);
        const g = await api(customer, 'POST', '/dm', { user_ids: [owner.id, bob.id] });
        assert.equal(g.statusCode, 403);
        const dm = await api(owner, 'POST', '/dm', { user_id: customer.id });
        assert.equal(dm.statusCode, 201);
        const seen = await api(customer, 'GET', `/dm/${owner.id}`);
        assert.equal(seen.statusCode, 200);
        assert.equal(seen.data.id, dm.data.id);
        assert.equal((await send(customer, dm.data.id, 'reply')).statusCode, 201);
      });

      it('one DM per pair under concurrent creation: 10 parallel POST /dm (5 from each side)', async () => {
        for (let round = 0; round < 3; round++) {
          const u = await makeUser(t.app, t.services, orgId, 'member');
          const v = await makeUser(t.app, t.services, orgId, 'member');
          const answers = await Promise.all(
            Array.from({ length: 10 }, (_, i) => (i % 2 ? api(u, 'POST', '/dm', { user_id: v.id }) : api(v, 'POST', '/dm', { user_id: u.id }))),
          );
          for (const r of answers) assert.ok(r.statusCode === 200 || r.statusCode === 201, `${r.statusCode} ${r.body}`);
          const ids = new Set(answers.map((r) => r.data.id as string));
          assert.equal(ids.size, 1, `one conversation id in every answer: ${[...ids].join(', ')}`);
          assert.equal(answers.filter((r) => r.statusCode === 201).length, 1, 'exactly one answer says "created"');
          const [id] = [...ids];
          const rows = await t.db.db
            .selectFrom('conversations as c')
            .innerJoin('conversation_members as m1', (j) => j.onRef('m1.conversation_id', '=', 'c.id').on('m1.user_id', '=', u.id))
            .innerJoin('conversation_members as m2', (j) => j.onRef('m2.conversation_id', '=', 'c.id').on('m2.user_id', '=', v.id))
            .select('c.id')
            .where('c.kind', '=', 'direct')
            .execute();
          assert.deepEqual(rows.map((r) => r.id), [id], 'one direct conversation between the two');
          const members = await t.db.db.selectFrom('conversation_members').select('user_id').where('conversation_id', '=', id!).execute();
          assert.deepEqual(members.map((m) => m.user_id).sort(), [u.id, v.id].sort());
          const fromU = await api(u, 'GET', `/dm/${v.id}`);
          assert.equal(fromU.data.id, id);
        }
      });

      it('one DM per pair when the service calls interleave (on SQLite, HTTP requests run one after the other)', async () => {
        // Started in the same tick, the calls interleave at every await: all of them look for the
        // DM before any creates it, so all but one hit the unique index and must answer the winner's.
        const u = await makeUser(t.app, t.services, orgId, 'member');
        const v = await makeUser(t.app, t.services, orgId, 'member');
        const principal = async (x: TestUser): Promise<Principal> => ({
          kind: 'user',
          orgId,
          userId: x.id,
          role: 'member',
          platformAdmin: false,
          sessionId: null,
          apiKeyId: null,
          user: (await t.services.users.getRow(orgId, x.id)) ?? null,
        });
        const [pu, pv] = [await principal(u), await principal(v)];
        const results = await Promise.allSettled(
          Array.from({ length: 10 }, (_, i) => (i % 2 ? t.services.conversations.openDirect(pu, v.id) : t.services.conversations.openDirect(pv, u.id))),
        );
        const rejected = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
        assert.deepEqual(rejected, [], 'no call fails');
        const answers = results.map((r) => (r as PromiseFulfilledResult<{ conversation: { id: string }; created: boolean }>).value);
        assert.equal(new Set(answers.map((a) => a.conversation.id)).size, 1);
        assert.equal(answers.filter((a) => a.created).length, 1);
        const rows = await t.db.db.selectFrom('conversations').select('id').where('dm_key', '=', [u.id, v.id].sort().join(':')).execute();
        assert.deepEqual(rows.map((r) => r.id), [answers[0]!.conversation.id]);
      });
    });

    describe('group conversations', () => {
      let extra: TestUser[];
      before(async () => {
        extra = [];
        for (let i = 0; i < 7; i++) extra.push(await makeUser(t.app, t.services, orgId, 'member'));
      });

      it('a group of 3 (2 others): 201, the creator owns it, everyone is a member', async () => {
        const g = await api(owner, 'POST', '/dm', { user_ids: [bob.id, carol.id] });
        assert.equal(g.statusCode, 201, g.body);
        assert.equal(g.data.kind, 'group');
        assert.equal(g.data.member_role, 'owner');
        assert.deepEqual(await memberIds(g.data.id), [owner.id, bob.id, carol.id].sort());
        assert.equal(await roleOf(g.data.id, bob.id), 'member');
        assert.equal((await send(carol, g.data.id, 'hey all')).statusCode, 201);
        const again = await api(owner, 'POST', '/dm', { user_ids: [bob.id, carol.id] });
        assert.equal(again.statusCode, 201, 'every call opens a new group');
        assert.notEqual(again.data.id, g.data.id);
        const listed = await api(owner, 'GET', '/channels?limit=200');
        assert.ok(!(listed.data as Page).data.some((c) => c.id === g.data.id), 'a group is not a channel');
      });

      it('a group of 8 (7 others) is the largest', async () => {
        const ok = await api(owner, 'POST', '/dm', { user_ids: extra.map((u) => u.id) });
        assert.equal(ok.statusCode, 201, ok.body);
        assert.equal((await memberIds(ok.data.id)).length, 8);
        const tooMany = await api(owner, 'POST', '/dm', { user_ids: [...extra.map((u) => u.id), bob.id] });
        assert.equal(tooMany.statusCode, 400, '8 others make 9 people');
      });

      it('refuses groups that are too small, with duplicates, or with outsiders (400)', async () => {
        const count = async () => (await t.db.db.selectFrom('conversations').select('id').where('kind', '=', 'group').execute()).length;
        const before = await count();
        const cases: Array<[unknown, string]> = [
          [{ user_ids: [bob.id] }, 'validation.failed'],
          [{ user_ids: [] }, 'validation.failed'],
          [{ user_ids: [bob.id, bob.id] }, 'validation.failed'],
          [{ user_ids: [bob.id, owner.id] }, 'conversation.invalid_members'],
          [{ user_ids: [bob.id, stranger.id] }, 'conversation.invalid_members'],
          [{ user_ids: [bob.id, randomUUID()] }, 'conversation.invalid_members'],
          [{ user_ids: [...extra.map((u) => u.id), bob.id] }, 'validation.failed'],
        ];
        for (const [body, code] of cases) {
          const r = await api(owner, 'POST', '/dm', body);
          assert.equal(r.statusCode, 400, `${JSON.stringify(body)}: ${r.body}`);
          assert.equal(codeOf(r), code, JSON.stringify(body));
        }
        assert.equal(await count(), before, 'no group was created');
      });

      it('members leave a group; the rest keep it', async () => {
        const g = await api(owner, 'POST', '/dm', { user_ids: [bob.id, carol.id] });
        assert.equal((await api(carol, 'POST', `/channels/${g.data.id}/leave`)).statusCode, 204);
        assert.deepEqual(await memberIds(g.data.id), [owner.id, bob.id].sort());
        const gone = await api(carol, 'GET', `/channels/${g.data.id}`);
        assert.equal(gone.statusCode, 404, 'a group is invisible to a former member');
        assert.equal((await send(bob, g.data.id)).statusCode, 201);
      });
    });
  });
}

for (const dialect of testDialects()) {
  describe(`groups keep their shape (${dialect})`, () => {
    it('a group never grows past 8 people and takes no name', async () => {
      const t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0' } });
      try {
        const org = await makeOrg(t.services);
        const people = [];
        for (let i = 0; i < 9; i++) people.push(await makeUser(t.app, t.services, org.id, 'member'));
        const [owner, ...others] = people as [TestUser, ...TestUser[]];
        const g = await call(t.app, 'POST', '/api/v1/dm', { token: owner.token, body: { user_ids: others.slice(0, 6).map((u) => u.id) } });
        assert.equal(g.statusCode, 201, g.body);
        const add = (u: TestUser) => call(t.app, 'POST', `/api/v1/channels/${g.data.id}/members`, { token: owner.token, body: { user_id: u.id } });
        assert.equal((await add(others[6]!)).statusCode, 204, 'the 8th person fits');
        const ninth = await add(others[7]!);
        assert.equal(ninth.statusCode, 400);
        assert.equal(ninth.data.error.code, 'conversation.invalid_members');
        assert.equal((await add(others[6]!)).statusCode, 204, 're-adding a member is still fine at the cap');
        const members = await call(t.app, 'GET', `/api/v1/channels/${g.data.id}/members`, { token: owner.token });
        assert.equal(members.data.data.length, 8);
        const rename = await call(t.app, 'PUT', `/api/v1/channels/${g.data.id}`, { token: owner.token, body: { name: 'general' } });
        assert.equal(rename.statusCode, 400);
        const topic = await call(t.app, 'PUT', `/api/v1/channels/${g.data.id}`, { token: owner.token, body: { topic: 'weekend plans' } });
        assert.equal(topic.statusCode, 200);
      } finally {
        await t.close();
      }
    });
  });
}

for (const dialect of testDialects()) {
  describe(`member roles (${dialect})`, () => {
    it('owners promote and demote; admins manage members but not owners; the last owner stays', async () => {
      const t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0' } });
      try {
        const org = await makeOrg(t.services);
        const [owner, adminToBe, member] = [await makeUser(t.app, t.services, org.id, 'member'), await makeUser(t.app, t.services, org.id, 'member'), await makeUser(t.app, t.services, org.id, 'member')];
        const chan = (await call(t.app, 'POST', '/api/v1/channels', { token: owner.token, body: { name: `roles-${dialect}`, members: [adminToBe.id, member.id] } })).data.id;
        const setRole = (who: TestUser, target: TestUser, role: string) => call(t.app, 'PATCH', `/api/v1/channels/${chan}/members/${target.id}`, { token: who.token, body: { role } });
        // Same request from a plain member first: refused; then from the owner: done.
        assert.equal((await setRole(member, adminToBe, 'admin')).statusCode, 403);
        const promoted = await setRole(owner, adminToBe, 'admin');
        assert.equal(promoted.statusCode, 200, promoted.body);
        assert.equal(promoted.data.role, 'admin');
        // The new admin can now manage the channel and members, but not owners.
        assert.equal((await call(t.app, 'PUT', `/api/v1/channels/${chan}`, { token: adminToBe.token, body: { topic: 'by the admin' } })).statusCode, 200);
        assert.equal((await setRole(adminToBe, member, 'admin')).statusCode, 200);
        assert.equal((await setRole(adminToBe, member, 'owner')).statusCode, 403);
        assert.equal((await setRole(adminToBe, owner, 'member')).statusCode, 403);
        const last = await setRole(owner, owner, 'member');
        assert.equal(last.statusCode, 409, 'the last owner keeps the role');
        assert.equal((await setRole(owner, member, 'owner')).statusCode, 200);
        assert.equal((await setRole(owner, owner, 'member')).statusCode, 200, 'with a second owner, the first may step down');
        const roles = (await call(t.app, 'GET', `/api/v1/channels/${chan}/members`, { token: owner.token })).data.data;
        assert.deepEqual(Object.fromEntries(roles.map((m: { user_id: string; role: string }) => [m.user_id, m.role])), { [owner.id]: 'member', [adminToBe.id]: 'admin', [member.id]: 'owner' });
        const outsider = await makeUser(t.app, t.services, org.id, 'member');
        const notMember = await setRole(member, outsider, 'admin');
        assert.equal(notMember.statusCode, 403);
        assert.equal(notMember.data.error.code, 'conversation.not_member');
      } finally {
        await t.close();
      }
    });
  });
}
