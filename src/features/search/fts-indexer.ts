import { type Kysely, sql } from 'kysely';
import type { TxRunner } from '../../storage/group-commit.ts';
import type { DB } from '../../storage/schema.ts';

/**
 * SQLite's full-text index is filled in batches, not inside each send. Every message with a rowid
 * up to the mark in `messages_fts_state` is indexed, every one above it is not yet (migration
 * 0015, which also tells why a new message always lands above the mark); this indexer indexes
 * what is above the mark many messages at a time and moves the mark, so FTS5 writes one segment
 * per batch instead of one per commit, and a send does nothing for the index at all.
 *
 * FTS5 does not merge the segments inside those writes (migration 0017): after each timed flush
 * the indexer merges them in small steps (merge()), so neither a send nor a flush stalls on a
 * merge that fell due.
 *
 * Searches stay exact: SearchService flushes before every search, so a message is found by the
 * next search as soon as its send has committed. The mark is durable: what was not indexed before
 * a crash is indexed after the restart. Edits and deletes of a message above the mark are left to
 * the indexer (it reads the current body); of an indexed one, the triggers update the index.
 */
export class FtsIndexer {
  #chain: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #merging = false;
  #stopped = false;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly writes: TxRunner,
    private readonly opts: { intervalMs: number; batch?: number; onError?: (err: unknown) => void },
  ) {}

  /** Flushes, then merges (see merge()), every `intervalMs` while the process runs. */
  start(): void {
    this.#stopped = false;
    this.#timer ??= setInterval(() => void this.#tick().catch((err: unknown) => this.opts.onError?.(err)), this.opts.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }

  async #tick(): Promise<void> {
    await this.flush();
    // A merge still running from an earlier tick goes on with what this flush added.
    if (!this.#merging) await this.merge();
  }

  /**
   * Merges the index's segments (automerge is off: migration 0017), MERGE_PAGES pages a step, each
   * step its own write (group-committed with the sends of its turn) queued like a flush, so a
   * search's flush waits for one step at most. Goes on until a step finds nothing left to merge
   * (FTS5 changes fewer than 2 rows then), or the indexer stops. Returns the steps that did work.
   */
  async merge(): Promise<number> {
    this.#merging = true;
    try {
      let steps = 0;
      while (!this.#stopped && (await this.#queue(() => this.writes.run(mergeStep)))) steps += 1;
      return steps;
    } finally {
      this.#merging = false;
    }
  }

  #queue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(work);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Indexes everything queued when the flush starts. Calls queue one behind the other, so each
   * starts after it was made: a caller never returns on an older flush.
   */
  flush(): Promise<void> {
    return this.#queue(() => this.#drain());
  }

  /**
   * The messages above the mark now, up to the newest at the start: sends committed meanwhile wait
   * for the next flush, so under load each flush is one batch of everything since the last one
   * (draining "until none is left" made a flush chase the sends in batches of a few dozen).
   */
  async #drain(): Promise<void> {
    // Outside a write transaction: nothing to index is the common case of a search.
    const top = await sql<{ hi: number | null; done: number }>`select (select max(rowid) from messages) as hi, indexed_upto as done from messages_fts_state`.execute(this.db);
    const { hi, done } = top.rows[0] ?? { hi: null, done: 0 };
    if (hi === null || hi <= done) return;
    while (await this.writes.run((trx) => indexAboveMark(trx, this.opts.batch ?? 2000, hi)));
  }
}

/**
 * Pages of segment merging per step: in-process (1,000 batches of 200 messages on a 50,000-message
 * index) a step took at most 2.4 ms, and the index stayed at 2–13 segments (FTS5's own automerge:
 * 18–21, with writes of up to 24 ms when its merge fell due).
 */
const MERGE_PAGES = 16;

/** One merge step; whether it did any work (FTS5 changes at least 2 rows when it merged). */
async function mergeStep(db: Kysely<DB>): Promise<boolean> {
  const changes = async () => Number((await sql<{ n: number }>`select total_changes() as n`.execute(db)).rows[0]!.n);
  const before = await changes();
  await sql`insert into messages_fts(messages_fts, rank) values('merge', ${MERGE_PAGES})`.execute(db);
  return (await changes()) - before >= 2;
}

/**
 * Indexes the messages with rowids in (mark, mark + `span`], none above `upTo` nor above the
 * largest rowid now (the mark must never pass it: see migration 0015), and moves the mark there.
 * Returns whether the mark is still below `upTo` (more to do).
 */
async function indexAboveMark(db: Kysely<DB>, span: number, upTo: number): Promise<boolean> {
  const r = await sql<{ done: number; top: number | null }>`select indexed_upto as done, (select max(rowid) from messages) as top from messages_fts_state`.execute(db);
  const { done, top } = r.rows[0] ?? { done: 0, top: null };
  const to = Math.min(done + span, upTo, top ?? 0);
  if (to <= done) return false;
  await sql`insert into messages_fts(rowid, body, conversation_id)
    select rowid, body, conversation_id from messages where rowid > ${done} and rowid <= ${to}`.execute(db);
  await sql`update messages_fts_state set indexed_upto = ${to}`.execute(db);
  return to < upTo;
}
