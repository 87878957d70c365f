import 'dotenv/config';
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import pino from 'pino';
import { buildApp } from './app.ts';
import { ensureStartupData, resolveJwtSecret, runMigrations } from './bootstrap.ts';
import { ConfigError, loadConfig } from './config/config.ts';
import { loggerOptions } from './platform/logger.ts';
import { createDb } from './storage/db.ts';

/** Read config, build the app, listen. Nothing else. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = pino(loggerOptions(config.logLevel));
  const database = createDb(config.databaseUrl, {
    preparedStatements: config.databasePreparedStatements,
    onIdleError: (err) => log.warn({ err: err.message }, 'database connection lost; it will be replaced'),
    onCheckpointError: (message) => log.warn({ err: message }, 'background WAL checkpoint failed'),
  });
  await runMigrations(database.db, log);
  const redis = config.redisUrl ? new Redis(config.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 2 }) : null;
  redis?.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
  const jwtSecret = await resolveJwtSecret(config, log);
  const app = await buildApp({ config, database, redis, jwtSecret, loggerInstance: log });
  await ensureStartupData(app.services, config, log);

  const metricsServer = config.metricsEnabled
    ? createServer((req, res) => {
        if (req.url !== '/metrics') return void res.writeHead(404).end();
        app.metrics.registry.metrics().then(
          (body) => res.writeHead(200, { 'content-type': app.metrics.registry.contentType }).end(body),
          () => res.writeHead(500).end(),
        );
      })
    : null;

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: no new connections, draining requests');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    await app.close(); // stops accepting, waits for in-flight requests
    metricsServer?.close();
    await database.close();
    await redis?.quit().catch(() => undefined);
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  // A reconnect storm opens thousands of connections at once: past the backlog the kernel drops
  // SYNs and clients retry after 1, 3, 7, 15 s (Node's default of 511 doubled the benchmark's storm).
  await app.listen({ port: config.port, host: config.host, backlog: config.listenBacklog });
  if (metricsServer) {
    await new Promise<void>((resolve) => metricsServer.listen(config.metricsPort, config.metricsHost, resolve));
    log.info({ port: config.metricsPort }, 'metrics on /metrics');
  }
  log.info({ database: database.dialect, redis: Boolean(redis), docs: `${config.publicUrl}/docs` }, 'parley ready');
}

main().catch((err: unknown) => {
  process.stderr.write(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
