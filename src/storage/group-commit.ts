import { CompiledQuery, type Kysely } from 'kysely';
import { runDirect } from './direct-sqlite.ts';
import type { DB } from './schema.ts';

/**
 * Work done inside a write transaction; `trx` runs every query on that transaction's connection.
 * It may run twice (group commit retries a failed batch call by call), so it must not have effects
 * outside the transaction.
 */
export type TxWork<T> = (trx: Kysely<DB>) => Promise<T>;

/** Runs write transactions. Each call commits or fails on its own, whatever the backend groups. */
export interface TxRunner {
  run<T>(work: TxWork<T>): Promise<T>;
}

/** One transaction per call (PostgreSQL: concurrent transactions on the pool, the server groups commits). */
export function transactionPerCall(db: Kysely<DB>): TxRunner {
  return { run: (work) => db.transaction().execute(work) };
}

interface Pending {
  work: TxWork<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/**
 * Group commit for SQLite: calls made during one event-loop turn (typically the concurrent sends of
 * many connections) run one after another inside ONE transaction and commit together. If any of
 * them fails, the whole batch is rolled back and each call runs again alone in its own transaction,
 * so a failure only ever fails its own call. SQLite has one writer and every commit appends to the
 * WAL, so one commit for N sends instead of N is a large part of what a send costs the database.
 *
 * The batch holds the Kysely connection (SQLite's single connection, behind Kysely's mutex) while it
 * runs, exactly as a normal transaction would.
 */
export class GroupCommit implements TxRunner {
  #queue: Pending[] = [];
  #scheduled = false;
  #running = false;
  /**
   * Transactions committed or rolled back, and calls run in them (batches ≤ calls); `retried`:
   * batches rolled back because one call failed, whose calls then ran again one by one.
   */
  readonly stats = { batches: 0, calls: 0, retried: 0 };

  constructor(
    private readonly db: Kysely<DB>,
    private readonly maxBatch = 500,
  ) {}

  run<T>(work: TxWork<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (v: unknown) => void, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#running || this.#queue.length === 0) return;
    this.#scheduled = true;
    // setImmediate: after the poll phase, so every request read in this turn joins the batch.
    setImmediate(() => void this.#flush());
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    this.#running = true;
    const batch = this.#queue.splice(0, this.maxBatch);
    this.stats.batches += 1;
    this.stats.calls += batch.length;
    try {
      await this.db.connection().execute(async (conn) => {
        if (batch.length === 1) await runAlone(conn, batch[0]!);
        else if (!(await runGrouped(conn, batch))) this.stats.retried += 1;
      });
    } catch (err) {
      for (const p of batch) p.reject(err);
    } finally {
      this.#running = false;
      this.#schedule();
    }
  }
}

const BEGIN = CompiledQuery.raw('begin immediate');
const COMMIT = CompiledQuery.raw('commit');
const ROLLBACK = CompiledQuery.raw('rollback');

/** Transaction control on the batch's connection (held: straight on better-sqlite3, see runDirect). */
async function exec(conn: Kysely<DB>, q: CompiledQuery): Promise<void> {
  if (runDirect(conn, q.sql, q.parameters) === undefined) await conn.executeQuery(q);
}

/** A batch of one: a plain transaction, no savepoint. */
async function runAlone(conn: Kysely<DB>, p: Pending): Promise<void> {
  await exec(conn, BEGIN);
  let value: unknown;
  try {
    value = await p.work(conn);
  } catch (err) {
    await exec(conn, ROLLBACK);
    p.reject(err);
    return;
  }
  try {
    await exec(conn, COMMIT);
  } catch (err) {
    await exec(conn, ROLLBACK).catch(() => undefined);
    throw err;
  }
  p.resolve(value);
}

/** False when the batch was rolled back and its calls ran again one by one. */
async function runGrouped(conn: Kysely<DB>, batch: Pending[]): Promise<boolean> {
  const values: unknown[] = [];
  await exec(conn, BEGIN);
  try {
    for (const p of batch) values.push(await p.work(conn));
    await exec(conn, COMMIT);
  } catch {
    // One call failed (or the commit did): undo the batch and run each call alone, so that only
    // the failing one fails. Rare (e.g. two retries racing with the same client id), and cheaper
    // than a savepoint per call, which makes FTS5 flush its pending index data every time.
    await exec(conn, ROLLBACK).catch(() => undefined);
    for (const p of batch) await runAlone(conn, p);
    return false;
  }
  // Settled only after the commit: nobody hears "stored" before it is.
  batch.forEach((p, i) => p.resolve(values[i]));
  return true;
}
