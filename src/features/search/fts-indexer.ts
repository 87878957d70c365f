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
 * Searches stay exact: SearchService flushes before every search, so a message is found by the
 * next search as soon as its send has committed. The mark is durable: what was not indexed before
 * a crash is indexed after the restart. Edits and deletes of a message above the mark are left to
 * the indexer (it reads the current body); of an indexed one, the triggers update the index.
 */
export class FtsIndexer {
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly writes: TxRunner,
    private readonly opts: { intervalMs: number; batch?: number; onError?: (err: unknown) => void },
  ) {}

  /** Flushes every `intervalMs` while the process runs. */
  start(): void {
    this.#timer ??= setInterval(() => void this.flush().catch((err: unknown) => this.opts.onError?.(err)), this.opts.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }

  /**
   * Indexes everything queued when the flush starts. Calls queue one behind the other, so each
   * starts after it was made: a caller never returns on an older flush.
   */
  flush(): Promise<void> {
    const run = this.#chain.then(() => this.#drain());
    this.#chain = run.catch(() => undefined);
    return run;
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
