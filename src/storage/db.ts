import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type SqliteDatabase } from 'kysely';
import pg from 'pg';
import { isPostgresUrl } from '../config/config.ts';
import { tagDialect, type DialectName } from './dialect.ts';
import { registerDirectSqlite, type SqliteStatement } from './direct-sqlite.ts';
import { GroupCommit, transactionPerCall, type TxRunner } from './group-commit.ts';
import { namedStatementPool } from './pg-named.ts';
import { type Checkpointer, startCheckpointer } from './sqlite-checkpointer.ts';

/**
 * The page cache of the app's SQLite connection, in KiB (16 MiB; SQLite's default is 2 MiB). Reads
 * of the first GiB come through the memory map (mmap_size) and do not need it; it keeps pages that
 * were written or have a newer copy in the WAL. It was 64 MiB. Bigger is slower for writes: when a
 * b-tree split reorders its new pages, SQLite gives one of them for a moment the number of the
 * lock-byte page (page 262,145 of 4 KiB pages, at 1 GiB), and the cache remembers that as its
 * highest page. At the end of every such transaction it then drops the pages "beyond the end of
 * the database" by scanning its hash table (one slot per cached page) until the file nears
 * 1 GiB. Under the inbound webhook load that scan (pcache1TruncateUnsafe) took 5.7–8.3 %
 * of the process's CPU with 64 MiB, 2.2 % with 16 MiB and 1.3 % with 8 MiB (perf, same load).
 */
const PAGE_CACHE_KIB = 16 * 1024;

/**
 * The WAL file's size on disk after it starts over (journal_size_limit). SQLite cuts the file back
 * in the first commit after the restart, on the thread that commits: under the inbound benchmark's
 * load the WAL reached ~780 MB between restarts, and cutting it back to 64 MiB (this value until
 * 2026-11-22) made those commits take 4–140 ms (the file system frees and discards the blocks),
 * which set the webhook acks' p99 (16–31 ms; 10–12 ms with 1 GiB, as far as a run could tell).
 * A file that stays large is reused from its start without new allocations; it is removed when
 * the last connection closes.
 */
const WAL_SIZE_LIMIT_BYTES = 1024 * 1024 * 1024;
import type { DB } from './schema.ts';

export interface Database {
  db: Kysely<DB>;
  dialect: DialectName;
  /**
   * Write transactions of the hot paths (sending messages): group commit on SQLite, one
   * transaction per call on PostgreSQL. See group-commit.ts.
   */
  writes: TxRunner;
  /**
   * Writes of one statement outside a request's own transaction (the outbox's claims and
   * completions, a delivery's processed mark): group-committed with the other writes of their
   * event-loop turn on SQLite (each commit appends its pages to the WAL), plain statements on
   * PostgreSQL (a transaction each would only add round trips).
   */
  statements: TxRunner;
  /** Cheap round trip used by /ready. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface CreateDbOptions {
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
  /**
   * Errors of idle PostgreSQL connections (server restart, admin termination). pg emits them on
   * the pool, and an unhandled one would crash the process; the pool replaces the connection.
   */
  onIdleError?: (err: Error) => void;
  /**
   * SQLite file databases: WAL checkpoints in a worker thread every this many ms instead of inside
   * commits (default 1000; 0 keeps SQLite's automatic checkpoints).
   */
  checkpointIntervalMs?: number;
  /** WAL pages past which a checkpoint round ends with a held pass (default WAL_RESET_FRAMES; tests lower it). */
  walResetFrames?: number;
  /** Problems of the background checkpointer (logged by the caller). */
  onCheckpointError?: (message: string) => void;
  /** PostgreSQL: run statements as named prepared statements (default true; see pg-named.ts). */
  preparedStatements?: boolean;
  /** PostgreSQL: at most this many distinct statement texts get a name (default MAX_NAMED_STATEMENTS). */
  maxPreparedStatements?: number;
}

const TIMESTAMPTZ_OID = 1184;
const TIMESTAMP_OID = 1114;
const INT8_OID = 20;

/** pg type parsers that give the same JS values as the SQLite side: ISO strings and numbers. */
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === TIMESTAMPTZ_OID || oid === TIMESTAMP_OID) return (v: string) => new Date(v).toISOString();
    if (oid === INT8_OID) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format ?? 'text');
  },
} as pg.CustomTypesConfig;

function openSqlite(path: string): SQLite.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new SQLite(path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  // Statement journals in memory, not in temp files.
  sqlite.pragma('temp_store = MEMORY');
  // Reads through a memory map of up to 1 GiB of the file instead of a read() per page: history
  // pages spread over a large file were 4× slower without it (measured on 1,000,000 messages: 569
  // against 134 µs per page of 50, with a 64 MiB page cache).
  sqlite.pragma('mmap_size = 1073741824');
  sqlite.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
  return sqlite;
}

/**
 * better-sqlite3 behind Kysely, with prepared statements kept and reused. Kysely's SQLite driver
 * prepares the SQL of every query anew; preparing costs more than running a simple indexed read,
 * and an app issues a small, fixed set of distinct SQL texts. Bounded so ad-hoc SQL cannot grow it.
 */
function withStatementCache(sqlite: SQLite.Database, max = 1000): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(sqlText: string) {
      let stmt = statements.get(sqlText);
      if (!stmt) {
        stmt = sqlite.prepare(sqlText);
        if (statements.size >= max) statements.delete(statements.keys().next().value as string);
        statements.set(sqlText, stmt);
      }
      return stmt as unknown as ReturnType<SqliteDatabase['prepare']>;
    },
  };
}

/** Open the database named by a config URL: a SQLite path / :memory:, or a postgres:// URL. */
export function createDb(url: string, options: CreateDbOptions = {}): Database {
  if (isPostgresUrl(url)) {
    const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10, types: pgTypes });
    pool.on('error', options.onIdleError ?? (() => undefined));
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: options.preparedStatements === false ? pool : namedStatementPool(pool, options.maxPreparedStatements) }) });
    tagDialect(db, 'postgres');
    return {
      db,
      dialect: 'postgres',
      writes: transactionPerCall(db),
      statements: { run: (work) => work(db) },
      ping: async () => {
        await pool.query('select 1');
      },
      close: () => db.destroy(),
    };
  }
  const sqlite = openSqlite(url);
  const cached = withStatementCache(sqlite);
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: cached }) });
  tagDialect(db, 'sqlite');
  registerDirectSqlite(db, sqlite, (sqlText) => cached.prepare(sqlText) as unknown as SqliteStatement);
  const interval = options.checkpointIntervalMs ?? 1000;
  let checkpointer: Checkpointer | undefined;
  if (url !== ':memory:' && interval > 0) {
    sqlite.pragma('wal_autocheckpoint = 0');
    // A WAL that starts over is cut back to this size (without it the file keeps its largest size; see above).
    sqlite.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    checkpointer = startCheckpointer(url, interval, options.onCheckpointError, {
      // The last pass of a round runs while no statement can use the app's connection (see the checkpointer).
      hold: (fn) => db.connection().execute(() => fn()),
      ...(options.walResetFrames !== undefined ? { resetFrames: options.walResetFrames } : {}),
    });
  }
  const grouped = new GroupCommit(db);
  return {
    db,
    dialect: 'sqlite',
    writes: grouped,
    statements: grouped,
    ping: async () => {
      sqlite.prepare('select 1').get();
    },
    close: async () => {
      await checkpointer?.stop();
      await db.destroy();
    },
  };
}
