/**
 * Small process/network utilities shared by the throwaway-server helpers
 * (`pg-server.ts`, `redis-server.ts`) and the test runner (`test/run.ts`).
 */
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** True when `file` is a regular file we may execute. */
export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Full path of the executable `name` in the `:`-separated `searchPath` (default: PATH), or undefined. */
export function findOnPath(name: string, searchPath: string = process.env.PATH ?? ''): string | undefined {
  for (const dir of searchPath.split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (found by listening on port 0). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('could not determine a free port');
  return address.port;
}

/** Options for {@link waitUntil}. */
export interface WaitOptions {
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  /** Delay between probes (default 100 ms). */
  intervalMs?: number | undefined;
  /** Abort the wait early (e.g. on SIGINT). */
  signal?: AbortSignal | undefined;
  /** Return a reason to stop waiting at once (e.g. "the server exited"). */
  failure?: (() => string | undefined) | undefined;
}

/** Calls `probe` until it resolves true; throws on timeout, abort or `failure()`. */
export async function waitUntil(what: string, probe: () => Promise<boolean>, opts: WaitOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    opts.signal?.throwIfAborted();
    const failed = opts.failure?.();
    if (failed !== undefined) throw new Error(`${what}: ${failed}`);
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`${what}: still not ready after ${opts.timeoutMs} ms`);
    await sleep(opts.intervalMs ?? 100);
  }
}

/** True once `child` has exited (normally or by a signal). */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Waits up to `timeoutMs` for `child` to exit; resolves whether it did. */
export async function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (hasExited(child)) return true;
  const ac = new AbortController();
  const exited = new Promise<boolean>((resolve) => child.once('exit', () => resolve(true)));
  const timedOut = sleep(timeoutMs, false, { signal: ac.signal }).catch(() => false);
  const result = await Promise.race([exited, timedOut]);
  ac.abort();
  return result;
}

/** Sends `signal` to `pid`, ignoring "no such process". */
export function signalPid(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Keeps the last `maxChars` of a child's stdout+stderr; returns a getter for it. */
export function captureOutputTail(child: ChildProcess, maxChars = 16_000): () => string {
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-maxChars);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => tail;
}

/** Quotes `arg` for /bin/sh. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}
