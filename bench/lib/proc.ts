/**
 * Child processes, ports, temp dirs and cleanup for the benchmark harness.
 *
 * Everything the harness starts or creates is registered here, and `cleanup()` undoes it in reverse
 * order (servers stopped with SIGTERM, then SIGKILL; temp dirs removed). `cleanup()` also runs from
 * SIGINT/SIGTERM/SIGHUP handlers, and a last synchronous pass runs on process exit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export type CleanupTask = { name: string; run: () => Promise<void>; sync: () => void };
const tasks: CleanupTask[] = [];

/** Registers something to undo at the end of the run (last registered, first undone). */
export function onCleanup(task: CleanupTask): () => void {
  tasks.push(task);
  return () => {
    const i = tasks.indexOf(task);
    if (i >= 0) tasks.splice(i, 1);
  };
}

let cleaning: Promise<void> | undefined;

/**
 * Undo everything registered so far. Never throws; reports what failed on stderr. A call made while
 * one runs (a signal handler's and the runner's, after an interruption) gets the running one: two
 * passes would each pop tasks, and the first to finish would let the process exit while the other
 * still waits for a server to stop.
 */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (tasks.length) {
      const task = tasks.pop()!;
      try {
        await task.run();
      } catch (err) {
        process.stderr.write(`bench: cleanup of ${task.name} failed: ${(err as Error).message}\n`);
      }
    }
  })().finally(() => (cleaning = undefined));
  return cleaning;
}

let handlersInstalled = false;
let interruptedBy: NodeJS.Signals | undefined;
/** The signal that interrupted the run, if one did (errors after it are consequences, not findings). */
export const interrupted = (): NodeJS.Signals | undefined => interruptedBy;

/** SIGINT/SIGTERM/SIGHUP: clean up and exit 130; on exit: synchronous last-chance cleanup. */
export function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      interruptedBy = sig;
      process.stderr.write(`\nbench: ${sig}, stopping servers and removing temp files\n`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  process.once('exit', () => {
    for (const task of tasks.splice(0).reverse()) {
      try {
        task.sync();
      } catch {
        /* best effort */
      }
    }
  });
}

/** A fresh temp dir, removed by cleanup(). */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  onCleanup({ name: `temp dir ${dir}`, run: async () => remove(), sync: remove });
  return dir;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (shared with the test harness). */
export { freePort } from '../../test/helpers/process.ts';

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  if (exited(child) || child.pid === undefined) return;
  try {
    process.kill(child.pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return true;
  const ac = new AbortController();
  const done = await Promise.race([
    new Promise<boolean>((resolve) => child.once('exit', () => resolve(true))),
    sleep(ms, false, { signal: ac.signal }).catch(() => false),
  ]);
  ac.abort();
  return done || exited(child);
}

/** A long-running child process (a server under test). */
export interface Service {
  readonly name: string;
  readonly pid: number;
  /** Why it is no longer running, or undefined while it runs. */
  exitReason(): string | undefined;
  /** The last part of its stdout+stderr. */
  output(): string;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  cwd: string;
  /** The complete environment of the child (nothing is inherited implicitly). */
  env: Record<string, string>;
}

/** Starts a long-running child; it is stopped by cleanup() unless stopped earlier. */
export function startService(name: string, command: string, args: string[], opts: StartOptions): Service {
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-16_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 10_000): Promise<void> => {
    stopping ??= (async () => {
      signal(child, 'SIGTERM');
      if (!(await waitExit(child, graceMs))) {
        process.stderr.write(`bench: ${name} ignored SIGTERM for ${graceMs} ms, sending SIGKILL\n`);
        signal(child, 'SIGKILL');
        await waitExit(child, 5_000);
      }
      unregister();
    })();
    return stopping;
  };
  const unregister = onCleanup({ name, run: () => stop(), sync: () => signal(child, 'SIGKILL') });

  return {
    name,
    pid: child.pid,
    exitReason: () => {
      if (spawnError) return `could not start: ${spawnError.message}`;
      if (child.exitCode !== null) return `exited with code ${child.exitCode}`;
      if (child.signalCode !== null) return `killed by ${child.signalCode}`;
      return undefined;
    },
    output: () => tail,
    stop,
  };
}

/** Polls `url` until it answers 2xx; fails early when `service` dies. */
export async function waitForHttp(service: Service, url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = service.exitReason();
    if (dead) throw new Error(`${service.name} ${dead} before answering ${url}\n--- its output ---\n${service.output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`${service.name} did not answer ${url} within ${timeoutMs} ms\n--- its output ---\n${service.output()}`);
    await sleep(150);
  }
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (a load generator run); killed by cleanup() if the run is interrupted. */
export async function runCommand(name: string, command: string, args: string[], opts: { env?: Record<string, string>; timeoutMs: number }): Promise<CommandResult> {
  const child = spawn(command, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const unregister = onCleanup({
    name,
    run: async () => {
      signal(child, 'SIGKILL');
      await waitExit(child, 5_000);
    },
    sync: () => signal(child, 'SIGKILL'),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const timer = setTimeout(() => signal(child, 'SIGKILL'), opts.timeoutMs);
  try {
    return await new Promise<CommandResult>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, sig) => resolve({ code, signal: sig, stdout, stderr }));
    });
  } finally {
    clearTimeout(timer);
    unregister();
  }
}

/** Quotes `arg` for /bin/sh (for printing commands). */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}
