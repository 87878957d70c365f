import { sql, type Kysely } from 'kysely';
import { dialectOf } from '../dialect.ts';

/**
 * SQLite: the search index's segments are no longer merged inside the writes that add them
 * (FTS5 `automerge` 0, was 4); FtsIndexer merges them in small steps of its own instead.
 *
 * With automerge, once every 64 pages written FTS5 merges 64 pages per level of the index inside
 * that write: a batch of 200 messages took 0.6 ms as a rule and up to 24 ms when it fell due
 * (in-process, 1,000 batches on a 50,000-message index), and the event loop stood still meanwhile
 * (small-rooms and inbound benchmarks: 6–32 ms stalls a few times a second). In steps of 16 pages
 * the longest batch took 2.1 ms and the longest step 2.4 ms; FTS5's crisis merge (16 segments on
 * a level) still bounds the index if no step runs. PostgreSQL is unchanged (a generated tsvector).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (dialectOf(db) === 'postgres') return;
  await sql`insert into messages_fts(messages_fts, rank) values('automerge', 0)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (dialectOf(db) === 'postgres') return;
  await sql`insert into messages_fts(messages_fts, rank) values('automerge', 4)`.execute(db);
}
