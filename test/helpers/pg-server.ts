/**
 * A throwaway PostgreSQL server for tests: a fresh cluster in a temp dir,
 * listening on 127.0.0.1 only, with durability switched off for speed.
 *
 * PostgreSQL refuses to run as root, so when we are root the data dir is
 * chowned to the `postgres` OS user and initdb/postgres run as that user
 * (via `runuser`, or `su` when runuser is missing).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import {
  captureOutputTail,
  findOnPath,
  freePort,
  hasExited,
  isExecutable,
  shellQuote,
  signalPid,
  waitForExit,
  waitUntil,
} from './process.js';

const execFileAsync = promisify(execFile);
const PG_BINARIES = ['initdb', 'postgres', 'pg_ctl'] as const;
const DEBIAN_PG_ROOT = '/usr/lib/postgresql';
const OS_USER = 'postgres';

/** A running throwaway PostgreSQL server. */
export interface PgServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth, no password). */
  readonly url: string;
  readonly port: number;
  /** Data dir, also holding the unix socket; removed by stop(). */
  readonly dataDir: string;
  /** Fast shutdown (SIGINT), then removes the data dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options for {@link startPgServer}. */
export interface PgServerOptions {
  /** Dir holding initdb/postgres (default: {@link findPgBinDir}). */
  binDir?: string | undefined;
  /** Fixed port (default: a free one). */
  port?: number | undefined;
  /** Abort startup (the half-started server is cleaned up). */
  signal?: AbortSignal | undefined;
  /** How long to wait for the server to accept connections (default 30 s). */
  timeoutMs?: number | undefined;
}

/**
 * The dir holding initdb, postgres and pg_ctl: `$PARLEY_TEST_PG_BIN`, else the
 * one `initdb` on PATH points into, else the highest `/usr/lib/postgresql/<v>/bin`.
 * Undefined when PostgreSQL is not installed.
 */
export function findPgBinDir(): string | undefined {
  const candidates = [process.env.PARLEY_TEST_PG_BIN, binDirOnPath(), ...debianBinDirs()];
  return candidates.find((dir): dir is string => dir !== undefined && hasPgBinaries(dir));
}

function hasPgBinaries(dir: string): boolean {
  return PG_BINARIES.every((name) => isExecutable(join(dir, name)));
}

/** Where `initdb` on PATH really lives (Debian-style symlinks are resolved). */
function binDirOnPath(): string | undefined {
  const initdb = findOnPath('initdb');
  return initdb === undefined ? undefined : dirname(realpathSync(initdb));
}

/** `/usr/lib/postgresql/<version>/bin`, highest version first. */
function debianBinDirs(): string[] {
  let versions: string[];
  try {
    versions = readdirSync(DEBIAN_PG_ROOT);
  } catch {
    return [];
  }
  versions.sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
  return versions.map((v) => join(DEBIAN_PG_ROOT, v, 'bin'));
}

/** Starts a fresh PostgreSQL cluster and resolves once it accepts connections. */
export async function startPgServer(opts: PgServerOptions = {}): Promise<PgServer> {
  const binDir = opts.binDir ?? findPgBinDir();
  if (binDir === undefined) throw new Error('PostgreSQL binaries (initdb, postgres) not found');
  const port = opts.port ?? (await freePort());
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const dataDir = await mkdtemp(join(tmpdir(), 'parley-pg-'));
  try {
    await prepareDataDir(binDir, dataDir, opts.signal);
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }

  const [cmd, args] = asPostgresUser([join(binDir, 'postgres'), ...serverArgs(dataDir, port)]);
  const child = spawn(cmd, args, { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  const output = captureOutputTail(child);
  child.on('error', () => {}); // a spawn failure shows up as an exit below
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= stopPostgres(child, dataDir));

  try {
    await waitUntil(`PostgreSQL on port ${port}`, () => acceptsConnections(url), {
      timeoutMs: opts.timeoutMs ?? 30_000,
      signal: opts.signal,
      failure: () => (hasExited(child) ? `postgres exited early:\n${output()}` : undefined),
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, port, dataDir, stop };
}

/** initdb into `dataDir` (chowned to the postgres user first when we are root). */
async function prepareDataDir(binDir: string, dataDir: string, signal?: AbortSignal): Promise<void> {
  if (isRoot()) {
    const { uid, gid } = await osUserIds(OS_USER);
    await chown(dataDir, uid, gid);
  }
  const initdbArgs = ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', `--locale=${await bestLocale()}`];
  const [cmd, args] = asPostgresUser([join(binDir, 'initdb'), ...initdbArgs]);
  try {
    // Not aborted midway: killing the runuser wrapper would not wait for initdb,
    // which could then write into the dir while we remove it. It takes ~1 s.
    await execFileAsync(cmd, args, { cwd: tmpdir() });
    signal?.throwIfAborted();
  } catch (err) {
    if (signal?.aborted) throw err;
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`initdb failed: ${(err as Error).message}\n${stdout}${stderr}`, { cause: err });
  }
}

function serverArgs(dataDir: string, port: number): string[] {
  const settings = [
    'listen_addresses=127.0.0.1',
    'fsync=off',
    'synchronous_commit=off',
    'full_page_writes=off',
    'max_connections=300',
  ];
  return ['-D', dataDir, '-p', String(port), '-k', dataDir, ...settings.flatMap((s) => ['-c', s])];
}

/** C.UTF-8 when the system has it (Unicode-aware lower()/upper()), else plain C. */
async function bestLocale(): Promise<string> {
  try {
    const { stdout } = await execFileAsync('locale', ['-a']);
    return /^c\.utf-?8$/im.test(stdout) ? 'C.UTF-8' : 'C';
  } catch {
    return 'C';
  }
}

async function acceptsConnections(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * SIGINT (fast shutdown) to the postmaster itself — read from postmaster.pid,
 * since `child` may be a runuser/su wrapper that would not forward SIGINT — then
 * SIGKILL if it lingers, then remove the data dir.
 */
async function stopPostgres(child: ChildProcess, dataDir: string): Promise<void> {
  const pid = postmasterPid(dataDir);
  if (pid !== undefined) signalPid(pid, 'SIGINT');
  else child.kill('SIGTERM'); // not started far enough to have a pid file; runuser/su forward SIGTERM
  if (!(await waitForExit(child, 15_000))) {
    signalPid(pid, 'SIGKILL');
    child.kill('SIGKILL');
    await waitForExit(child, 5_000);
  }
  await rm(dataDir, { recursive: true, force: true });
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** [command, args] running `argv` as the postgres OS user when we are root, else as ourselves. */
function asPostgresUser(argv: [string, ...string[]]): [string, string[]] {
  const [bin, ...rest] = argv;
  if (!isRoot()) return [bin, rest];
  const sbinPath = `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin`;
  const runuser = findOnPath('runuser', sbinPath);
  if (runuser !== undefined) return [runuser, ['-u', OS_USER, '--', ...argv]];
  const su = findOnPath('su', sbinPath) ?? 'su';
  return [su, [OS_USER, '-s', '/bin/sh', '-c', `exec ${argv.map(shellQuote).join(' ')}`]];
}

async function osUserIds(user: string): Promise<{ uid: number; gid: number }> {
  try {
    const id = async (flag: string): Promise<number> => Number((await execFileAsync('id', [flag, user])).stdout.trim());
    return { uid: await id('-u'), gid: await id('-g') };
  } catch (err) {
    throw new Error(`running as root, but there is no "${user}" OS user to run PostgreSQL as`, { cause: err });
  }
}
