/**
 * The access matrix of conversations and messages: every endpoint, for every kind of conversation
 * (public channel, private channel, direct, group), for every kind of caller:
 *
 *   owner      created the conversation (channel owner; the DM's other side)
 *   member     a plain member of it
 *   nonMember  a member of the organization who never was in it
 *   former     was added, sent a message, then left (public, group) or was removed (private);
 *              for a DM, which cannot be left, simply one more non-member
 *   admin      an admin of the organization who is not a member
 *   customer   a customer of the organization who is not a member
 *   outsider   an admin of another organization
 *   anon       no credentials
 *
 * Rules: private, direct and group conversations do not exist (404, the same answer as for a
 * random id) for anyone but their members; a public channel is read by the organization's staff
 * and members, written by its members; messages are edited by their author only and deleted by
 * the author, the channel's owner/admins, or an org admin; anonymous callers get 401.
 *
 * Every matrix runs its denied and allowed cases on the same object in one test, with a table of
 * outcomes compared at once, so a denial cannot pass because of a wrong id or a broken route.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { makeOrg, makeUser, type TestUser } from '../helpers/factories.ts';
import { call, newTestApp, type TestApp } from '../helpers/new-test-app.ts';
import { testDialects } from '../helpers/new-test-db.ts';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
type Kind = 'public' | 'private' | 'direct' | 'group';
type Who = 'owner' | 'member' | 'nonMember' | 'former' | 'admin' | 'customer' | 'outsider' | 'anon';

const KINDS: Kind[] = ['public', 'private', 'direct', 'group'];
const EVERYONE: Who[] = ['owner', 'member', 'nonMember', 'former', 'admin', 'customer', 'outsider', 'anon'];
/** Members of the organization who may browse public channels without being in them. */
const ORG_STAFF_NON_MEMBERS: Who[] = ['nonMember', 'former', 'admin'];

interface Conv {
  kind: Kind;
  id: string;
  /** Messages sent during setup, by author. `former` only where they were a member. */
  msg: { owner: string; member: string; former?: string };
}

/** "200", or "404 conversation.not_found": what a caller can tell from an answer. */
type Outcome = string;
const outcome = (r: { statusCode: number; data: any }): Outcome => (r.statusCode < 300 ? String(r.statusCode) : `${r.statusCode} ${r.data?.error?.code}`);
const errorOf = (r: { statusCode: number; data: any }) => ({ status: r.statusCode, code: r.data?.error?.code, message: r.data?.error?.message });

const isConvMember = (who: Who) => who === 'owner' || who === 'member';
/** May read the conversation: its members; for a public channel also the org's staff and members. */
const canRead = (kind: Kind, who: Who) => isConvMember(who) || (kind === 'public' && ORG_STAFF_NON_MEMBERS.includes(who));

/** The answer for a caller who may not even see the conversation. */
function hidden(who: Who, code: 'conversation.not_found' | 'message.not_found'): Outcome {
  return who === 'anon' ? '401 auth.required' : `404 ${code}`;
}

for (const dialect of testDialects()) {
  describe(`conversations access matrix (${dialect})`, () => {
    let t: TestApp;
    const users = {} as Record<Exclude<Who, 'anon'>, TestUser>;
    /** Someone the matrix adds to and removes from conversations. */
    let invitee: TestUser;
    const shared = {} as Record<Kind, Conv>;

    const req = (who: Who, method: Method, url: string, body?: unknown) =>
      call(t.app, method, `/api/v1${url}`, { ...(who === 'anon' ? {} : { token: users[who].token }), ...(body === undefined ? {} : { body }) });

    const ok = async (who: Who, method: Method, url: string, body?: unknown, status = 200) => {
      const r = await req(who, method, url, body);
      assert.equal(r.statusCode, status, `${who} ${method} ${url}: ${r.body}`);
      return r.data;
    };
    const send = async (who: Who, convId: string, text: string): Promise<string> => (await ok(who, 'POST', `/channels/${convId}/messages`, { body: text }, 201)).id;
    const memberIds = async (convId: string) => {
      const r = await ok('member', 'GET', `/channels/${convId}/members`);
      return (r.data as Array<{ user_id: string }>).map((m) => m.user_id).sort();
    };
    const messageAsMember = (id: string) => ok('member', 'GET', `/messages/${id}`);

    let seq = 0;
    /**
     * A conversation of the given kind with owner, member and (except for a DM) former, who each
     * sent a message, then former left or was removed. Direct conversations exist once per pair,
     * so `direct` always answers the same one.
     */
    async function build(kind: Kind): Promise<Conv> {
      let id: string;
      if (kind === 'public' || kind === 'private') {
        id = (await ok('owner', 'POST', '/channels', { name: `${kind}-${dialect}-${++seq}`, private: kind === 'private', members: [users.member.id, users.former.id] }, 201)).id;
      } else if (kind === 'group') {
        id = (await ok('owner', 'POST', '/dm', { user_ids: [users.member.id, users.former.id] }, 201)).id;
      } else {
        const r = await req('owner', 'POST', '/dm', { user_id: users.member.id });
        assert.ok(r.statusCode === 201 || r.statusCode === 200, r.body);
        id = r.data.id;
      }
      const msg: Conv['msg'] = { owner: await send('owner', id, `${kind} by owner`), member: await send('member', id, `${kind} by member`) };
      if (kind !== 'direct') {
        msg.former = await send('former', id, `${kind} by former`);
        if (kind === 'private') await ok('owner', 'DELETE', `/channels/${id}/members/${users.former.id}`, undefined, 204);
        else await ok('former', 'POST', `/channels/${id}/leave`, undefined, 204);
      }
      return { kind, id, msg };
    }

    before(async () => {
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0' } });
      const org = await makeOrg(t.services);
      users.owner = await makeUser(t.app, t.services, org.id, 'member');
      users.member = await makeUser(t.app, t.services, org.id, 'member');
      users.nonMember = await makeUser(t.app, t.services, org.id, 'member');
      users.former = await makeUser(t.app, t.services, org.id, 'member');
      users.admin = await makeUser(t.app, t.services, org.id, 'admin');
      users.customer = await makeUser(t.app, t.services, org.id, 'customer');
      invitee = await makeUser(t.app, t.services, org.id, 'member');
      const other = await makeOrg(t.services);
      users.outsider = await makeUser(t.app, t.services, other.id, 'admin');
      for (const kind of KINDS) shared[kind] = await build(kind);
    });
    after(() => t.close());

    /**
     * Run `attempt` for every caller, then compare the whole table of outcomes with `want`. A
     * hidden-object answer (404) must also be exactly what the same caller gets for a random id.
     */
    async function matrix(
      label: string,
      want: (who: Who) => Outcome,
      attempt: (who: Who) => Promise<{ statusCode: number; data: any }>,
      opts: { order?: Who[]; random?: (who: Who) => Promise<{ statusCode: number; data: any }> } = {},
    ) {
      const got: Record<string, Outcome> = {};
      const expected: Record<string, Outcome> = {};
      const mismatchedNotFound: string[] = [];
      for (const who of opts.order ?? EVERYONE) {
        const r = await attempt(who);
        got[who] = outcome(r);
        expected[who] = want(who);
        if (opts.random && r.statusCode === 404) {
          const probe = await opts.random(who);
          if (JSON.stringify(errorOf(probe)) !== JSON.stringify(errorOf(r))) mismatchedNotFound.push(`${who}: ${JSON.stringify(errorOf(r))} vs random ${JSON.stringify(errorOf(probe))}`);
        }
      }
      assert.deepEqual(got, expected, label);
      assert.deepEqual(mismatchedNotFound, [], `${label}: a hidden object must answer like a random id`);
    }

    it('the setup is what the matrix assumes', async () => {
      for (const kind of KINDS) {
        const c = shared[kind];
        const expectedMembers = [users.owner.id, users.member.id].sort();
        assert.deepEqual(await memberIds(c.id), expectedMembers, `${kind}: owner and member, former gone`);
        const conv = await ok('member', 'GET', `/channels/${c.id}`);
        assert.equal(conv.kind, kind);
        const history = await ok('owner', 'GET', `/channels/${c.id}/messages`);
        const want = [c.msg.owner, c.msg.member, ...(c.msg.former ? [c.msg.former] : [])];
        assert.deepEqual(history.data.map((m: { id: string }) => m.id), want, `${kind}: history`);
      }
      const dm = await ok('owner', 'GET', `/dm/${users.member.id}`);
      assert.equal(dm.id, shared.direct.id);
    });

    describe('reading', () => {
      for (const kind of KINDS) {
        const expectRead = (code: 'conversation.not_found' | 'message.not_found') => (who: Who) => (canRead(kind, who) ? '200' : hidden(who, code));

        it(`${kind}: GET /channels/:id`, async () => {
          const c = shared[kind];
          await matrix(`GET ${kind}`, expectRead('conversation.not_found'), async (who) => {
            const r = await req(who, 'GET', `/channels/${c.id}`);
            if (r.statusCode === 200) {
              assert.equal(r.data.id, c.id);
              assert.equal(r.data.is_member, isConvMember(who), `${who}: is_member`);
            }
            return r;
          }, { random: (who) => req(who, 'GET', `/channels/${randomUUID()}`) });
        });

        it(`${kind}: GET /channels/:id/members`, async () => {
          const c = shared[kind];
          await matrix(`members ${kind}`, expectRead('conversation.not_found'), async (who) => {
            const r = await req(who, 'GET', `/channels/${c.id}/members`);
            if (r.statusCode === 200) assert.deepEqual(r.data.data.map((m: { user_id: string }) => m.user_id).sort(), [users.owner.id, users.member.id].sort());
            return r;
          }, { random: (who) => req(who, 'GET', `/channels/${randomUUID()}/members`) });
        });

        it(`${kind}: GET /channels/:id/messages (and its cursors)`, async () => {
          const c = shared[kind];
          await matrix(`history ${kind}`, expectRead('conversation.not_found'), async (who) => {
            const r = await req(who, 'GET', `/channels/${c.id}/messages`);
            if (r.statusCode === 200) assert.ok(r.data.data.some((m: { id: string }) => m.id === c.msg.owner), `${who} reads the history`);
            return r;
          }, { random: (who) => req(who, 'GET', `/channels/${randomUUID()}/messages`) });
          for (const cursor of ['around', 'before', 'after']) {
            await matrix(`history ${kind} ?${cursor}=`, expectRead('conversation.not_found'), (who) => req(who, 'GET', `/channels/${c.id}/messages?${cursor}=${c.msg.member}`));
          }
        });

        it(`${kind}: GET /messages/:id`, async () => {
          const c = shared[kind];
          for (const author of ['owner', 'member'] as const) {
            await matrix(`message by ${author} in ${kind}`, expectRead('message.not_found'), async (who) => {
              const r = await req(who, 'GET', `/messages/${c.msg[author]}`);
              if (r.statusCode === 200) assert.equal(r.data.id, c.msg[author]);
              return r;
            }, { random: (who) => req(who, 'GET', `/messages/${randomUUID()}`) });
          }
        });
      }

      it('GET /channels and /channels/joined list public channels and your private ones, never a DM or group', async () => {
        const ours = new Set(KINDS.map((k) => shared[k].id));
        const listed = async (who: Who, path: string, query: string) => {
          const found: Kind[] = [];
          let cursor: string | null = null;
          do {
            const r = await req(who, 'GET', `${path}?limit=2${query}${cursor ? `&cursor=${cursor}` : ''}`);
            if (r.statusCode !== 200) return outcome(r);
            for (const c of r.data.data as Array<{ id: string }>) if (ours.has(c.id)) found.push(KINDS.find((k) => shared[k].id === c.id)!);
            cursor = r.data.next_cursor;
          } while (cursor);
          return found.sort().join(',');
        };
        for (const [path, query] of [['/channels', ''], ['/channels/joined', ''], ['/channels', '&include_archived=true'], ['/channels/joined', '&include_archived=true']] as const) {
          const got: Record<string, string> = {};
          const want: Record<string, string> = {};
          for (const who of EVERYONE) {
            got[who] = await listed(who, path, query);
            if (who === 'anon') want[who] = '401 auth.required';
            else if (isConvMember(who)) want[who] = 'private,public';
            else if (path === '/channels' && ORG_STAFF_NON_MEMBERS.includes(who)) want[who] = 'public';
            else want[who] = '';
          }
          assert.deepEqual(got, want, `${path}${query}`);
        }
        // Asking for the private channel by its name does not reveal it either.
        const name = (await ok('owner', 'GET', `/channels/${shared.private.id}`)).name as string;
        for (const who of EVERYONE) {
          const r = await req(who, 'GET', `/channels?q=${name}&include_archived=true`);
          const ids = r.statusCode === 200 ? (r.data.data as Array<{ id: string }>).map((c) => c.id) : [];
          assert.deepEqual(ids, isConvMember(who) ? [shared.private.id] : [], `${who} q=${name}`);
        }
      });

      it('a message id of another conversation is refused as a history cursor (no leak)', async () => {
        // nonMember reads the public channel, and tries cursors that point into the private one.
        for (const cursor of ['around', 'before', 'after']) {
          const allowed = await req('nonMember', 'GET', `/channels/${shared.public.id}/messages?${cursor}=${shared.public.msg.member}`);
          assert.equal(allowed.statusCode, 200, allowed.body);
          for (const foreign of [shared.private.msg.owner, shared.direct.msg.owner, shared.group.msg.owner]) {
            const r = await req('nonMember', 'GET', `/channels/${shared.public.id}/messages?${cursor}=${foreign}`);
            assert.equal(outcome(r), '404 message.not_found', `${cursor}=${foreign}`);
            assert.ok(!r.body.includes('by owner'), 'no message content');
          }
        }
        // Even a member of both may not mix them.
        const mixed = await req('member', 'GET', `/channels/${shared.public.id}/messages?around=${shared.private.msg.member}`);
        assert.equal(outcome(mixed), '404 message.not_found');
      });
    });

    describe('former members', () => {
      it('lose the private channel, its history and the messages they read or wrote, right when they are removed', async () => {
        const c = await ok('owner', 'POST', '/channels', { name: `former-${dialect}-${++seq}`, private: true, members: [users.former.id] }, 201);
        const theirs = await send('former', c.id, 'mine');
        const others = await send('owner', c.id, 'theirs');
        const urls = [`/channels/${c.id}`, `/channels/${c.id}/messages`, `/channels/${c.id}/members`, `/messages/${theirs}`, `/messages/${others}`];
        // The allowed twin: while a member, every one of these answers.
        for (const url of urls) assert.equal((await req('former', 'GET', url)).statusCode, 200, url);
        await ok('owner', 'DELETE', `/channels/${c.id}/members/${users.former.id}`, undefined, 204);
        for (const url of urls) {
          const r = await req('former', 'GET', url);
          assert.equal(outcome(r), url.startsWith('/messages') ? '404 message.not_found' : '404 conversation.not_found', url);
        }
        assert.equal(outcome(await req('former', 'PUT', `/messages/${theirs}`, { body: 'edit' })), '404 message.not_found');
        assert.equal(outcome(await req('former', 'DELETE', `/messages/${theirs}`)), '404 message.not_found');
        assert.equal(outcome(await req('former', 'POST', `/channels/${c.id}/messages`, { body: 'back?' })), '404 conversation.not_found');
        assert.equal(outcome(await req('former', 'POST', `/channels/${c.id}/join`)), '404 conversation.not_found');
        const list = await ok('former', 'GET', '/channels?limit=200&include_archived=true');
        assert.ok(!list.data.some((x: { id: string }) => x.id === c.id), 'not listed');
        // Still intact for the owner.
        assert.equal((await ok('owner', 'GET', `/messages/${theirs}`)).body, 'mine');
      });

      it('lose a group they left', async () => {
        const g = await ok('owner', 'POST', '/dm', { user_ids: [users.member.id, users.former.id] }, 201);
        const theirs = await send('former', g.id, 'mine');
        assert.equal((await req('former', 'GET', `/messages/${theirs}`)).statusCode, 200);
        await ok('former', 'POST', `/channels/${g.id}/leave`, undefined, 204);
        assert.equal(outcome(await req('former', 'GET', `/messages/${theirs}`)), '404 message.not_found');
        assert.equal(outcome(await req('former', 'GET', `/channels/${g.id}/messages`)), '404 conversation.not_found');
        assert.equal(outcome(await req('former', 'POST', `/channels/${g.id}/join`)), '404 conversation.not_found', 'a group cannot be re-joined');
      });
    });

    describe('joining', () => {
      for (const kind of KINDS) {
        it(`${kind}: POST /channels/:id/join`, async () => {
          const c = shared[kind];
          const before = await memberIds(c.id);
          await matrix(`join ${kind}`, (who) => (canRead(kind, who) ? '200' : hidden(who, 'conversation.not_found')), async (who) => {
            const r = await req(who, 'POST', `/channels/${c.id}/join`);
            if (r.statusCode === 200) {
              assert.equal(r.data.is_member, true, `${who} is a member after joining`);
              // Those who were not members leave again, to keep the setup intact.
              if (!isConvMember(who)) await ok(who, 'POST', `/channels/${c.id}/leave`, undefined, 204);
            }
            return r;
          }, { random: (who) => req(who, 'POST', `/channels/${randomUUID()}/join`) });
          assert.deepEqual(await memberIds(c.id), before, 'membership is unchanged');
        });
      }
    });

    describe('sending, editing, deleting messages', () => {
      for (const kind of KINDS) {
        it(`${kind}: POST /channels/:id/messages needs membership`, async () => {
          const c = shared[kind];
          const lastSeq = async () => (await ok('member', 'GET', `/channels/${c.id}`)).last_seq as number;
          const start = await lastSeq();
          const want = (who: Who): Outcome => {
            if (isConvMember(who)) return '201';
            if (kind === 'public' && ORG_STAFF_NON_MEMBERS.includes(who)) return '403 conversation.not_member';
            return hidden(who, 'conversation.not_found');
          };
          // Denied callers first, so that the count below only moves for the allowed ones.
          await matrix(`send ${kind}`, want, (who) => req(who, 'POST', `/channels/${c.id}/messages`, { body: `from ${who}` }), {
            order: ['nonMember', 'former', 'admin', 'customer', 'outsider', 'anon', 'owner', 'member'],
            random: (who) => req(who, 'POST', `/channels/${randomUUID()}/messages`, { body: 'x' }),
          });
          assert.equal(await lastSeq(), start + 2, 'only the two members’ messages were stored');
          const history = await ok('member', 'GET', `/channels/${c.id}/messages?limit=2`);
          assert.deepEqual(history.data.map((m: { body: string }) => m.body), ['from owner', 'from member']);
        });

        it(`${kind}: PUT /messages/:id only by the author`, async () => {
          const c = shared[kind];
          const id = await send('member', c.id, 'to be edited');
          const want = (who: Who): Outcome => {
            if (who === 'member') return '200';
            if (who === 'owner') return '403 forbidden';
            if (kind === 'public' && ORG_STAFF_NON_MEMBERS.includes(who)) return '403 conversation.not_member';
            return hidden(who, 'message.not_found');
          };
          await matrix(`edit ${kind}`, want, async (who) => {
            const r = await req(who, 'PUT', `/messages/${id}`, { body: `edited by ${who}` });
            if (who !== 'member') assert.equal((await messageAsMember(id)).body, 'to be edited', `${who} changed nothing`);
            return r;
          }, { order: ['owner', 'nonMember', 'former', 'admin', 'customer', 'outsider', 'anon', 'member'], random: (who) => req(who, 'PUT', `/messages/${randomUUID()}`, { body: 'x' }) });
          assert.equal((await messageAsMember(id)).body, 'edited by member');
          if (c.msg.former) {
            // The former member's own old message: public is still readable by them but no longer writable.
            const r = await req('former', 'PUT', `/messages/${c.msg.former}`, { body: 'rewrite history' });
            assert.equal(outcome(r), kind === 'public' ? '403 conversation.not_member' : '404 message.not_found');
            assert.equal((await messageAsMember(c.msg.former)).body, `${kind} by former`);
          }
        });

        it(`${kind}: DELETE /messages/:id by the author, the channel owner, an org admin`, async () => {
          const c = shared[kind];
          const deleters: Who[] = ['member', ...(kind === 'direct' ? [] : (['owner'] as Who[])), ...(kind === 'public' ? (['admin'] as Who[]) : [])];
          const want = (who: Who): Outcome => {
            if (deleters.includes(who)) return '204';
            if (who === 'owner') return '403 forbidden'; // the other side of a DM
            if (kind === 'public' && ORG_STAFF_NON_MEMBERS.includes(who)) return '403 forbidden';
            return hidden(who, 'message.not_found');
          };
          // One message (by member) per allowed deleter; every denied caller tries it first.
          for (const deleter of deleters) {
            const id = await send('member', c.id, `delete me (${deleter})`);
            const order = [...EVERYONE.filter((w) => !deleters.includes(w)), deleter];
            await matrix(`delete ${kind} by ${deleter}`, (who) => want(who), async (who) => {
              const r = await req(who, 'DELETE', `/messages/${id}`);
              if (who !== deleter) assert.equal((await messageAsMember(id)).deleted, false, `${who} deleted nothing`);
              return r;
            }, { order, random: (who) => req(who, 'DELETE', `/messages/${randomUUID()}`) });
            const m = await messageAsMember(id);
            assert.equal(m.deleted, true, `deleted by ${deleter}`);
            assert.equal(m.body, '');
          }
        });
      }

      it('a former member of a public channel still deletes their own message; of a private one or a group, cannot reach it', async () => {
        for (const kind of ['private', 'group', 'public'] as const) {
          const id = shared[kind].msg.former!;
          const r = await req('former', 'DELETE', `/messages/${id}`);
          assert.equal(outcome(r), kind === 'public' ? '204' : '404 message.not_found', kind);
          assert.equal((await messageAsMember(id)).deleted, kind === 'public');
        }
      });
    });

    describe('managing', () => {
      /** Channel owner/admins, and org admins where they can see it, manage; DMs have no manager. */
      const canManage = (kind: Kind, who: Who) => (kind !== 'direct' && who === 'owner') || (kind === 'public' && who === 'admin');
      const manageWant = (kind: Kind) => (who: Who): Outcome => {
        if (canManage(kind, who)) return '200';
        if (canRead(kind, who)) return '403 forbidden';
        return hidden(who, 'conversation.not_found');
      };
      const deniedFirst = (kind: Kind): Who[] => [...EVERYONE.filter((w) => !canManage(kind, w)), ...EVERYONE.filter((w) => canManage(kind, w))];

      for (const kind of KINDS) {
        it(`${kind}: PUT /channels/:id`, async () => {
          const c = kind === 'direct' ? shared.direct : await build(kind);
          await matrix(`update ${kind}`, manageWant(kind), async (who) => {
            const before = (await ok('member', 'GET', `/channels/${c.id}`)).topic;
            const r = await req(who, 'PUT', `/channels/${c.id}`, { topic: `set by ${who}` });
            const after = (await ok('member', 'GET', `/channels/${c.id}`)).topic;
            assert.equal(after, r.statusCode === 200 ? `set by ${who}` : before, `${who}: topic`);
            return r;
          }, { order: deniedFirst(kind), random: (who) => req(who, 'PUT', `/channels/${randomUUID()}`, { topic: 'x' }) });
        });

        it(`${kind}: POST /channels/:id/archive and /unarchive`, async () => {
          const c = kind === 'direct' ? shared.direct : await build(kind);
          const archived = async () => (await ok('member', 'GET', `/channels/${c.id}`)).archived as boolean;
          await matrix(`archive ${kind}`, manageWant(kind), async (who) => {
            const r = await req(who, 'POST', `/channels/${c.id}/archive`);
            assert.equal(await archived(), r.statusCode === 200, `${who}: archived`);
            if (r.statusCode === 200) {
              // While archived, the same callers are tried on unarchive; then this one restores it.
              for (const other of EVERYONE.filter((w) => !canManage(kind, w))) {
                const u = await req(other, 'POST', `/channels/${c.id}/unarchive`);
                assert.equal(outcome(u), manageWant(kind)(other), `${other} unarchive`);
                assert.equal(await archived(), true);
              }
              await ok(who, 'POST', `/channels/${c.id}/unarchive`);
              assert.equal(await archived(), false);
            }
            return r;
          }, { order: deniedFirst(kind), random: (who) => req(who, 'POST', `/channels/${randomUUID()}/archive`) });
        });

        it(`${kind}: DELETE /channels/:id (owner or org admin)`, async () => {
          const deleters: Who[] = kind === 'direct' ? [] : kind === 'public' ? ['owner', 'admin'] : ['owner'];
          const want = (who: Who): Outcome => {
            if (deleters.includes(who)) return '204';
            if (canRead(kind, who)) return '403 forbidden';
            return hidden(who, 'conversation.not_found');
          };
          // A DM has no deleter among these callers: only the denials, on the shared one.
          for (const deleter of deleters.length ? deleters : [null]) {
            const c = kind === 'direct' ? shared.direct : await build(kind);
            const order = [...EVERYONE.filter((w) => !deleters.includes(w)), ...(deleter ? [deleter] : [])];
            await matrix(`delete ${kind}${deleter ? ` by ${deleter}` : ''}`, want, async (who) => {
              const r = await req(who, 'DELETE', `/channels/${c.id}`);
              if (who !== deleter) assert.equal((await req('member', 'GET', `/channels/${c.id}`)).statusCode, 200, `${who} deleted nothing`);
              return r;
            }, { order, random: (who) => req(who, 'DELETE', `/channels/${randomUUID()}`) });
            if (deleter) {
              assert.equal(outcome(await req('member', 'GET', `/channels/${c.id}`)), '404 conversation.not_found');
              assert.equal(outcome(await req('member', 'GET', `/messages/${c.msg.member}`)), '404 message.not_found');
            }
          }
        });

        it(`${kind}: POST /channels/:id/members (members add)`, async () => {
          const c = kind === 'direct' ? shared.direct : await build(kind);
          const want = (who: Who): Outcome => {
            if (isConvMember(who)) return kind === 'direct' ? '400 conversation.invalid_members' : '204';
            // Org admins moderate public channels without being members: they may add people.
            if (kind === 'public' && who === 'admin') return '204';
            if (kind === 'public' && ORG_STAFF_NON_MEMBERS.includes(who)) return '403 conversation.not_member';
            return hidden(who, 'conversation.not_found');
          };
          await matrix(`add ${kind}`, want, async (who) => {
            const r = await req(who, 'POST', `/channels/${c.id}/members`, { user_id: invitee.id });
            const has = (await memberIds(c.id)).includes(invitee.id);
            assert.equal(has, r.statusCode === 204, `${who}: invitee added`);
            if (has) await ok('owner', 'DELETE', `/channels/${c.id}/members/${invitee.id}`, undefined, 204);
            return r;
          }, { order: ['nonMember', 'former', 'admin', 'customer', 'outsider', 'anon', 'owner', 'member'], random: (who) => req(who, 'POST', `/channels/${randomUUID()}/members`, { user_id: invitee.id }) });
        });

        it(`${kind}: DELETE /channels/:id/members/:userId (owners and admins)`, async () => {
          const c = kind === 'direct' ? shared.direct : await build(kind);
          // Elsewhere: the invitee, added for this. In a DM: the other one of the fixed pair.
          const targetFor = (who: Who) => (kind !== 'direct' ? invitee : who === 'member' ? users.owner : users.member);
          if (kind !== 'direct') await ok('owner', 'POST', `/channels/${c.id}/members`, { user_id: invitee.id }, 204);
          const want = (who: Who): Outcome => {
            if (canManage(kind, who)) return '204';
            if (canRead(kind, who)) return '403 forbidden';
            return hidden(who, 'conversation.not_found');
          };
          await matrix(`remove ${kind}`, want, async (who) => {
            const target = targetFor(who);
            const r = await req(who, 'DELETE', `/channels/${c.id}/members/${target.id}`);
            const still = (await memberIds(c.id)).includes(target.id);
            assert.equal(still, r.statusCode !== 204, `${who}: target removed`);
            if (!still) await ok('owner', 'POST', `/channels/${c.id}/members`, { user_id: target.id }, 204);
            return r;
          }, { order: deniedFirst(kind), random: (who) => req(who, 'DELETE', `/channels/${randomUUID()}/members/${targetFor(who).id}`) });
        });

        it(`${kind}: POST /channels/:id/leave`, async () => {
          const c = kind === 'direct' ? shared.direct : await build(kind);
          // The member leaves (and is put back by the owner); the others cannot leave what they are
          // not in. The owner of a channel is left out (they would lose the owner role); in a DM,
          // where nobody can leave, both sides are tried.
          const want = (who: Who): Outcome => {
            if (isConvMember(who)) return kind === 'direct' ? '400 conversation.invalid_members' : '204';
            if (kind === 'public' && ORG_STAFF_NON_MEMBERS.includes(who)) return '403 conversation.not_member';
            return hidden(who, 'conversation.not_found');
          };
          const before = await memberIds(c.id);
          const order: Who[] = ['nonMember', 'former', 'admin', 'customer', 'outsider', 'anon', 'member', ...(kind === 'direct' ? (['owner'] as Who[]) : [])];
          await matrix(`leave ${kind}`, want, async (who) => {
            const r = await req(who, 'POST', `/channels/${c.id}/leave`);
            const members = (await ok('owner', 'GET', `/channels/${c.id}/members`)).data as Array<{ user_id: string }>;
            if (who === 'member') {
              assert.equal(members.some((m) => m.user_id === users.member.id), r.statusCode !== 204, 'left');
              if (r.statusCode === 204) await ok('owner', 'POST', `/channels/${c.id}/members`, { user_id: users.member.id }, 204);
            }
            return r;
          }, { order, random: (who) => req(who, 'POST', `/channels/${randomUUID()}/leave`) });
          assert.deepEqual(await memberIds(c.id), before);
        });
      }
    });

    describe('direct conversation endpoints', () => {
      it('GET /dm/:userId answers only the two people of the pair', async () => {
        const want = (who: Who): Outcome => (isConvMember(who) ? '200' : hidden(who, 'conversation.not_found'));
        await matrix('GET /dm/:userId', want, async (who) => {
          // Each caller asks for "the DM with" one of the pair (the member asks for the owner).
          const r = await req(who, 'GET', `/dm/${who === 'member' ? users.owner.id : users.member.id}`);
          if (r.statusCode === 200) assert.equal(r.data.id, shared.direct.id);
          return r;
        }, { random: (who) => req(who, 'GET', `/dm/${randomUUID()}`) });
        const alsoOwner = await req('outsider', 'GET', `/dm/${users.owner.id}`);
        assert.equal(outcome(alsoOwner), '404 conversation.not_found');
      });

      it('POST /dm: staff and members open DMs in their organization only; customers cannot; anonymous 401', async () => {
        const count = async () => (await t.db.db.selectFrom('conversations').select('id').where('kind', 'in', ['direct', 'group']).execute()).length;
        const before = await count();
        const got = {
          owner: outcome(await req('owner', 'POST', '/dm', { user_id: users.member.id })),
          outsiderDirect: outcome(await req('outsider', 'POST', '/dm', { user_id: users.member.id })),
          outsiderGroup: outcome(await req('outsider', 'POST', '/dm', { user_ids: [users.member.id, users.owner.id] })),
          ownerWithOutsider: outcome(await req('owner', 'POST', '/dm', { user_ids: [users.member.id, users.outsider.id] })),
          customer: outcome(await req('customer', 'POST', '/dm', { user_id: users.member.id })),
          anon: outcome(await req('anon', 'POST', '/dm', { user_id: users.member.id })),
        };
        assert.deepEqual(got, {
          owner: '200',
          outsiderDirect: '400 conversation.invalid_members',
          outsiderGroup: '400 conversation.invalid_members',
          ownerWithOutsider: '400 conversation.invalid_members',
          customer: '403 forbidden',
          anon: '401 auth.required',
        });
        assert.equal(await count(), before, 'nothing was created');
      });
    });

    it('anonymous callers get 401 on every endpoint; the owner reaches each of them', async () => {
      const c = await build('private');
      const m = c.msg.owner;
      // In an order the owner (or, to leave, the member) can run all of them, deleting last.
      const routes: Array<{ method: Method; url: string; body?: unknown; twin: Who; status: number }> = [
        { method: 'GET', url: '/channels', twin: 'owner', status: 200 },
        { method: 'GET', url: '/channels/joined', twin: 'owner', status: 200 },
        { method: 'POST', url: '/channels', body: { name: `anon-twin-${dialect}` }, twin: 'owner', status: 201 },
        { method: 'GET', url: `/channels/${c.id}`, twin: 'owner', status: 200 },
        { method: 'PUT', url: `/channels/${c.id}`, body: { topic: 'x' }, twin: 'owner', status: 200 },
        { method: 'POST', url: `/channels/${c.id}/archive`, twin: 'owner', status: 200 },
        { method: 'POST', url: `/channels/${c.id}/unarchive`, twin: 'owner', status: 200 },
        { method: 'POST', url: `/channels/${c.id}/join`, twin: 'owner', status: 200 },
        { method: 'GET', url: `/channels/${c.id}/members`, twin: 'owner', status: 200 },
        { method: 'POST', url: `/channels/${c.id}/members`, body: { user_id: invitee.id }, twin: 'owner', status: 204 },
        { method: 'DELETE', url: `/channels/${c.id}/members/${invitee.id}`, twin: 'owner', status: 204 },
        { method: 'POST', url: '/dm', body: { user_id: users.member.id }, twin: 'owner', status: 200 },
        { method: 'GET', url: `/dm/${users.member.id}`, twin: 'owner', status: 200 },
        { method: 'GET', url: `/channels/${c.id}/messages`, twin: 'owner', status: 200 },
        { method: 'POST', url: `/channels/${c.id}/messages`, body: { body: 'x' }, twin: 'owner', status: 201 },
        { method: 'GET', url: `/messages/${m}`, twin: 'owner', status: 200 },
        { method: 'PUT', url: `/messages/${m}`, body: { body: 'x' }, twin: 'owner', status: 200 },
        { method: 'DELETE', url: `/messages/${m}`, twin: 'owner', status: 204 },
        { method: 'POST', url: `/channels/${c.id}/leave`, twin: 'member', status: 204 },
        { method: 'DELETE', url: `/channels/${c.id}`, twin: 'owner', status: 204 },
      ];
      for (const { method, url, body } of routes) {
        const r = await req('anon', method, url, body);
        assert.equal(outcome(r), '401 auth.required', `${method} ${url}`);
        const bad = await call(t.app, method, `/api/v1${url}`, { token: 'not-a-token', ...(body === undefined ? {} : { body }) });
        assert.equal(bad.statusCode, 401, `${method} ${url} with a bad token`);
      }
      const intact = await ok('owner', 'GET', `/channels/${c.id}`);
      assert.equal(intact.archived, false);
      assert.equal(intact.topic, null);
      assert.equal((await ok('owner', 'GET', `/messages/${m}`)).body, 'private by owner');
      assert.equal((await ok('owner', 'GET', `/channels/${c.id}/messages`)).data.length, 3, 'nothing was sent');
      for (const { method, url, body, twin, status } of routes) {
        const r = await req(twin, method, url, body);
        assert.equal(r.statusCode, status, `${twin} ${method} ${url}: ${r.body}`);
      }
    });
  });
}
