/**
 * A throwaway Redis server for tests: 127.0.0.1 only, no persistence.
 *
 * Usable from a test file too, e.g. to simulate a Redis outage:
 *
 *   const redis = await startRedisServer();
 *   await redis.stop();                                       // outage
 *   const again = await startRedisServer({ port: redis.port }); // same URL again
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureOutputTail, findOnPath, freePort, hasExited, isExecutable, waitForExit, waitUntil } from './process.js';

/** A running throwaway Redis server. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Stops the server (port free again once this resolves) and removes its temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options for {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Fixed port, e.g. to restart on the port of a stopped server (default: a free one). */
  port?: number | undefined;
  /** redis-server binary (default: {@link findRedisServerBin}). */
  bin?: string | undefined;
  /** Abort startup (the half-started server is cleaned up). */
  signal?: AbortSignal | undefined;
  /** How long to wait for the server to answer (default 30 s). */
  timeoutMs?: number | undefined;
}

/** The redis-server binary: `$PARLEY_TEST_REDIS_SERVER_BIN`, else `redis-server` on PATH; undefined if absent. */
export function findRedisServerBin(): string | undefined {
  const fromEnv = process.env.PARLEY_TEST_REDIS_SERVER_BIN;
  if (fromEnv !== undefined && isExecutable(fromEnv)) return fromEnv;
  return findOnPath('redis-server');
}

/** Starts redis-server and resolves once it answers. */
export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const bin = opts.bin ?? findRedisServerBin();
  if (bin === undefined) throw new Error('redis-server not found');
  const port = opts.port ?? (await freePort());
  const dir = await realpath(await mkdtemp(join(tmpdir(), 'parley-redis-'))); // as Redis reports it
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--daemonize', 'no',
    '--loglevel', 'warning',
  ];
  const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = captureOutputTail(child);
  child.on('error', () => {}); // a spawn failure shows up as an exit below
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= stopRedis(child, dir));

  try {
    await waitUntil(`Redis on port ${port}`, () => answersAsOurServer(port, dir), {
      timeoutMs: opts.timeoutMs ?? 30_000,
      signal: opts.signal,
      failure: () => (hasExited(child) ? `redis-server exited early:\n${output()}` : undefined),
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop };
}

async function stopRedis(child: ChildProcess, dir: string): Promise<void> {
  child.kill('SIGTERM');
  if (!(await waitForExit(child, 5_000))) {
    child.kill('SIGKILL');
    await waitForExit(child, 5_000);
  }
  await rm(dir, { recursive: true, force: true });
}

/**
 * Whether the server on `port` answers, and is ours: a raw `CONFIG GET dir`
 * must come back with our temp dir (so a stray server already holding the
 * port is not mistaken for the one we just started).
 */
function answersAsOurServer(port: number, dir: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('CONFIG GET dir\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.startsWith('-')) done(false); // e.g. -LOADING
      else if (reply.includes(`\r\n${dir}\r\n`)) done(true);
    });
  });
}
