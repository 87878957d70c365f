/**
 * The servers of the WebSocket benchmark — Parley (as `npm start` runs it), the bare `ws` server
 * and the Socket.IO server, each its own process — and the data Parley needs (users, channels).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { codeVersion } from '../lib/machine.ts';
import { baseEnv, HOST, npmStartArgs } from '../lib/parley.ts';
import { freePort, makeTempDir, type Service, startService, waitForHttp } from '../lib/proc.ts';
import type { Target } from './shared.ts';

/** Users registered for the benchmark (role `member` in the default organization); connections reuse them. */
export const USERS = 5;
const PASSWORD = 'password123';

export interface Server {
  target: Target;
  service: Service;
  base: string;
  /** Parley: the code it was started on (it compiles src/ at start), e.g. "3f3be55" or "3f3be55 + uncommitted changes in src/"; baselines: ''. */
  code: string;
}

/** Parley's environment (printed in BENCHMARKS.md with the secret hidden). */
export function parleyEnv(port: number, dataDir: string, secret: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: String(port),
    HOST,
    DATA_DIR: dataDir,
    DATABASE_URL: join(dataDir, 'bench.db'),
    SEED_DEMO: 'true',
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    METRICS_ENABLED: 'false',
    JWT_SECRET: secret,
    RATE_LIMIT_MAX: '1000000000',
    SEND_RATE_LIMIT_MAX: '0',
    WS_CONNECT_LIMIT_MAX: '0',
    WS_MESSAGE_LIMIT_MAX: '0',
    ACCESS_TOKEN_TTL_SECONDS: '3600',
    DOTENV_CONFIG_PATH: join(dataDir, 'no-such.env'),
    ...extra,
  };
}

export const SHOWN_ENV =
  'PORT=<free port> HOST=127.0.0.1 DATA_DIR=<temp dir> DATABASE_URL=<temp dir>/bench.db SEED_DEMO=true NODE_ENV=development LOG_LEVEL=warn METRICS_ENABLED=false ' +
  'JWT_SECRET=<random, 48 chars> RATE_LIMIT_MAX=1000000000 SEND_RATE_LIMIT_MAX=0 WS_CONNECT_LIMIT_MAX=0 WS_MESSAGE_LIMIT_MAX=0 ACCESS_TOKEN_TTL_SECONDS=3600 DOTENV_CONFIG_PATH=<missing file>';

export const newSecret = (): string => randomBytes(36).toString('base64url');

/** Starts Parley exactly as `npm start` does (node flags and entry of package.json's start script). */
export async function startParley(root: string, o: { name?: string; dataDir?: string; secret?: string; extraEnv?: Record<string, string>; nodeFlags?: string[] } = {}): Promise<Server> {
  const port = await freePort();
  const dataDir = o.dataDir ?? makeTempDir('parley-bench-ws-');
  const code = codeVersion(root);
  const service = startService(o.name ?? 'parley', process.execPath, [...(o.nodeFlags ?? []), ...npmStartArgs(root)], {
    cwd: root,
    env: { ...baseEnv(), ...parleyEnv(port, dataDir, o.secret ?? newSecret(), o.extraEnv) },
  });
  const base = `http://${HOST}:${port}`;
  await waitForHttp(service, `${base}/health`, 120_000);
  return { target: 'parley', service, base, code };
}

/** Starts the bare `ws` or the Socket.IO server with Parley's message as the template. */
export async function startBaseline(root: string, target: 'bare' | 'socketio', templateFile: string, nodeFlags: string[] = []): Promise<Server> {
  const port = await freePort();
  const script = target === 'bare' ? 'bench/ws/bare-ws-server.ts' : 'bench/ws/socketio-server.ts';
  const service = startService(target === 'bare' ? 'bare-ws-server' : 'socketio-server', process.execPath, [...nodeFlags, '--import', 'tsx', script], {
    cwd: root,
    env: { ...baseEnv(), BENCH_WS_PORT: String(port), BENCH_WS_HOST: HOST, BENCH_WS_TEMPLATE_FILE: templateFile },
  });
  const base = `http://${HOST}:${port}`;
  await waitForHttp(service, `${base}/health`);
  return { target, service, base, code: '' };
}

export async function api<T>(base: string, method: string, path: string, token: string | null, body: unknown, want: number): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== want) throw new Error(`${method} ${path} answered ${res.status} (expected ${want}): ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** Parley's benchmark data: users with their tokens, the fan-out channel and a message template. */
export interface Fixture {
  users: Array<{ id: string; username: string; token: string }>;
  tokens: string[];
  /** A public channel created by user 1; every user may read (subscribe to) it. */
  channel: string;
  /** Parley's answer to a message posted there (the baselines' template). */
  templateFile: string;
}

/** Registers USERS users, creates the fan-out channel and posts the template message. */
export async function setupFixture(base: string, dir: string): Promise<Fixture> {
  const suffix = randomBytes(3).toString('hex');
  const users: Fixture['users'] = [];
  for (let i = 1; i <= USERS; i++) {
    const username = `wsbench-${suffix}-${i}`;
    const r = await api<{ token: string; user: { id: string } }>(base, 'POST', '/api/v1/auth/register', null, { username, password: PASSWORD }, 201);
    users.push({ id: r.user.id, username, token: r.token });
  }
  const t1 = users[0]!.token;
  const channel = (await api<{ id: string }>(base, 'POST', '/api/v1/channels', t1, { name: `ws-fanout-${suffix}` }, 201)).id;
  const message = await api<Record<string, unknown>>(base, 'POST', `/api/v1/channels/${channel}/messages`, t1, { body: 'wsbench:0:0:' }, 201);
  const templateFile = join(dir, 'message-template.json');
  writeFileSync(templateFile, JSON.stringify(message));
  return { users, tokens: users.map((u) => u.token), channel, templateFile };
}

/** Creates `count` channels (private when `members`, with every benchmark user in it) and returns their ids. */
export async function createChannels(base: string, fx: Fixture, prefix: string, count: number, members: boolean): Promise<string[]> {
  const ids: string[] = [];
  const others = fx.users.slice(1).map((u) => u.id);
  const suffix = randomBytes(3).toString('hex');
  for (let i = 0; i < count; i += 20) {
    const batch = Array.from({ length: Math.min(20, count - i) }, (_, k) =>
      api<{ id: string }>(base, 'POST', '/api/v1/channels', fx.tokens[0]!, { name: `${prefix}-${suffix}-${i + k}`, ...(members ? { private: true, members: others } : {}) }, 201),
    );
    ids.push(...(await Promise.all(batch)).map((c) => c.id));
  }
  return ids;
}
