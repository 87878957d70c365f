/**
 * Parley test runner — `npm test` (`tsx test/run.ts [filters...]`).
 *
 * 1. Finds every `*.test.ts` under src/ and test/ (sorted). Arguments narrow
 *    that down: an existing file/dir keeps the files at or under it, anything
 *    else keeps files whose path contains it (`npm test -- harness`).
 *    Arguments starting with `-` are passed to `node --test` as flags.
 * 2. Starts a throwaway PostgreSQL and Redis (see test/helpers/) unless given
 *    URLs, runs `node --import tsx --test` on the files, stops the servers.
 *
 * Environment read:
 *   PARLEY_TEST_PG_URL, PARLEY_TEST_REDIS_URL   use these servers instead of starting our own
 *   PARLEY_TEST_NO_PG=1, PARLEY_TEST_NO_REDIS=1  act as if the binaries were missing (to try the skip path)
 *   PARLEY_TEST_PG_BIN                           dir with initdb/postgres (default: PATH, then /usr/lib/postgresql/<highest>/bin)
 *   PARLEY_TEST_REDIS_SERVER_BIN                 redis-server binary (default: PATH)
 *   PARLEY_TEST_FLAGS                            extra `node --test` flags, space-separated (e.g. --test-name-pattern=foo)
 *   CI=true                                      a missing engine fails the run instead of skipping its tests
 *
 * Environment given to the tests (besides NODE_ENV=test):
 *   PARLEY_TEST_PG_URL      postgres://postgres@127.0.0.1:<port>/postgres   or PARLEY_TEST_SKIP_PG=1
 *   PARLEY_TEST_REDIS_URL   redis://127.0.0.1:<port>                        or PARLEY_TEST_SKIP_REDIS=1
 *   PARLEY_TEST_PG_BIN, PARLEY_TEST_REDIS_SERVER_BIN  for tests that start/restart servers themselves
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPgBinDir, startPgServer } from './helpers/pg-server.js';
import { findRedisServerBin, startRedisServer } from './helpers/redis-server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TEST_DIRS = ['src', 'test'];
const HANDLED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** A server started for the run. */
interface Server {
  url: string;
  stop(): Promise<void>;
}

/** What one engine (PostgreSQL or Redis) contributes to the test run. */
interface Engine {
  name: string;
  /** The env var holding its URL. */
  urlVar: string;
  /** Env vars for the tests; `undefined` values are removed from the inherited env. */
  env: Record<string, string | undefined>;
  /** Why its tests are skipped, when they are. */
  skipped?: string;
  /** Starts our own server, when no URL was given. */
  start?: (signal: AbortSignal) => Promise<Server>;
  /** Stops the server we started. */
  stop?: () => Promise<void>;
}

const aborter = new AbortController();
let receivedSignal: NodeJS.Signals | undefined;
let testProcess: ChildProcess | undefined;

// ---------------------------------------------------------------- test files

/** Every `*.test.ts` under src/ and test/, as sorted paths relative to the repo root. */
function findTestFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'node_modules' && !entry.name.startsWith('.')) walk(path);
      else if (entry.isFile() && entry.name.endsWith('.test.ts')) files.push(path);
    }
  };
  for (const dir of TEST_DIRS) if (existsSync(join(ROOT, dir))) walk(dir);
  return files.sort();
}

/** Keeps the files matching any filter (all files when there is none). */
function selectFiles(files: string[], filters: string[]): string[] {
  if (filters.length === 0) return files;
  const matchers = filters.map((filter): ((file: string) => boolean) => {
    if (!existsSync(filter)) return (file) => file.includes(filter);
    const target = relative(ROOT, resolve(filter));
    return (file) => target === '' || file === target || file.startsWith(target + sep);
  });
  return files.filter((file) => matchers.some((matches) => matches(file)));
}

// ---------------------------------------------------------------- engines

function isSet(name: string): boolean {
  const value = process.env[name];
  return value !== undefined && value !== '' && value !== '0' && value !== 'false';
}

function planPostgres(): Engine {
  const base = { name: 'PostgreSQL', urlVar: 'PARLEY_TEST_PG_URL' };
  const off = { PARLEY_TEST_PG_URL: undefined, PARLEY_TEST_PG_BIN: undefined, PARLEY_TEST_SKIP_PG: '1' };
  if (isSet('PARLEY_TEST_NO_PG')) return { ...base, env: off, skipped: 'PARLEY_TEST_NO_PG is set' };
  const binDir = findPgBinDir();
  const env = { PARLEY_TEST_PG_URL: process.env.PARLEY_TEST_PG_URL, PARLEY_TEST_PG_BIN: binDir, PARLEY_TEST_SKIP_PG: undefined };
  if (env.PARLEY_TEST_PG_URL) return { ...base, env };
  if (binDir === undefined) {
    return { ...base, env: off, skipped: 'no initdb/postgres/pg_ctl on PATH nor in /usr/lib/postgresql/*/bin' };
  }
  return { ...base, env, start: (signal) => startPgServer({ binDir, signal }) };
}

function planRedis(): Engine {
  const base = { name: 'Redis', urlVar: 'PARLEY_TEST_REDIS_URL' };
  const off = { PARLEY_TEST_REDIS_URL: undefined, PARLEY_TEST_REDIS_SERVER_BIN: undefined, PARLEY_TEST_SKIP_REDIS: '1' };
  if (isSet('PARLEY_TEST_NO_REDIS')) return { ...base, env: off, skipped: 'PARLEY_TEST_NO_REDIS is set' };
  const bin = findRedisServerBin();
  const env = { PARLEY_TEST_REDIS_URL: process.env.PARLEY_TEST_REDIS_URL, PARLEY_TEST_REDIS_SERVER_BIN: bin, PARLEY_TEST_SKIP_REDIS: undefined };
  if (env.PARLEY_TEST_REDIS_URL) return { ...base, env };
  if (bin === undefined) return { ...base, env: off, skipped: 'no redis-server on PATH' };
  return { ...base, env, start: (signal) => startRedisServer({ bin, signal }) };
}

/** Starts the engine's own server if it needs one, and points its URL var at it. */
async function startEngine(engine: Engine, signal: AbortSignal): Promise<void> {
  if (engine.start === undefined) return;
  const server = await engine.start(signal);
  engine.stop = server.stop;
  engine.env[engine.urlVar] = server.url;
  console.error(`[test/run] started ${engine.name} at ${server.url}`);
}

function isCI(): boolean {
  return process.env.CI === 'true' || process.env.CI === '1';
}

/** Prints a banner nobody can miss about engines whose tests are skipped. */
function warnSkipped(engines: Engine[]): void {
  const skipped = engines.filter((e) => e.skipped !== undefined);
  if (skipped.length === 0) return;
  const bar = '!'.repeat(78);
  const verdict = isCI() ? 'MISSING, CI cannot skip its tests' : 'variants of the tests are SKIPPED';
  const lines = skipped.map((e) => `!!! ${e.name} ${verdict}: ${e.skipped}`);
  const tail = isCI()
    ? '!!! CI=true: failing, because CI must test both PostgreSQL and Redis.'
    : '!!! Install postgresql / redis-server (or set PARLEY_TEST_PG_URL / PARLEY_TEST_REDIS_URL) to run them.';
  console.error(['', bar, bar, ...lines, tail, bar, bar, ''].join('\n'));
}

// ---------------------------------------------------------------- running

/** `node --import tsx --test ...` on `files`; resolves with its exit code (128+n if killed by signal n). */
function runNodeTests(files: string[], nodeFlags: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const extraFlags = (process.env.PARLEY_TEST_FLAGS ?? '').split(/\s+/).filter(Boolean);
  const args = ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...extraFlags, ...nodeFlags, ...files];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: 'inherit' });
    testProcess = child;
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      testProcess = undefined;
      resolvePromise(code ?? 128 + (signal === null ? 1 : constants.signals[signal]));
    });
  });
}

function testEnv(engines: Engine[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'test' };
  for (const [key, value] of engines.flatMap((e) => Object.entries(e.env))) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** Stops everything we started, in parallel; reports (but survives) failures. */
async function stopAll(engines: Engine[]): Promise<void> {
  const results = await Promise.allSettled(engines.map((e) => e.stop?.()));
  for (const r of results) if (r.status === 'rejected') console.error('[test/run] failed to stop a server:', r.reason);
}

function onSignal(signal: NodeJS.Signals): void {
  if (receivedSignal !== undefined) return; // already shutting down
  receivedSignal = signal;
  console.error(`\n[test/run] ${signal}: stopping tests and servers...`);
  aborter.abort();
  testProcess?.kill(signal);
}

async function main(argv: string[]): Promise<number> {
  const nodeFlags = argv.filter((a) => a.startsWith('-'));
  const filters = argv.filter((a) => !a.startsWith('-'));
  const files = selectFiles(findTestFiles(), filters);
  if (files.length === 0) {
    console.error(`[test/run] no *.test.ts files under ${TEST_DIRS.join('/, ')}/${filters.length ? ` matching ${filters.join(' ')}` : ''}`);
    return 1;
  }
  for (const signal of HANDLED_SIGNALS) process.on(signal, onSignal);

  const engines = [planPostgres(), planRedis()];
  warnSkipped(engines);
  if (isCI() && engines.some((e) => e.skipped !== undefined)) return 1;
  try {
    for (const engine of engines) await startEngine(engine, aborter.signal);
    if (receivedSignal !== undefined) return 1;
    const code = await runNodeTests(files, nodeFlags, testEnv(engines));
    warnSkipped(engines); // again, below the test output
    return code;
  } catch (err) {
    if (receivedSignal === undefined) console.error('[test/run] could not set up the tests:', err);
    return 1;
  } finally {
    await stopAll(engines);
  }
}

const exitCode = await main(process.argv.slice(2));
process.exit(receivedSignal === undefined ? exitCode : 128 + constants.signals[receivedSignal]);
