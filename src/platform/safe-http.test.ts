import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isPrivateAddress, resolveSafeUrl, safePost, UnsafeUrlError } from './safe-http.ts';

// SECURITY.md class E: outgoing requests to user-chosen URLs (webhooks) never reach inside.
describe('safe-http: private and reserved addresses (SSRF)', () => {
  const refused = [
    '127.0.0.1', '127.8.9.10', '0.0.0.0', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254',
    '100.64.0.1', '224.0.0.1', '255.255.255.255', '198.18.0.1',
    '::', '::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:169.254.169.254', '::ffff:10.0.0.1', '0:0:0:0:0:ffff:a00:1',
    '64:ff9b::7f00:1', '64:ff9b::10.0.0.1', 'fe80::1', 'fe80::1%eth0', 'fc00::1', 'fd12:3456::1', 'ff02::1', '2001:db8::1', '2002:7f00:1::1',
    'not-an-ip', '',
  ];
  const allowed = ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '2001:4860:4860::8888', '::ffff:8.8.8.8', '64:ff9b::808:808'];

  for (const ip of refused) it(`refuses ${ip || '(empty)'}`, () => assert.equal(isPrivateAddress(ip), true));
  for (const ip of allowed) it(`allows ${ip}`, () => assert.equal(isPrivateAddress(ip), false));

  it('refuses URLs whose host is or resolves to such an address, other schemes and credentials', async () => {
    for (const url of [
      'http://127.0.0.1/hook',
      'http://[::1]:8080/',
      'http://[::ffff:127.0.0.1]/',
      'http://[::ffff:a9fe:a9fe]/latest/meta-data',
      'http://169.254.169.254/latest/meta-data',
      'http://0x7f.1/',
      'http://2130706433/',
      'http://localhost:9000/',
      'http://0.0.0.0/',
      'ftp://example.com/',
      'file:///etc/passwd',
      'https://user:pass@example.com/',
      'not a url',
    ]) {
      await assert.rejects(resolveSafeUrl(url, false), UnsafeUrlError, url);
    }
  });

  it('allowPrivate lets loopback through (tests, trusted networks)', async () => {
    const r = await resolveSafeUrl('http://127.0.0.1:9/x', true);
    assert.deepEqual(r.addresses, [{ address: '127.0.0.1', family: 4 }]);
  });
});

describe('safe-http: safePost', () => {
  let server: Server;
  let base: string;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2000).unref();
      if (req.url === '/drip') {
        res.writeHead(200);
        const t = setInterval(() => res.write('x'), 50);
        t.unref();
        res.on('close', () => clearInterval(t));
        return;
      }
      if (req.url === '/redirect') return void res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end();
      if (req.url === '/big') return void res.end('y'.repeat(1_000_000));
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => res.writeHead(201, { 'content-type': 'text/plain' }).end(`${req.headers['x-test']}:${body}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('posts the body with the headers and returns the status and the start of the answer', async () => {
    const r = await safePost(`${base}/ok`, '{"a":1}', { headers: { 'x-test': 'h' }, timeoutMs: 2000, allowPrivate: true });
    assert.deepEqual(r, { status: 201, body: 'h:{"a":1}' });
  });

  it('refuses a private target unless allowed, before connecting', async () => {
    await assert.rejects(safePost(`${base}/ok`, '{}', { headers: {}, timeoutMs: 2000, allowPrivate: false }), UnsafeUrlError);
  });

  it('does not follow redirects', async () => {
    const r = await safePost(`${base}/redirect`, '{}', { headers: {}, timeoutMs: 2000, allowPrivate: true });
    assert.equal(r.status, 302);
  });

  it('gives up on a slow server and on a slow-drip body at the deadline', async () => {
    for (const path of ['/slow', '/drip']) {
      const t0 = Date.now();
      await assert.rejects(safePost(`${base}${path}`, '{}', { headers: {}, timeoutMs: 300, allowPrivate: true, maxResponseBytes: 100_000 }), /no answer within 300 ms/);
      assert.ok(Date.now() - t0 < 1500, path);
    }
  });

  it('reads at most maxResponseBytes of a large answer', async () => {
    const r = await safePost(`${base}/big`, '{}', { headers: {}, timeoutMs: 2000, allowPrivate: true, maxResponseBytes: 64 });
    assert.equal(r.body, 'y'.repeat(64));
  });
});
