/**
 * A throwaway PostgreSQL for a benchmark (shared by the send and inbound benchmarks): the server the
 * tests start (test/helpers/pg-server.ts), stopped by the harness's cleanup.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { findPgBinDir, type PgServer, startPgServer } from '../../test/helpers/pg-server.ts';
import type { BenchContext } from './benchmark.ts';
import { onCleanup } from './proc.ts';

/** A throwaway PostgreSQL server from `binDir`, stopped (or killed and removed) by the harness's cleanup. */
export async function startCleanedPgServer(binDir: string): Promise<PgServer> {
  const server = await startPgServer({ binDir });
  onCleanup({
    name: 'postgres',
    run: () => server.stop(),
    sync: () => {
      try {
        process.kill(Number.parseInt(readFileSync(join(server.dataDir, 'postmaster.pid'), 'utf8'), 10), 'SIGKILL');
      } catch {
        /* already gone */
      }
      rmSync(server.dataDir, { recursive: true, force: true });
    },
  });
  return server;
}

/** A throwaway PostgreSQL server (test/helpers/pg-server.ts) with an empty database `database`, or why there is none. */
export async function startPostgres(ctx: BenchContext, database: string): Promise<{ url: string; version: string } | { missing: string }> {
  if (process.env.BENCH_SKIP_POSTGRES === '1') return { missing: 'skipped: BENCH_SKIP_POSTGRES=1' };
  const binDir = findPgBinDir();
  if (!binDir) return { missing: 'no PostgreSQL binaries (initdb, postgres, pg_ctl) found: not on PATH, not in /usr/lib/postgresql/*/bin, PARLEY_TEST_PG_BIN unset' };
  ctx.log(`starting a throwaway PostgreSQL server from ${binDir}`);
  const server = await startCleanedPgServer(binDir);
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    await admin.query(`create database ${database}`);
    const version = (await admin.query<{ v: string }>(`select current_setting('server_version') as v`)).rows[0]!.v;
    return { url: server.url.replace(/\/postgres$/, `/${database}`), version };
  } finally {
    await admin.end();
  }
}
