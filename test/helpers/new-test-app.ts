import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import pino from 'pino';
import { buildApp } from '../../src/app.ts';
import { ensureStartupData } from '../../src/bootstrap.ts';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { loggerOptions } from '../../src/platform/logger.ts';
import type { Services } from '../../src/services.ts';
import type { DialectName } from '../../src/storage/dialect.ts';
import { newTestDb, type TestDb } from './new-test-db.ts';

export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';

export interface TestApp {
  app: FastifyInstance;
  services: Services;
  db: TestDb;
  config: Readonly<Config>;
  redis: Redis | null;
  /** Every log line the app wrote, as raw JSON text. */
  logs: string[];
  close(): Promise<void>;
}

export interface TestAppOptions {
  dialect?: DialectName;
  /** Environment overrides, as strings, like the real process would get. */
  env?: Record<string, string>;
  /** Use the harness's Redis (shared limits) with a random key prefix; a URL: that Redis instead. */
  redis?: boolean | string;
}

/** A full app (real database, optional real Redis) for inject() or listen({port: 0}) tests. */
export async function newTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  // The per-user send limit is off unless a test sets it: most tests send many messages quickly.
  const config = loadConfig({ NODE_ENV: 'test', JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'info', METRICS_ENABLED: 'false', SEND_RATE_LIMIT_MAX: '0', ...opts.env });
  const db = await newTestDb(opts.dialect ?? 'sqlite');
  let redis: Redis | null = null;
  if (opts.redis) {
    const url = typeof opts.redis === 'string' ? opts.redis : process.env.PARLEY_TEST_REDIS_URL;
    if (!url) throw new Error('Redis is not available to this test run');
    redis = new Redis(url, { maxRetriesPerRequest: 1 });
    // Connection errors while the app shuts down are expected; the app logs its own.
    redis.on('error', () => undefined);
  }
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const logger = pino(loggerOptions(config.logLevel), stream);
  const app = await buildApp({
    config,
    database: db,
    redis,
    jwtSecret: TEST_JWT_SECRET,
    loggerInstance: logger,
    redisPrefix: `t:${randomBytes(6).toString('hex')}:`,
  });
  await ensureStartupData(app.services, config, logger);
  await app.ready();
  return {
    app,
    services: app.services,
    db,
    config,
    redis,
    logs,
    close: async () => {
      await app.close();
      await redis?.quit();
      await db.drop();
    },
  };
}

/** inject() with a JSON body and optional bearer token; returns the response and its parsed JSON. */
export async function call(
  app: FastifyInstance,
  method: InjectOptions['method'],
  url: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<LightMyRequestResponse & { data: any }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const res = await app.inject({ method, url, headers, ...(opts.body === undefined ? {} : { payload: opts.body as object }) });
  return Object.assign(res, { data: parseBody(res.body) });
}

function parseBody(body: string): unknown {
  try {
    return body ? JSON.parse(body) : null;
  } catch {
    return body;
  }
}
