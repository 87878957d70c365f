import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUsers, type TestUser } from '../../../test/helpers/factories.ts';
import * as m0015 from '../../storage/migrations/0015-fts-high-water-mark.ts';
import type { TxRunner } from '../../storage/group-commit.ts';
import { FtsIndexer } from './fts-indexer.ts';

/**
 * SQLite's search index is filled in batches (FtsIndexer, migrations 0013 and 0015): what waits
 * above the mark must be found by the next search, survive a restart, and follow edits and
 * deletes whether a message was already indexed or still waiting.
 */
describe('search index in batches (sqlite)', { skip: !testDialects().includes('sqlite') && 'SQLite only, not in this run' }, () => {
  let t: TestApp;
  let alice: TestUser;
  let channelId: string;
  before(async () => {
    // An interval that never fires during the test: every flush below is the one the test asks for.
    t = await newTestApp({ dialect: 'sqlite', env: { RATE_LIMIT_MAX: '0', SEARCH_INDEX_INTERVAL_MS: '60000' } });
    const org = await makeOrg(t.services);
    [alice] = (await makeUsers(t.app, t.services, org.id, 1)) as [TestUser];
    channelId = (await call(t.app, 'POST', '/api/v1/channels', { token: alice.token, body: { name: 'idx', members: [] } })).data.id;
  });
  after(() => t.close());

  let n = 0;
  const word = () => `fts${++n}q`;
  const send = async (body: string) => {
    const r = await call(t.app, 'POST', `/api/v1/channels/${channelId}/messages`, { token: alice.token, body: { body } });
    assert.equal(r.statusCode, 201, r.body);
    return r.data as { id: string };
  };
  const found = async (q: string): Promise<string[]> => {
    const r = await call(t.app, 'GET', `/api/v1/search?q=${encodeURIComponent(q)}&limit=100`, { token: alice.token });
    assert.equal(r.statusCode, 200, r.body);
    return r.data.data.map((h: { message: { id: string } }) => h.message.id);
  };
  /** Messages not indexed yet: those above the mark. */
  const pending = async () => Number((await sql<{ n: number }>`select count(*) as n from messages where rowid > (select indexed_upto from messages_fts_state)`.execute(t.db.db)).rows[0]!.n);
  const indexed = async (w: string) => Number((await sql<{ n: number }>`select count(*) as n from messages_fts where messages_fts match ${`body:"${w}"`}`.execute(t.db.db)).rows[0]!.n);
  const consistent = () => sql`insert into messages_fts(messages_fts, rank) values ('integrity-check', 1)`.execute(t.db.db);

  it('a send waits above the mark, not in the index; the next search finds it (it flushes first)', async () => {
    const w = word();
    const m = await send(`deploy ${w} now`);
    assert.equal(await pending(), 1);
    assert.equal(await indexed(w), 0, 'not indexed by the send itself');
    assert.deepEqual(await found(w), [m.id]);
    assert.equal(await pending(), 0);
    await consistent();
  });

  it('what was above the mark before a restart is indexed after it (the mark is in a table)', async () => {
    const w = word();
    const ids = [(await send(`${w} one`)).id, (await send(`${w} two`)).id, (await send(`${w} three`)).id];
    assert.equal(await pending(), 3);
    // A fresh indexer over the same database, as a restarted process would make, in small batches.
    const fresh = new FtsIndexer(t.db.db, t.db.writes, { intervalMs: 60_000, batch: 2 });
    await fresh.flush();
    assert.equal(await pending(), 0);
    assert.equal(await indexed(w), 3);
    assert.deepEqual((await found(w)).sort(), ids.sort());
    await consistent();
  });

  it('edits and deletes: of a queued message the indexer reads the current body; of an indexed one the triggers update the index', async () => {
    const [a, b, c, d] = [word(), word(), word(), word()];
    // Queued, then edited and deleted before any flush.
    const q1 = await send(`${a} draft`);
    const q2 = await send(`${b} oops`);
    assert.equal((await call(t.app, 'PUT', `/api/v1/messages/${q1.id}`, { token: alice.token, body: { body: `${c} final` } })).statusCode, 200);
    assert.equal((await call(t.app, 'DELETE', `/api/v1/messages/${q2.id}`, { token: alice.token })).statusCode < 300, true);
    assert.deepEqual(await found(a), [], 'the queued body before the edit is never indexed');
    assert.deepEqual(await found(c), [q1.id]);
    assert.deepEqual(await found(b), [], 'a deleted queued message is not found');
    // Indexed (the searches above flushed), then edited: old words go, new ones come.
    assert.equal((await call(t.app, 'PUT', `/api/v1/messages/${q1.id}`, { token: alice.token, body: { body: `${d} really final` } })).statusCode, 200);
    assert.equal(await pending(), 0, 'an edit of an indexed message is applied at once, not queued');
    assert.deepEqual(await found(c), []);
    assert.deepEqual(await found(d), [q1.id]);
    await consistent();
  });

  it('a new message that takes the rowid of a deleted one is still indexed (the delete lowers the mark)', async () => {
    const w1 = word();
    const last = await send(`${w1} the newest`);
    assert.deepEqual(await found(w1), [last.id]);
    const rowid = async (id: string) => Number((await sql<{ r: number }>`select rowid as r from messages where id = ${id}`.execute(t.db.db)).rows[0]!.r);
    const before = await rowid(last.id);
    // Deleted for good (a conversation or organization delete cascades like this): SQLite reuses the largest rowid.
    await sql`delete from messages where id = ${last.id}`.execute(t.db.db);
    const w2 = word();
    const next = await send(`${w2} reuses it`);
    assert.equal(await rowid(next.id), before, 'the same rowid (else this test proves nothing)');
    assert.deepEqual(await found(w2), [next.id]);
    assert.deepEqual(await found(w1), []);
    await consistent();
  });

  it('a batch never moves the mark past the largest rowid, also when the newest messages are deleted after the flush began', async () => {
    const w = word();
    const keep = await send(`${w} kept`);
    const gone = await send(`${w} deleted while the flush starts`);
    // The flush reads the newest rowid (gone's), then the message is deleted before its batch runs.
    let deleted = false;
    const racing: TxRunner = {
      run: async (work) => {
        if (!deleted) {
          deleted = true;
          await sql`delete from messages where id = ${gone.id}`.execute(t.db.db);
        }
        return t.db.writes.run(work);
      },
    };
    await new FtsIndexer(t.db.db, racing, { intervalMs: 60_000 }).flush();
    assert.equal(deleted, true);
    const mark = async () => Number((await sql<{ m: number }>`select indexed_upto as m from messages_fts_state`.execute(t.db.db)).rows[0]!.m);
    const max = async () => Number((await sql<{ m: number }>`select max(rowid) as m from messages`.execute(t.db.db)).rows[0]!.m);
    assert.equal(await mark(), await max(), 'the mark stops at the largest rowid left');
    // The next message takes the deleted one's rowid: it is above the mark, so it gets indexed.
    const w2 = word();
    const next = await send(`${w2} after`);
    assert.deepEqual(await found(w2), [next.id]);
    assert.deepEqual(await found(w), [keep.id]);
    await consistent();
  });

  it('segments are merged by the indexer in steps, not inside the writes (automerge off, migration 0017)', async () => {
    const segments = async () => Number((await sql<{ n: number }>`select count(distinct segid) as n from messages_fts_idx`.execute(t.db.db)).rows[0]!.n);
    const automerge = await sql<{ v: number }>`select v from messages_fts_config where k = 'automerge'`.execute(t.db.db);
    assert.equal(Number(automerge.rows[0]?.v), 0);
    const indexer = new FtsIndexer(t.db.db, t.db.writes, { intervalMs: 60_000 });
    await indexer.merge();
    const start = await segments();
    const w = word();
    const ids: string[] = [];
    // One segment per flush, none merged by the writes themselves.
    for (let i = 0; i < 12; i++) {
      ids.push((await send(`${w} number ${i}`)).id);
      await indexer.flush();
    }
    assert.ok((await segments()) >= start + 12, `12 flushes, 12 more segments (${start} → ${await segments()})`);
    const steps = await indexer.merge();
    assert.ok(steps >= 1, 'the merge did work');
    assert.ok((await segments()) <= 3, `merged down to a few segments, was ${start + 12}: ${await segments()}`);
    assert.equal(await indexer.merge(), 0, 'nothing left to merge');
    assert.deepEqual((await found(w)).sort(), ids.sort());
    await consistent();
  });

  it('migration 0015 down queues what is above the mark and puts the queue back; up again derives the mark from the queue', async () => {
    const w1 = word();
    const waiting = await send(`${w1} above the mark before down`);
    assert.equal(await pending(), 1);
    const db = t.db.db as unknown as Parameters<typeof m0015.down>[0];
    await m0015.down(db);
    const queued = async () => Number((await sql<{ n: number }>`select count(*) as n from messages_fts_pending`.execute(t.db.db)).rows[0]!.n);
    assert.equal(await queued(), 1, 'the message above the mark is queued on the way down');
    const w2 = word();
    await send(`${w2} queued by the trigger`);
    assert.equal(await queued(), 2, 'the queue’s trigger queues a send');
    await m0015.up(db);
    assert.equal(await pending(), 2, 'the mark sits below the queue’s lowest rowid');
    assert.equal(await indexed(w1), 0);
    assert.deepEqual(await found(w1), [waiting.id]);
    assert.equal((await found(w2)).length, 1);
    assert.equal(await pending(), 0);
    await consistent();
  });
});
