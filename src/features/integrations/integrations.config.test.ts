import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../config/config.ts';

const base = { NODE_ENV: 'test', JWT_SECRET: 'x'.repeat(40) };

describe('integrations configuration', () => {
  it('Redis events follow REDIS_URL unless switched off; the defaults', () => {
    const off = loadConfig(base).integrations;
    assert.equal(off.redisEvents, false);
    assert.deepEqual(off.outbox, { dispatcher: true, pollMs: 1000, concurrency: 32, maxAttempts: 20, retryBaseMs: 1000, retryMaxMs: 3_600_000, lockMs: 60_000 });
    assert.deepEqual(off.webhooks, { timeoutMs: 10_000, allowPrivate: false });
    assert.equal(off.redisMinSubscribers, 0);
    assert.equal(loadConfig({ ...base, REDIS_URL: 'redis://127.0.0.1:6379' }).integrations.redisEvents, true);
    assert.equal(loadConfig({ ...base, REDIS_URL: 'redis://127.0.0.1:6379', INTEGRATION_REDIS_EVENTS: 'false' }).integrations.redisEvents, false);
    assert.equal(loadConfig({ ...base, WEBHOOKS_ALLOW_PRIVATE: 'true', OUTBOX_DISPATCHER: 'false' }).integrations.webhooks.allowPrivate, true);
  });

  it('refuses Redis events without Redis, a lease shorter than an attempt, bad numbers', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig({ ...base, ...env });
        return [];
      } catch (err) {
        assert.ok(err instanceof ConfigError, 'a ConfigError');
        return err.problems;
      }
    };
    assert.match(problems({ INTEGRATION_REDIS_EVENTS: 'true' }).join('\n'), /INTEGRATION_REDIS_EVENTS: needs REDIS_URL/);
    assert.match(problems({ WEBHOOK_TIMEOUT_MS: '30000', OUTBOX_LOCK_MS: '20000' }).join('\n'), /OUTBOX_LOCK_MS: must be at least WEBHOOK_TIMEOUT_MS \+ 5000/);
    assert.equal(problems({ OUTBOX_MAX_ATTEMPTS: '0', OUTBOX_CONCURRENCY: 'lots' }).length, 2);
  });
});
