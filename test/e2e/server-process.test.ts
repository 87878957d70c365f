import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { post, ROOT, startServer, stop, type Running } from '../helpers/server-process.ts';
import { newTestDb, testDialects } from '../helpers/new-test-db.ts';

describe('the server as a process (npm start)', () => {
  it('starts on an empty data folder: creates and migrates SQLite, seeds demo users, serves metrics, stops cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-e2e-'));
    const r = await startServer({ DATA_DIR: dir, SEED_DEMO: 'true', LISTEN_BACKLOG: '1234' });
    try {
      assert.ok(existsSync(join(dir, 'parley.db')), 'the SQLite file is in the data folder');
      assert.ok(existsSync(join(dir, 'jwt-secret')), 'a development JWT secret was made and kept');
      assert.match(r.output(), /JWT_SECRET is not set/);
      const login = await post(r.base, '/api/v1/auth/login', { username: 'agent2', password: 'password123' });
      assert.equal(login.status, 200);
      const body = (await login.json()) as { token: string; user: { role: string } };
      assert.equal(body.user.role, 'super-agent');
      const me = await fetch(`${r.base}/api/v1/users/me`, { headers: { authorization: `Bearer ${body.token}` } });
      assert.equal(me.status, 200);
      // The listener's backlog is LISTEN_BACKLOG (the kernel caps it at somaxconn): `ss` shows it as a listening socket's Send-Q.
      const port = new URL(r.base).port;
      const ss = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
      if (ss.error && !process.env.CI) process.stderr.write(`SKIPPED the listen backlog check: ss (iproute2) is not installed\n`);
      else {
        const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
        assert.equal(ss.stdout.trim().split(/\s+/)[2], String(Math.min(1234, somaxconn)), ss.stdout + ss.stderr);
      }
      const metrics = await (await fetch(r.metrics)).text();
      assert.match(metrics, /chat_api_requests_total\{method="GET",route="\/api\/v1\/users\/me",status="200"\} 1/);
      assert.ok(!r.output().includes(body.token), 'the token is not logged');
      assert.ok(!r.output().includes('password123'), 'the password is not logged');
      assert.equal(await stop(r), 0);
      assert.match(r.output(), /shutting down/);
    } finally {
      await stop(r);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start with a bad configuration, naming each problem', () => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', PORT: 'abc', NODE_ENV: 'production' }, encoding: 'utf8', timeout: 30_000 });
    assert.equal(res.status, 2);
    assert.match(res.stderr, /Invalid configuration:/);
    assert.match(res.stderr, /PORT: expected an integer/);
    assert.match(res.stderr, /JWT_SECRET: required when NODE_ENV=production/);
  });

  it('demo data is refused in production, by the CLI and at start', () => {
    const env = { PATH: process.env.PATH ?? '', NODE_ENV: 'production', JWT_SECRET: 'p'.repeat(40), DATABASE_URL: ':memory:', LOG_LEVEL: 'silent' };
    const seed = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'seed'], { cwd: ROOT, env, encoding: 'utf8', timeout: 30_000 });
    assert.equal(seed.status, 1);
    assert.match(seed.stderr, /Demo data is refused when NODE_ENV=production/);
    const start = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env: { ...env, SEED_DEMO: 'true' }, encoding: 'utf8', timeout: 30_000 });
    assert.equal(start.status, 2);
    assert.match(start.stderr, /SEED_DEMO: demo data is refused when NODE_ENV=production/);
  });

  it('the CLI creates a platform admin who can create organizations', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-cli-'));
    try {
      const env = { PATH: process.env.PATH ?? '', DATA_DIR: dir, LOG_LEVEL: 'silent' };
      const cli = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'create-platform-admin', '--username', 'root', '--password', 'root-password-1'], { cwd: ROOT, env, encoding: 'utf8', timeout: 30_000 });
      assert.equal(cli.status, 0, cli.stderr);
      assert.match(cli.stdout, /platform admin "root" ready/);
      const r = await startServer({ DATA_DIR: dir });
      try {
        const { token } = (await (await post(r.base, '/api/v1/auth/login', { username: 'root', password: 'root-password-1' })).json()) as { token: string };
        const created = await post(r.base, '/api/v1/organizations', { name: 'Tenant Two', slug: 'tenant-two' }, token);
        assert.equal(created.status, 201);
      } finally {
        assert.equal(await stop(r), 0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const dialect of testDialects().filter((d) => d === 'postgres')) {
    it('runs the same build on PostgreSQL and Redis, two processes sharing them', { skip: process.env.PARLEY_TEST_REDIS_URL ? false : 'SKIPPED: no Redis in this run' }, async () => {
      const db = await newTestDb(dialect, { migrate: false });
      const dir = mkdtempSync(join(tmpdir(), 'parley-e2e-pg-'));
      const env = { DATA_DIR: dir, DATABASE_URL: db.url, REDIS_URL: process.env.PARLEY_TEST_REDIS_URL!, JWT_SECRET: 'e2e-secret-e2e-secret-e2e-secret-e2e' };
      const [a, b] = await Promise.all([startServer(env), startServer(env)]);
      try {
        const reg = await post(a.base, '/api/v1/auth/register', { username: 'pguser', password: 'pg-password-1' });
        assert.equal(reg.status, 201);
        const { token } = (await reg.json()) as { token: string };
        // The token made on node A works on node B: one database, one secret. Both nodes now hold
        // the resolved principal in their cache.
        const me = (node: Running) => fetch(`${node.base}/api/v1/users/me`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal((await me(b)).status, 200);
        assert.equal((await me(a)).status, 200);
        const ready = (await (await fetch(`${b.base}/ready`)).json()) as { checks: Record<string, string> };
        assert.deepEqual(ready.checks, { database: 'ok', redis: 'ok' });
        // Logout on B ends the session on A too: the invalidation crosses over Redis.
        assert.equal((await post(b.base, '/api/v1/auth/logout', {}, token)).status, 204);
        let status = 0;
        for (let i = 0; i < 20 && status !== 401; i++) {
          status = (await me(a)).status;
          if (status !== 401) await new Promise((r) => setTimeout(r, 25));
        }
        assert.equal(status, 401, 'node A refuses the token within half a second');
      } finally {
        assert.equal(await stop(a), 0);
        assert.equal(await stop(b), 0);
        await db.drop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
