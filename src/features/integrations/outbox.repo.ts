import type { Kysely, OnConflictBuilder, Selectable } from 'kysely';
import { dialectOf } from '../../storage/dialect.ts';
import type { TxRunner } from '../../storage/group-commit.ts';
import { PreparedInsert, PreparedQuery } from '../../storage/prepared.ts';
import type { DB, OutboxTable } from '../../storage/schema.ts';

export type OutboxRow = Selectable<OutboxTable>;

const COLUMNS = ['id', 'org_id', 'target', 'endpoint_id', 'event_name', 'event_id', 'payload', 'idempotency_key', 'status', 'attempts', 'next_attempt_at', 'locked_until', 'last_error', 'response_status', 'created_at', 'delivered_at'] as const satisfies ReadonlyArray<keyof OutboxRow>;
/** Every inbound delivery enqueues a row (in batches when acks are group-committed): prepared, see storage/prepared.ts. */
const INSERT = new PreparedInsert('outbox', COLUMNS, (oc: OnConflictBuilder<DB, 'outbox'>) => oc.column('idempotency_key').doNothing());
export type OutboxStatus = 'pending' | 'done' | 'failed';

/** What the dispatcher writes back after one delivery attempt. */
export type Completion =
  | { outcome: 'delivered'; at: string; responseStatus: number | null }
  | { outcome: 'retry'; nextAttemptAt: string; error: string; responseStatus: number | null }
  | { outcome: 'failed'; error: string; responseStatus: number | null };

export interface OutboxFilter {
  status?: OutboxStatus;
  target?: string;
  endpointId?: string;
  limit: number;
  /** Keyset position: rows strictly older than this (created_at, id). */
  before?: { createdAt: string; id: string };
}

const ERROR_MAX_CHARS = 500;

/** Due rows: pending, next_attempt_at reached, no live lease; oldest first. */
const dueRows = (db: Kysely<DB>, now: unknown, limit: unknown) =>
  db
    .selectFrom('outbox')
    .select('id')
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', now as string)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now as string)]))
    .orderBy('next_attempt_at')
    .limit(limit as number);

/**
 * SQLite's claim, prepared (storage/prepared.ts): building and compiling it took most of a claim
 * (measured: ~200 µs a claim built each time, the statement itself ~15 µs).
 */
const CLAIM_SQLITE = new PreparedQuery<[now: string, lockUntil: string, limit: number], OutboxRow>((db: Kysely<DB>, param) =>
  db
    .updateTable('outbox')
    .set((eb) => ({ locked_until: param(1), attempts: eb('attempts', '+', 1) }))
    // By id alone: with `AND status = 'pending'` here too, SQLite's planner walked the status index
    // over every pending row and tested each against the list — 3 ms per claim with 36,000 rows
    // waiting (found by the inbound benchmark). The subquery already filtered, in this one statement.
    .where('id', 'in', dueRows(db, param(0), param(2)))
    .returningAll(),
);

const COMPLETE = new PreparedQuery<[status: string, deliveredAt: string | null, nextAttemptAt: string | null, lastError: string | null, responseStatus: number | null, id: string, lockedUntil: string], never>(
  (db: Kysely<DB>, param) =>
    db
      .updateTable('outbox')
      .set((eb) => ({
        status: param(0),
        // Kept when not given (a retry moves it; the others leave it as it was).
        delivered_at: eb.fn.coalesce(eb.val(param(1)), 'delivered_at'),
        next_attempt_at: eb.fn.coalesce(eb.val(param(2)), 'next_attempt_at'),
        last_error: param(3),
        response_status: param(4),
        locked_until: null,
      }))
      .where('id', '=', param(5))
      .where('locked_until', '=', param(6))
      .returning('id'),
);

/**
 * SQL for the outbox. Rows are claimed with a lease (`locked_until`): a claim takes due, unleased
 * pending rows and sets the lease in ONE statement, so two dispatchers (two processes, or two
 * nodes) never hold the same row at once; the lease value is the fencing token checked when the
 * result is written back, so a dispatcher whose lease ran out cannot overwrite a newer claim.
 */
export class OutboxRepo {
  readonly #postgres: boolean;

  constructor(
    private readonly db: Kysely<DB>,
    /**
     * Database.statements: claims and completions group-committed on SQLite (under the inbound
     * benchmark's load these autocommits were most of the ~3 commits per processed delivery).
     */
    private readonly statements: TxRunner | null = null,
  ) {
    this.#postgres = dialectOf(db) === 'postgres';
  }

  #write<T>(work: (db: Kysely<DB>) => Promise<T>): Promise<T> {
    return this.statements ? this.statements.run(work) : work(this.db);
  }

  /**
   * Insert rows in the caller's transaction (`trx`). A row whose idempotency_key exists already is
   * skipped, so a producer retrying with the same event id cannot enqueue twice.
   */
  async enqueue(trx: Kysely<DB>, rows: OutboxRow[]): Promise<void> {
    if (rows.length === 0) return;
    await INSERT.execute(trx, rows.map((row) => COLUMNS.map((c) => row[c])));
  }

  /**
   * Claim up to `limit` due rows: pending, next_attempt_at reached, no live lease. Sets the lease
   * to `lockUntil` and counts the attempt. PostgreSQL: the subquery locks with FOR UPDATE SKIP
   * LOCKED, so concurrent claimers take disjoint rows without waiting on each other (rows another
   * claimer committed meanwhile are re-checked by PostgreSQL and dropped). SQLite has one writer:
   * the single UPDATE … RETURNING is atomic by itself.
   */
  async claim(now: string, lockUntil: string, limit: number): Promise<OutboxRow[]> {
    if (this.#postgres) {
      const due = dueRows(this.db, now, limit);
      // PostgreSQL: the due rows are locked (SKIP LOCKED) in a CTE, which is always materialized,
      // then updated by join. As `WHERE id IN (subquery ... FOR UPDATE SKIP LOCKED)` the planner
      // may run the subquery again for every row of the table: with a backlog of some 10,000 rows
      // one claim took over a minute and the dispatcher stood still (found by the inbound benchmark).
      const claimed = await this.db
        .with('due', () => due.forUpdate().skipLocked())
        .updateTable('outbox')
        .from('due')
        .set((eb) => ({ locked_until: lockUntil, attempts: eb('outbox.attempts', '+', 1) }))
        .whereRef('outbox.id', '=', 'due.id')
        .where('outbox.status', '=', 'pending')
        .returningAll('outbox')
        .execute();
      return claimed.sort((a, b) => (a.next_attempt_at < b.next_attempt_at ? -1 : a.next_attempt_at > b.next_attempt_at ? 1 : 0));
    }
    const rows = await this.#write((db) => CLAIM_SQLITE.execute(db, [now, lockUntil, limit]));
    return rows.sort((a, b) => (a.next_attempt_at < b.next_attempt_at ? -1 : a.next_attempt_at > b.next_attempt_at ? 1 : 0));
  }

  /**
   * Write back the result of the attempt made under the lease `lockedUntil`. Returns false when the
   * lease was lost (expired and claimed again): the result is then dropped.
   */
  async complete(id: string, lockedUntil: string, c: Completion): Promise<boolean> {
    const args: Parameters<typeof COMPLETE.execute>[1] =
      c.outcome === 'delivered'
        ? ['done', c.at, null, null, c.responseStatus, id, lockedUntil]
        : c.outcome === 'retry'
          ? ['pending', null, c.nextAttemptAt, c.error.slice(0, ERROR_MAX_CHARS), c.responseStatus, id, lockedUntil]
          : ['failed', null, null, c.error.slice(0, ERROR_MAX_CHARS), c.responseStatus, id, lockedUntil];
    return (await this.#write((db) => COMPLETE.execute(db, args))).length > 0;
  }

  /** Make every waiting row of a target due now (its backend is reachable again). */
  async expedite(target: string, now: string): Promise<number> {
    const res = await this.db
      .updateTable('outbox')
      .set({ next_attempt_at: now })
      .where('status', '=', 'pending')
      .where('target', '=', target)
      .where('next_attempt_at', '>', now)
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  getById(orgId: string, id: string): Promise<OutboxRow | undefined> {
    return this.db.selectFrom('outbox').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  }

  /** Newest first, keyset-paginated. */
  list(orgId: string, f: OutboxFilter): Promise<OutboxRow[]> {
    let q = this.db.selectFrom('outbox').selectAll().where('org_id', '=', orgId);
    if (f.status) q = q.where('status', '=', f.status);
    if (f.target) q = q.where('target', '=', f.target);
    if (f.endpointId) q = q.where('endpoint_id', '=', f.endpointId);
    if (f.before) {
      const { createdAt, id } = f.before;
      q = q.where((eb) => eb.or([eb('created_at', '<', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '<', id)])]));
    }
    return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(f.limit).execute();
  }

  /**
   * Deliver a row again: pending, due now, with a fresh set of attempts. Done and failed rows are
   * sent once more (consumers drop the repeat by event_id if they had it); a pending row is
   * simply retried now. A lease in force is kept, so a running attempt is never doubled.
   */
  /** The row as reset (RETURNING: a dispatcher may claim it the next instant; the answer is what was written). */
  redeliver(orgId: string, id: string, now: string): Promise<OutboxRow | undefined> {
    return this.db
      .updateTable('outbox')
      .set({ status: 'pending', attempts: 0, next_attempt_at: now, delivered_at: null })
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Give up on an endpoint's waiting rows (the endpoint was deleted). The lease is dropped too, so
   * the result of an attempt still running is discarded (see complete) instead of reviving the row.
   */
  async failPendingForEndpoint(trx: Kysely<DB>, orgId: string, endpointId: string, reason: string): Promise<void> {
    await trx
      .updateTable('outbox')
      .set({ status: 'failed', last_error: reason, locked_until: null })
      .where('org_id', '=', orgId)
      .where('endpoint_id', '=', endpointId)
      .where('status', '=', 'pending')
      .execute();
  }

  /** Pending rows across organizations, and when the oldest was written (metrics). */
  async pendingStats(): Promise<{ count: number; oldest: string | null }> {
    const r = await this.db
      .selectFrom('outbox')
      .select((eb) => [eb.fn.countAll<number | string>().as('count'), eb.fn.min('created_at').as('oldest')])
      .where('status', '=', 'pending')
      .executeTakeFirstOrThrow();
    return { count: Number(r.count), oldest: r.oldest ?? null };
  }
}
