import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, newTestApp, type TestApp } from './helpers/new-test-app.ts';
import { makeOrg, makeUser, PASSWORD } from './helpers/factories.ts';

describe('operations: health, readiness, errors, headers, limits', () => {
  let t: TestApp;
  before(async () => {
    t = await newTestApp({ env: { CORS_ALLOWED_ORIGINS: 'https://app.example.com', BODY_LIMIT_BYTES: '4096' } });
  });
  after(() => t.close());

  it('GET /health answers {"status":"ok"}; /ready checks the database', async () => {
    const h = await call(t.app, 'GET', '/health');
    assert.equal(h.statusCode, 200);
    assert.deepEqual(h.data, { status: 'ok' });
    const r = await call(t.app, 'GET', '/ready');
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.data, { status: 'ok', checks: { database: 'ok' } });
  });

  it('unknown routes, bad JSON, wrong content type and oversize bodies get clear JSON errors', async () => {
    const nf = await call(t.app, 'GET', '/api/v1/nothing-here');
    assert.equal(nf.statusCode, 404);
    assert.equal(nf.data.error.code, 'route.not_found');
    const badJson = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"username": "a",' });
    assert.equal(badJson.statusCode, 400);
    assert.equal(JSON.parse(badJson.body).error.code, 'request.invalid_json');
    const text = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'text/plain' }, payload: 'username=a' });
    assert.equal(text.statusCode, 415);
    assert.equal(JSON.parse(text.body).error.code, 'request.unsupported_media_type');
    const big = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ username: 'a', password: 'x'.repeat(5000) }) });
    assert.equal(big.statusCode, 413);
    assert.equal(JSON.parse(big.body).error.code, 'request.too_large');
    for (const r of [nf.body, badJson.body, text.body, big.body]) assert.doesNotMatch(r, /at .*\.(ts|js):\d+/, 'no stack trace in a response');
  });

  it('every API answer carries security headers, no-store caching and a request id', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'req-abc.123' } });
    assert.equal(r.headers['x-request-id'], 'req-abc.123');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.equal(r.headers['cache-control'], 'private, no-store');
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['strict-transport-security'], undefined, 'no HSTS for a plain-HTTP public URL');
    const generated = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'bad id with spaces' } });
    assert.match(String(generated.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  it('HSTS is sent when the public URL is https', async () => {
    const https = await newTestApp({ env: { PUBLIC_URL: 'https://chat.example.com' } });
    try {
      const r = await https.app.inject({ method: 'GET', url: '/health' });
      assert.equal(r.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
    } finally {
      await https.close();
    }
  });

  it('CORS answers allowed origins only', async () => {
    const ok = await t.app.inject({ method: 'OPTIONS', url: '/api/v1/users/me', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' } });
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com');
    const no = await t.app.inject({ method: 'OPTIONS', url: '/api/v1/users/me', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
    assert.equal(no.headers['access-control-allow-origin'], undefined);
  });

  it('OpenAPI: /openapi.json documents every API route with schemas; /docs serves the UI', async () => {
    const spec = (await call(t.app, 'GET', '/openapi.json')).data;
    assert.equal(spec.openapi, '3.1.0');
    for (const path of ['/api/v1/auth/login', '/api/v1/auth/register', '/api/v1/auth/refresh', '/api/v1/auth/logout', '/api/v1/users/me', '/api/v1/users', '/api/v1/users/{id}', '/api/v1/organizations', '/api/v1/organizations/{id}', '/api/v1/api-keys', '/health', '/ready']) {
      assert.ok(spec.paths[path], `missing ${path}`);
      for (const [method, op] of Object.entries<any>(spec.paths[path])) {
        assert.ok(op.responses && Object.keys(op.responses).length > 0, `${method} ${path} has response schemas`);
      }
    }
    assert.ok(spec.paths['/api/v1/auth/login'].post.requestBody, 'login documents its body');
    const docs = await t.app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(docs.statusCode, 200);
    assert.match(docs.body, /swagger/i);
  });

  it('request metrics use route templates as labels', async () => {
    const org = await makeOrg(t.services);
    const u = await makeUser(t.app, t.services, org.id);
    await call(t.app, 'GET', `/api/v1/users/${u.id}`, { token: u.token });
    await call(t.app, 'GET', `/no/such/${u.id}`);
    const text = await t.app.metrics.registry.metrics();
    assert.match(text, /chat_api_requests_total\{method="GET",route="unmatched",status="404"\} [1-9]/);
    assert.match(text, /chat_api_requests_total\{method="GET",route="\/api\/v1\/users\/:id",status="200"\} 1/);
    assert.match(text, /chat_api_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/api\/v1\/users\/:id"\}/);
    assert.match(text, /process_cpu_user_seconds_total/);
    assert.doesNotMatch(text, new RegExp(u.id), 'ids never become labels');
  });

  it('no secret reaches a log line', async () => {
    const reg = await call(t.app, 'POST', '/api/v1/auth/register', { body: { username: 'logwatch', password: PASSWORD } });
    await call(t.app, 'GET', '/api/v1/users/me', { token: reg.data.token });
    await call(t.app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: reg.data.refresh_token } });
    const all = t.logs.join('\n');
    assert.ok(t.logs.length > 3, 'requests were logged');
    for (const secret of [PASSWORD, reg.data.token, reg.data.refresh_token]) assert.ok(!all.includes(secret), 'a secret leaked into the logs');
  });
});

describe('readiness with Redis', () => {
  it('is 503 while Redis is unreachable', { skip: process.env.PARLEY_TEST_REDIS_URL ? false : 'SKIPPED: no Redis in this run' }, async () => {
    const t = await newTestApp({ redis: true });
    try {
      assert.equal((await call(t.app, 'GET', '/ready')).data.checks.redis, 'ok');
      t.redis!.disconnect();
      const r = await call(t.app, 'GET', '/ready');
      assert.equal(r.statusCode, 503);
      assert.equal(r.data.status, 'unavailable');
      assert.match(r.data.checks.redis, /^error/);
      assert.equal(r.data.checks.database, 'ok');
    } finally {
      t.redis!.disconnect();
      await t.app.close();
      await t.db.drop();
    }
  });
});
