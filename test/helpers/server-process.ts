import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort, waitUntil } from './process.ts';

export const ROOT = resolve(import.meta.dirname, '..', '..');

export interface Running {
  proc: ChildProcess;
  base: string;
  metrics: string;
  output: () => string;
}

/** Start `src/main.ts` as the README's `npm start` does (tsx), in its own process. */
export async function startServer(env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const metricsPort = await freePort();
  let out = '';
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), METRICS_PORT: String(metricsPort), METRICS_HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const base = `http://127.0.0.1:${port}`;
  await waitUntil('server start', async () => (await fetch(`${base}/health`).catch(() => null))?.ok === true, {
    timeoutMs: 30_000,
    failure: () => (proc.exitCode !== null ? `exited ${proc.exitCode}: ${out}` : undefined),
  });
  return { proc, base, metrics: `http://127.0.0.1:${metricsPort}/metrics`, output: () => out };
}

export async function stop(r: Running): Promise<number | null> {
  if (r.proc.exitCode !== null) return r.proc.exitCode;
  const exited = new Promise<number | null>((res) => r.proc.once('exit', (code) => res(code)));
  r.proc.kill('SIGTERM');
  return exited;
}

export const post = (base: string, path: string, body: unknown, token?: string) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });

