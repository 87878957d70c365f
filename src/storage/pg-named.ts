import type { PostgresPool, PostgresPoolClient } from 'kysely';
import type pg from 'pg';

/** Distinct statement texts given a name, by default; texts beyond run unnamed (see namedStatementPool). */
export const MAX_NAMED_STATEMENTS = 500;

/** What PostgreSQL answers when a prepared statement's result columns changed (a column added under `select *`). */
const resultTypeChanged = (err: unknown): boolean => {
  const e = err as { code?: unknown; message?: unknown };
  return e.code === '0A000' && typeof e.message === 'string' && e.message.includes('cached plan must not change result type');
};

/**
 * Runs Kysely's statements on PostgreSQL as named prepared statements: each connection parses a
 * statement text once, and PostgreSQL may keep its plan, instead of parsing, analysing and planning
 * every statement every time (what unnamed statements cost). The inbound benchmark's processing is
 * ~15 short statements per delivery; PostgreSQL spent ~35 % of its CPU on parse and plan, and
 * processing ran at 305 / 358 deliveries/s unnamed against 600 / 646 named (alternating runs).
 *
 * The first `max` distinct texts of the process get a name (Kysely's queries come in a bounded set of
 * shapes; the cap keeps a query with ever-new text — an `in` list of every length — from filling
 * each server connection's memory); later ones run unnamed.
 *
 * When a table's columns change under a running process (a migration run by a newer version), a
 * prepared `select *` fails once with "cached plan must not change result type": the text then gets
 * a new name, and outside a transaction the statement is run again under it. Inside one the error
 * ends that transaction; the next attempt prepares the new name.
 *
 * Turn it off (DATABASE_PREPARED_STATEMENTS=false) behind a pooler in transaction mode that does
 * not track prepared statements (PgBouncer before 1.21, or without `max_prepared_statements`).
 */
export function namedStatementPool(pool: pg.Pool, max = MAX_NAMED_STATEMENTS): PostgresPool {
  const names = new Map<string, string>();
  let made = 0;
  const nameOf = (text: string): string | undefined => {
    let name = names.get(text);
    if (name === undefined && names.size < max) names.set(text, (name = `parley_${++made}`));
    return name;
  };
  const clients = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const wrap = (client: pg.PoolClient): PostgresPoolClient => {
    let inTransaction = false;
    const run = async (text: string, values: ReadonlyArray<unknown>) => {
      // Kysely opens transactions with `begin`, or `start transaction …` when given an isolation level.
      if (text === 'begin' || text.startsWith('start transaction')) inTransaction = true;
      else if (text === 'commit' || text === 'rollback') inTransaction = false;
      const name = nameOf(text);
      if (name === undefined) return client.query(text, values as unknown[]);
      try {
        return await client.query({ name, text, values: values as unknown[] });
      } catch (err) {
        if (!resultTypeChanged(err)) throw err;
        // Another connection may have renamed it already.
        if (names.get(text) === name) names.set(text, `parley_${++made}`);
        if (inTransaction) throw err;
        return client.query({ name: names.get(text)!, text, values: values as unknown[] });
      }
    };
    return {
      query: ((q: string | object, values?: ReadonlyArray<unknown>) => (typeof q === 'string' ? run(q, values ?? []) : client.query(q as pg.Submittable))) as unknown as PostgresPoolClient['query'],
      release: () => {
        inTransaction = false;
        client.release();
      },
    };
  };
  return {
    connect: async () => {
      const client = await pool.connect();
      let wrapped = clients.get(client);
      if (!wrapped) clients.set(client, (wrapped = wrap(client)));
      return wrapped;
    },
    end: () => pool.end(),
  };
}
