/**
 * Starting Parley for a benchmark, exactly as `npm start` does, and talking to it (shared by the
 * benchmarks and the message generator).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, makeTempDir, type Service, startService, waitForHttp } from './proc.ts';

export const HOST = '127.0.0.1';

/** The variables a child needs from our environment; everything else is given explicitly. */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ']) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/** The arguments after `node` in package.json's start script, e.g. `--max-semi-space-size=32 --import tsx src/main.ts`. */
export function npmStartArgs(root: string): string[] {
  const start = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start ?? '';
  const [cmd, ...args] = start.trim().split(/\s+/);
  if (cmd !== 'node' || args.length === 0) throw new Error(`package.json start script is not "node ...": ${start}`);
  return args;
}

/** Logs in as a demo user (password of the demo seed) and returns the access token. */
export async function login(base: string, username = 'agent1'): Promise<string> {
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'password123' }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`login as ${username} answered ${res.status}: ${text}`);
  const token = (JSON.parse(text) as { token?: unknown }).token;
  if (typeof token !== 'string' || !token) throw new Error(`login answer has no token: ${text}`);
  return token;
}

/** GET with the token; the body text of a 200 JSON answer, else throws. */
export async function getBody(url: string, token: string): Promise<string> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${text}`);
  if (!/^application\/json/.test(res.headers.get('content-type') ?? '')) throw new Error(`GET ${url}: content-type ${res.headers.get('content-type')}`);
  return text;
}

/**
 * Parley on a copy-free existing database (the generated dataset), as `npm start` runs it, with the
 * limits of the message benchmarks: rate limiter on at a limit never reached, send limit off.
 */
export function datasetEnv(port: number, dataDir: string, dbFile: string, secret: string): Record<string, string> {
  return {
    PORT: String(port),
    HOST,
    DATA_DIR: dataDir,
    DATABASE_URL: dbFile,
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    METRICS_ENABLED: 'false',
    JWT_SECRET: secret,
    RATE_LIMIT_MAX: '1000000000',
    SEND_RATE_LIMIT_MAX: '0',
    ACCESS_TOKEN_TTL_SECONDS: '3600',
    DOTENV_CONFIG_PATH: join(dataDir, 'no-such.env'),
  };
}

export const DATASET_SHOWN_ENV =
  'PORT=<free port> HOST=127.0.0.1 DATA_DIR=<temp dir> DATABASE_URL=bench/.results/dataset/messages-1000000-v1.db NODE_ENV=development LOG_LEVEL=warn ' +
  'METRICS_ENABLED=false JWT_SECRET=<random, 48 chars> RATE_LIMIT_MAX=1000000000 SEND_RATE_LIMIT_MAX=0 ACCESS_TOKEN_TTL_SECONDS=3600 DOTENV_CONFIG_PATH=<missing file>';

/** Starts Parley (as `npm start` does) on the generated dataset; stopped by cleanup() unless earlier. */
export async function startOnDataset(root: string, dbFile: string, log: (l: string) => void): Promise<{ parley: Service; base: string; token: string }> {
  const port = await freePort();
  const dataDir = makeTempDir('parley-bench-data-');
  log(`starting Parley on ${HOST}:${port} with ${dbFile}`);
  const parley = startService('parley', process.execPath, npmStartArgs(root), {
    cwd: root,
    env: { ...baseEnv(), ...datasetEnv(port, dataDir, dbFile, randomBytes(36).toString('base64url')) },
  });
  const base = `http://${HOST}:${port}`;
  await waitForHttp(parley, `${base}/health`, 120_000);
  return { parley, base, token: await login(base) };
}
