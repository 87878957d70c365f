import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type { Generated, Kysely } from 'kysely';
import { createDb, type Database } from './db.ts';
import { GroupCommit } from './group-commit.ts';
import type { DB } from './schema.ts';

/** A scratch table outside the app's schema, written through the runner under test. */
type Scratch = Kysely<{ items: { id: Generated<number>; label: string } }>;
const asScratch = (db: Kysely<DB>) => db as unknown as Scratch;

describe('SQLite group commit', () => {
  let dir: string;
  let database: Database;
  let gc: GroupCommit;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-gc-'));
    database = createDb(join(dir, 'gc.db'));
    await sql`create table items (id integer primary key, label text not null unique)`.execute(database.db);
    gc = database.writes as GroupCommit;
    assert.ok(gc instanceof GroupCommit, 'SQLite writes use group commit');
  });
  after(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const count = async () => Number((await sql<{ n: number }>`select count(*) as n from items`.execute(database.db)).rows[0]!.n);

  it('runs the calls of one event-loop turn in one transaction, and each gets its own result', async () => {
    const before = { ...gc.stats };
    const ids = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        gc.run(async (trx) => {
          const r = await asScratch(trx).insertInto('items').values({ label: `a${i}` }).returning('id').executeTakeFirstOrThrow();
          return r.id;
        }),
      ),
    );
    assert.equal(new Set(ids).size, 50);
    assert.equal(gc.stats.calls - before.calls, 50);
    assert.equal(gc.stats.batches - before.batches, 1, 'fifty concurrent calls, one transaction');
    assert.equal(await count(), 50);
  });

  it('a failing call is rolled back alone; the others of its batch commit', async () => {
    const start = await count();
    const results = await Promise.allSettled([
      gc.run((trx) => asScratch(trx).insertInto('items').values({ label: 'b1' }).execute()),
      // Half done, then fails: its first row must not stay.
      gc.run(async (trx) => {
        await asScratch(trx).insertInto('items').values({ label: 'b2-partial' }).execute();
        await asScratch(trx).insertInto('items').values({ label: 'a0' }).execute(); // unique violation
      }),
      gc.run(async () => {
        throw new Error('not a database error');
      }),
      gc.run((trx) => asScratch(trx).insertInto('items').values({ label: 'b3' }).execute()),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    assert.match(String((results[1] as PromiseRejectedResult).reason), /UNIQUE/);
    assert.equal((results[2] as PromiseRejectedResult).reason.message, 'not a database error');
    const labels = (await asScratch(database.db).selectFrom('items').select('label').where('label', 'like', 'b%').orderBy('label').execute()).map((r) => r.label);
    assert.deepEqual(labels, ['b1', 'b3']);
    assert.equal(await count(), start + 2);
  });

  it('a call alone in its turn is a plain transaction that rolls back on error', async () => {
    const start = await count();
    await assert.rejects(
      gc.run(async (trx) => {
        await asScratch(trx).insertInto('items').values({ label: 'c1' }).execute();
        throw new Error('changed my mind');
      }),
      /changed my mind/,
    );
    assert.equal(await count(), start);
    await gc.run((trx) => asScratch(trx).insertInto('items').values({ label: 'c2' }).execute());
    assert.equal(await count(), start + 1);
  });

  it('calls arriving while a batch runs form the next batch; nothing is lost', async () => {
    const start = await count();
    const waves = [];
    for (let w = 0; w < 5; w++) {
      waves.push(...Array.from({ length: 40 }, (_, i) => gc.run((trx) => asScratch(trx).insertInto('items').values({ label: `d${w}-${i}` }).execute())));
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(waves);
    assert.equal(await count(), start + 200);
  });
});

describe('SQLite WAL checkpoints in a worker thread', () => {
  it('copies committed pages into the database file without the app checkpointing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-ckpt-'));
    const file = join(dir, 'ckpt.db');
    const database = createDb(file, { checkpointIntervalMs: 100 });
    try {
      const auto = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(database.db);
      assert.equal(auto.rows[0]?.wal_autocheckpoint, 0, 'the app connection never checkpoints in a commit');
      await sql`create table blobs (id integer primary key, data blob not null)`.execute(database.db);
      const sizeBefore = statSync(file).size;
      // About 4 MB, in the WAL first.
      for (let i = 0; i < 64; i++) await sql`insert into blobs (data) values (randomblob(65536))`.execute(database.db);
      let size = statSync(file).size;
      for (let waited = 0; size < sizeBefore + 4_000_000 && waited < 5000; waited += 50) {
        await new Promise((r) => setTimeout(r, 50));
        size = statSync(file).size;
      }
      assert.ok(size >= sizeBefore + 4_000_000, `the database file grew from ${sizeBefore} to ${size} bytes by background checkpoints`);
    } finally {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps the WAL bounded under a steady stream of writes: it starts over and gives its space back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-ckpt-'));
    const file = join(dir, 'steady.db');
    // As the app opens it, with a lower threshold (production: WAL_RESET_FRAMES, 16 MiB) and a 1 MiB journal_size_limit.
    const database = createDb(file, { checkpointIntervalMs: 50, walResetFrames: 500 });
    await sql`pragma journal_size_limit = 1048576`.execute(database.db);
    try {
      await sql`create table rows (id integer primary key, data blob not null)`.execute(database.db);
      let largest = 0;
      // ~3 s of writes that never let up: 32 KB per commit about every millisecond (~30 MB/s, ~90 MB
      // in all). Paced, not flat out: flat out the test measured the disk (on a busy one the
      // checkpoint's own fsyncs fell behind), not whether the WAL starts over.
      const end = Date.now() + 3000;
      let n = 0;
      while (Date.now() < end) {
        await sql`insert into rows (data) values (randomblob(32768))`.execute(database.db);
        n += 1;
        if (n % 20 === 0) largest = Math.max(largest, statSync(`${file}-wal`).size);
        await new Promise((r) => setTimeout(r, 1));
      }
      const written = n * 32768;
      assert.ok(written > 20_000_000, `wrote ${written} bytes`);
      // Without the held pass the WAL held everything written (it never started over).
      assert.ok(largest < written / 3, `the WAL peaked at ${largest} bytes for ${written} written`);
      // Writes stop: a round (every 50 ms here) copies the rest and holds once, the next write starts
      // the WAL over and cuts the file back to journal_size_limit. How soon depends on the disk
      // (a round in progress may be a long held pass), so: a write every 50 ms until it has happened.
      let after = statSync(`${file}-wal`).size;
      for (const deadline = Date.now() + 10_000; after > 1048576 + 65536 && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 50));
        await sql`insert into rows (data) values (randomblob(32768))`.execute(database.db);
        n += 1;
        after = statSync(`${file}-wal`).size;
      }
      assert.ok(after <= 1048576 + 65536, `the WAL file is back to ${after} bytes`);
      const count = await sql<{ n: number }>`select count(*) as n from rows`.execute(database.db);
      assert.equal(Number(count.rows[0]!.n), n, 'nothing lost');
    } finally {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
