import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from './config.ts';

const problems = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  assert.fail('expected a ConfigError');
};

describe('configuration', () => {
  it('has working defaults for the embedded shape', () => {
    const c = loadConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.nodeEnv, 'development');
    assert.equal(c.databaseUrl, resolve('data/parley.db'));
    assert.equal(c.redisUrl, null);
    assert.equal(c.metricsPort, 9094);
    assert.equal(c.bodyLimitBytes, 2 * 1024 * 1024);
    assert.equal(c.jwtSecret, null);
    assert.ok(Object.isFrozen(c));
  });

  it("accepts the seeds' variable names as aliases", () => {
    const c = loadConfig({ CHAT_PORT: '8086', DB_URL: 'postgres://u:p@db:5432/chat', REDIS_ADDR: 'cache:6379', REDIS_PASSWORD: 's3cr/t', CHAT_METRICS_PORT: '9095', SERVER_MODE: 'release', JWT_SECRET: 'x'.repeat(32), CORS_ENABLED: 'false' });
    assert.equal(c.port, 8086);
    assert.equal(c.databaseUrl, 'postgres://u:p@db:5432/chat');
    assert.equal(c.redisUrl, 'redis://:s3cr%2Ft@cache:6379');
    assert.equal(c.metricsPort, 9095);
    assert.equal(c.nodeEnv, 'production');
    assert.equal(c.corsEnabled, false);
  });

  it('reads the listen backlog (default 4096, for reconnect storms) and refuses one out of range', () => {
    assert.equal(loadConfig({}).listenBacklog, 4096);
    assert.equal(loadConfig({ LISTEN_BACKLOG: '1024' }).listenBacklog, 1024);
    assert.throws(() => loadConfig({ LISTEN_BACKLOG: '0' }), /LISTEN_BACKLOG/);
  });

  it('the primary name wins over the alias', () => {
    assert.equal(loadConfig({ PORT: '9000', CHAT_PORT: '8086' }).port, 9000);
  });

  it('reads SQLite paths and file: URLs', () => {
    assert.equal(loadConfig({ DATABASE_URL: 'file:./x/y.db' }).databaseUrl, resolve('x/y.db'));
    assert.equal(loadConfig({ DATABASE_URL: ':memory:' }).databaseUrl, ':memory:');
    assert.equal(loadConfig({ DATABASE_URL: '/var/lib/parley.db' }).databaseUrl, '/var/lib/parley.db');
  });

  it('reports every bad value at once, one line each', () => {
    const p = problems({ PORT: 'eighty', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x', REDIS_URL: 'http://nope', CORS_ALLOWED_ORIGINS: 'example.com', METRICS_ENABLED: 'maybe' });
    assert.equal(p.length, 6, p.join('\n'));
    assert.match(p.join('\n'), /PORT: expected an integer/);
    assert.match(p.join('\n'), /LOG_LEVEL: expected one of/);
    assert.match(p.join('\n'), /DATABASE_URL: expected a SQLite path/);
    assert.match(p.join('\n'), /REDIS_URL: expected a redis: or rediss: URL/);
    assert.match(p.join('\n'), /CORS_ALLOWED_ORIGINS: "example.com"/);
    assert.match(p.join('\n'), /METRICS_ENABLED: expected true or false/);
  });

  it('requires a strong JWT_SECRET in production, and refuses demo data there', () => {
    assert.match(problems({ NODE_ENV: 'production' }).join('\n'), /JWT_SECRET: required when NODE_ENV=production/);
    assert.match(problems({ JWT_SECRET: 'short' }).join('\n'), /at least 32 characters/);
    assert.match(problems({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40), SEED_DEMO: 'true' }).join('\n'), /SEED_DEMO/);
  });

  it('needs both platform admin variables or neither', () => {
    assert.match(problems({ PLATFORM_ADMIN_USERNAME: 'root' }).join('\n'), /set both or neither/);
    assert.equal(loadConfig({ PLATFORM_ADMIN_USERNAME: 'Root', PLATFORM_ADMIN_PASSWORD: 'long enough' }).platformAdmin?.username, 'root');
  });

  it('file storage: local by default (25 MB), S3 with the seed’s CHAT_BUCKET, and what S3 needs', () => {
    const local = loadConfig({});
    assert.deepEqual(local.files, { kind: 'local', uploadMaxBytes: 25 * 1024 * 1024, s3: null });
    const s3 = loadConfig({ FILE_STORAGE: 's3', CHAT_BUCKET: 'chat-files', S3_ENDPOINT: 'http://minio:9000', S3_ACCESS_KEY: 'k', S3_SECRET_KEY: 's', UPLOAD_MAX_BYTES: '1048576' });
    assert.equal(s3.files.uploadMaxBytes, 1048576);
    assert.deepEqual(s3.files.s3, { bucket: 'chat-files', region: 'us-east-1', endpoint: 'http://minio:9000', forcePathStyle: true, credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
    assert.equal(loadConfig({ FILE_STORAGE: 's3', S3_BUCKET: 'b-on-aws' }).files.s3?.forcePathStyle, false, 'AWS itself: virtual-hosted style, default credential chain');
    const p = problems({ FILE_STORAGE: 's3', S3_ACCESS_KEY: 'k', S3_ENDPOINT: 'minio:9000', UPLOAD_MAX_BYTES: '0' }).join('\n');
    assert.match(p, /S3_BUCKET: required when FILE_STORAGE=s3/);
    assert.match(p, /S3_ACCESS_KEY and S3_SECRET_KEY: set both or neither/);
    assert.match(p, /S3_ENDPOINT: expected a http: or https: URL/);
    assert.match(p, /UPLOAD_MAX_BYTES: expected an integer/);
    assert.match(problems({ FILE_STORAGE: 'ftp' }).join('\n'), /FILE_STORAGE: expected one of local, s3/);
  });

  it('the ConfigError message lists the problems for the start-up output', () => {
    try {
      loadConfig({ PORT: '-1' });
      assert.fail('expected an error');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^Invalid configuration:\n {2}- PORT: expected an integer from 0 to 65535, got "-1"$/);
    }
  });
});
